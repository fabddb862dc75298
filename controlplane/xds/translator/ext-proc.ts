/**
 * `envoy.filters.http.ext_proc`, ported from Envoy Gateway `internal/xds/translator/extproc.go`.
 *
 * One filter per policy `extProc[]` entry, named `envoy.filters.http.ext_proc/<IR name>`, calling
 * the processor over gRPC (Envoy's own client, `envoy_grpc`) on a cluster of its own that speaks
 * HTTP/2. The processing mode is always written out in full, as Envoy Gateway does.
 */
import type { ExtProc, HttpRoute } from '../../ir/types.js';
import { destinationCluster } from './cluster.js';
import { joinName } from '../../ir/names.js';
import { memo, type ClusterResource, type HcmFilter, type HttpFilterPlugin } from './http-filters.js';

export const EXT_PROC_FILTER = 'envoy.filters.http.ext_proc';

function durationOf(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

/** The gRPC call timeout every ext_proc filter has (shared: translator output is never mutated). */
const GRPC_TIMEOUT = { seconds: 10 };

/** Processing modes by their (few) distinct values, shared by every filter with the same mode. */
const processingModes = new Map<string, Record<string, unknown>>();

function processingMode(e: ExtProc): Record<string, unknown> {
  const req = e.request;
  const res = e.response;
  const key = `${String(req.headers)}|${req.body ?? ''}|${String(res.headers)}|${res.body ?? ''}`;
  let mode = processingModes.get(key);
  if (mode === undefined) {
    mode = {
      request_header_mode: req.headers ? 'SEND' : 'SKIP',
      response_header_mode: res.headers ? 'SEND' : 'SKIP',
      ...(req.body === undefined ? {} : { request_body_mode: req.body }),
      ...(res.body === undefined ? {} : { response_body_mode: res.body }),
      // Full-duplex streaming needs trailers to know where the body ends.
      request_trailer_mode: req.body === 'FULL_DUPLEX_STREAMED' ? 'SEND' : 'SKIP',
      response_trailer_mode: res.body === 'FULL_DUPLEX_STREAMED' ? 'SEND' : 'SKIP',
    };
    processingModes.set(key, mode);
  }
  return mode;
}

export function extProcFilterConfig(e: ExtProc): Record<string, unknown> {
  const req = e.request;
  const res = e.response;
  const processing_mode = processingMode(e);
  const metadata =
    e.forwardingNamespaces.length === 0 && e.receivingNamespaces.length === 0
      ? undefined
      : {
          ...(e.forwardingNamespaces.length === 0
            ? {}
            : { forwarding_namespaces: { untyped: [...e.forwardingNamespaces] } }),
          ...(e.receivingNamespaces.length === 0
            ? {}
            : { receiving_namespaces: { untyped: [...e.receivingNamespaces] } }),
        };
  return {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    grpc_service: {
      envoy_grpc: { cluster_name: e.destination.name, authority: e.authority },
      timeout: GRPC_TIMEOUT,
    },
    processing_mode,
    // proto3 JSON leaves out false; Envoy Gateway's output does too.
    ...(e.failOpen === true ? { failure_mode_allow: true } : {}),
    ...(e.messageTimeoutMs === undefined ? {} : { message_timeout: durationOf(e.messageTimeoutMs) }),
    ...(e.observabilityMode === true ? { observability_mode: true } : {}),
    ...(e.allowModeOverride ? { allow_mode_override: true } : {}),
    ...(req.attributes.length === 0 ? {} : { request_attributes: [...req.attributes] }),
    ...(res.attributes.length === 0 ? {} : { response_attributes: [...res.attributes] }),
    ...(metadata === undefined ? {} : { metadata_options: metadata }),
  };
}

/** Per extension (shared by every route it applies to): its HCM filter name and entry. */
const extProcMemo = new WeakMap<ExtProc, { readonly name: string; readonly build: () => HcmFilter }>();

export function createExtProcPlugin(): HttpFilterPlugin {
  return {
    type: EXT_PROC_FILTER,
    filtersForRoute(route: HttpRoute) {
      return (route.envoyExtensions?.extProcs ?? []).map((e) =>
        memo(extProcMemo, e, () => {
          const name = joinName(EXT_PROC_FILTER, e.name);
          let filter: HcmFilter | undefined;
          return { name, build: () => (filter ??= { name, disabled: true, typed_config: extProcFilterConfig(e) }) };
        }),
      );
    },
    clustersForRoute(route: HttpRoute): readonly ClusterResource[] {
      return (route.envoyExtensions?.extProcs ?? []).map((e) => destinationCluster(e.destination));
    },
    clusters(): readonly ClusterResource[] {
      return [];
    },
  };
}
