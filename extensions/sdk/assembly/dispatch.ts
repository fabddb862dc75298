// Every `proxy_on_*` export Envoy looks up for ABI 0.2.1 (reference §1.2), routed by context
// id to the user's contexts. `envext build` re-exports this file from the module's entry.
//
// * Unknown context ids are tolerated (Envoy may create stream contexts lazily, or a root may
//   decline a stream): callbacks answer Continue / do nothing.
// * Callout answers arrive on the root id; the token tells which context made the call, and
//   for a stream the effective context is switched to it before its callback runs.
// * Memory: with the minimal runtime (envext's default) nothing collects on its own, so a full
//   collection runs every `collectInterval` top-level callbacks, at the end of a callback when
//   no guest frame holds a reference (reference §5.3/§6.4). The incremental runtime collects
//   by itself.
import * as hc from './hostcalls';
import {
  BaseContext,
  HttpContext,
  RootContext,
  StreamContext,
  CONTEXT_KIND_HTTP,
  CONTEXT_KIND_ROOT,
  CONTEXT_KIND_STREAM,
  callouts,
  forgetCallout,
  rootRegistrations,
  setCalloutRedirect,
} from './context';
import {
  FilterDataStatus,
  FilterHeadersStatus,
  FilterMetadataStatus,
  FilterStatus,
  FilterTrailersStatus,
  LogLevel,
  PeerType,
} from './abi/enums';

// Every live context by id. One map for all kinds (and the same instantiation as `callouts`)
// keeps the module small; `kind` tells what each entry is.
const contexts = new Map<u32, BaseContext>();

// Consecutive callbacks usually concern the same stream: remember the last lookup.
let lastId: u32 = 0;
let last: BaseContext | null = null;

let callbacksSinceCollect: u32 = 0;
let collectInterval: u32 = 256;

/** Sets how many callbacks may run between two collections (minimal runtime only). */
export function setCollectInterval(callbacks: u32): void {
  collectInterval = callbacks < 1 ? 1 : callbacks;
}

// Ends every export (one call each; the optimiser keeps it out of line at -Oz).
function quiescent(): void {
  if (ASC_RUNTIME == 1 /* Runtime.Minimal */) {
    if (++callbacksSinceCollect >= collectInterval) {
      callbacksSinceCollect = 0;
      __collect();
    }
  }
}

function lookup(id: u32): BaseContext | null {
  if (id == lastId && last != null) return last;
  if (!contexts.has(id)) return null;
  const ctx = contexts.get(id);
  lastId = id;
  last = ctx;
  return ctx;
}

function http(id: u32): HttpContext | null {
  const c = lookup(id);
  return c != null && c.kind == CONTEXT_KIND_HTTP ? changetype<HttpContext>(c) : null;
}

function stream(id: u32): StreamContext | null {
  const c = lookup(id);
  return c != null && c.kind == CONTEXT_KIND_STREAM ? changetype<StreamContext>(c) : null;
}

function root(id: u32): RootContext | null {
  const c = lookup(id);
  return c != null && c.kind == CONTEXT_KIND_ROOT ? changetype<RootContext>(c) : null;
}

function createRoot(id: u32): RootContext {
  const rootId = hc.getPropertyString(['plugin_root_id']);
  const name = rootId == null ? '' : rootId;
  const regs = rootRegistrations;
  let factory: ((contextId: u32) => RootContext) | null = null;
  for (let i = 0; i < regs.length; i++) {
    if (unchecked(regs[i]).rootId == name) factory = unchecked(regs[i]).factory;
  }
  if (factory == null) {
    for (let i = 0; i < regs.length; i++) {
      if (unchecked(regs[i]).rootId == '') factory = unchecked(regs[i]).factory;
    }
  }
  if (factory == null && regs.length == 1) factory = unchecked(regs[0]).factory;
  let ctx: RootContext;
  if (factory == null) {
    hc.log(LogLevel.Error, "no root context registered for root_id '" + name + "' (registerRootContext)");
    ctx = new RootContext(id);
  } else {
    ctx = factory(id);
  }
  ctx.rootId = name;
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// Memory and ABI marker

export function proxy_abi_version_0_2_1(): void {}

/** Envoy looks up `malloc` first, the spec names `proxy_on_memory_allocate`: export both. */
export function malloc(size: usize): usize {
  return hc.allocate(size);
}
export function proxy_on_memory_allocate(size: usize): usize {
  return hc.allocate(size);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  if (parentContextId == 0) {
    contexts.set(contextId, createRoot(contextId));
  } else {
    const r = root(parentContextId);
    if (r != null) {
      const h = r.createHttpContext(contextId);
      if (h != null) {
        contexts.set(contextId, h);
      } else {
        const s = r.createStreamContext(contextId);
        if (s != null) contexts.set(contextId, s);
      }
    }
  }
  quiescent();
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: usize): bool {
  const r = root(rootContextId);
  const ok = r == null ? true : r.onVmStart(vmConfigurationSize);
  quiescent();
  return ok;
}

export function proxy_validate_configuration(rootContextId: u32, configurationSize: usize): bool {
  const r = root(rootContextId);
  const ok = r == null ? true : r.onValidateConfiguration(configurationSize);
  quiescent();
  return ok;
}

export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: usize): bool {
  const r = root(rootContextId);
  const ok = r == null ? true : r.onConfigure(pluginConfigurationSize);
  quiescent();
  return ok;
}

export function proxy_on_tick(rootContextId: u32): void {
  const r = root(rootContextId);
  if (r != null) r.onTick();
  quiescent();
}

export function proxy_on_queue_ready(rootContextId: u32, queueId: u32): void {
  const r = root(rootContextId);
  if (r != null) r.onQueueReady(queueId);
  quiescent();
}

export function proxy_on_foreign_function(rootContextId: u32, functionId: u32, argumentsSize: usize): void {
  const r = root(rootContextId);
  if (r != null) r.onForeignFunction(functionId, argumentsSize);
  quiescent();
}

export function proxy_on_done(contextId: u32): bool {
  const c = lookup(contextId);
  const result = c == null ? true : c.onDone();
  quiescent();
  return result;
}

export function proxy_on_log(contextId: u32): void {
  const h = http(contextId);
  if (h != null) {
    h.onLog();
  } else {
    const s = stream(contextId);
    if (s != null) s.onLog();
  }
  quiescent();
}

export function proxy_on_delete(contextId: u32): void {
  const ctx = lookup(contextId);
  if (ctx != null) {
    contexts.delete(contextId);
    lastId = 0;
    last = null;
    ctx.releaseCallouts();
    ctx.onDelete();
  }
  quiescent();
}

// ---------------------------------------------------------------------------------------------
// HTTP

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
  const h = http(contextId);
  const s = h == null ? FilterHeadersStatus.Continue : h.onRequestHeaders(numHeaders, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_request_body(contextId: u32, bodySize: usize, endOfStream: bool): FilterDataStatus {
  const h = http(contextId);
  const s = h == null ? FilterDataStatus.Continue : h.onRequestBody(bodySize, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_request_trailers(contextId: u32, numTrailers: u32): FilterTrailersStatus {
  const h = http(contextId);
  const s = h == null ? FilterTrailersStatus.Continue : h.onRequestTrailers(numTrailers);
  quiescent();
  return s;
}

export function proxy_on_request_metadata(contextId: u32, numElements: u32): FilterMetadataStatus {
  const h = http(contextId);
  const s = h == null ? FilterMetadataStatus.Continue : h.onRequestMetadata(numElements);
  quiescent();
  return s;
}

export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
  const h = http(contextId);
  const s = h == null ? FilterHeadersStatus.Continue : h.onResponseHeaders(numHeaders, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_response_body(contextId: u32, bodySize: usize, endOfStream: bool): FilterDataStatus {
  const h = http(contextId);
  const s = h == null ? FilterDataStatus.Continue : h.onResponseBody(bodySize, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_response_trailers(contextId: u32, numTrailers: u32): FilterTrailersStatus {
  const h = http(contextId);
  const s = h == null ? FilterTrailersStatus.Continue : h.onResponseTrailers(numTrailers);
  quiescent();
  return s;
}

export function proxy_on_response_metadata(contextId: u32, numElements: u32): FilterMetadataStatus {
  const h = http(contextId);
  const s = h == null ? FilterMetadataStatus.Continue : h.onResponseMetadata(numElements);
  quiescent();
  return s;
}

// ---------------------------------------------------------------------------------------------
// TCP

export function proxy_on_new_connection(contextId: u32): FilterStatus {
  const c = stream(contextId);
  const s = c == null ? FilterStatus.Continue : c.onNewConnection();
  quiescent();
  return s;
}

export function proxy_on_downstream_data(contextId: u32, dataSize: usize, endOfStream: bool): FilterStatus {
  const c = stream(contextId);
  const s = c == null ? FilterStatus.Continue : c.onDownstreamData(dataSize, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_upstream_data(contextId: u32, dataSize: usize, endOfStream: bool): FilterStatus {
  const c = stream(contextId);
  const s = c == null ? FilterStatus.Continue : c.onUpstreamData(dataSize, endOfStream);
  quiescent();
  return s;
}

export function proxy_on_downstream_connection_close(contextId: u32, peerType: u32): void {
  const c = stream(contextId);
  if (c != null) c.onDownstreamConnectionClose(<PeerType>peerType);
  quiescent();
}

export function proxy_on_upstream_connection_close(contextId: u32, peerType: u32): void {
  const c = stream(contextId);
  if (c != null) c.onUpstreamConnectionClose(<PeerType>peerType);
  quiescent();
}

// ---------------------------------------------------------------------------------------------
// Callouts: answers arrive on the root id; route them to the context that made the call.

/** The context owning `token`, with the host's effective context switched to it. */
function calloutTarget(rootContextId: u32, token: u32, finished: bool): BaseContext | null {
  let owner: BaseContext | null = null;
  if (callouts.has(token)) {
    owner = callouts.get(token);
    if (finished) forgetCallout(token);
  } else {
    // A call made through hostcalls directly: the root that received the answer handles it.
    owner = root(rootContextId);
  }
  if (owner != null && owner.contextId != rootContextId) {
    hc.setEffectiveContext(owner.contextId);
    setCalloutRedirect(rootContextId, owner.contextId);
  }
  return owner;
}

export function proxy_on_http_call_response(
  rootContextId: u32,
  token: u32,
  numHeaders: u32,
  bodySize: usize,
  numTrailers: u32,
): void {
  const owner = calloutTarget(rootContextId, token, true);
  if (owner != null) owner.onHttpCallResponse(token, numHeaders, bodySize, numTrailers);
  setCalloutRedirect(0, 0);
  quiescent();
}

export function proxy_on_grpc_receive_initial_metadata(rootContextId: u32, token: u32, numElements: u32): void {
  const owner = calloutTarget(rootContextId, token, false);
  if (owner != null) owner.onGrpcReceiveInitialMetadata(token, numElements);
  setCalloutRedirect(0, 0);
  quiescent();
}

export function proxy_on_grpc_receive(rootContextId: u32, token: u32, messageSize: usize): void {
  // A unary call ends with its one message (Envoy sends no close after a successful call);
  // Envoy's tokens carry the kind in the low two bits: 1 = unary call, 2 = stream.
  const owner = calloutTarget(rootContextId, token, (token & 3) == 1);
  if (owner != null) owner.onGrpcReceive(token, messageSize);
  setCalloutRedirect(0, 0);
  quiescent();
}

export function proxy_on_grpc_receive_trailing_metadata(rootContextId: u32, token: u32, numElements: u32): void {
  const owner = calloutTarget(rootContextId, token, false);
  if (owner != null) owner.onGrpcReceiveTrailingMetadata(token, numElements);
  setCalloutRedirect(0, 0);
  quiescent();
}

export function proxy_on_grpc_close(rootContextId: u32, token: u32, statusCode: u32): void {
  const owner = calloutTarget(rootContextId, token, true);
  if (owner != null) owner.onGrpcClose(token, statusCode);
  setCalloutRedirect(0, 0);
  quiescent();
}
