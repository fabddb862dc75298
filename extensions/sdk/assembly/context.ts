// The user API: contexts to subclass, plus metrics, logging, properties, shared data, queues
// and foreign functions. Hierarchy (one VM per worker thread in Envoy):
//
//   VM (this module instance)
//   └─ RootContext  one per plugin (root_id); config, ticks, queues, callouts
//      ├─ HttpContext    one per HTTP stream (request → response → log → done → delete)
//      └─ StreamContext  one per TCP connection (network filter)
//
// Host calls made from a context's callback act on that context; callout answers are routed
// back to the context that made the call (dispatch.ts sets the effective context first).
import * as hc from './hostcalls';
import { Header, CallStatus, SharedData } from './hostcalls';
import {
  BufferType,
  FilterDataStatus,
  FilterHeadersStatus,
  FilterMetadataStatus,
  FilterStatus,
  FilterTrailersStatus,
  GrpcStatus,
  LogLevel,
  MapType,
  MetricType,
  PeerType,
  StreamType,
  WasmResult,
} from './abi/enums';

// ---------------------------------------------------------------------------------------------
// Callout bookkeeping: token → the context that made the call (read by dispatch.ts)

/** @internal Pending HTTP/gRPC callouts by token. */
export const callouts = new Map<u32, BaseContext>();

/** @internal Set by dispatch.ts while a stream handles a callout answer (0 otherwise). */
export let calloutRootId: u32 = 0;
/** @internal */
export let calloutStreamId: u32 = 0;

/** @internal */
export function setCalloutRedirect(rootId: u32, streamId: u32): void {
  calloutRootId = rootId;
  calloutStreamId = streamId;
}

function calloutReadBegin(): void {
  if (calloutStreamId != 0) hc.setEffectiveContext(calloutRootId);
}

function calloutReadEnd(): void {
  if (calloutStreamId != 0) hc.setEffectiveContext(calloutStreamId);
}

/** @internal */
export function forgetCallout(token: u32): void {
  if (!callouts.has(token)) return;
  const owner = callouts.get(token);
  callouts.delete(token);
  const tokens = owner.calloutTokens;
  if (tokens != null) {
    const i = tokens.indexOf(token);
    if (i >= 0) tokens.splice(i, 1);
  }
}

/** @internal */
export const CONTEXT_KIND_ROOT: u8 = 0;
/** @internal */
export const CONTEXT_KIND_HTTP: u8 = 1;
/** @internal */
export const CONTEXT_KIND_STREAM: u8 = 2;

/** Base of every context: its id, callouts and their response callbacks, done/delete. */
export class BaseContext {
  /** @internal Tokens of this context's pending callouts, removed when it is deleted. */
  calloutTokens: Array<u32> | null = null;

  /** @internal Which subclass this is (`CONTEXT_KIND_*`), so dispatch needs one map and no RTTI. */
  readonly kind: u8;

  constructor(
    public readonly contextId: u32,
    kind: u8 = 0 /* CONTEXT_KIND_ROOT */,
  ) {
    this.kind = kind;
  }

  private track(token: u32): u32 {
    if (token != 0) {
      callouts.set(token, this);
      let tokens = this.calloutTokens;
      if (tokens == null) this.calloutTokens = tokens = new Array<u32>();
      tokens.push(token);
    }
    return token;
  }

  /** @internal Forgets every pending callout of this context (Envoy cancels them on delete). */
  releaseCallouts(): void {
    const tokens = this.calloutTokens;
    if (tokens == null) return;
    for (let i = 0; i < tokens.length; i++) callouts.delete(unchecked(tokens[i]));
    this.calloutTokens = null;
  }

  /**
   * Sends an HTTP request to `cluster` (`headers` must include `:method`, `:path`,
   * `:authority`). The answer arrives in `onHttpCallResponse` on this context. Returns the
   * token, or 0 if Envoy refused the call (`lastResult()` says why: BadArgument for an unknown
   * cluster or missing pseudo-headers).
   */
  httpCall(
    cluster: string,
    headers: Array<Header>,
    body: ArrayBuffer | null,
    trailers: Array<Header> | null,
    timeoutMs: u32,
  ): u32 {
    return this.track(hc.httpCall(cluster, headers, body, trailers, timeoutMs));
  }

  /** Unary gRPC call; answers arrive in `onGrpcReceive*` / `onGrpcClose`. Returns the token or 0. */
  grpcCall(
    cluster: string,
    serviceName: string,
    method: string,
    metadata: Array<Header> | null,
    message: ArrayBuffer,
    timeoutMs: u32,
  ): u32 {
    return this.track(hc.grpcCall(cluster, serviceName, method, metadata, message, timeoutMs));
  }

  /** Opens a gRPC stream; send with `grpcSend`, finish with `grpcClose`. Returns the token or 0. */
  grpcStream(cluster: string, serviceName: string, method: string, metadata: Array<Header> | null): u32 {
    return this.track(hc.grpcStream(cluster, serviceName, method, metadata));
  }

  grpcSend(token: u32, message: ArrayBuffer, endStream: bool = false): WasmResult {
    return hc.grpcSend(token, message, endStream);
  }

  /** Cancels a gRPC call or stream: no further callbacks for `token`. */
  grpcCancel(token: u32): WasmResult {
    forgetCallout(token);
    return hc.grpcCancel(token);
  }

  /** Half-closes a gRPC stream; `onGrpcClose` still follows. */
  grpcClose(token: u32): WasmResult {
    return hc.grpcClose(token);
  }

  /** Answer to `httpCall`. `numHeaders` 0 means the call failed (see `getStatus()`). */
  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {}
  onGrpcReceiveInitialMetadata(token: u32, numElements: u32): void {}
  /** A gRPC message arrived: read it with `getGrpcReceiveBuffer()`. */
  onGrpcReceive(token: u32, messageSize: usize): void {}
  onGrpcReceiveTrailingMetadata(token: u32, numElements: u32): void {}
  /** The call or stream ended with `statusCode` (message via `getStatus()`). */
  onGrpcClose(token: u32, statusCode: u32): void {}

  // Callout answers live on the root context (Envoy reads `rootContext()->http_call_response_`
  // whatever the effective context). While a stream handles an answer, these readers point the
  // host at the root for the read and back at the stream afterwards, so they work the same in
  // Envoy and in hosts that resolve the answer on the effective context.

  /** Headers of the HTTP call answer; only inside `onHttpCallResponse`. */
  getHttpCallResponseHeaders(): Array<Header> {
    calloutReadBegin();
    const v = hc.getHeaderMapPairs(MapType.HttpCallResponseHeaders);
    calloutReadEnd();
    return v;
  }
  getHttpCallResponseHeader(name: string): string | null {
    calloutReadBegin();
    const v = hc.getHeaderMapValue(MapType.HttpCallResponseHeaders, name);
    calloutReadEnd();
    return v;
  }
  getHttpCallResponseTrailers(): Array<Header> {
    calloutReadBegin();
    const v = hc.getHeaderMapPairs(MapType.HttpCallResponseTrailers);
    calloutReadEnd();
    return v;
  }
  getHttpCallResponseBody(): ArrayBuffer | null {
    calloutReadBegin();
    const v = hc.getBufferBytes(BufferType.HttpCallResponseBody);
    calloutReadEnd();
    return v;
  }
  getHttpCallResponseBodyString(): string | null {
    calloutReadBegin();
    const v = hc.getBufferString(BufferType.HttpCallResponseBody);
    calloutReadEnd();
    return v;
  }
  /** The received gRPC message; only inside `onGrpcReceive`. */
  getGrpcReceiveBuffer(): ArrayBuffer | null {
    calloutReadBegin();
    const v = hc.getBufferBytes(BufferType.GrpcReceiveBuffer);
    calloutReadEnd();
    return v;
  }
  getGrpcInitialMetadata(): Array<Header> {
    calloutReadBegin();
    const v = hc.getHeaderMapPairs(MapType.GrpcReceiveInitialMetadata);
    calloutReadEnd();
    return v;
  }
  getGrpcTrailingMetadata(): Array<Header> {
    calloutReadBegin();
    const v = hc.getHeaderMapPairs(MapType.GrpcReceiveTrailingMetadata);
    calloutReadEnd();
    return v;
  }
  /** Status of the last HTTP call / gRPC close; only inside their callbacks. */
  getStatus(): CallStatus {
    calloutReadBegin();
    const v = hc.getStatus();
    calloutReadEnd();
    return v;
  }

  /** The host is done with this context. Stream contexts: result ignored. Roots: see RootContext. */
  onDone(): bool {
    return true;
  }
  /** Last call for this context; release what it holds. */
  onDelete(): void {}
}

// ---------------------------------------------------------------------------------------------
// Root contexts

/** Creates the root context for a plugin; registered with `registerRootContext`. */
export type RootContextFactory = (contextId: u32) => RootContext;

/** @internal */
export class RootRegistration {
  constructor(
    public rootId: string,
    public factory: RootContextFactory,
  ) {}
}
/** @internal */
export const rootRegistrations = new Array<RootRegistration>();

/**
 * Registers the root context implementation for plugins whose `root_id` is `rootId` ("" =
 * plugins without root_id, and the fallback when only one root is registered). Call at top
 * level of your module; no host calls are allowed there (Envoy restricts `_initialize`).
 */
export function registerRootContext(factory: RootContextFactory, rootId: string = ''): void {
  rootRegistrations.push(new RootRegistration(rootId, factory));
}

/**
 * One per plugin: reads configuration, creates the per-stream contexts, owns timers, queues and
 * (by default) callouts. Override what you need; every callback has a harmless default.
 */
export class RootContext extends BaseContext {
  /** The plugin's `root_id` (set before `onVmStart`). */
  rootId: string = '';

  /** VM start; the VM configuration is readable via `getVmConfiguration*`. false fails the VM. */
  onVmStart(vmConfigurationSize: usize): bool {
    return true;
  }
  /** Envoy's config validation (main thread); return false to reject. */
  onValidateConfiguration(configurationSize: usize): bool {
    return true;
  }
  /** Plugin (re)configuration; read it with `getPluginConfiguration*`. false rejects it. */
  onConfigure(pluginConfigurationSize: usize): bool {
    return true;
  }
  /** Called every tick period (`setTickPeriod`). */
  onTick(): void {}
  /** An item was enqueued on a queue this root registered. */
  onQueueReady(queueId: u32): void {}
  /** A host-side foreign function called back into the plugin; args via `getForeignFunctionArguments`. */
  onForeignFunction(functionId: u32, argumentsSize: usize): void {}
  /** Return a new HttpContext to take part in HTTP streams, or null. */
  createHttpContext(contextId: u32): HttpContext | null {
    return null;
  }
  /** Return a new StreamContext to act as a TCP (network) filter, or null. */
  createStreamContext(contextId: u32): StreamContext | null {
    return null;
  }

  /** Only during `onVmStart`. */
  getVmConfiguration(): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.VmConfiguration);
  }
  getVmConfigurationString(): string | null {
    return hc.getBufferString(BufferType.VmConfiguration);
  }
  /** Only during `onConfigure` / `onValidateConfiguration`. A protobuf Struct arrives as JSON. */
  getPluginConfiguration(): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.PluginConfiguration);
  }
  getPluginConfigurationString(): string | null {
    return hc.getBufferString(BufferType.PluginConfiguration);
  }
  /** Only during `onForeignFunction`. */
  getForeignFunctionArguments(): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.ForeignFunctionArguments);
  }
  /** Sets the period of `onTick` (0 disables). */
  setTickPeriod(milliseconds: u32): WasmResult {
    return hc.setTickPeriodMilliseconds(milliseconds);
  }
  /** Registers a queue owned by this root (`onQueueReady` fires here); `QUEUE_NOT_FOUND` on failure. */
  registerSharedQueue(name: string): u32 {
    return hc.registerSharedQueue(name);
  }
  /** After answering false to `onDone`: tell the host this root has finished. */
  done(): WasmResult {
    return hc.done();
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP stream contexts

/**
 * One per HTTP stream. Callback order in Envoy: requestHeaders → requestBody* →
 * requestTrailers? → responseHeaders → responseBody* → responseTrailers? → log → done → delete.
 * Headers are readable and writable in their own callback (or while paused in it), read-only in
 * `onLog`; bodies only in their callback.
 */
export class HttpContext extends BaseContext {
  constructor(
    contextId: u32,
    public readonly root: RootContext,
  ) {
    super(contextId, CONTEXT_KIND_HTTP);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    return FilterHeadersStatus.Continue;
  }
  /** `bodySize` is what is buffered so far (grows while you return StopIterationAndBuffer). */
  onRequestBody(bodySize: usize, endOfStream: bool): FilterDataStatus {
    return FilterDataStatus.Continue;
  }
  onRequestTrailers(numTrailers: u32): FilterTrailersStatus {
    return FilterTrailersStatus.Continue;
  }
  onRequestMetadata(numElements: u32): FilterMetadataStatus {
    return FilterMetadataStatus.Continue;
  }
  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    return FilterHeadersStatus.Continue;
  }
  onResponseBody(bodySize: usize, endOfStream: bool): FilterDataStatus {
    return FilterDataStatus.Continue;
  }
  onResponseTrailers(numTrailers: u32): FilterTrailersStatus {
    return FilterTrailersStatus.Continue;
  }
  onResponseMetadata(numElements: u32): FilterMetadataStatus {
    return FilterMetadataStatus.Continue;
  }
  /** Access-log phase: headers are readable, not writable. */
  onLog(): void {}

  // Request headers
  getRequestHeaders(): Array<Header> {
    return hc.getHeaderMapPairs(MapType.HttpRequestHeaders);
  }
  setRequestHeaders(headers: Array<Header>): WasmResult {
    return hc.setHeaderMapPairs(MapType.HttpRequestHeaders, headers);
  }
  /** First value of a request header (names are lower-case), or null. */
  getRequestHeader(name: string): string | null {
    return hc.getHeaderMapValue(MapType.HttpRequestHeaders, name);
  }
  getRequestHeaderBytes(name: string): ArrayBuffer | null {
    return hc.getHeaderMapValueBytes(MapType.HttpRequestHeaders, name);
  }
  addRequestHeader(name: string, value: string): WasmResult {
    return hc.addHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }
  addRequestHeaderBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.addHeaderMapValueBytes(MapType.HttpRequestHeaders, name, value);
  }
  replaceRequestHeader(name: string, value: string): WasmResult {
    return hc.replaceHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }
  replaceRequestHeaderBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.replaceHeaderMapValueBytes(MapType.HttpRequestHeaders, name, value);
  }
  removeRequestHeader(name: string): WasmResult {
    return hc.removeHeaderMapValue(MapType.HttpRequestHeaders, name);
  }

  // Request trailers
  getRequestTrailers(): Array<Header> {
    return hc.getHeaderMapPairs(MapType.HttpRequestTrailers);
  }
  setRequestTrailers(trailers: Array<Header>): WasmResult {
    return hc.setHeaderMapPairs(MapType.HttpRequestTrailers, trailers);
  }
  getRequestTrailer(name: string): string | null {
    return hc.getHeaderMapValue(MapType.HttpRequestTrailers, name);
  }
  getRequestTrailerBytes(name: string): ArrayBuffer | null {
    return hc.getHeaderMapValueBytes(MapType.HttpRequestTrailers, name);
  }
  addRequestTrailer(name: string, value: string): WasmResult {
    return hc.addHeaderMapValue(MapType.HttpRequestTrailers, name, value);
  }
  addRequestTrailerBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.addHeaderMapValueBytes(MapType.HttpRequestTrailers, name, value);
  }
  replaceRequestTrailer(name: string, value: string): WasmResult {
    return hc.replaceHeaderMapValue(MapType.HttpRequestTrailers, name, value);
  }
  replaceRequestTrailerBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.replaceHeaderMapValueBytes(MapType.HttpRequestTrailers, name, value);
  }
  removeRequestTrailer(name: string): WasmResult {
    return hc.removeHeaderMapValue(MapType.HttpRequestTrailers, name);
  }

  // Response headers
  getResponseHeaders(): Array<Header> {
    return hc.getHeaderMapPairs(MapType.HttpResponseHeaders);
  }
  setResponseHeaders(headers: Array<Header>): WasmResult {
    return hc.setHeaderMapPairs(MapType.HttpResponseHeaders, headers);
  }
  getResponseHeader(name: string): string | null {
    return hc.getHeaderMapValue(MapType.HttpResponseHeaders, name);
  }
  getResponseHeaderBytes(name: string): ArrayBuffer | null {
    return hc.getHeaderMapValueBytes(MapType.HttpResponseHeaders, name);
  }
  addResponseHeader(name: string, value: string): WasmResult {
    return hc.addHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }
  addResponseHeaderBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.addHeaderMapValueBytes(MapType.HttpResponseHeaders, name, value);
  }
  replaceResponseHeader(name: string, value: string): WasmResult {
    return hc.replaceHeaderMapValue(MapType.HttpResponseHeaders, name, value);
  }
  replaceResponseHeaderBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.replaceHeaderMapValueBytes(MapType.HttpResponseHeaders, name, value);
  }
  removeResponseHeader(name: string): WasmResult {
    return hc.removeHeaderMapValue(MapType.HttpResponseHeaders, name);
  }

  // Response trailers
  getResponseTrailers(): Array<Header> {
    return hc.getHeaderMapPairs(MapType.HttpResponseTrailers);
  }
  setResponseTrailers(trailers: Array<Header>): WasmResult {
    return hc.setHeaderMapPairs(MapType.HttpResponseTrailers, trailers);
  }
  getResponseTrailer(name: string): string | null {
    return hc.getHeaderMapValue(MapType.HttpResponseTrailers, name);
  }
  getResponseTrailerBytes(name: string): ArrayBuffer | null {
    return hc.getHeaderMapValueBytes(MapType.HttpResponseTrailers, name);
  }
  addResponseTrailer(name: string, value: string): WasmResult {
    return hc.addHeaderMapValue(MapType.HttpResponseTrailers, name, value);
  }
  addResponseTrailerBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.addHeaderMapValueBytes(MapType.HttpResponseTrailers, name, value);
  }
  replaceResponseTrailer(name: string, value: string): WasmResult {
    return hc.replaceHeaderMapValue(MapType.HttpResponseTrailers, name, value);
  }
  replaceResponseTrailerBytes(name: string, value: ArrayBuffer): WasmResult {
    return hc.replaceHeaderMapValueBytes(MapType.HttpResponseTrailers, name, value);
  }
  removeResponseTrailer(name: string): WasmResult {
    return hc.removeHeaderMapValue(MapType.HttpResponseTrailers, name);
  }

  // Bodies (only inside the body callback, or while paused in it)
  getRequestBody(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.HttpRequestBody, start, maxSize);
  }
  getRequestBodyString(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): string | null {
    return hc.getBufferString(BufferType.HttpRequestBody, start, maxSize);
  }
  /** Replaces the whole request body seen so far. */
  setRequestBody(body: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpRequestBody, 0, u32.MAX_VALUE, body);
  }
  setRequestBodyString(body: string): WasmResult {
    return hc.setBufferString(BufferType.HttpRequestBody, 0, u32.MAX_VALUE, body);
  }
  appendRequestBody(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpRequestBody, u32.MAX_VALUE, 0, data);
  }
  prependRequestBody(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpRequestBody, 0, 0, data);
  }
  getResponseBody(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.HttpResponseBody, start, maxSize);
  }
  getResponseBodyString(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): string | null {
    return hc.getBufferString(BufferType.HttpResponseBody, start, maxSize);
  }
  setResponseBody(body: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpResponseBody, 0, u32.MAX_VALUE, body);
  }
  setResponseBodyString(body: string): WasmResult {
    return hc.setBufferString(BufferType.HttpResponseBody, 0, u32.MAX_VALUE, body);
  }
  appendResponseBody(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpResponseBody, u32.MAX_VALUE, 0, data);
  }
  prependResponseBody(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.HttpResponseBody, 0, 0, data);
  }

  /**
   * Answers the client directly (from request or response path, before response headers were
   * sent). Envoy stops the current iteration whatever the callback returns; return a Stop status.
   */
  sendLocalResponse(
    statusCode: u32,
    details: string,
    body: ArrayBuffer | null,
    headers: Array<Header> | null = null,
    grpcStatus: GrpcStatus = GrpcStatus.InvalidCode,
  ): WasmResult {
    return hc.sendLocalResponse(statusCode, details, body, headers, grpcStatus);
  }
  /** `sendLocalResponse` with a UTF-8 string body. */
  sendLocalResponseString(
    statusCode: u32,
    details: string,
    body: string,
    headers: Array<Header> | null = null,
    grpcStatus: GrpcStatus = GrpcStatus.InvalidCode,
  ): WasmResult {
    return hc.sendLocalResponse(statusCode, details, String.UTF8.encode(body), headers, grpcStatus);
  }
  /** Resumes a request paused by a Stop status (e.g. after a callout). */
  continueRequest(): WasmResult {
    return hc.continueStream(StreamType.HttpRequest);
  }
  continueResponse(): WasmResult {
    return hc.continueStream(StreamType.HttpResponse);
  }
  /** Resets the stream (details `wasm_close_stream`). */
  closeRequest(): WasmResult {
    return hc.closeStream(StreamType.HttpRequest);
  }
  closeResponse(): WasmResult {
    return hc.closeStream(StreamType.HttpResponse);
  }
}

// ---------------------------------------------------------------------------------------------
// TCP stream contexts (network filters)

/**
 * One per TCP connection. Order: newConnection → downstreamData* / upstreamData* →
 * downstream/upstream close → done → log → delete.
 */
export class StreamContext extends BaseContext {
  constructor(
    contextId: u32,
    public readonly root: RootContext,
  ) {
    super(contextId, CONTEXT_KIND_STREAM);
  }
  onNewConnection(): FilterStatus {
    return FilterStatus.Continue;
  }
  /** Client → upstream bytes; read them with `getDownstreamData`. */
  onDownstreamData(dataSize: usize, endOfStream: bool): FilterStatus {
    return FilterStatus.Continue;
  }
  /** Upstream → client bytes; read them with `getUpstreamData`. */
  onUpstreamData(dataSize: usize, endOfStream: bool): FilterStatus {
    return FilterStatus.Continue;
  }
  onDownstreamConnectionClose(peer: PeerType): void {}
  onUpstreamConnectionClose(peer: PeerType): void {}
  onLog(): void {}

  getDownstreamData(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.DownstreamData, start, maxSize);
  }
  getDownstreamDataString(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): string | null {
    return hc.getBufferString(BufferType.DownstreamData, start, maxSize);
  }
  setDownstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.DownstreamData, 0, u32.MAX_VALUE, data);
  }
  appendDownstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.DownstreamData, u32.MAX_VALUE, 0, data);
  }
  prependDownstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.DownstreamData, 0, 0, data);
  }
  getUpstreamData(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): ArrayBuffer | null {
    return hc.getBufferBytes(BufferType.UpstreamData, start, maxSize);
  }
  getUpstreamDataString(start: u32 = 0, maxSize: u32 = u32.MAX_VALUE): string | null {
    return hc.getBufferString(BufferType.UpstreamData, start, maxSize);
  }
  setUpstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.UpstreamData, 0, u32.MAX_VALUE, data);
  }
  appendUpstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.UpstreamData, u32.MAX_VALUE, 0, data);
  }
  prependUpstreamData(data: ArrayBuffer): WasmResult {
    return hc.setBufferBytes(BufferType.UpstreamData, 0, 0, data);
  }
  /** Resumes reading from the client after returning StopIteration. */
  continueDownstream(): WasmResult {
    return hc.continueStream(StreamType.Downstream);
  }
  /** Closes the connection (Envoy flushes pending writes first). */
  closeDownstream(): WasmResult {
    return hc.closeStream(StreamType.Downstream);
  }
  closeUpstream(): WasmResult {
    return hc.closeStream(StreamType.Upstream);
  }
}

// ---------------------------------------------------------------------------------------------
// Logging: check the level before building an expensive message

/** True when Envoy would print a message at `level`; check before formatting. */
export function logEnabled(level: LogLevel): bool {
  return level >= hc.getLogLevel();
}
export function log(level: LogLevel, message: string): void {
  hc.log(level, message);
}
export function logTrace(message: string): void {
  hc.log(LogLevel.Trace, message);
}
export function logDebug(message: string): void {
  hc.log(LogLevel.Debug, message);
}
export function logInfo(message: string): void {
  hc.log(LogLevel.Info, message);
}
export function logWarn(message: string): void {
  hc.log(LogLevel.Warn, message);
}
export function logError(message: string): void {
  hc.log(LogLevel.Error, message);
}
export function logCritical(message: string): void {
  hc.log(LogLevel.Critical, message);
}

// ---------------------------------------------------------------------------------------------
// Metrics: create once (e.g. as fields of the root); defined in Envoy on first use, because
// `proxy_define_metric` is not allowed while the module initialises.

export class Counter {
  private id: u32 = 0;
  constructor(public readonly name: string) {}
  private ensure(): u32 {
    if (this.id == 0) this.id = hc.defineMetric(MetricType.Counter, this.name);
    return this.id;
  }
  /** Adds `delta` (> 0). */
  increment(delta: i64 = 1): WasmResult {
    return hc.incrementMetric(this.ensure(), delta);
  }
  get(): u64 {
    return hc.getMetric(this.ensure());
  }
}

export class Gauge {
  private id: u32 = 0;
  constructor(public readonly name: string) {}
  private ensure(): u32 {
    if (this.id == 0) this.id = hc.defineMetric(MetricType.Gauge, this.name);
    return this.id;
  }
  set(value: i64): WasmResult {
    return hc.recordMetric(this.ensure(), <u64>value);
  }
  /** Adds `delta` (may be negative). */
  add(delta: i64): WasmResult {
    return hc.incrementMetric(this.ensure(), delta);
  }
  get(): i64 {
    return <i64>hc.getMetric(this.ensure());
  }
}

export class Histogram {
  private id: u32 = 0;
  constructor(public readonly name: string) {}
  record(value: u64): WasmResult {
    if (this.id == 0) this.id = hc.defineMetric(MetricType.Histogram, this.name);
    return hc.recordMetric(this.id, value);
  }
}

// ---------------------------------------------------------------------------------------------
// Properties (Envoy attributes; reference §1.7–1.8). `path` is the list of segments, e.g.
// ["request", "headers", "user-agent"]. Absent properties give null (or the fallback).

export function getProperty(path: Array<string>): ArrayBuffer | null {
  return hc.getProperty(path);
}
export function getPropertyString(path: Array<string>): string | null {
  return hc.getPropertyString(path);
}
/** An int64/uint64/timestamp/duration property (8 bytes little-endian), or `fallback`. */
export function getPropertyInt64(path: Array<string>, fallback: i64 = 0): i64 {
  const v = hc.getProperty(path);
  if (v == null || v.byteLength < 8) return fallback;
  return load<i64>(changetype<usize>(v));
}
/** A bool property (one byte), or `fallback`. */
export function getPropertyBool(path: Array<string>, fallback: bool = false): bool {
  const v = hc.getProperty(path);
  if (v == null || v.byteLength < 1) return fallback;
  return load<u8>(changetype<usize>(v)) != 0;
}
/** A map property (e.g. `request.headers`) as pairs; empty if absent. */
export function getPropertyMap(path: Array<string>): Array<Header> {
  const v = hc.getProperty(path);
  if (v == null) return new Array<Header>(0);
  return hc.deserializePairs(v);
}
/** Sets filter state `wasm.<path>` for the current stream. */
export function setProperty(path: Array<string>, value: ArrayBuffer): WasmResult {
  return hc.setProperty(path, value);
}
export function setPropertyString(path: Array<string>, value: string): WasmResult {
  return hc.setProperty(path, String.UTF8.encode(value));
}

/** Typed helpers for the common attributes. */
export namespace request {
  export function path(): string | null {
    return hc.getPropertyString(['request', 'path']);
  }
  export function urlPath(): string | null {
    return hc.getPropertyString(['request', 'url_path']);
  }
  export function host(): string | null {
    return hc.getPropertyString(['request', 'host']);
  }
  export function scheme(): string | null {
    return hc.getPropertyString(['request', 'scheme']);
  }
  export function method(): string | null {
    return hc.getPropertyString(['request', 'method']);
  }
  export function id(): string | null {
    return hc.getPropertyString(['request', 'id']);
  }
  export function protocol(): string | null {
    return hc.getPropertyString(['request', 'protocol']);
  }
  export function query(): string | null {
    return hc.getPropertyString(['request', 'query']);
  }
  export function userAgent(): string | null {
    return hc.getPropertyString(['request', 'useragent']);
  }
  export function headers(): Array<Header> {
    return getPropertyMap(['request', 'headers']);
  }
  /** Request time, ns since the epoch. */
  export function time(): i64 {
    return getPropertyInt64(['request', 'time']);
  }
  export function size(): i64 {
    return getPropertyInt64(['request', 'size']);
  }
}
export namespace response {
  export function code(): i64 {
    return getPropertyInt64(['response', 'code']);
  }
  export function codeDetails(): string | null {
    return hc.getPropertyString(['response', 'code_details']);
  }
  export function grpcStatus(): i64 {
    return getPropertyInt64(['response', 'grpc_status'], -1);
  }
  export function headers(): Array<Header> {
    return getPropertyMap(['response', 'headers']);
  }
  export function size(): i64 {
    return getPropertyInt64(['response', 'size']);
  }
}
export namespace connection {
  export function id(): i64 {
    return getPropertyInt64(['connection', 'id']);
  }
  export function mtls(): bool {
    return getPropertyBool(['connection', 'mtls']);
  }
  export function requestedServerName(): string | null {
    return hc.getPropertyString(['connection', 'requested_server_name']);
  }
  export function tlsVersion(): string | null {
    return hc.getPropertyString(['connection', 'tls_version']);
  }
  export function sourceAddress(): string | null {
    return hc.getPropertyString(['source', 'address']);
  }
  export function sourcePort(): i64 {
    return getPropertyInt64(['source', 'port']);
  }
  export function destinationAddress(): string | null {
    return hc.getPropertyString(['destination', 'address']);
  }
  export function destinationPort(): i64 {
    return getPropertyInt64(['destination', 'port']);
  }
}
export namespace plugin {
  export function name(): string | null {
    return hc.getPropertyString(['plugin_name']);
  }
  export function rootId(): string | null {
    return hc.getPropertyString(['plugin_root_id']);
  }
  export function vmId(): string | null {
    return hc.getPropertyString(['plugin_vm_id']);
  }
}

// ---------------------------------------------------------------------------------------------
// Shared data, queues, foreign functions, time

/** Reads a shared-data key (shared by every worker of this vm_id), or null. */
export function getSharedData(key: string): SharedData | null {
  return hc.getSharedData(key);
}
/** Writes a key; pass the `cas` you read to fail with `CasMismatch` if someone wrote meanwhile. */
export function setSharedData(key: string, value: ArrayBuffer, cas: u32 = 0): WasmResult {
  return hc.setSharedData(key, value, cas);
}
/** Finds a queue by vm_id ("" = this VM) and name; `QUEUE_NOT_FOUND` if it does not exist. */
export function resolveSharedQueue(vmId: string, name: string): u32 {
  return hc.resolveSharedQueue(vmId, name);
}
export function enqueueSharedQueue(queueId: u32, value: ArrayBuffer): WasmResult {
  return hc.enqueueSharedQueue(queueId, value);
}
export function dequeueSharedQueue(queueId: u32): ArrayBuffer | null {
  return hc.dequeueSharedQueue(queueId);
}
/** Calls an Envoy foreign function by name; null if unknown or failed (`lastResult()`). */
export function callForeignFunction(name: string, args: ArrayBuffer): ArrayBuffer | null {
  return hc.callForeignFunction(name, args);
}
/** Wall-clock time in ns since the epoch (use instead of `Date.now()`, which Envoy lacks). */
export function currentTimeNanoseconds(): u64 {
  return hc.getCurrentTimeNanoseconds();
}
/** The status of the last SDK call that returned null or 0 instead of a status. */
export function lastResult(): WasmResult {
  return hc.lastResult();
}
