/**
 * Proxyless gRPC clients (`@grpc/grpc-js-xds`, grpc-go's xds resolver) read the same xDS as Envoy
 * but need two things Envoy Gateway's output does not have (reference controlplane.md §5):
 *
 * - an `api_listener` Listener named after the target (`xds:///echo.test` → `echo.test`), where
 *   Envoy gets filter-chain listeners bound to a port; we add one per virtual-host domain of
 *   each HCM's route configuration (and `domain:port` for the listener's port), sharing the
 *   HCM (RDS over ADS) of the Gateway listener;
 * - a load-balancing policy they implement: Envoy Gateway's `least_request` alone is NACKed, so
 *   `round_robin` is appended as a fallback (clients take the first policy they support, so
 *   Envoy keeps `least_request`).
 *
 * Enabled with `envext serve --proxyless-grpc`; the extra resources are ignored by Envoy
 * (it never subscribes to a Listener by name).
 */
import { pack, protoRoot, type ProtoObject } from '../../proto/index.js';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../xds/server/types.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
let roundRobin: ProtoObject | undefined;

function roundRobinPolicy(): ProtoObject {
  if (roundRobin === undefined) {
    protoRoot(['envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto']);
    roundRobin = {
      typed_extension_config: {
        name: 'envoy.load_balancing_policies.round_robin',
        typed_config: pack('envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin', {}),
      },
    };
  }
  return roundRobin;
}

function isRecord(v: unknown): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown): ProtoObject[] {
  return Array.isArray(v) ? v.filter(isRecord) : [];
}

/** Adds api_listeners and round_robin fallbacks to one group's resources (proto-object form). */
export function withProxylessGrpc(resources: ReadonlyMap<string, readonly ProtoObject[]>): Map<string, ProtoObject[]> {
  const out = new Map<string, ProtoObject[]>([...resources].map(([t, l]) => [t, [...l]]));
  const routes = new Map(list(resources.get(ROUTE_TYPE)).map((r) => [String(r.name), r]));
  const names = new Set(list(resources.get(LISTENER_TYPE)).map((l) => String(l.name)));
  const extra: ProtoObject[] = [];
  for (const listener of list(resources.get(LISTENER_TYPE))) {
    const port = (
      isRecord(listener.address) && isRecord(listener.address.socket_address)
        ? listener.address.socket_address.port_value
        : undefined
    ) as number | undefined;
    const chains = [
      ...list(listener.filter_chains),
      ...(isRecord(listener.default_filter_chain) ? [listener.default_filter_chain] : []),
    ];
    for (const chain of chains) {
      for (const filter of list(chain.filters)) {
        const hcm = filter.typed_config;
        if (!isRecord(hcm) || hcm['@type'] !== HCM || !isRecord(hcm.rds)) continue;
        const rc = routes.get(String(hcm.rds.route_config_name));
        for (const vh of list(rc?.virtual_hosts)) {
          for (const domain of Array.isArray(vh.domains) ? (vh.domains as unknown[]) : []) {
            if (typeof domain !== 'string' || domain.includes('*')) continue;
            const host = domain.replace(/:\d+$/, '');
            for (const name of port === undefined ? [host] : [host, `${host}:${port}`]) {
              if (names.has(name)) continue;
              names.add(name);
              extra.push({ name, api_listener: { api_listener: hcm } });
            }
          }
        }
      }
    }
  }
  out.set(LISTENER_TYPE, [...(out.get(LISTENER_TYPE) ?? []), ...extra]);
  out.set(
    CLUSTER_TYPE,
    (out.get(CLUSTER_TYPE) ?? []).map((c) => {
      const lbp = c.load_balancing_policy;
      if (!isRecord(lbp) || !Array.isArray(lbp.policies)) return c;
      const policies = lbp.policies as ProtoObject[];
      if (JSON.stringify(policies).includes('round_robin')) return c;
      return { ...c, load_balancing_policy: { ...lbp, policies: [...policies, roundRobinPolicy()] } };
    }),
  );
  return out;
}
