/**
 * Where each watched kind lives in the Kubernetes API, and how to list it with client-node.
 *
 * Gateway API and Envoy Gateway kinds are custom resources: listed through `CustomObjectsApi`,
 * which returns raw JSON. Core and discovery kinds use the typed APIs; their results are class
 * instances (timestamps as `Date`), so `toPlain` turns every object back into wire JSON before
 * it enters a snapshot, the same shape watch events carry.
 */
import * as k8s from '@kubernetes/client-node';
import type { ResourceKind } from '../../api/types.js';

export interface KindInfo {
  readonly kind: ResourceKind;
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Whether statuses are written to this kind's `/status` subresource. */
  readonly status: boolean;
}

export const KINDS: readonly KindInfo[] = [
  {
    kind: 'GatewayClass',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'gatewayclasses',
    namespaced: false,
    status: true,
  },
  {
    kind: 'Gateway',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'gateways',
    namespaced: true,
    status: true,
  },
  {
    kind: 'HTTPRoute',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'httproutes',
    namespaced: true,
    status: true,
  },
  {
    kind: 'GRPCRoute',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'grpcroutes',
    namespaced: true,
    status: true,
  },
  {
    kind: 'ReferenceGrant',
    group: 'gateway.networking.k8s.io',
    version: 'v1beta1',
    plural: 'referencegrants',
    namespaced: true,
    status: false,
  },
  {
    kind: 'EnvoyExtensionPolicy',
    group: 'gateway.envoyproxy.io',
    version: 'v1alpha1',
    plural: 'envoyextensionpolicies',
    namespaced: true,
    status: true,
  },
  {
    kind: 'Backend',
    group: 'gateway.envoyproxy.io',
    version: 'v1alpha1',
    plural: 'backends',
    namespaced: true,
    status: true,
  },
  {
    kind: 'EnvoyProxy',
    group: 'gateway.envoyproxy.io',
    version: 'v1alpha1',
    plural: 'envoyproxies',
    namespaced: true,
    status: true,
  },
  { kind: 'Service', group: '', version: 'v1', plural: 'services', namespaced: true, status: false },
  {
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    version: 'v1',
    plural: 'endpointslices',
    namespaced: true,
    status: false,
  },
  { kind: 'Secret', group: '', version: 'v1', plural: 'secrets', namespaced: true, status: false },
  { kind: 'ConfigMap', group: '', version: 'v1', plural: 'configmaps', namespaced: true, status: false },
  { kind: 'Namespace', group: '', version: 'v1', plural: 'namespaces', namespaced: false, status: false },
];

export function kindInfo(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}

export function apiVersionOf(info: KindInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`;
}

/** The collection path a watch uses: cluster-wide, or in one namespace. */
export function collectionPath(info: KindInfo, namespace?: string): string {
  const base = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  return namespace === undefined || !info.namespaced
    ? `${base}/${info.plural}`
    : `${base}/namespaces/${namespace}/${info.plural}`;
}

export type ListFn = () => Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;

/** A list function for the informer of `info` (cluster-wide when `namespace` is undefined). */
export function listFunction(kc: k8s.KubeConfig, info: KindInfo, namespace?: string): ListFn {
  const ns = info.namespaced ? namespace : undefined;
  if (info.group !== '' && info.group !== 'discovery.k8s.io') {
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const { group, version, plural } = info;
    return async () =>
      (ns === undefined
        ? await api.listClusterCustomObject({ group, version, plural })
        : await api.listNamespacedCustomObject({
            group,
            version,
            plural,
            namespace: ns,
          })) as k8s.KubernetesListObject<k8s.KubernetesObject>;
  }
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const typed: Record<string, () => Promise<unknown>> = {
    Service: () =>
      ns === undefined ? core.listServiceForAllNamespaces() : core.listNamespacedService({ namespace: ns }),
    Secret: () => (ns === undefined ? core.listSecretForAllNamespaces() : core.listNamespacedSecret({ namespace: ns })),
    ConfigMap: () =>
      ns === undefined ? core.listConfigMapForAllNamespaces() : core.listNamespacedConfigMap({ namespace: ns }),
    Namespace: () => core.listNamespace(),
    EndpointSlice: () =>
      ns === undefined
        ? discovery.listEndpointSliceForAllNamespaces()
        : discovery.listNamespacedEndpointSlice({ namespace: ns }),
  };
  const fn = typed[info.kind];
  if (fn === undefined) throw new Error(`no list function for ${info.kind}`);
  return async () => (await fn()) as k8s.KubernetesListObject<k8s.KubernetesObject>;
}

/** Wire JSON of an object from either a typed list (class instance, Dates) or a watch event. */
export function toPlain(info: KindInfo, obj: k8s.KubernetesObject): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
  plain.apiVersion ??= apiVersionOf(info);
  plain.kind ??= info.kind;
  return plain;
}
