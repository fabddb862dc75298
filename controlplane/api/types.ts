/**
 * TypeScript shapes of the resources the control plane reads, after `validate` (schemas.ts)
 * has checked them. Field names and nesting follow the Kubernetes/Gateway API/Envoy Gateway
 * Go types exactly, so YAML moves between envext and Envoy Gateway unchanged.
 *
 * Only the fields the translator reads are spelled out; everything else a resource carries is
 * kept on the object (it is printed back with the status) but typed loosely.
 */

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  /** RFC 3339. Policies are ordered by it (oldest first), then namespace, then name. */
  readonly creationTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime?: string | null;
}

interface Resource<K extends string, S> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: ObjectMeta;
  readonly spec: S;
}

// ---- Kubernetes core --------------------------------------------------------------------------

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly targetPort?: number | string;
  readonly appProtocol?: string;
}
export type Service = Resource<
  'Service',
  { readonly ports?: readonly ServicePort[]; readonly clusterIP?: string; readonly type?: string }
>;

export interface EndpointSlice {
  readonly apiVersion: string;
  readonly kind: 'EndpointSlice';
  readonly metadata: ObjectMeta;
  readonly addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly zone?: string;
  }[];
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: string }[];
}

export interface Secret {
  readonly apiVersion: string;
  readonly kind: 'Secret';
  readonly metadata: ObjectMeta;
  readonly type?: string;
  /** base64 values, as in the API. */
  readonly data?: Readonly<Record<string, string>>;
  readonly stringData?: Readonly<Record<string, string>>;
}

export interface ConfigMap {
  readonly apiVersion: string;
  readonly kind: 'ConfigMap';
  readonly metadata: ObjectMeta;
  readonly data?: Readonly<Record<string, string>>;
}

export type Namespace = Resource<'Namespace', Readonly<Record<string, unknown>>>;

// ---- Gateway API ------------------------------------------------------------------------------

export interface ParametersReference {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

export type GatewayClass = Resource<
  'GatewayClass',
  { readonly controllerName: string; readonly parametersRef?: ParametersReference; readonly description?: string }
>;

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly {
    readonly key: string;
    readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    readonly values?: readonly string[];
  }[];
}

export interface SecretObjectReference {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface Listener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: {
    readonly mode?: 'Terminate' | 'Passthrough';
    readonly certificateRefs?: readonly SecretObjectReference[];
  };
  readonly allowedRoutes?: {
    readonly namespaces?: { readonly from?: 'All' | 'Same' | 'Selector'; readonly selector?: LabelSelector };
    readonly kinds?: readonly { readonly group?: string; readonly kind: string }[];
  };
}

export type Gateway = Resource<
  'Gateway',
  {
    readonly gatewayClassName: string;
    readonly listeners: readonly Listener[];
    readonly infrastructure?: {
      readonly parametersRef?: { readonly group: string; readonly kind: string; readonly name: string };
    };
  }
>;

export interface ParentReference {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface BackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
}

export interface HTTPHeaderMatch {
  readonly type?: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path?: { readonly type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value?: string };
  readonly headers?: readonly HTTPHeaderMatch[];
  readonly queryParams?: readonly HTTPHeaderMatch[];
  readonly method?: string;
}

export interface HTTPHeaderFilter {
  readonly set?: readonly { readonly name: string; readonly value: string }[];
  readonly add?: readonly { readonly name: string; readonly value: string }[];
  readonly remove?: readonly string[];
}

export interface HTTPPathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  readonly type: string;
  readonly requestHeaderModifier?: HTTPHeaderFilter;
  readonly responseHeaderModifier?: HTTPHeaderFilter;
  readonly requestRedirect?: {
    readonly scheme?: 'http' | 'https';
    readonly hostname?: string;
    readonly path?: HTTPPathModifier;
    readonly port?: number;
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: HTTPPathModifier };
  readonly requestMirror?: { readonly backendRef: BackendRef; readonly percent?: number };
  readonly extensionRef?: { readonly group: string; readonly kind: string; readonly name: string };
}

export interface HTTPRouteRule {
  readonly name?: string;
  readonly matches?: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly (BackendRef & { readonly filters?: readonly HTTPRouteFilter[] })[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
}

export type HTTPRoute = Resource<
  'HTTPRoute',
  {
    readonly parentRefs?: readonly ParentReference[];
    readonly hostnames?: readonly string[];
    readonly rules?: readonly HTTPRouteRule[];
  }
>;

export interface GRPCRouteRule {
  readonly name?: string;
  readonly matches?: readonly {
    readonly method?: {
      readonly type?: 'Exact' | 'RegularExpression';
      readonly service?: string;
      readonly method?: string;
    };
    readonly headers?: readonly HTTPHeaderMatch[];
  }[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly BackendRef[];
}

export type GRPCRoute = Resource<
  'GRPCRoute',
  {
    readonly parentRefs?: readonly ParentReference[];
    readonly hostnames?: readonly string[];
    readonly rules?: readonly GRPCRouteRule[];
  }
>;

export type ReferenceGrant = Resource<
  'ReferenceGrant',
  {
    readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
    readonly to: readonly { readonly group: string; readonly kind: string; readonly name?: string }[];
  }
>;

// ---- Envoy Gateway (gateway.envoyproxy.io/v1alpha1) -------------------------------------------

export interface PolicyTargetReference {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly sectionName?: string;
}

export interface TargetSelector {
  readonly group?: string;
  readonly kind: string;
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: LabelSelector['matchExpressions'];
  readonly namespaces?: { readonly from?: 'Same' | 'All' | 'Selector'; readonly selector?: LabelSelector };
}

export interface WasmCodeSourceSpec {
  readonly type: 'HTTP' | 'Image' | 'ConfigMap';
  readonly http?: {
    readonly url: string;
    readonly sha256?: string;
    readonly tls?: { readonly caCertificateRef: SecretObjectReference };
  };
  readonly image?: {
    readonly url: string;
    readonly sha256?: string;
    readonly pullSecretRef?: SecretObjectReference;
    readonly tls?: { readonly caCertificateRef: SecretObjectReference };
  };
  readonly pullPolicy?: 'IfNotPresent' | 'Always';
}

export interface WasmSpec {
  readonly name?: string;
  readonly rootID?: string;
  readonly code: WasmCodeSourceSpec;
  readonly config?: unknown;
  readonly failOpen?: boolean;
  readonly env?: { readonly hostKeys?: readonly string[] };
}

export interface ExtProcBackendRef extends BackendRef {
  readonly fallback?: boolean;
}

export type BodyProcessingMode = 'Streamed' | 'Buffered' | 'BufferedPartial' | 'FullDuplexStreamed';

export interface ProcessingModeSide {
  readonly body?: BodyProcessingMode;
  readonly attributes?: readonly string[];
}

export interface ExtProcSpec {
  readonly backendRef?: ExtProcBackendRef;
  readonly backendRefs?: readonly ExtProcBackendRef[];
  readonly backendSettings?: Readonly<Record<string, unknown>>;
  readonly messageTimeout?: string;
  readonly failOpen?: boolean;
  readonly processingMode?: {
    readonly request?: ProcessingModeSide;
    readonly response?: ProcessingModeSide;
    readonly allowModeOverride?: boolean;
  };
  readonly shadowMode?: boolean;
  readonly metadata?: {
    readonly accessibleNamespaces?: readonly string[];
    readonly writableNamespaces?: readonly string[];
  };
  readonly statusOnError?: number;
}

export interface EnvoyExtensionPolicySpec {
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
  readonly targetSelectors?: readonly TargetSelector[];
  readonly mergeType?: 'StrategicMerge' | 'JSONMerge';
  readonly wasm?: readonly WasmSpec[];
  readonly extProc?: readonly ExtProcSpec[];
  readonly lua?: readonly Readonly<Record<string, unknown>>[];
  readonly dynamicModule?: readonly Readonly<Record<string, unknown>>[];
}

export type EnvoyExtensionPolicy = Resource<'EnvoyExtensionPolicy', EnvoyExtensionPolicySpec>;

export interface BackendEndpoint {
  readonly ip?: { readonly address: string; readonly port: number };
  readonly fqdn?: { readonly hostname: string; readonly port: number };
  readonly unix?: { readonly path: string };
  readonly hostname?: string;
  readonly zone?: string;
}

export type Backend = Resource<
  'Backend',
  {
    readonly type?: 'Endpoints' | 'DynamicResolver';
    readonly endpoints?: readonly BackendEndpoint[];
    readonly appProtocols?: readonly string[];
    readonly fallback?: boolean;
    readonly tls?: Readonly<Record<string, unknown>>;
  }
>;

export interface FilterPosition {
  readonly name: string;
  readonly before?: string;
  readonly after?: string;
}

export type EnvoyProxy = Resource<
  'EnvoyProxy',
  {
    readonly filterOrder?: readonly FilterPosition[];
    readonly dynamicModules?: readonly { readonly name: string }[];
    readonly [other: string]: unknown;
  }
>;

/** Every kind the control plane reads, by kind name. */
export interface ResourceByKind {
  GatewayClass: GatewayClass;
  Gateway: Gateway;
  HTTPRoute: HTTPRoute;
  GRPCRoute: GRPCRoute;
  ReferenceGrant: ReferenceGrant;
  Service: Service;
  EndpointSlice: EndpointSlice;
  Secret: Secret;
  ConfigMap: ConfigMap;
  Namespace: Namespace;
  EnvoyExtensionPolicy: EnvoyExtensionPolicy;
  Backend: Backend;
  EnvoyProxy: EnvoyProxy;
}

export type ResourceKind = keyof ResourceByKind;
export type AnyResource = ResourceByKind[ResourceKind];

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  'GatewayClass',
  'Gateway',
  'HTTPRoute',
  'GRPCRoute',
  'ReferenceGrant',
  'Service',
  'EndpointSlice',
  'Secret',
  'ConfigMap',
  'Namespace',
  'EnvoyExtensionPolicy',
  'Backend',
  'EnvoyProxy',
];

/** Kinds that have no namespace. */
export const CLUSTER_SCOPED: ReadonlySet<ResourceKind> = new Set(['GatewayClass', 'Namespace']);

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const EG_GROUP = 'gateway.envoyproxy.io';
/** Envoy Gateway's controller name; GatewayClasses naming it are ours. */
export const EG_CONTROLLER_NAME = 'gateway.envoyproxy.io/gatewayclass-controller';
