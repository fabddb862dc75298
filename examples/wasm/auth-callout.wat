;; An external-authorization filter in WAT: on request headers it calls the "authsvc" cluster
;; (POST /check) and pauses the request. When the answer arrives (on the root context, as in
;; Envoy) it reads the call's :status, switches the effective context back to the stream, and
;; either resumes the request (2xx) or sends a local 403 "denied" reply. A failed call denies too.
(module
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local_reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $stream (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))))
    (local.get $p))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32) (param i32) (result i32)
    (global.set $stream (local.get $ctx))
    ;; upstream "authsvc", the serialized call headers at 1100 (70 bytes), no body, 1 s timeout
    (if (call $http_call (i32.const 1024) (i32.const 7) (i32.const 1100) (i32.const 70)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 256))
      (then (return (i32.const 0))))   ;; could not call: let the request through
    (i32.const 1))                     ;; Pause (Envoy makes it StopAllIterationAndWatermark)
  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32) (param $headers i32) (param i32) (param i32)
    (local $status i32)
    ;; the response is readable on the root context only, so read it before switching
    (local.set $status (call $get_header (i32.const 6) (i32.const 1040) (i32.const 7) (i32.const 264) (i32.const 268)))
    (drop (call $set_effective (global.get $stream)))
    (if (i32.and (i32.eqz (local.get $status)) (i32.eq (i32.load8_u (i32.load (i32.const 264))) (i32.const 50)))
      (then
        (drop (call $log (i32.const 2) (i32.const 1080) (i32.const 7)))
        (drop (call $continue (i32.const 0))))
      (else
        (drop (call $log (i32.const 3) (i32.const 1088) (i32.const 6)))
        (drop (call $local_reply (i32.const 403) (i32.const 1056) (i32.const 6) (i32.const 1064) (i32.const 7)
          (i32.const 0) (i32.const 0) (i32.const -1))))))
  (func (export "proxy_on_delete") (param i32) (global.set $heap (i32.const 65536)))
  (data (i32.const 1024) "authsvc")
  (data (i32.const 1040) ":status")
  (data (i32.const 1056) "denied")
  (data (i32.const 1064) "go away")
  (data (i32.const 1080) "allowed")
  (data (i32.const 1088) "denied")
  ;; pairs: 3 × (key_len, value_len), then ":method\0POST\0:authority\0auth\0:path\0/check\0"
  (data (i32.const 1100) "\03\00\00\00\07\00\00\00\04\00\00\00\0a\00\00\00\04\00\00\00\05\00\00\00\06\00\00\00:method\00POST\00:authority\00auth\00:path\00/check\00")
)
