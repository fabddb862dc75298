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

/** A Cluster in proto-object form plus its endpoints (when delivered by EDS). */
export interface ClusterResource {
  readonly cluster: Record<string, unknown>;
  readonly loadAssignment?: Record<string, unknown>;
}

/** One extension filter type (wasm, ext_proc). */
export interface HttpFilterPlugin {
  /** Filter type, e.g. `envoy.filters.http.wasm`. */
  readonly type: string;
  /** HCM filters this route needs (one per extension instance), keyed by full filter name. */
  filtersForRoute(route: HttpRoute): ReadonlyMap<string, HcmFilter>;
  /** Extra clusters the IR needs (ext_proc backends, the wasm code server). Called once per IR. */
  clusters(ir: XdsIr): readonly ClusterResource[];
}

/**
 * Default rank of a filter type (lower runs first), Envoy Gateway's table; `idx` is the number
 * after the last `/` of the instance name, so every policy's `wasm/0` precedes every `wasm/1`.
 */
function rank(name: string): number {
  const idx = (): number => {
    const n = Number(name.slice(name.lastIndexOf('/') + 1));
    return Number.isInteger(n) ? n : 0;
  };
  const fixed: readonly [string, number][] = [
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
  if (name.startsWith('envoy.filters.http.lua')) return 13 + idx();
  if (name.startsWith('envoy.filters.http.ext_proc')) return 100 + idx();
  if (name.startsWith('envoy.filters.http.wasm')) return 200 + idx();
  if (name.startsWith('envoy.filters.http.dynamic_modules')) return 250 + idx();
  for (const [prefix, r] of fixed) if (name.startsWith(prefix)) return r;
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
  let list = [...filters].sort(
    (a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
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
