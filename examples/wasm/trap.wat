;; A filter that traps (`unreachable`) in proxy_on_request_headers. Envoy marks the whole VM
;; failed; with the default fail-closed policy the stream gets a local 503 `wasm_fail_stream`,
;; with fail_open it bypasses the filter. `envext wasm run … [--fail-open]` shows both.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)
)
