/**
 * The public types of the ext_proc framework: what a handler receives and what it may return.
 *
 * One gRPC stream carries one HTTP request. Envoy sends up to six kinds of message, in this order
 * (the processing mode decides which):
 *
 *   request_headers → request_body* → request_trailers? → response_headers → response_body* → response_trailers?
 *
 * The handler has one optional callback per kind. Each returns a decision (or nothing, which means
 * "continue unchanged"), synchronously or as a promise. The framework turns the decision into the
 * one answer Envoy accepts for that message (the matching rule), so a handler cannot produce a frame
 * Envoy would reject; a decision that is not valid where it is returned becomes the configured
 * failure (see `FailurePolicy`).
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import type { Headers } from './headers.js';

/** The six message kinds, spelled as the `oneof request` members of `ProcessingRequest`. */
export type Phase =
  'request_headers' | 'request_body' | 'request_trailers' | 'response_headers' | 'response_body' | 'response_trailers';

export const PHASES: readonly Phase[] = [
  'request_headers',
  'response_headers',
  'request_body',
  'response_body',
  'request_trailers',
  'response_trailers',
];

/** `ProcessingMode.HeaderSendMode`. */
export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
/** `ProcessingMode.BodySendMode`. */
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';

/** Every member a handler object may have; anything else is a mistake the server reports. */
export const HANDLER_KEYS: readonly string[] = [
  'createState',
  'onRequestHeaders',
  'onRequestBody',
  'onRequestTrailers',
  'onResponseHeaders',
  'onResponseBody',
  'onResponseTrailers',
  'onStreamEnd',
];

export const HEADER_SEND_MODES: readonly HeaderSendMode[] = ['DEFAULT', 'SEND', 'SKIP'];
export const BODY_SEND_MODES: readonly BodySendMode[] = [
  'NONE',
  'STREAMED',
  'BUFFERED',
  'BUFFERED_PARTIAL',
  'FULL_DUPLEX_STREAMED',
  'GRPC',
];

/** Envoy's `ProcessingMode`; absent fields are DEFAULT / NONE. */
export interface ProcessingMode {
  readonly request_header_mode?: HeaderSendMode;
  readonly response_header_mode?: HeaderSendMode;
  readonly request_body_mode?: BodySendMode;
  readonly response_body_mode?: BodySendMode;
  readonly request_trailer_mode?: HeaderSendMode;
  readonly response_trailer_mode?: HeaderSendMode;
}

/** Envoy's default ProcessingMode, every field spelled out (headers sent, bodies not, trailers skipped). */
export const DEFAULT_PROCESSING_MODE: Required<ProcessingMode> = {
  request_header_mode: 'SEND',
  response_header_mode: 'SEND',
  request_body_mode: 'NONE',
  response_body_mode: 'NONE',
  request_trailer_mode: 'SKIP',
  response_trailer_mode: 'SKIP',
};

/** `ProtocolConfiguration`, sent by newer Envoy in the first message of each stream. */
export interface ProtocolConfig {
  readonly requestBodyMode: BodySendMode;
  readonly responseBodyMode: BodySendMode;
  readonly sendBodyWithoutWaitingForHeaderResponse: boolean;
}

/** A JSON-like value that fits in a `google.protobuf.Struct`. */
export type StructValue = null | boolean | number | string | readonly StructValue[] | StructObject;
export interface StructObject {
  readonly [key: string]: StructValue;
}

/** Header names and values. A list of pairs keeps duplicates and order; a record is shorter. */
export type HeaderInput =
  Readonly<Record<string, string | readonly string[]>> | readonly (readonly [name: string, value: string])[];

/**
 * A header mutation, encoded the way Envoy reads it: each value in `raw_value` and the deprecated
 * `append` BoolValue always set (Envoy's ext_proc ignores `append_action`).
 */
export interface HeaderMutation {
  /** Overwrite (or add) these headers: `append: false`. An array value overwrites, then appends the rest. */
  readonly set?: HeaderInput;
  /** Add another value, keeping existing ones: `append: true`. */
  readonly append?: HeaderInput;
  /** Remove these headers. Removing `:`-prefixed headers or `host` is ignored by Envoy (reported here). */
  readonly remove?: readonly string[];
}

/** Replace or clear a body (BUFFERED: the whole body; STREAMED: this chunk). */
export type BodyMutation = { readonly replace: Uint8Array | string } | { readonly clear: true };

/** Answer fields that every kind of answer may carry. */
export interface CommonDecision {
  /**
   * Dynamic metadata: each key is a namespace, its value an object. Envoy keeps only the namespaces
   * listed in the filter's `metadata_options.receiving_namespaces.untyped`.
   */
  readonly dynamicMetadata?: Readonly<Record<string, StructObject>>;
}

/** An immediate (local) reply; Envoy sends it downstream and stops processing. */
export interface ImmediateResponse {
  /** HTTP status, 200–599. */
  readonly status: number;
  readonly headers?: HeaderMutation;
  readonly body?: Uint8Array | string;
  /** Adds a `grpc-status` to the reply (0–16). */
  readonly grpcStatus?: number;
  /** Shown in Envoy's `%RESPONSE_CODE_DETAILS%` (Envoy replaces whitespace). */
  readonly details?: string;
}

export interface ImmediateDecision extends CommonDecision {
  readonly immediate: ImmediateResponse;
}

/** The answer to request or response headers. */
export interface HeadersDecision extends CommonDecision {
  /**
   * `continue_and_replace`: apply the mutations, replace the body with `body` (discarding the
   * original), and receive nothing more for this direction. Default `continue`.
   */
  readonly status?: 'continue' | 'continue_and_replace';
  readonly headers?: HeaderMutation;
  /** Only with `status: 'continue_and_replace'`. */
  readonly body?: BodyMutation;
  /** Recompute the route after changing headers it depends on (request headers only). */
  readonly clearRouteCache?: boolean;
  /**
   * Change the processing mode for the rest of this HTTP request (request headers answers; Envoy
   * needs `allow_mode_override`). Body modes left out are filled in with the current ones, because
   * Envoy takes body modes verbatim from an override.
   */
  readonly modeOverride?: ProcessingMode;
}

/** The answer to a body message in NONE/STREAMED/BUFFERED/BUFFERED_PARTIAL mode. */
export interface BodyDecision extends CommonDecision {
  readonly body?: BodyMutation;
  /** Applied to the still-held headers; BUFFERED mode only (Envoy ignores it otherwise). */
  readonly headers?: HeaderMutation;
  readonly clearRouteCache?: boolean;
}

/**
 * The answer to a body chunk in FULL_DUPLEX_STREAMED mode: zero or more output chunks, sent at once
 * (M:N). Returning nothing passes the chunk through unchanged. The framework marks the last output
 * chunk `end_of_stream` when the input chunk was the last one, and splits chunks above 64 KiB.
 */
export interface StreamedBodyDecision extends CommonDecision {
  readonly chunks: readonly (Uint8Array | string)[];
}

/** The answer to trailers. */
export interface TrailersDecision extends CommonDecision {
  readonly trailers?: HeaderMutation;
  /**
   * FULL_DUPLEX_STREAMED only: body output still held by the handler, sent (as streamed_response
   * chunks) before the trailers answer. Trailers end the body in that mode, so this is the last
   * chance to flush.
   */
  readonly chunks?: readonly (Uint8Array | string)[];
}

/** What a callback may return. `undefined` is "continue unchanged". */
export type Returned<T> = T | ImmediateDecision | undefined | void;
export type MaybePromise<T> = T | Promise<T>;

export interface HeadersMessage {
  readonly headers: Headers;
  /** True when no body follows. */
  readonly endOfStream: boolean;
}

export interface BodyMessage {
  /** This chunk (STREAMED, FULL_DUPLEX_STREAMED), the whole body (BUFFERED), or one gRPC message (GRPC). */
  readonly body: Buffer;
  readonly endOfStream: boolean;
  /** GRPC body mode: the stream ended without a final message (`body` is empty). */
  readonly endOfStreamWithoutMessage: boolean;
  /** GRPC body mode: this gRPC message was compressed. */
  readonly grpcMessageCompressed: boolean;
}

export interface TrailersMessage {
  readonly trailers: Headers;
}

/**
 * Everything a handler knows about one HTTP request. One object per stream; `state` is the
 * handler's own, kept across phases.
 */
export interface ExtProcContext<S = Record<string, unknown>> {
  /** The handler's per-request state, from `createState()` (or `{}`). */
  state: S;
  /** Request headers, once received. */
  readonly requestHeaders: Headers | undefined;
  /** Response headers, once received. */
  readonly responseHeaders: Headers | undefined;
  /**
   * Attributes Envoy sent (`request_attributes`/`response_attributes`), merged across messages:
   * attribute name → value (Envoy nests them under the filter name; that level is flattened here,
   * and `attributesByFilter` keeps it).
   */
  readonly attributes: Readonly<Record<string, StructValue>>;
  readonly attributesByFilter: Readonly<Record<string, StructObject>>;
  /** `metadata_context.filter_metadata`, from the latest message: namespace → object. */
  readonly metadataContext: Readonly<Record<string, StructObject>>;
  /** From the first message, when Envoy sends it (newer Envoy, not in observability mode). */
  readonly protocolConfig: ProtocolConfig | undefined;
  /** True when the filter runs in observability mode: decisions are not sent. */
  readonly observabilityMode: boolean;
  /** The body mode in force for a direction (protocol config, mode override, or the server option). */
  bodyMode(direction: 'request' | 'response'): BodySendMode;
  /** gRPC call metadata (e.g. `grpc_initial_metadata` from the route). */
  readonly callMetadata: Metadata;
  /** Aborted when Envoy cancels the stream or the message times out. */
  readonly signal: AbortSignal;
  /** The server's logger. */
  readonly log: Logger;
}

/** A handler: any subset of the six callbacks. Callbacks may be sync or async. */
export interface ExtProcHandler<S = Record<string, unknown>> {
  /** Creates the per-request state (`ctx.state`); default `{}`. */
  createState?(): S;
  onRequestHeaders?(ctx: ExtProcContext<S>, msg: HeadersMessage): MaybePromise<Returned<HeadersDecision>>;
  onRequestBody?(ctx: ExtProcContext<S>, msg: BodyMessage): MaybePromise<Returned<BodyDecision | StreamedBodyDecision>>;
  onRequestTrailers?(ctx: ExtProcContext<S>, msg: TrailersMessage): MaybePromise<TrailersDecision | undefined | void>;
  onResponseHeaders?(ctx: ExtProcContext<S>, msg: HeadersMessage): MaybePromise<Returned<HeadersDecision>>;
  onResponseBody?(
    ctx: ExtProcContext<S>,
    msg: BodyMessage,
  ): MaybePromise<Returned<BodyDecision | StreamedBodyDecision>>;
  onResponseTrailers?(ctx: ExtProcContext<S>, msg: TrailersMessage): MaybePromise<TrailersDecision | undefined | void>;
  /** Called once when the stream ends, however it ends (`ok`, `cancelled`, `error`). */
  onStreamEnd?(ctx: ExtProcContext<S>, how: 'ok' | 'cancelled' | 'error'): void;
}

/**
 * What happens when a handler throws, rejects, times out or returns an invalid decision:
 *
 * - `continue`: answer that message with an unchanged CONTINUE (the chunk passes through) and go on;
 * - `error`: close the stream with a gRPC error, which Envoy turns into its `status_on_error`
 *   (default 500), or continues when `failure_mode_allow` is set;
 * - a number (e.g. 500, 504): answer with an immediate response of that status (trailers cannot
 *   take one; they fall back to `error`).
 */
export type FailurePolicy = 'continue' | 'error' | number;
