/**
 * The xDS translator: one Gateway's IR → Envoy resources per type URL. Pure.
 *
 *   listeners  one per port: HCM (RDS over ADS) in the default filter chain for HTTP, one filter
 *              chain per HTTPS listener (SNI match, SDS certificate) for HTTPS
 *   routes     one RouteConfiguration per HCM, one VirtualHost per hostname
 *   clusters   one per route destination, plus the extension filters' clusters
 *   endpoints  ClusterLoadAssignment per EDS cluster
 *   secrets    TLS certificates of HTTPS listeners
 *
 * Shapes and names follow Envoy Gateway `internal/xds/translator`. Resources are returned as
 * proto objects (field names as in the .proto files, `@type` for Any); `encodeXds` turns them
 * into bytes with Envoy's real protos (strict: an unknown field throws).
 */
import { encode, protoRoot, type ProtoObject } from '../../../proto/index.js';
import { packed } from '../../ir/lists.js';
import type { HttpListener, HttpRoute, RouteDestination, StringMatch, XdsIr } from '../../ir/types.js';
import { Union, SortedByName } from './assembly.js';
import { ADS_CONFIG, destinationCluster } from './cluster.js';
import { createExtProcPlugin } from './ext-proc.js';
import {
  FILTER_CONFIG_TYPE,
  ROUTER_FILTER,
  memo as remember,
  orderFilters,
  type ClusterResource,
  type HcmFilter,
  type HttpFilterPlugin,
} from './http-filters.js';
import { createWasmPlugin } from './wasm.js';

export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** Type URLs in the order Envoy should receive them (CDS → EDS → LDS → RDS, secrets first). */
export const XDS_TYPES = [SECRET_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE] as const;
export type XdsTypeUrl = (typeof XDS_TYPES)[number];

/** Short names used for golden files and `envext translate --type`. */
export const XDS_TYPE_NAMES: Readonly<Record<XdsTypeUrl, string>> = {
  [SECRET_TYPE]: 'secrets',
  [CLUSTER_TYPE]: 'clusters',
  [ENDPOINT_TYPE]: 'endpoints',
  [LISTENER_TYPE]: 'listeners',
  [ROUTE_TYPE]: 'routes',
};

export interface XdsResource {
  readonly name: string;
  /** The message as a proto object (no top-level `@type`). */
  readonly resource: ProtoObject;
}

/** Resources per type URL, each list sorted by name. */
export type XdsResources = Readonly<Record<XdsTypeUrl, readonly XdsResource[]>>;

const ROUTER: HcmFilter = {
  name: ROUTER_FILTER,
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
    suppress_envoy_headers: true,
  },
};

function stringMatcher(m: StringMatch): Record<string, unknown> {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safe_regex: { regex: m.safeRegex } };
}

// The functions below run once per route on every translation: they build each object with
// plain assignments rather than conditional spreads, which allocate a temporary object per field.

function routeMatch(r: HttpRoute): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  const p = r.pathMatch;
  if (p === undefined) m['prefix'] = '/';
  else if ('exact' in p) m['path'] = p.exact;
  else if ('safeRegex' in p) m['safe_regex'] = { regex: p.safeRegex };
  else if (p.prefix === '/' || p.prefix === '') m['prefix'] = '/';
  // Gateway API prefixes match whole path segments: /foo matches /foo and /foo/bar, not /foobar.
  else m['path_separated_prefix'] = p.prefix.replace(/\/+$/u, '');
  if (r.headerMatches.length > 0)
    m['headers'] = r.headerMatches.map((h) => ({ name: h.name, string_match: stringMatcher(h.match) }));
  if (r.queryParamMatches.length > 0)
    m['query_parameters'] = r.queryParamMatches.map((q) => ({ name: q.name, string_match: stringMatcher(q.match) }));
  return m;
}

const REDIRECT_CODES: Readonly<Record<number, string>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

const WEBSOCKET_UPGRADE = [{ upgrade_type: 'websocket' }];

function routeAction(r: HttpRoute, dest: RouteDestination): Record<string, unknown> {
  const a: Record<string, unknown> = { cluster: dest.name };
  if (!r.isHttp2) a['upgrade_configs'] = WEBSOCKET_UPGRADE;
  const rw = r.urlRewrite;
  if (rw?.hostname !== undefined) a['host_rewrite_literal'] = rw.hostname;
  if (rw?.path?.prefixMatchReplace !== undefined) a['prefix_rewrite'] = rw.path.prefixMatchReplace;
  if (rw?.path?.fullReplace !== undefined)
    a['regex_rewrite'] = { pattern: { regex: '^/.*$' }, substitution: rw.path.fullReplace };
  if (r.mirrors.length > 0) a['request_mirror_policies'] = r.mirrors.map((m) => ({ cluster: m.name }));
  return a;
}

/** Adds `<prefix>headers_to_add` / `<prefix>headers_to_remove` for a header modifier. */
function addHeaderOps(
  out: Record<string, unknown>,
  prefix: 'request_' | 'response_',
  mod: HttpRoute['requestHeaders'],
): void {
  if (mod === undefined) return;
  if (mod.add.length > 0) {
    out[`${prefix}headers_to_add`] = mod.add.map((h) => ({
      header: { key: h.name, value: h.value },
      append_action: h.append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD',
    }));
  }
  if (mod.remove.length > 0) out[`${prefix}headers_to_remove`] = [...mod.remove];
}

function envoyRoute(r: HttpRoute, perFilter: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { name: r.name, match: routeMatch(r) };
  if (r.directResponse !== undefined) {
    const dr: Record<string, unknown> = { status: r.directResponse.statusCode };
    if (r.directResponse.body !== undefined) dr['body'] = { inline_string: r.directResponse.body };
    out['direct_response'] = dr;
  } else if (r.redirect !== undefined) {
    const rd = r.redirect;
    const redirect: Record<string, unknown> = { response_code: REDIRECT_CODES[rd.statusCode] ?? 'FOUND' };
    if (rd.scheme !== undefined) redirect['scheme_redirect'] = rd.scheme;
    if (rd.hostname !== undefined) redirect['host_redirect'] = rd.hostname;
    if (rd.port !== undefined) redirect['port_redirect'] = rd.port;
    if (rd.path?.fullReplace !== undefined) redirect['path_redirect'] = rd.path.fullReplace;
    if (rd.path?.prefixMatchReplace !== undefined) redirect['prefix_rewrite'] = rd.path.prefixMatchReplace;
    out['redirect'] = redirect;
  } else if (r.destination !== undefined) {
    out['route'] = routeAction(r, r.destination);
  } else {
    out['direct_response'] = { status: 500 };
  }
  addHeaderOps(out, 'request_', r.requestHeaders);
  addHeaderOps(out, 'response_', r.responseHeaders);
  if (perFilter.length > 0) {
    const tpf: Record<string, unknown> = {};
    for (const n of sortedNames(perFilter)) tpf[n] = ENABLE_FILTER;
    out['typed_per_filter_config'] = tpf;
  }
  return out;
}

/**
 * A copy in code-unit order (as Array.prototype.sort's default). By insertion: a route enables a
 * handful of filters, and V8's sort allocates its work state even for two elements.
 */
function sortedNames(names: readonly string[]): readonly string[] {
  if (names.length < 2) return names;
  const out = names.slice();
  for (let i = 1; i < out.length; i++) {
    const x = out[i]!;
    let j = i - 1;
    for (; j >= 0 && out[j]! > x; j--) out[j + 1] = out[j]!;
    out[j + 1] = x;
  }
  return out;
}

/** `FilterConfig{config: {}}`: turns a disabled HCM filter on for one route. Shared, never mutated. */
const ENABLE_FILTER = { '@type': FILTER_CONFIG_TYPE, config: {} };

type FilterEntry = { readonly name: string; readonly build: () => HcmFilter };

/** What one IR route contributes to the xDS resources. */
interface RouteParts {
  readonly route: Record<string, unknown>;
  /** HCM filters it enables. */
  readonly filters: readonly FilterEntry[];
  /** Clusters it needs (destination, mirrors, extension backends), as Cluster resources. */
  readonly clusters: readonly XdsResource[];
  /** The same clusters' ClusterLoadAssignments (EDS clusters only). */
  readonly endpoints: readonly XdsResource[];
}

/**
 * Per IR route (immutable, and kept as the same object across translations of unchanged routes):
 * what it contributes. Plugins are stateless, so the memo holds for any call.
 */
const partsMemo = new WeakMap<HttpRoute, RouteParts>();

function clusterParts(list: readonly ClusterResource[]): Pick<RouteParts, 'clusters' | 'endpoints'> {
  const clusters: XdsResource[] = [];
  const endpoints: XdsResource[] = [];
  for (const c of list) {
    clusters.push(c.cluster);
    if (c.endpoint !== undefined) endpoints.push(c.endpoint);
  }
  return { clusters: packed(clusters), endpoints: packed(endpoints) };
}

function routeParts(r: HttpRoute, plugins: readonly HttpFilterPlugin[]): RouteParts {
  return remember(partsMemo, r, () => {
    const enables = plugins.flatMap((p) => p.filtersForRoute(r));
    const needed: ClusterResource[] = [];
    if (r.destination !== undefined) needed.push(destinationCluster(r.destination));
    for (const m of r.mirrors) needed.push(destinationCluster(m));
    for (const p of plugins) needed.push(...(p.clustersForRoute?.(r) ?? []));
    return {
      route: envoyRoute(
        r,
        enables.map((f) => f.name),
      ),
      filters: packed(enables),
      ...clusterParts(needed),
    };
  });
}

function vhostName(listener: string, host: string): string {
  return `${listener}/${host.replaceAll('.', '_')}`;
}

/** Builds the RouteConfiguration and HCM filters for a set of IR listeners that share one HCM. */
function buildHcm(
  ir: XdsIr,
  routeConfigName: string,
  listeners: readonly HttpListener[],
  plugins: readonly HttpFilterPlugin[],
  memo: XdsTranslationMemo | undefined,
): { routeConfig: XdsResource; filters: HcmFilter[] } {
  const vhosts = new Map<string, Record<string, unknown>[]>();
  const routes: HttpRoute[] = [];
  for (const l of listeners) {
    for (const r of l.routes) {
      routes.push(r);
      const t = routeParts(r, plugins);
      const list = vhosts.get(r.hostname);
      if (list === undefined) vhosts.set(r.hostname, [t.route]);
      else list.push(t.route);
    }
  }
  const routeConfig: XdsResource = {
    name: routeConfigName,
    resource: {
      name: routeConfigName,
      ignore_port_in_host_matching: true,
      virtual_hosts: [...vhosts.keys()].sort().map((host) => ({
        name: vhostName(routeConfigName, host),
        domains: [host],
        routes: vhosts.get(host) ?? [],
      })),
    },
  };
  // Each filter once, in the order orderFilters decides (independent of the routes' order);
  // redone only when the set of filters or the EnvoyProxy order changed.
  const key = `${ir.name}|${routeConfigName}`;
  let hcm = memo?.hcms.get(key);
  if (hcm === undefined) {
    hcm = { filters: new Union<HttpRoute, FilterEntry>((r) => routeParts(r, plugins).filters) };
    memo?.hcms.set(key, hcm);
  }
  const change = hcm.filters.update(routes);
  if (
    hcm.chain === undefined ||
    change.namesChanged ||
    change.replaced.length > 0 ||
    hcm.chain.order !== ir.filterOrder
  ) {
    const built = [...hcm.filters.entries.values()].map((e) => e.value.build());
    hcm.chain = { order: ir.filterOrder, output: orderFilters([...built, ROUTER], ir.filterOrder) };
  }
  return { routeConfig, filters: hcm.chain.output };
}

/**
 * What `translateXds` keeps between calls for the same Gateways (a serve loop keeps one): the
 * previous filter chains and name orders. Per-route results are memoized by IR object identity
 * regardless (IR is immutable, and unchanged routes keep their objects across translations).
 */
export class XdsTranslationMemo {
  /** Per listener HCM (`ir|routeConfig`): its filters and their order. */
  readonly hcms = new Map<string, HcmAssembly>();
  /** Per IR: its clusters and endpoints. */
  readonly irs = new Map<string, IrAssembly>();
}

interface HcmAssembly {
  readonly filters: Union<HttpRoute, FilterEntry>;
  chain?: { readonly order: XdsIr['filterOrder']; readonly output: HcmFilter[] };
}

interface IrAssembly {
  readonly clusters: Union<object, XdsResource>;
  readonly endpoints: Union<object, XdsResource>;
  readonly clusterList: SortedByName<XdsResource>;
  readonly endpointList: SortedByName<XdsResource>;
}

/** IR-level clusters (the wasm code server) of one call, as a contributor next to the routes. */
const irLevelParts = new WeakMap<object, Pick<RouteParts, 'clusters' | 'endpoints'>>();

function contributions(k: object, plugins: readonly HttpFilterPlugin[]): Pick<RouteParts, 'clusters' | 'endpoints'> {
  return irLevelParts.get(k) ?? routeParts(k as HttpRoute, plugins);
}

function hcm(statPrefix: string, routeConfigName: string, filters: readonly HcmFilter[]): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: statPrefix,
      rds: {
        route_config_name: routeConfigName,
        config_source: { ...ADS_CONFIG, initial_fetch_timeout: { seconds: 0 } },
      },
      http_filters: filters,
      common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
      http2_protocol_options: {
        max_concurrent_streams: { value: 100 },
        initial_stream_window_size: { value: 65536 },
        initial_connection_window_size: { value: 1048576 },
      },
      use_remote_address: { value: true },
      normalize_path: { value: true },
      merge_slashes: true,
      path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
      server_header_transformation: 'PASS_THROUGH',
    },
  };
}

function byName(a: XdsResource, b: XdsResource): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Translates one Gateway's IR. Pure and deterministic: the same IR gives the same resources,
 * with or without a `memo` (which only saves work when called again after a change).
 */
export function translateXds(ir: XdsIr, memo?: XdsTranslationMemo): XdsResources {
  const plugins: HttpFilterPlugin[] = [createExtProcPlugin(), createWasmPlugin()];
  const listeners: XdsResource[] = [];
  const routes: XdsResource[] = [];
  const secrets = new Map<string, XdsResource>();

  // Listeners sharing a port become one Envoy listener (Gateway API allows several hostnames per port).
  const byPort = new Map<number, HttpListener[]>();
  for (const l of ir.http) byPort.set(l.port, [...(byPort.get(l.port) ?? []), l]);
  for (const [port, group] of [...byPort].sort(([a], [b]) => a - b)) {
    const first = group[0];
    if (first === undefined) continue;
    const tls = group.filter((l) => l.tls !== undefined);
    const listener: Record<string, unknown> = {
      name: first.name,
      address: { socket_address: { address: first.address, port_value: port } },
      per_connection_buffer_limit_bytes: { value: 32768 },
    };
    if (tls.length === 0) {
      const { routeConfig, filters } = buildHcm(ir, first.name, group, plugins, memo);
      routes.push(routeConfig);
      listener['default_filter_chain'] = { filters: [hcm(`http-${port}`, first.name, filters)] };
    } else {
      listener['listener_filters'] = [
        {
          name: 'envoy.filters.listener.tls_inspector',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
          },
        },
      ];
      listener['filter_chains'] = tls.map((l) => {
        const { routeConfig, filters } = buildHcm(ir, l.name, [l], plugins, memo);
        routes.push(routeConfig);
        for (const c of l.tls?.certificates ?? []) {
          secrets.set(c.name, {
            name: c.name,
            resource: {
              name: c.name,
              tls_certificate: {
                certificate_chain: { inline_string: c.certificateChain },
                private_key: { inline_string: c.privateKey },
              },
            },
          });
        }
        const host = l.hostnames[0] ?? '*';
        return {
          name: l.name,
          ...(host === '*' ? {} : { filter_chain_match: { server_names: [host] } }),
          filters: [hcm(`https-${port}`, l.name, filters)],
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
              common_tls_context: {
                alpn_protocols: ['h2', 'http/1.1'],
                tls_certificate_sds_secret_configs: (l.tls?.certificates ?? []).map((c) => ({
                  name: c.name,
                  sds_config: ADS_CONFIG,
                })),
              },
            },
          },
        };
      });
    }
    listeners.push({ name: first.name, resource: listener });
  }

  // Clusters: every route's, then the IR-level ones (first contributor wins a name), kept as
  // reference counts so a change costs the routes that came or went.
  let asm = memo?.irs.get(ir.name);
  if (asm === undefined) {
    const parts = (k: object): Pick<RouteParts, 'clusters' | 'endpoints'> => contributions(k, plugins);
    asm = {
      clusters: new Union<object, XdsResource>((k) => parts(k).clusters),
      endpoints: new Union<object, XdsResource>((k) => parts(k).endpoints),
      clusterList: new SortedByName(),
      endpointList: new SortedByName(),
    };
    memo?.irs.set(ir.name, asm);
  }
  const irKey = {};
  irLevelParts.set(irKey, clusterParts(plugins.flatMap((p) => p.clusters(ir))));
  const contributors: object[] = [];
  for (const l of ir.http) for (const r of l.routes) contributors.push(r);
  contributors.push(irKey);
  const clusterChange = asm.clusters.update(contributors);
  const endpointChange = asm.endpoints.update(contributors);
  return {
    [SECRET_TYPE]: [...secrets.values()].sort(byName),
    [CLUSTER_TYPE]: asm.clusterList.update(asm.clusters, clusterChange),
    [ENDPOINT_TYPE]: asm.endpointList.update(asm.endpoints, endpointChange),
    [LISTENER_TYPE]: listeners.sort(byName),
    [ROUTE_TYPE]: routes.sort(byName),
  };
}

/** The message type of a type URL (`type.googleapis.com/x.y.Z` → `x.y.Z`). */
export function messageName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Envoy API files the translator's resources use beyond the loader's defaults. */
export const EXTRA_PROTO_FILES: readonly string[] = [
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
];

let protosLoaded = false;
/** Loads EXTRA_PROTO_FILES into the shared Root once. */
export function loadXdsProtos(): void {
  if (protosLoaded) return;
  protoRoot(EXTRA_PROTO_FILES);
  protosLoaded = true;
}

/** Encodes every resource with Envoy's protos. Throws ProtoError naming the field on any mismatch. */
export function encodeXds(
  resources: XdsResources,
): Readonly<Record<XdsTypeUrl, readonly { name: string; bytes: Uint8Array }[]>> {
  loadXdsProtos();
  const out = {} as Record<XdsTypeUrl, { name: string; bytes: Uint8Array }[]>;
  for (const type of XDS_TYPES) {
    out[type] = resources[type].map((r) => ({ name: r.name, bytes: encode(messageName(type), r.resource) }));
  }
  return out;
}
