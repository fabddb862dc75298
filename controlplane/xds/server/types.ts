/**
 * The xDS resource types the ADS server serves, and the order it pushes them in.
 *
 * Make-before-break (Envoy's xds_protocol.rst, "eventual consistency considerations"):
 * clusters first (they warm until their endpoints arrive), then endpoints, then listeners (they
 * warm until their routes arrive), then routes; secrets last, as go-control-plane orders them.
 * Removals of clusters and endpoints wait until the listeners and routes of the same version
 * have been answered, so no route ever points at a cluster that is already gone.
 */
import { TYPE_URL_PREFIX } from '../../../proto/index.js';

export const CLUSTER_TYPE = `${TYPE_URL_PREFIX}envoy.config.cluster.v3.Cluster`;
export const ENDPOINT_TYPE = `${TYPE_URL_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`;
export const LISTENER_TYPE = `${TYPE_URL_PREFIX}envoy.config.listener.v3.Listener`;
export const ROUTE_TYPE = `${TYPE_URL_PREFIX}envoy.config.route.v3.RouteConfiguration`;
export const SECRET_TYPE = `${TYPE_URL_PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`;

/** Push order. Types not listed here are served after these, in name order. */
export const PUSH_ORDER: readonly string[] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE];

/** Types whose removals wait for the listeners and routes of the same version (make-before-break). */
export const DEFERRED_REMOVAL_TYPES: ReadonlySet<string> = new Set([CLUSTER_TYPE, ENDPOINT_TYPE]);

/** Types that wait for the ones above before removals are applied. */
export const REFERRER_TYPES: ReadonlySet<string> = new Set([LISTENER_TYPE, ROUTE_TYPE]);

/**
 * Types where a state-of-the-world response must carry every resource (an omitted one is
 * deleted) and where an empty first request means "wildcard" (xds_protocol.rst).
 */
export const FULL_STATE_TYPES: ReadonlySet<string> = new Set([CLUSTER_TYPE, LISTENER_TYPE]);

/** Short label for logs and metrics: `Cluster`, `ClusterLoadAssignment`, … */
export function typeLabel(typeUrl: string): string {
  const dot = typeUrl.lastIndexOf('.');
  return typeUrl.slice(dot + 1);
}

/** The full message name of a type URL (`type.googleapis.com/x.y.Z` → `x.y.Z`). */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Sorts type URLs into push order. */
export function inPushOrder(typeUrls: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = PUSH_ORDER.indexOf(t);
    return i < 0 ? PUSH_ORDER.length : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}
