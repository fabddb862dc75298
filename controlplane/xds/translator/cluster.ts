/**
 * Clusters and ClusterLoadAssignments for IR destinations, in Envoy Gateway's shape
 * (`internal/xds/translator/cluster.go`): EDS for IP, Unix-socket (pipe) and mixed STATIC
 * destinations, a DNS cluster with inline endpoints for FQDN destinations, least_request load
 * balancing with locality weights, one locality per backendRef.
 *
 * Deviation: Envoy Gateway emits FQDN clusters with the `envoy.cluster.dns` extension; the
 * Envoy API protos envext encodes with (grpc-js-xds, about Envoy 1.30) predate it, so envext
 * uses the equivalent `type: STRICT_DNS`.
 */
import type { DestinationSetting, Endpoint, RouteDestination } from '../../ir/types.js';
import type { ClusterResource } from './http-filters.js';

export const ADS_CONFIG = { ads: {}, resource_api_version: 'V3' } as const;

const LEAST_REQUEST = {
  policies: [
    {
      typed_extension_config: {
        name: 'envoy.load_balancing_policies.least_request',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
          locality_lb_config: { locality_weighted_lb_config: {} },
        },
      },
    },
  ],
};

/** Upstream HTTP/2 (gRPC, h2c): explicit protocol options with Envoy Gateway's window sizes. */
export const HTTP2_PROTOCOL_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: {
      http2_protocol_options: {
        initial_stream_window_size: { value: 65536 },
        initial_connection_window_size: { value: 1048576 },
      },
    },
  },
};

function address(e: Endpoint): Record<string, unknown> {
  return 'path' in e ? { pipe: { path: e.path } } : { socket_address: { address: e.host, port_value: e.port } };
}

/**
 * `lb_endpoints` per endpoint list: a backend's endpoints are one IR list shared by every route
 * that uses it, so thousands of routes to one Service share one list here too.
 */
const lbEndpointsMemo = new WeakMap<readonly Endpoint[], readonly Record<string, unknown>[]>();

/** The ClusterLoadAssignment of a destination: one locality per backendRef. */
export function loadAssignment(clusterName: string, settings: readonly DestinationSetting[]): Record<string, unknown> {
  return {
    cluster_name: clusterName,
    endpoints: settings.map((s) => {
      let lbEndpoints = lbEndpointsMemo.get(s.endpoints);
      if (lbEndpoints === undefined) {
        lbEndpoints = s.endpoints.map((e) => ({
          endpoint: { address: address(e) },
          load_balancing_weight: WEIGHT_ONE,
        }));
        lbEndpointsMemo.set(s.endpoints, lbEndpoints);
      }
      const locality: Record<string, unknown> = {
        locality: { region: s.name },
        lb_endpoints: lbEndpoints,
        load_balancing_weight: s.weight === 1 ? WEIGHT_ONE : { value: s.weight },
      };
      if (s.priority !== 0) locality['priority'] = s.priority;
      return locality;
    }),
  };
}

// Sub-messages every cluster has alike: shared (translator output is never mutated), so ten
// thousand clusters do not hold ten thousand copies of each.
const CONNECT_TIMEOUT = { seconds: 10 };
const BUFFER_LIMIT = { value: 32768 };
const COMMON_LB = {};
const CIRCUIT_BREAKERS = { thresholds: [{ max_retries: { value: 1024 } }] };
const WEIGHT_ONE = { value: 1 };
const DNS_REFRESH = { seconds: 30 };

/**
 * The fields every cluster starts with; callers add theirs by assignment. (Not `{...base(), x}`:
 * in V8 11 each object built that way gets a hidden class of its own, ~300 bytes per cluster.)
 */
function base(name: string, http2: boolean): Record<string, unknown> {
  const c: Record<string, unknown> = {
    name,
    connect_timeout: CONNECT_TIMEOUT,
    per_connection_buffer_limit_bytes: BUFFER_LIMIT,
    dns_lookup_family: 'V4_PREFERRED',
    common_lb_config: COMMON_LB,
    ignore_health_on_host_removal: true,
    circuit_breakers: CIRCUIT_BREAKERS,
    load_balancing_policy: LEAST_REQUEST,
  };
  if (http2) c['typed_extension_protocol_options'] = HTTP2_PROTOCOL_OPTIONS;
  return c;
}

// IR is immutable: results can be kept per destination object (the Gateway API translator reuses
// unchanged destinations across translations when it has a TranslationCache).
const clusterMemo = new WeakMap<RouteDestination, ClusterResource>();

/** The cluster (and EDS endpoints) of one destination. */
export function destinationCluster(dest: RouteDestination): ClusterResource {
  let c = clusterMemo.get(dest);
  if (c === undefined) {
    c = buildDestinationCluster(dest);
    clusterMemo.set(dest, c);
  }
  return c;
}

function buildDestinationCluster(dest: RouteDestination): ClusterResource {
  const http2 = dest.settings.some((s) => s.protocol === 'GRPC' || s.protocol === 'HTTP2');
  const fqdn = dest.settings.length > 0 && dest.settings.every((s) => s.addressType === 'FQDN');
  const cla = loadAssignment(dest.name, dest.settings);
  const cluster = base(dest.name, http2);
  if (fqdn) {
    cluster['type'] = 'STRICT_DNS';
    cluster['respect_dns_ttl'] = true;
    cluster['dns_refresh_rate'] = DNS_REFRESH;
    cluster['load_assignment'] = cla;
    return { cluster: { name: dest.name, resource: cluster } };
  }
  cluster['type'] = 'EDS';
  cluster['eds_cluster_config'] = { eds_config: ADS_CONFIG, service_name: dest.name };
  return { cluster: { name: dest.name, resource: cluster }, endpoint: { name: dest.name, resource: cla } };
}

/**
 * A cluster to a single `host:port` (the Wasm module server): STATIC for an IP address, else
 * STRICT_DNS; with TLS when `tls` is set (SNI = host, system CA bundle).
 */
export function hostCluster(name: string, host: string, port: number, tls: boolean): ClusterResource {
  const isIp = /^[0-9.]+$/u.test(host) || host.includes(':');
  const cla = {
    cluster_name: name,
    endpoints: [
      {
        locality: { region: `${name}/backend/-1` },
        lb_endpoints: [
          {
            endpoint: { address: { socket_address: { address: host, port_value: port } } },
            load_balancing_weight: { value: 1 },
          },
        ],
        load_balancing_weight: { value: 1 },
      },
    ],
  };
  return {
    cluster: {
      name,
      resource: {
        ...base(name, false),
        type: isIp ? 'STATIC' : 'STRICT_DNS',
        ...(isIp ? {} : { respect_dns_ttl: true, dns_refresh_rate: { seconds: 30 } }),
        load_assignment: cla,
        ...(tls
          ? {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                  sni: host,
                  common_tls_context: {
                    tls_params: { tls_maximum_protocol_version: 'TLSv1_3' },
                    validation_context: { trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' } },
                  },
                },
              },
            }
          : {}),
      },
    },
  };
}
