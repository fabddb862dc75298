/**
 * `envoy.filters.http.wasm`, ported from Envoy Gateway `internal/xds/translator/wasm.go`.
 *
 * One filter per policy `wasm[]` entry, named `envoy.filters.http.wasm/<IR name>`, with its own
 * VM (vm_id = IR name, never shared), the V8 runtime, and remote code fetched from the module
 * cache's serving URL through the cluster `wasm_cluster`, verified by the module's sha256.
 */
import type { HttpRoute, Wasm, XdsIr } from '../../ir/types.js';
import { hostCluster } from './cluster.js';
import { joinName } from '../../ir/names.js';
import { memo, type ClusterResource, type HcmFilter, type HttpFilterPlugin } from './http-filters.js';

export const WASM_FILTER = 'envoy.filters.http.wasm';
export const WASM_CLUSTER = 'wasm_cluster';

/**
 * The module cache serves every module from one server, so every filter fetches through the one
 * cluster `wasm_cluster` (as in Envoy Gateway), which points at the host of the first serving URL.
 */
function firstUrl(ir: XdsIr): URL | undefined {
  for (const l of ir.http)
    for (const r of l.routes) for (const w of r.envoyExtensions?.wasms ?? []) return new URL(w.code.servingUrl);
  return undefined;
}

// Sub-messages every wasm filter has alike: shared (translator output is never mutated).
const FETCH_TIMEOUT = { seconds: 10 };
const FETCH_RETRY_POLICY = {
  num_retries: { value: 10 },
  retry_back_off: { base_interval: { seconds: 1 }, max_interval: { seconds: 30 } },
};

export function wasmFilterConfig(w: Wasm, cluster: string): Record<string, unknown> {
  return {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
    config: {
      name: w.wasmName,
      ...(w.rootId === undefined ? {} : { root_id: w.rootId }),
      ...(w.failOpen ? { fail_open: true } : {}),
      configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: w.config ?? '' },
      vm_config: {
        vm_id: w.name,
        runtime: 'envoy.wasm.runtime.v8',
        ...(w.hostEnvKeys.length === 0 ? {} : { environment_variables: { host_env_keys: [...w.hostEnvKeys] } }),
        code: {
          remote: {
            http_uri: { uri: w.code.servingUrl, cluster, timeout: FETCH_TIMEOUT },
            sha256: w.code.sha256,
            retry_policy: FETCH_RETRY_POLICY,
          },
        },
      },
    },
  };
}

/** Per extension (shared by every route it applies to): its HCM filter name and entry. */
const wasmMemo = new WeakMap<Wasm, { readonly name: string; readonly build: () => HcmFilter }>();

export function createWasmPlugin(): HttpFilterPlugin {
  return {
    type: WASM_FILTER,
    filtersForRoute(route: HttpRoute) {
      return (route.envoyExtensions?.wasms ?? []).map((w) =>
        memo(wasmMemo, w, () => {
          const name = joinName(WASM_FILTER, w.name);
          let filter: HcmFilter | undefined;
          return {
            name,
            build: () => (filter ??= { name, disabled: true, typed_config: wasmFilterConfig(w, WASM_CLUSTER) }),
          };
        }),
      );
    },
    clusters(x: XdsIr): readonly ClusterResource[] {
      const u = firstUrl(x);
      if (u === undefined) return [];
      const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
      return [hostCluster(WASM_CLUSTER, u.hostname.replace(/^\[|\]$/gu, ''), port, u.protocol === 'https:')];
    },
  };
}
