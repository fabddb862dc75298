// Host imports of the proxy-wasm ABI v0.2.1 (module `env`), the exact set Envoy registers for
// a 0.2.1 module (reference §1.3). AssemblyScript names the import module after the declaring
// file, so this file is called `env.ts` and needs no `@external` decorators. Every call
// returns a `WasmResult`; results come back through
// out-pointers. Pointer-to-pointer parameters (`returnData`) receive a block the host allocated
// through our `proxy_on_memory_allocate`/`malloc` export. Nothing else in the SDK declares
// imports, so this file is the module's whole import surface.

// Logging, time, timers
export declare function proxy_log(level: u32, messagePtr: usize, messageSize: usize): u32;
export declare function proxy_get_log_level(returnLevel: usize): u32;
export declare function proxy_get_current_time_nanoseconds(returnTime: usize): u32;
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

// Buffers (bodies, TCP data, configurations, call responses, foreign-function arguments)
export declare function proxy_get_buffer_bytes(
  bufferType: u32,
  start: u32,
  maxSize: u32,
  returnData: usize,
  returnSize: usize,
): u32;
export declare function proxy_get_buffer_status(bufferType: u32, returnSize: usize, returnFlags: usize): u32;
export declare function proxy_set_buffer_bytes(
  bufferType: u32,
  start: u32,
  size: u32,
  dataPtr: usize,
  dataSize: usize,
): u32;

// Header and trailer maps
export declare function proxy_get_header_map_pairs(mapType: u32, returnData: usize, returnSize: usize): u32;
export declare function proxy_set_header_map_pairs(mapType: u32, dataPtr: usize, dataSize: usize): u32;
export declare function proxy_get_header_map_value(
  mapType: u32,
  keyPtr: usize,
  keySize: usize,
  returnData: usize,
  returnSize: usize,
): u32;
export declare function proxy_add_header_map_value(
  mapType: u32,
  keyPtr: usize,
  keySize: usize,
  valuePtr: usize,
  valueSize: usize,
): u32;
export declare function proxy_replace_header_map_value(
  mapType: u32,
  keyPtr: usize,
  keySize: usize,
  valuePtr: usize,
  valueSize: usize,
): u32;
export declare function proxy_remove_header_map_value(mapType: u32, keyPtr: usize, keySize: usize): u32;
export declare function proxy_get_header_map_size(mapType: u32, returnSize: usize): u32;

// Stream control
export declare function proxy_continue_stream(streamType: u32): u32;
export declare function proxy_close_stream(streamType: u32): u32;
export declare function proxy_send_local_response(
  statusCode: u32,
  detailsPtr: usize,
  detailsSize: usize,
  bodyPtr: usize,
  bodySize: usize,
  headersPtr: usize,
  headersSize: usize,
  grpcStatus: i32,
): u32;
export declare function proxy_get_status(returnCode: usize, returnMessage: usize, returnMessageSize: usize): u32;

// Callouts (run on the root context; see dispatch.ts for how answers reach the stream)
export declare function proxy_http_call(
  upstreamPtr: usize,
  upstreamSize: usize,
  headersPtr: usize,
  headersSize: usize,
  bodyPtr: usize,
  bodySize: usize,
  trailersPtr: usize,
  trailersSize: usize,
  timeoutMs: u32,
  returnToken: usize,
): u32;
export declare function proxy_grpc_call(
  servicePtr: usize,
  serviceSize: usize,
  serviceNamePtr: usize,
  serviceNameSize: usize,
  methodPtr: usize,
  methodSize: usize,
  metadataPtr: usize,
  metadataSize: usize,
  messagePtr: usize,
  messageSize: usize,
  timeoutMs: u32,
  returnToken: usize,
): u32;
export declare function proxy_grpc_stream(
  servicePtr: usize,
  serviceSize: usize,
  serviceNamePtr: usize,
  serviceNameSize: usize,
  methodPtr: usize,
  methodSize: usize,
  metadataPtr: usize,
  metadataSize: usize,
  returnToken: usize,
): u32;
export declare function proxy_grpc_send(token: u32, messagePtr: usize, messageSize: usize, endStream: u32): u32;
export declare function proxy_grpc_cancel(token: u32): u32;
export declare function proxy_grpc_close(token: u32): u32;

// Shared data and queues (per vm_id, shared by every worker)
export declare function proxy_get_shared_data(
  keyPtr: usize,
  keySize: usize,
  returnValue: usize,
  returnSize: usize,
  returnCas: usize,
): u32;
export declare function proxy_set_shared_data(
  keyPtr: usize,
  keySize: usize,
  valuePtr: usize,
  valueSize: usize,
  cas: u32,
): u32;
export declare function proxy_register_shared_queue(namePtr: usize, nameSize: usize, returnId: usize): u32;
export declare function proxy_resolve_shared_queue(
  vmIdPtr: usize,
  vmIdSize: usize,
  namePtr: usize,
  nameSize: usize,
  returnId: usize,
): u32;
export declare function proxy_enqueue_shared_queue(queueId: u32, valuePtr: usize, valueSize: usize): u32;
export declare function proxy_dequeue_shared_queue(queueId: u32, returnValue: usize, returnSize: usize): u32;

// Metrics
export declare function proxy_define_metric(metricType: u32, namePtr: usize, nameSize: usize, returnId: usize): u32;
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;
export declare function proxy_record_metric(metricId: u32, value: u64): u32;
export declare function proxy_get_metric(metricId: u32, returnValue: usize): u32;

// Properties, effective context, root lifecycle, foreign functions
export declare function proxy_get_property(pathPtr: usize, pathSize: usize, returnValue: usize, returnSize: usize): u32;
export declare function proxy_set_property(pathPtr: usize, pathSize: usize, valuePtr: usize, valueSize: usize): u32;
export declare function proxy_set_effective_context(contextId: u32): u32;
export declare function proxy_done(): u32;
export declare function proxy_call_foreign_function(
  namePtr: usize,
  nameSize: usize,
  argsPtr: usize,
  argsSize: usize,
  returnData: usize,
  returnSize: usize,
): u32;
