/**
 * HTTP filters: the interface every extension filter implements, the registry, and the one
 * function that decides filter order. Ported from Envoy Gateway
 * `internal/xds/translator/httpfilters.go` (`httpFilter`, `newOrderedHTTPFilter`).
 *
 * Each filter instance is added to a listener's HCM once, `disabled: true`, and switched on per
 * route with `typed_per_filter_config[<name>] = FilterConfig{config: {}}`, so only the routes a
 * policy targets run it.
 */
import type { FilterPosition, HttpRoute, XdsIr } from '../../ir/types.js';

export const FILTER_CONFIG_TYPE = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
export const ROUTER_FILTER = 'envoy.filters.http.router';

/** An HCM `http_filters` entry in proto-object form. */
export interface HcmFilter {
  readonly name: string;
  readonly disabled?: boolean;
  readonly typed_config: Record<string, unknown>;
}

/** A resource in proto-object form with its name (translate.ts's XdsResource). */
export interface NamedResource {
  readonly name: string;
  readonly resource: Record<string, unknown>;
}

/**
 * A Cluster plus its ClusterLoadAssignment (when delivered by EDS), each already in the form the
 * translator emits (one object per resource, shared by every route that needs it).
 */
export interface ClusterResource {
  readonly cluster: NamedResource;
  readonly endpoint?: NamedResource;
}

/** One extension filter type (wasm, ext_proc). */
export interface HttpFilterPlugin {
  /** Filter type, e.g. `envoy.filters.http.wasm`. */
  readonly type: string;
  /**
   * Names of the HCM filters this route enables (one per extension instance). `build` makes the
   * filter's HCM entry; it is called once per name per listener, however many routes share it.
   */
  filtersForRoute(route: HttpRoute): readonly { readonly name: string; readonly build: () => HcmFilter }[];
  /** Clusters a route needs for this filter type (ext_proc backends). Memoized per route. */
  clustersForRoute?(route: HttpRoute): readonly ClusterResource[];
  /** Clusters the IR as a whole needs (the wasm code server). Called once per IR. */
  clusters(ir: XdsIr): readonly ClusterResource[];
}

/** Fixed ranks (Envoy Gateway's table); lua/ext_proc/wasm/dynamic_modules add their list index. */
const FIXED_RANKS: readonly (readonly [string, number])[] = [
  ['envoy.filters.http.custom_response', 0],
  ['envoy.filters.http.health_check', 1],
  ['envoy.filters.http.fault', 2],
  ['envoy.filters.http.cors', 3],
  ['envoy.filters.http.csrf', 4],
  ['envoy.filters.http.header_mutation', 5],
  ['envoy.filters.http.ext_authz', 6],
  ['envoy.filters.http.api_key_auth', 7],
  ['envoy.filters.http.basic_auth', 8],
  ['envoy.filters.http.oauth2', 9],
  ['envoy.filters.http.jwt_authn', 10],
  ['envoy.filters.http.stateful_session', 11],
  ['envoy.filters.http.buffer', 12],
  ['envoy.filters.http.geoip', 300],
  ['envoy.filters.http.rbac', 301],
  ['envoy.filters.http.local_ratelimit', 302],
  ['envoy.filters.http.ratelimit', 303],
  ['envoy.filters.http.bandwidth_limit', 304],
  ['envoy.filters.http.grpc_web', 305],
  ['envoy.filters.http.grpc_stats', 306],
  ['envoy.filters.http.credential_injector', 307],
  ['envoy.filters.http.compressor', 308],
  ['envoy.filters.http.dynamic_forward_proxy', 309],
  [ROUTER_FILTER, 310],
];

/**
 * Default rank of a filter (lower runs first). `idx` is the number after the last `/` of the
 * instance name, so every policy's `wasm/0` precedes every `wasm/1`.
 */
export function filterRank(name: string): number {
  const idx = (): number => {
    const n = Number(name.slice(name.lastIndexOf('/') + 1));
    return Number.isInteger(n) ? n : 0;
  };
  if (name.startsWith('envoy.filters.http.lua')) return 13 + idx();
  if (name.startsWith('envoy.filters.http.ext_proc')) return 100 + idx();
  if (name.startsWith('envoy.filters.http.wasm')) return 200 + idx();
  if (name.startsWith('envoy.filters.http.dynamic_modules')) return 250 + idx();
  for (const [prefix, r] of FIXED_RANKS) if (name.startsWith(prefix)) return r;
  return 50;
}

/**
 * The filter order, decided here and nowhere else:
 *
 * 1. Default order: by rank (table above), ties by full name. So across types the chain is
 *    lua → ext_proc → wasm → dynamic_modules whatever the field order in the policy, and within
 *    a type list order (idx) wins over policy names.
 * 2. `EnvoyProxy.spec.filterOrder`, entries applied in list order: all filters of type `name`
 *    move, in their current order, right before the *first* filter of type `before`, or right
 *    after the *last* filter of type `after`; nothing happens when either side is absent.
 * 3. The router stays last.
 */
export function orderFilters<T extends { readonly name: string }>(
  filters: readonly T[],
  custom: readonly FilterPosition[],
): T[] {
  // Rank once per filter, not once per comparison.
  const ranked = filters.map((f) => ({ f, r: filterRank(f.name) }));
  ranked.sort((a, b) => a.r - b.r || (a.f.name < b.f.name ? -1 : a.f.name > b.f.name ? 1 : 0));
  let list = ranked.map((x) => x.f);
  for (const pos of custom) {
    const moving = list.filter((f) => f.name.startsWith(pos.name));
    if (moving.length === 0) continue;
    const rest = list.filter((f) => !f.name.startsWith(pos.name));
    if (pos.before !== undefined) {
      const at = rest.findIndex((f) => f.name.startsWith(pos.before ?? ''));
      if (at < 0) continue;
      list = [...rest.slice(0, at), ...moving, ...rest.slice(at)];
    } else if (pos.after !== undefined) {
      let at = -1;
      for (let i = 0; i < rest.length; i++) if (rest[i]?.name.startsWith(pos.after)) at = i;
      if (at < 0) continue;
      list = [...rest.slice(0, at + 1), ...moving, ...rest.slice(at + 1)];
    }
  }
  const router = list.filter((f) => f.name === ROUTER_FILTER);
  return [...list.filter((f) => f.name !== ROUTER_FILTER), ...router];
}

/** `memo.get(key)`, computing and keeping it on a miss (IR objects are immutable). */
export function memo<K extends object, V>(m: WeakMap<K, V>, key: K, make: () => V): V {
  let v = m.get(key);
  if (v === undefined) {
    v = make();
    m.set(key, v);
  }
  return v;
}
