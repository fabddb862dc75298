/**
 * Contexts as Envoy keeps them for one VM:
 *
 * ```
 * VM context (id 0)           _initialize/_start run here, restricted
 *  ├─ root context (id 1)     one per plugin, chosen by root_id; ticks, callouts, queues, config
 *  │   ├─ HTTP stream (id 3)  created lazily on the first request headers
 *  │   └─ TCP stream  (id 4)  created on the new connection
 *  └─ root context (id 2)     a second plugin on the same VM
 * ```
 *
 * Ids come from one per-VM counter starting at 1 and are never reused while live (cpp-host
 * `WasmBase`). One class holds every kind's fields so the host-call hot path stays monomorphic.
 */
import type { HeaderMap, HeaderPair } from './pairs.js';
import type { PropertyValue } from './properties.js';

/** Shared empty buffer: contexts start with it and replace (never mutate) their buffers. */
const EMPTY = new Uint8Array(0);

export type ContextKind = 'vm' | 'root' | 'http' | 'tcp';

/** A plugin as configured on a root context (Envoy `PluginConfig`). */
export interface PluginInfo {
  /** `PluginConfig.name`; the `plugin_name` property. */
  readonly name: string;
  /** `PluginConfig.root_id`; the `plugin_root_id` property. */
  readonly rootId: string;
  /** Plugin configuration bytes (buffer type 7). A JSON `Struct` arrives as JSON text, as in Envoy. */
  configuration: Uint8Array;
  /** `fail_open` / `failure_policy`: what streams get after the VM failed. */
  readonly failurePolicy: FailurePolicy;
}

/** Envoy `PluginConfig.failure_policy`; `FAIL_OPEN` is the old `fail_open: true`. */
export type FailurePolicy = 'FAIL_CLOSED' | 'FAIL_OPEN' | 'FAIL_RELOAD';

/** A local reply the guest asked for with `proxy_send_local_response`. */
export interface LocalResponse {
  readonly statusCode: number;
  /** Response-code details, spaces replaced by underscores as Envoy does. */
  readonly details: string;
  readonly body: Uint8Array;
  readonly headers: readonly HeaderPair[];
  /** gRPC status, or undefined when the guest passed a value outside 0..16 (e.g. -1). */
  readonly grpcStatus: number | undefined;
}

/** The response to an HTTP callout, readable only during `proxy_on_http_call_response`. */
export interface CalloutResponse {
  readonly headers: HeaderMap;
  readonly body: Uint8Array;
  readonly trailers: HeaderMap;
}

export class Context {
  readonly id: number;
  readonly kind: ContextKind;
  /** The root context this one belongs to (itself for a root; undefined for the VM context). */
  readonly root: Context | undefined;

  // ---- root contexts ----
  plugin: PluginInfo | undefined;
  tickPeriodMs = 0;
  /** Virtual time (ns) of the next `proxy_on_tick`. */
  nextTickNs = 0n;
  /** `proxy_on_done` answered false; waiting for `proxy_done`. */
  pendingDone = false;
  /** What `proxy_get_status` answers: last HTTP call / gRPC close. */
  statusCode = 0;
  statusMessage = '';
  /** Which configuration buffer is readable now (during on_vm_start / on_configure). */
  configBuffer: Uint8Array | undefined;
  configBufferType = -1;
  /** Set during `proxy_on_http_call_response`. */
  callResponse: CalloutResponse | undefined;
  /** Set during gRPC callbacks: metadata (map types 4/5) and message (buffer type 5). */
  grpcInitialMetadata: HeaderMap | undefined;
  grpcTrailingMetadata: HeaderMap | undefined;
  grpcMessage: Uint8Array | undefined;
  /** Set during `proxy_on_foreign_function` (buffer type 8). */
  callData: Uint8Array | undefined;

  // ---- HTTP streams ----
  requestHeaders: HeaderMap | undefined;
  requestTrailers: HeaderMap | undefined;
  responseHeaders: HeaderMap | undefined;
  responseTrailers: HeaderMap | undefined;
  /** The request/response body buffer the guest sees (accumulates while buffering). */
  requestBody: Uint8Array = EMPTY;
  responseBody: Uint8Array = EMPTY;
  /** Access windows (reference §2.6): may the guest read/write this map or buffer now? */
  requestHeadersOpen = false;
  responseHeadersOpen = false;
  requestTrailersOpen = false;
  responseTrailersOpen = false;
  requestBodyOpen = false;
  responseBodyOpen = false;
  /** During `proxy_on_log`: maps readable, not writable. */
  inLog = false;
  /** end_of_stream of the body callback running now (trailers may be created then). */
  requestEndOfStream = false;
  responseEndOfStream = false;
  localResponse: LocalResponse | undefined;
  /** Stream reset by `proxy_close_stream` (`wasm_close_stream`) or closed connection. */
  closed: string | undefined;
  /** `proxy_set_property` values (filter state `wasm.<path>`), keyed by the NUL-joined path; created on first use. */
  filterState: Map<string, Uint8Array> | undefined;
  /** Attributes supplied by the embedder for this stream (request.*, source.*, …). */
  attributes: Readonly<Record<string, PropertyValue | undefined>> | undefined;
  /** Wall-clock ns when the stream context was created (`request.time`). */
  startNs = 0n;
  /** The VM had failed when (or while) this stream ran: the filter answers per failure policy. */
  streamFailed = false;

  // ---- TCP streams ----
  downstreamData: Uint8Array = EMPTY;
  upstreamData: Uint8Array = EMPTY;
  downstreamOpen = false;
  upstreamOpen = false;

  constructor(id: number, kind: ContextKind, root: Context | undefined) {
    this.id = id;
    this.kind = kind;
    this.root = kind === 'root' ? this : root;
    this.plugin = undefined;
    this.configBuffer = undefined;
    this.callResponse = undefined;
    this.grpcInitialMetadata = undefined;
    this.grpcTrailingMetadata = undefined;
    this.grpcMessage = undefined;
    this.callData = undefined;
    this.requestHeaders = undefined;
    this.requestTrailers = undefined;
    this.responseHeaders = undefined;
    this.responseTrailers = undefined;
    this.localResponse = undefined;
    this.closed = undefined;
    this.attributes = undefined;
    this.filterState = undefined;
  }
}
