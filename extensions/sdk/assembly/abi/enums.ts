// Numeric values of the proxy-wasm ABI v0.2.1 enumerations, exactly as Envoy reads them
// (reference §1.1; proxy-wasm-cpp-sdk `proxy_wasm_enums.h`).

/** Status of every host call (`proxy_status_t`). */
export enum WasmResult {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  BadExpression = 5,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  ResultMismatch = 9,
  InternalFailure = 10,
  BrokenConnection = 11,
  Unimplemented = 12,
}

/** Log levels of `proxy_log` / `proxy_get_log_level`. */
export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

/** Result of TCP (network filter) callbacks. */
export enum FilterStatus {
  Continue = 0,
  StopIteration = 1,
}

/**
 * Result of `onRequestHeaders` / `onResponseHeaders`. Envoy turns `StopIteration` into
 * `StopAllIterationAndWatermark` unless `allow_on_headers_stop_iteration` is set (reference
 * §2.5): pausing on headers also holds the body until `continueRequest()`/`continueResponse()`.
 */
export enum FilterHeadersStatus {
  Continue = 0,
  StopIteration = 1,
  ContinueAndEndStream = 2,
  StopAllIterationAndBuffer = 3,
  StopAllIterationAndWatermark = 4,
}

/**
 * Result of `onRequestBody` / `onResponseBody`. `StopIterationAndBuffer` makes Envoy buffer the
 * body: the next call sees the accumulated size, up to the connection manager's buffer limit.
 */
export enum FilterDataStatus {
  Continue = 0,
  StopIterationAndBuffer = 1,
  StopIterationAndWatermark = 2,
  StopIterationNoBuffer = 3,
}

/** Result of `onRequestTrailers` / `onResponseTrailers`. */
export enum FilterTrailersStatus {
  Continue = 0,
  StopIteration = 1,
}

/** Result of the metadata callbacks; Envoy only knows Continue. */
export enum FilterMetadataStatus {
  Continue = 0,
}

/** Which header map a header call addresses. */
export enum MapType {
  HttpRequestHeaders = 0,
  HttpRequestTrailers = 1,
  HttpResponseHeaders = 2,
  HttpResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}

/** Which buffer a buffer call addresses. */
export enum BufferType {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  DownstreamData = 2,
  UpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  ForeignFunctionArguments = 8,
}

/** Which stream `proxy_continue_stream` / `proxy_close_stream` act on. */
export enum StreamType {
  HttpRequest = 0,
  HttpResponse = 1,
  Downstream = 2,
  Upstream = 3,
}

export enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

/** Who closed a TCP connection. */
export enum PeerType {
  Unknown = 0,
  Local = 1,
  Remote = 2,
}

/** gRPC status codes; `InvalidCode` (-1) means "no grpc-status" in local responses. */
export enum GrpcStatus {
  InvalidCode = -1,
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}
