;; A module Envoy refuses: it imports two functions Envoy does not provide (an AssemblyScript
;; `abort` left unmapped, and a made-up host call). `envext wasm inspect` names both.
(module
  (import "env" "abort" (func (param i32 i32 i32 i32)))
  (import "env" "proxy_nope" (func (param i32) (result i32)))
  (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
)
