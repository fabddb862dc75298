/**
 * Proxy-Wasm ABI 0.2.1 enumerations, with the numeric values Envoy uses
 * (`/work/shared/reference/proxy-wasm.md` §1.1; proxy-wasm-cpp-sdk `proxy_wasm_enums.h`).
 */

/** `proxy_status_t` / `WasmResult`: what every host call returns. */
export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  BadExpression: 5,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  ResultMismatch: 9,
  InternalFailure: 10,
  BrokenConnection: 11,
  Unimplemented: 12,
} as const;
export type WasmResult = (typeof WasmResult)[keyof typeof WasmResult];

/** Guest log levels (`proxy_log`); the host rejects anything above `critical`. */
export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;
export type GuestLogLevel = (typeof LOG_LEVEL_NAMES)[number];

export const MapType = {
  HttpRequestHeaders: 0,
  HttpRequestTrailers: 1,
  HttpResponseHeaders: 2,
  HttpResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;
export type MapType = (typeof MapType)[keyof typeof MapType];
export const MAP_TYPE_MAX = 7;

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  DownstreamData: 2,
  UpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
} as const;
export type BufferType = (typeof BufferType)[keyof typeof BufferType];
export const BUFFER_TYPE_MAX = 8;

export const StreamType = { HttpRequest: 0, HttpResponse: 1, Downstream: 2, Upstream: 3 } as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

export const PeerType = { Unknown: 0, Local: 1, Remote: 2 } as const;
export type PeerType = (typeof PeerType)[keyof typeof PeerType];

/** `FilterHeadersStatus` (after Envoy's translation, see `translateHeadersStatus`). */
export const HeadersStatus = {
  Continue: 0,
  StopIteration: 1,
  ContinueAndEndStream: 2,
  StopAllIterationAndBuffer: 3,
  StopAllIterationAndWatermark: 4,
} as const;
export type HeadersStatus = (typeof HeadersStatus)[keyof typeof HeadersStatus];

export const DataStatus = {
  Continue: 0,
  StopIterationAndBuffer: 1,
  StopIterationAndWatermark: 2,
  StopIterationNoBuffer: 3,
} as const;
export type DataStatus = (typeof DataStatus)[keyof typeof DataStatus];

export const TrailersStatus = { Continue: 0, StopIteration: 1 } as const;
export type TrailersStatus = (typeof TrailersStatus)[keyof typeof TrailersStatus];

/** TCP `FilterStatus`. */
export const NetworkStatus = { Continue: 0, StopIteration: 1 } as const;
export type NetworkStatus = (typeof NetworkStatus)[keyof typeof NetworkStatus];

/** Names for the statuses, for output (`envext wasm run`) and test messages. */
export const HEADERS_STATUS_NAMES = [
  'Continue',
  'StopIteration',
  'ContinueAndEndStream',
  'StopAllIterationAndBuffer',
  'StopAllIterationAndWatermark',
] as const;
export const DATA_STATUS_NAMES = [
  'Continue',
  'StopIterationAndBuffer',
  'StopIterationAndWatermark',
  'StopIterationNoBuffer',
] as const;
export const TRAILERS_STATUS_NAMES = ['Continue', 'StopIteration'] as const;

/** WASI errno values Envoy uses. */
export const Errno = {
  Success: 0,
  Badf: 8,
  Fault: 21,
  Inval: 28,
  Noent: 44,
  Nosys: 52,
  Notsup: 58,
  Notcapable: 76,
} as const;

/** Callout tokens carry their kind in the low 2 bits (cpp-host `wasm.h`). */
export const CalloutKind = { Http: 0, GrpcCall: 1, GrpcStream: 2 } as const;
export type CalloutKind = (typeof CalloutKind)[keyof typeof CalloutKind];

/** gRPC status codes used by the host (Envoy's `Grpc::Status`). */
export const GrpcStatus = { Ok: 0, Cancelled: 1, Unknown: 2, Unavailable: 14, Internal: 13 } as const;
