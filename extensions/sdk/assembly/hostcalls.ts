// Thin, allocation-aware wrappers around the raw imports in abi/imports.ts.
//
// Conventions (STYLE.md §8):
// * Out-parameters live in one static slot area (`OUT_*`) reused by every call; nothing is
//   allocated per call for them.
// * Strings are UTF-8 encoded into one growable scratch block (raw heap memory, never
//   collected) and passed as pointer + length. The scratch block is only valid until the next
//   host call made through this file.
// * Blocks the host hands us (through the allocator export, see `allocate`) are managed
//   ArrayBuffers that stay pinned until we take them with `takeBuffer`/`takeString`, so a
//   collection between the host's allocation and our read cannot free them.
// * `NotFound` comes back as `null`; any other failure returns `null` too and is kept in
//   `lastResult()` for callers that care. Setters return the `WasmResult`.
import * as imp from './abi/env';
import { BufferType, LogLevel, MapType, MetricType, StreamType, WasmResult } from './abi/enums';

// ---------------------------------------------------------------------------------------------
// Static slots and scratch

// [0] data pointer / u32 result   [4] size   [8] u64 result / cas   [16] flags
const OUT: usize = memory.data(24, 8);
const OUT_PTR: usize = OUT;
const OUT_SIZE: usize = OUT + 4;
const OUT_U64: usize = OUT + 8;
const OUT_FLAGS: usize = OUT + 16;

let scratchPtr: usize = 0;
let scratchCap: usize = 0;

/** Makes the scratch block at least `size` bytes (grown in 4 KiB steps) and returns it. */
function reserve(size: usize): usize {
  if (size > scratchCap) {
    const cap = (size + 4095) & ~(<usize>4095);
    scratchPtr = scratchPtr == 0 ? heap.alloc(cap) : heap.realloc(scratchPtr, cap);
    scratchCap = cap;
  }
  return scratchPtr;
}

/** Length in bytes of the last `encode*` call's strings. */
let encLen0: usize = 0;
let encLen1: usize = 0;

function utf8Into(s: string, dst: usize): usize {
  return String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, dst, false);
}

/** Encodes one string into scratch; its length is in `encLen0`. */
function encode1(a: string): usize {
  const p = reserve(<usize>a.length * 3);
  encLen0 = utf8Into(a, p);
  return p;
}

/** Encodes two strings back to back into scratch; lengths in `encLen0`, `encLen1`. */
function encode2(a: string, b: string): usize {
  const p = reserve(<usize>(a.length + b.length) * 3);
  encLen0 = utf8Into(a, p);
  encLen1 = utf8Into(b, p + encLen0);
  return p;
}

/** Encodes a string followed by raw bytes into scratch; lengths in `encLen0`, `encLen1`. */
function encodeWithBytes(a: string, bytes: ArrayBuffer): usize {
  const n = <usize>bytes.byteLength;
  const p = reserve(<usize>a.length * 3 + n);
  encLen0 = utf8Into(a, p);
  memory.copy(p + encLen0, changetype<usize>(bytes), n);
  encLen1 = n;
  return p;
}

let last: WasmResult = WasmResult.Ok;

/** The status of the last host call made through this module that did not return it. */
export function lastResult(): WasmResult {
  return last;
}

// ---------------------------------------------------------------------------------------------
// Memory handed over by the host (reference §2.12)

/**
 * The allocator the host calls (exported as `malloc` and `proxy_on_memory_allocate`). Returns
 * a fresh managed ArrayBuffer, pinned so that no collection frees it before the guest takes it.
 */
export function allocate(size: usize): usize {
  return __pin(__new(size, idof<ArrayBuffer>()));
}

/** Takes ownership of a block written by the host: unpins it and returns it as bytes. */
export function takeBuffer(ptr: usize, size: usize): ArrayBuffer {
  if (ptr == 0) return new ArrayBuffer(0);
  __unpin(ptr);
  const buf = changetype<ArrayBuffer>(ptr);
  // The host may write fewer bytes than it allocated (it never does today); trim if so.
  return <usize>buf.byteLength == size ? buf : buf.slice(0, <i32>size);
}

/** Takes a block written by the host and decodes it as UTF-8. */
export function takeString(ptr: usize, size: usize): string {
  if (ptr == 0) return '';
  const s = String.UTF8.decodeUnsafe(ptr, size, false);
  __unpin(ptr);
  return s;
}

function outBuffer(): ArrayBuffer {
  return takeBuffer(load<usize>(OUT_PTR), load<u32>(OUT_SIZE));
}
function outString(): string {
  return takeString(load<usize>(OUT_PTR), load<u32>(OUT_SIZE));
}
function clearOut(): void {
  store<u64>(OUT, 0);
}

// ---------------------------------------------------------------------------------------------
// Serialized pairs (reference §1.6):  u32 N | N × (u32 keyLen, u32 valueLen) | N × (key\0 value\0)

/** One header (or trailer, metadata entry, map property entry). Keys are lower-case in Envoy. */
export class Header {
  constructor(
    public key: string,
    public value: string,
  ) {}
}

/** Decodes serialized pairs at [ptr, ptr+size). Aborts on a malformed block (host bug). */
export function decodePairs(ptr: usize, size: usize): Array<Header> {
  if (size < 4) return new Array<Header>(0);
  const n = load<u32>(ptr);
  const end = ptr + size;
  let sizes = ptr + 4;
  let data = sizes + <usize>n * 8;
  if (data > end) abort('malformed header map from host: pair table exceeds block');
  const out = new Array<Header>(<i32>n);
  for (let i: u32 = 0; i < n; i++) {
    const kl = <usize>load<u32>(sizes);
    const vl = <usize>load<u32>(sizes, 4);
    sizes += 8;
    if (data + kl + vl + 2 > end) abort('malformed header map from host: pair exceeds block');
    const k = String.UTF8.decodeUnsafe(data, kl, false);
    data += kl + 1;
    const v = String.UTF8.decodeUnsafe(data, vl, false);
    data += vl + 1;
    unchecked((out[i] = new Header(k, v)));
  }
  return out;
}

let pairsLen: usize = 0;

/** Serializes pairs into scratch (upper-bound reservation, one pass); length in `pairsLen`. */
function encodePairs(headers: Array<Header>): usize {
  const n = headers.length;
  let bound: usize = 4 + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    const h = unchecked(headers[i]);
    bound += <usize>(h.key.length + h.value.length) * 3 + 2;
  }
  const p = reserve(bound);
  store<u32>(p, n);
  let sizes = p + 4;
  let data = sizes + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    const h = unchecked(headers[i]);
    const kl = utf8Into(h.key, data);
    store<u8>(data + kl, 0);
    data += kl + 1;
    const vl = utf8Into(h.value, data);
    store<u8>(data + vl, 0);
    data += vl + 1;
    store<u32>(sizes, <u32>kl);
    store<u32>(sizes, <u32>vl, 4);
    sizes += 8;
  }
  pairsLen = data - p;
  return p;
}

/** Serialized pairs of `headers`, as a new buffer (for callers that need to keep them). */
export function serializePairs(headers: Array<Header>): ArrayBuffer {
  const p = encodePairs(headers);
  const out = new ArrayBuffer(<i32>pairsLen);
  memory.copy(changetype<usize>(out), p, pairsLen);
  return out;
}

/** Decodes serialized pairs held in a buffer (e.g. a map-valued property). */
export function deserializePairs(buf: ArrayBuffer): Array<Header> {
  return decodePairs(changetype<usize>(buf), <usize>buf.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Logging and time

/** Writes `message` to Envoy's log at `level` (shows as `wasm log <root_id> <vm_id>: …`). */
export function log(level: LogLevel, message: string): void {
  const p = encode1(message);
  imp.proxy_log(level, p, encLen0);
}

/** Envoy's current log level for Wasm code; `Trace` if the host cannot tell. */
export function getLogLevel(): LogLevel {
  store<u32>(OUT_PTR, 0);
  if (imp.proxy_get_log_level(OUT_PTR) != WasmResult.Ok) return LogLevel.Trace;
  return <LogLevel>load<u32>(OUT_PTR);
}

/** Wall-clock time in nanoseconds since the Unix epoch, as the host sees it. */
export function getCurrentTimeNanoseconds(): u64 {
  store<u64>(OUT_U64, 0);
  imp.proxy_get_current_time_nanoseconds(OUT_U64);
  return load<u64>(OUT_U64);
}

/** Sets the root context's tick period (0 disables `onTick`). */
export function setTickPeriodMilliseconds(periodMs: u32): WasmResult {
  return <WasmResult>imp.proxy_set_tick_period_milliseconds(periodMs);
}

// ---------------------------------------------------------------------------------------------
// Buffers

/**
 * Bytes [start, start+maxSize) of a buffer, clipped to what exists; `null` when the buffer is
 * not available in this callback. An empty buffer gives an empty ArrayBuffer.
 */
export function getBufferBytes(type: BufferType, start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): ArrayBuffer | null {
  clearOut();
  last = <WasmResult>imp.proxy_get_buffer_bytes(type, start, maxSize, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outBuffer();
}

/** Like `getBufferBytes`, decoded as UTF-8. */
export function getBufferString(type: BufferType, start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): string | null {
  clearOut();
  last = <WasmResult>imp.proxy_get_buffer_bytes(type, start, maxSize, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outString();
}

/** Current size of a buffer in bytes, or -1 if it is not available. */
export function getBufferSize(type: BufferType): i64 {
  store<u32>(OUT_SIZE, 0);
  last = <WasmResult>imp.proxy_get_buffer_status(type, OUT_SIZE, OUT_FLAGS);
  if (last != WasmResult.Ok) return -1;
  return <i64>load<u32>(OUT_SIZE);
}

/**
 * Replaces bytes [start, start+size) of a live buffer. Envoy supports exactly: prepend
 * (start 0, size 0), replace all (start 0, size ≥ length) and append (start ≥ length).
 */
export function setBufferBytes(type: BufferType, start: u32, size: u32, data: ArrayBuffer): WasmResult {
  return <WasmResult>imp.proxy_set_buffer_bytes(type, start, size, changetype<usize>(data), data.byteLength);
}

/** String variant of `setBufferBytes` (UTF-8). */
export function setBufferString(type: BufferType, start: u32, size: u32, data: string): WasmResult {
  const p = encode1(data);
  return <WasmResult>imp.proxy_set_buffer_bytes(type, start, size, p, encLen0);
}

// ---------------------------------------------------------------------------------------------
// Header maps

/** Every entry of a map, in order; empty when the map is empty or not available. */
export function getHeaderMapPairs(type: MapType): Array<Header> {
  clearOut();
  last = <WasmResult>imp.proxy_get_header_map_pairs(type, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return new Array<Header>(0);
  const ptr = load<usize>(OUT_PTR);
  if (ptr == 0) return new Array<Header>(0);
  const headers = decodePairs(ptr, load<u32>(OUT_SIZE));
  __unpin(ptr);
  return headers;
}

/** Replaces the whole map with `headers`. */
export function setHeaderMapPairs(type: MapType, headers: Array<Header>): WasmResult {
  const p = encodePairs(headers);
  return <WasmResult>imp.proxy_set_header_map_pairs(type, p, pairsLen);
}

/** First value of header `key` (Envoy lower-cases keys), or `null` if absent. */
export function getHeaderMapValue(type: MapType, key: string): string | null {
  const p = encode1(key);
  clearOut();
  last = <WasmResult>imp.proxy_get_header_map_value(type, p, encLen0, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outString();
}

/** Bytes variant of `getHeaderMapValue`. */
export function getHeaderMapValueBytes(type: MapType, key: string): ArrayBuffer | null {
  const p = encode1(key);
  clearOut();
  last = <WasmResult>imp.proxy_get_header_map_value(type, p, encLen0, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outBuffer();
}

/** Adds a value (keeps existing values of the same key). */
export function addHeaderMapValue(type: MapType, key: string, value: string): WasmResult {
  const p = encode2(key, value);
  return <WasmResult>imp.proxy_add_header_map_value(type, p, encLen0, p + encLen0, encLen1);
}

/** Bytes variant of `addHeaderMapValue`. */
export function addHeaderMapValueBytes(type: MapType, key: string, value: ArrayBuffer): WasmResult {
  const p = encodeWithBytes(key, value);
  return <WasmResult>imp.proxy_add_header_map_value(type, p, encLen0, p + encLen0, encLen1);
}

/** Sets a header, replacing every existing value of that key. */
export function replaceHeaderMapValue(type: MapType, key: string, value: string): WasmResult {
  const p = encode2(key, value);
  return <WasmResult>imp.proxy_replace_header_map_value(type, p, encLen0, p + encLen0, encLen1);
}

/** Bytes variant of `replaceHeaderMapValue`. */
export function replaceHeaderMapValueBytes(type: MapType, key: string, value: ArrayBuffer): WasmResult {
  const p = encodeWithBytes(key, value);
  return <WasmResult>imp.proxy_replace_header_map_value(type, p, encLen0, p + encLen0, encLen1);
}

/** Removes every value of a header (Ok even if absent). */
export function removeHeaderMapValue(type: MapType, key: string): WasmResult {
  const p = encode1(key);
  return <WasmResult>imp.proxy_remove_header_map_value(type, p, encLen0);
}

/** The map's serialized size in bytes as Envoy reports it (not the number of entries); -1 if unavailable. */
export function getHeaderMapSize(type: MapType): i64 {
  store<u32>(OUT_SIZE, 0);
  last = <WasmResult>imp.proxy_get_header_map_size(type, OUT_SIZE);
  if (last != WasmResult.Ok) return -1;
  return <i64>load<u32>(OUT_SIZE);
}

// ---------------------------------------------------------------------------------------------
// Stream control

/** Resumes a paused stream (deferred by Envoy until the current callback returns). */
export function continueStream(type: StreamType): WasmResult {
  return <WasmResult>imp.proxy_continue_stream(type);
}

/** Resets an HTTP stream, or closes a TCP connection. */
export function closeStream(type: StreamType): WasmResult {
  return <WasmResult>imp.proxy_close_stream(type);
}

/**
 * Sends a local reply instead of forwarding the request (or the upstream response). `grpcStatus`
 * -1 means no grpc-status. Envoy stops the current iteration whatever the callback returns.
 */
export function sendLocalResponse(
  statusCode: u32,
  details: string,
  body: ArrayBuffer | null,
  headers: Array<Header> | null,
  grpcStatus: i32 = -1,
): WasmResult {
  // Headers and details share the scratch block: encode pairs first, then details after them.
  let hp: usize = 0;
  let hl: usize = 0;
  if (headers != null && headers.length > 0) {
    hp = encodePairs(headers);
    hl = pairsLen;
  }
  const dBound = <usize>details.length * 3;
  const base = reserve(hl + dBound);
  if (hp != 0) hp = base; // reserve may have moved the block
  const dp = base + hl;
  const dl = utf8Into(details, dp);
  const bp: usize = body == null ? 0 : changetype<usize>(body);
  const bl: usize = body == null ? 0 : <usize>body.byteLength;
  return <WasmResult>imp.proxy_send_local_response(statusCode, dp, dl, bp, bl, hp, hl, grpcStatus);
}

/** Status code and message of the last HTTP call / gRPC close, read in its callback. */
export class CallStatus {
  constructor(
    public code: u32,
    public message: string,
  ) {}
}

export function getStatus(): CallStatus {
  clearOut();
  store<u32>(OUT_FLAGS, 0);
  imp.proxy_get_status(OUT_FLAGS, OUT_PTR, OUT_SIZE);
  return new CallStatus(load<u32>(OUT_FLAGS), outString());
}

// ---------------------------------------------------------------------------------------------
// Callouts

/**
 * Dispatches an HTTP request to `cluster`. `headers` must hold `:method`, `:path` and
 * `:authority`. Returns the call token, or 0 on failure (status in `lastResult()`).
 */
export function httpCall(
  cluster: string,
  headers: Array<Header>,
  body: ArrayBuffer | null,
  trailers: Array<Header> | null,
  timeoutMs: u32,
): u32 {
  // Layout in scratch: [headers][trailers][cluster]; each encode reserves on top of the last.
  const hp0 = encodePairs(headers);
  const hl = pairsLen;
  let tl: usize = 0;
  if (trailers != null && trailers.length > 0) {
    // encodePairs writes at the start of scratch, so keep the headers in a copy first.
    const saved = heap.alloc(hl);
    memory.copy(saved, hp0, hl);
    encodePairs(trailers);
    tl = pairsLen;
    // reserve() keeps the content (the trailers at the start) even if it moves the block.
    const base = reserve(hl + tl + <usize>cluster.length * 3);
    memory.copy(base + hl, base, tl);
    memory.copy(base, saved, hl);
    heap.free(saved);
  }
  const base = reserve(hl + tl + <usize>cluster.length * 3);
  const cp = base + hl + tl;
  const cl = utf8Into(cluster, cp);
  const bp: usize = body == null ? 0 : changetype<usize>(body);
  const bl: usize = body == null ? 0 : <usize>body.byteLength;
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>imp.proxy_http_call(cp, cl, base, hl, bp, bl, tl == 0 ? 0 : base + hl, tl, timeoutMs, OUT_PTR);
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : 0;
}

/** Serialises pairs + three strings into scratch: [pairs][a][b][c]; returns base. */
let s0: usize = 0;
let s1: usize = 0;
let s2: usize = 0;
function encodeGrpcTarget(metadata: Array<Header> | null, service: string, serviceName: string, method: string): usize {
  let ml: usize = 0;
  if (metadata != null && metadata.length > 0) {
    encodePairs(metadata);
    ml = pairsLen;
  }
  const base = reserve(ml + <usize>(service.length + serviceName.length + method.length) * 3);
  s0 = utf8Into(service, base + ml);
  s1 = utf8Into(serviceName, base + ml + s0);
  s2 = utf8Into(method, base + ml + s0 + s1);
  pairsLen = ml;
  return base;
}

/**
 * Unary gRPC call. `service` is a cluster name (or a serialized `GrpcService`); `serviceName`
 * e.g. `envoy.service.auth.v3.Authorization`. Returns the token, or 0 (see `lastResult()`).
 */
export function grpcCall(
  service: string,
  serviceName: string,
  method: string,
  metadata: Array<Header> | null,
  message: ArrayBuffer,
  timeoutMs: u32,
): u32 {
  const base = encodeGrpcTarget(metadata, service, serviceName, method);
  const ml = pairsLen;
  const sp = base + ml;
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>(
    imp.proxy_grpc_call(
      sp,
      s0,
      sp + s0,
      s1,
      sp + s0 + s1,
      s2,
      ml == 0 ? 0 : base,
      ml,
      changetype<usize>(message),
      message.byteLength,
      timeoutMs,
      OUT_PTR,
    )
  );
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : 0;
}

/** Opens a gRPC stream; returns its token or 0 (see `lastResult()`). */
export function grpcStream(service: string, serviceName: string, method: string, metadata: Array<Header> | null): u32 {
  const base = encodeGrpcTarget(metadata, service, serviceName, method);
  const ml = pairsLen;
  const sp = base + ml;
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>imp.proxy_grpc_stream(sp, s0, sp + s0, s1, sp + s0 + s1, s2, ml == 0 ? 0 : base, ml, OUT_PTR);
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : 0;
}

/** Sends a message on a gRPC stream. */
export function grpcSend(token: u32, message: ArrayBuffer, endStream: bool = false): WasmResult {
  return <WasmResult>imp.proxy_grpc_send(token, changetype<usize>(message), message.byteLength, endStream ? 1 : 0);
}

/** Cancels a gRPC call or stream (no further callbacks). */
export function grpcCancel(token: u32): WasmResult {
  return <WasmResult>imp.proxy_grpc_cancel(token);
}

/** Half-closes a gRPC stream (or cancels a call). */
export function grpcClose(token: u32): WasmResult {
  return <WasmResult>imp.proxy_grpc_close(token);
}

// ---------------------------------------------------------------------------------------------
// Shared data and queues

/** A shared-data value and the CAS token to pass back to `setSharedData`. */
export class SharedData {
  constructor(
    public value: ArrayBuffer,
    public cas: u32,
  ) {}
}

/** Reads a shared-data key (process-wide per vm_id), or `null` if absent. */
export function getSharedData(key: string): SharedData | null {
  const p = encode1(key);
  clearOut();
  store<u32>(OUT_FLAGS, 0);
  last = <WasmResult>imp.proxy_get_shared_data(p, encLen0, OUT_PTR, OUT_SIZE, OUT_FLAGS);
  if (last != WasmResult.Ok) return null;
  const cas = load<u32>(OUT_FLAGS);
  return new SharedData(outBuffer(), cas);
}

/** Writes a shared-data key. `cas` 0 writes unconditionally; otherwise `CasMismatch` if it changed. */
export function setSharedData(key: string, value: ArrayBuffer, cas: u32 = 0): WasmResult {
  const p = encodeWithBytes(key, value);
  return <WasmResult>imp.proxy_set_shared_data(p, encLen0, p + encLen0, encLen1, cas);
}

/** Returned by queue lookups that found nothing. */
export const QUEUE_NOT_FOUND: u32 = u32.MAX_VALUE;

/** Registers (or reopens) a queue owned by the calling root context; `onQueueReady` fires on it. */
export function registerSharedQueue(name: string): u32 {
  const p = encode1(name);
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>imp.proxy_register_shared_queue(p, encLen0, OUT_PTR);
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : QUEUE_NOT_FOUND;
}

/** Finds a queue by VM id ("" = this VM) and name; `QUEUE_NOT_FOUND` if absent. */
export function resolveSharedQueue(vmId: string, name: string): u32 {
  const p = encode2(vmId, name);
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>imp.proxy_resolve_shared_queue(p, encLen0, p + encLen0, encLen1, OUT_PTR);
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : QUEUE_NOT_FOUND;
}

export function enqueueSharedQueue(queueId: u32, value: ArrayBuffer): WasmResult {
  return <WasmResult>imp.proxy_enqueue_shared_queue(queueId, changetype<usize>(value), value.byteLength);
}

/** Next item of a queue, or `null` when it is empty (`lastResult()` is then `Empty`). */
export function dequeueSharedQueue(queueId: u32): ArrayBuffer | null {
  clearOut();
  last = <WasmResult>imp.proxy_dequeue_shared_queue(queueId, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outBuffer();
}

// ---------------------------------------------------------------------------------------------
// Metrics

/** Defines a metric and returns its id (0 on failure). */
export function defineMetric(type: MetricType, name: string): u32 {
  const p = encode1(name);
  store<u32>(OUT_PTR, 0);
  last = <WasmResult>imp.proxy_define_metric(type, p, encLen0, OUT_PTR);
  return last == WasmResult.Ok ? load<u32>(OUT_PTR) : 0;
}

export function incrementMetric(id: u32, delta: i64): WasmResult {
  return <WasmResult>imp.proxy_increment_metric(id, delta);
}

export function recordMetric(id: u32, value: u64): WasmResult {
  return <WasmResult>imp.proxy_record_metric(id, value);
}

/** Current value of a counter or gauge (histograms cannot be read). */
export function getMetric(id: u32): u64 {
  store<u64>(OUT_U64, 0);
  last = <WasmResult>imp.proxy_get_metric(id, OUT_U64);
  return load<u64>(OUT_U64);
}

// ---------------------------------------------------------------------------------------------
// Properties (reference §1.7): path segments joined by NUL

function encodePath(path: Array<string>): usize {
  let bound: usize = 0;
  for (let i = 0; i < path.length; i++) bound += <usize>unchecked(path[i]).length * 3 + 1;
  const p = reserve(bound);
  let at = p;
  for (let i = 0; i < path.length; i++) {
    if (i > 0) store<u8>(at++, 0);
    at += utf8Into(unchecked(path[i]), at);
  }
  encLen0 = at - p;
  return p;
}

/** Raw value of a property, or `null` if it does not exist. */
export function getProperty(path: Array<string>): ArrayBuffer | null {
  const p = encodePath(path);
  clearOut();
  last = <WasmResult>imp.proxy_get_property(p, encLen0, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outBuffer();
}

/** String value of a property, or `null`. */
export function getPropertyString(path: Array<string>): string | null {
  const p = encodePath(path);
  clearOut();
  last = <WasmResult>imp.proxy_get_property(p, encLen0, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outString();
}

/** Sets filter state `wasm.<path>` for this stream. */
export function setProperty(path: Array<string>, value: ArrayBuffer): WasmResult {
  const p = encodePath(path);
  const n = <usize>value.byteLength;
  const base = reserve(encLen0 + n);
  memory.copy(base + encLen0, changetype<usize>(value), n);
  return <WasmResult>imp.proxy_set_property(base, encLen0, base + encLen0, n);
}

// ---------------------------------------------------------------------------------------------
// Effective context, root lifecycle, foreign functions

/** Makes `contextId` the target of following host calls until the current callback returns. */
export function setEffectiveContext(contextId: u32): WasmResult {
  return <WasmResult>imp.proxy_set_effective_context(contextId);
}

/** Finishes a root context that answered `false` to `onDone`. */
export function done(): WasmResult {
  return <WasmResult>imp.proxy_done();
}

/** Calls one of Envoy's foreign functions (`compress`, `clear_route_cache`, …); `null` on failure. */
export function callForeignFunction(name: string, args: ArrayBuffer): ArrayBuffer | null {
  const p = encodeWithBytes(name, args);
  clearOut();
  last = <WasmResult>imp.proxy_call_foreign_function(p, encLen0, p + encLen0, encLen1, OUT_PTR, OUT_SIZE);
  if (last != WasmResult.Ok) return null;
  return outBuffer();
}
