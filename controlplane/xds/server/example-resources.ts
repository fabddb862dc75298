/**
 * Hand-built xDS resource sets in the shape proxyless gRPC clients accept (reference §5.3):
 * an `api_listener` Listener whose HCM uses RDS over ADS, a RouteConfiguration, EDS Clusters
 * and their ClusterLoadAssignments. Tests and benchmarks of the ADS server use them to have a
 * known, small input independent of the Gateway API translator.
 */
import { pack, type ProtoObject } from '../../../proto/index.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './types.js';

export interface ExampleRoute {
  /** Path prefix to match ('' matches everything). */
  readonly prefix: string;
  readonly cluster: string;
}

export interface ExampleOptions {
  /** Listener name = the gRPC target authority (`xds:///echo.test` → `echo.test`). */
  readonly listener: string;
  readonly routeConfig: string;
  readonly routes: readonly ExampleRoute[];
  /** Cluster name → endpoints (`127.0.0.1:port`). */
  readonly clusters: ReadonlyMap<string, readonly string[]>;
  /** Extra HTTP filters placed before the router (e.g. a wasm filter, to provoke a NACK). */
  readonly extraFilters?: readonly ProtoObject[];
}

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Builds the four types for one listener. */
export function exampleResources(o: ExampleOptions): Map<string, ProtoObject[]> {
  const hcm = {
    stat_prefix: o.listener,
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: o.routeConfig },
    http_filters: [
      ...(o.extraFilters ?? []),
      { name: 'envoy.filters.http.router', typed_config: pack('envoy.extensions.filters.http.router.v3.Router', {}) },
    ],
  };
  const listener = { name: o.listener, api_listener: { api_listener: pack(HCM, hcm) } };
  const route = {
    name: o.routeConfig,
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: o.routes.map((r, i) => ({
          name: `route-${i}`,
          match: { prefix: r.prefix },
          route: { cluster: r.cluster },
        })),
      },
    ],
  };
  const clusters: ProtoObject[] = [];
  const endpoints: ProtoObject[] = [];
  for (const [name, addrs] of [...o.clusters].sort(([a], [b]) => (a < b ? -1 : 1))) {
    clusters.push({
      name,
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name },
      connect_timeout: { seconds: 5 },
    });
    endpoints.push({
      cluster_name: name,
      endpoints: [
        {
          locality: { region: 'local' },
          load_balancing_weight: { value: 1 },
          lb_endpoints: addrs.map((a) => {
            const colon = a.lastIndexOf(':');
            return {
              endpoint: {
                address: { socket_address: { address: a.slice(0, colon), port_value: Number(a.slice(colon + 1)) } },
              },
            };
          }),
        },
      ],
    });
  }
  return new Map([
    [LISTENER_TYPE, [listener]],
    [ROUTE_TYPE, [route]],
    [CLUSTER_TYPE, clusters],
    [ENDPOINT_TYPE, endpoints],
  ]);
}
