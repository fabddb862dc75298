;; A filter that reads one request header and adds one: the "read + add" module of the host
;; benchmark and the example for `envext wasm run`.
;;   on_request_headers: if "x-user" is present, log "user: <value>" at info and add
;;                       "x-hello: <value>"; otherwise add "x-hello: world". Continue.
;;   on_response_headers: add "x-filtered: true". Continue.
;;   on_delete: reset the bump allocator (one arena per stream).
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))))
    (local.get $p))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $len i32)
    (if (i32.eqz (call $get (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 256) (i32.const 260)))
      (then
        ;; "user: " is at 1088; copy the value right after it and log the whole line
        (local.set $len (i32.load (i32.const 260)))
        (memory.copy (i32.const 1094) (i32.load (i32.const 256)) (local.get $len))
        (drop (call $proxy_log (i32.const 2) (i32.const 1088) (i32.add (i32.const 6) (local.get $len))))
        (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 7) (i32.load (i32.const 256)) (local.get $len))))
      (else
        (drop (call $add (i32.const 0) (i32.const 1040) (i32.const 7) (i32.const 1056) (i32.const 5)))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1064) (i32.const 10) (i32.const 1080) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32) (global.set $heap (i32.const 65536)))
  (data (i32.const 1024) "x-user")
  (data (i32.const 1040) "x-hello")
  (data (i32.const 1056) "world")
  (data (i32.const 1064) "x-filtered")
  (data (i32.const 1080) "true")
  (data (i32.const 1088) "user: ")
)
