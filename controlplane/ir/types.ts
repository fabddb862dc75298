/**
 * The xDS IR: what one Gateway needs from Envoy, as plain readonly data. Produced by
 * `gatewayapi/translate.ts`, consumed by `xds/translator/translate.ts`. No Kubernetes types
 * appear here: every name is already final and says where it came from (STYLE.md §1):
 *
 *   XdsIr (key "ns/gateway")
 *   ├─ http[]            one per Gateway listener ("ns/gateway/listener")
 *   │   └─ routes[]      one per HTTPRoute rule × match × hostname
 *   │       ├─ destination        → one Cluster + ClusterLoadAssignment
 *   │       └─ envoyExtensions    → wasm / ext_proc filters enabled on this route only
 *   └─ filterOrder       EnvoyProxy.spec.filterOrder of the Gateway
 *
 * Modelled on Envoy Gateway's `internal/ir/xds.go`; field names follow it where they exist.
 */

/** Which Kubernetes object an IR element was made from (ends up in Envoy metadata and logs). */
export interface ResourceMetadata {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly sectionName?: string;
}

export interface XdsIr {
  /** `namespace/name` of the Gateway; also the Envoy `node.cluster` that selects this config. */
  readonly name: string;
  readonly http: readonly HttpListener[];
  /** Custom filter order (EnvoyProxy `spec.filterOrder`), applied after the default order. */
  readonly filterOrder: readonly FilterPosition[];
}

export interface FilterPosition {
  /** Filter type, e.g. `envoy.filters.http.wasm`. */
  readonly name: string;
  readonly before?: string;
  readonly after?: string;
}

export interface TlsCertificate {
  /** `namespace/secret`: also the SDS/Secret resource name. */
  readonly name: string;
  /** PEM. */
  readonly certificateChain: string;
  readonly privateKey: string;
}

export interface HttpListener {
  /** `namespace/gateway/listener`. Also the RouteConfiguration name. */
  readonly name: string;
  readonly metadata: ResourceMetadata;
  readonly address: string;
  /** Port Envoy binds: the Gateway port, +10000 below 1024 (Envoy Gateway's unprivileged mapping). */
  readonly port: number;
  /** The port clients use (the Gateway listener's port). */
  readonly externalPort: number;
  /** Listener hostnames (`*` when unset): SNI match for HTTPS. */
  readonly hostnames: readonly string[];
  /** Present for HTTPS listeners. */
  readonly tls?: { readonly certificates: readonly TlsCertificate[] };
  readonly routes: readonly HttpRoute[];
}

export type StringMatch = { readonly exact: string } | { readonly prefix: string } | { readonly safeRegex: string };

export interface HeaderMatch {
  readonly name: string;
  readonly match: StringMatch;
}

export interface HeaderValue {
  readonly name: string;
  readonly value: string;
  /** false: replace (set); true: append (add). */
  readonly append: boolean;
}

export interface HeaderModifier {
  readonly add: readonly HeaderValue[];
  readonly remove: readonly string[];
}

export interface Redirect {
  readonly scheme?: string;
  readonly hostname?: string;
  readonly port?: number;
  readonly statusCode: number;
  readonly path?: { readonly fullReplace?: string; readonly prefixMatchReplace?: string };
}

export interface UrlRewrite {
  readonly hostname?: string;
  readonly path?: { readonly fullReplace?: string; readonly prefixMatchReplace?: string };
}

export interface HttpRoute {
  /** `httproute/<ns>/<name>/rule/<i>/match/<j>/<host with . → _>`. */
  readonly name: string;
  readonly metadata: ResourceMetadata;
  /** Route rule `name`, used for rule-level policy attachment. */
  readonly ruleName?: string;
  /** The virtual host this route belongs to (`*` for any). */
  readonly hostname: string;
  readonly pathMatch?: StringMatch;
  readonly headerMatches: readonly HeaderMatch[];
  readonly queryParamMatches: readonly HeaderMatch[];
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
  readonly redirect?: Redirect;
  readonly urlRewrite?: UrlRewrite;
  readonly mirrors: readonly RouteDestination[];
  /** Where traffic goes; absent with a redirect or a direct response. */
  readonly destination?: RouteDestination;
  /** Set when the route cannot be served (invalid backends, failed fail-closed extension). */
  readonly directResponse?: { readonly statusCode: number; readonly body?: string };
  /** Extensions enabled on this route; absent when no policy applies. */
  readonly envoyExtensions?: EnvoyExtensions;
  /** gRPC route (from a GRPCRoute): the cluster speaks HTTP/2. */
  readonly isHttp2: boolean;
}

export interface RouteDestination {
  /** Cluster name, e.g. `httproute/<ns>/<name>/rule/<i>` or `envoyextensionpolicy/<ns>/<name>/extproc/<i>`. */
  readonly name: string;
  readonly metadata: ResourceMetadata;
  readonly settings: readonly DestinationSetting[];
}

/** One backendRef: a locality in the ClusterLoadAssignment. */
export interface DestinationSetting {
  /** `<destination>/backend/<i>`. */
  readonly name: string;
  readonly weight: number;
  /** 0 normal, 1 fallback. */
  readonly priority: number;
  readonly protocol: 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';
  /** IP / UDS / STATIC (IP and UDS mixed) use EDS; FQDN uses a DNS cluster. */
  readonly addressType: 'IP' | 'FQDN' | 'UDS' | 'STATIC';
  readonly endpoints: readonly Endpoint[];
  readonly metadata: ResourceMetadata;
}

export type Endpoint =
  { readonly host: string; readonly port: number; readonly zone?: string } | { readonly path: string };

export interface EnvoyExtensions {
  /** In policy list order. */
  readonly wasms: readonly Wasm[];
  readonly extProcs: readonly ExtProc[];
}

/** One `wasm[]` entry of a policy, with its code already resolved by the module cache. */
export interface Wasm {
  /** `envoyextensionpolicy/<ns>/<policy>/wasm/<idx>`: VM id and filter-name suffix. */
  readonly name: string;
  /** `PluginConfig.name`: the entry's `name`, else `name` above. */
  readonly wasmName: string;
  readonly rootId?: string;
  /** Compact JSON of the entry's `config`, or undefined (Envoy gets an empty string). */
  readonly config?: string;
  readonly failOpen: boolean;
  readonly code: {
    /** Where Envoy downloads the module (the module cache's HTTP server). */
    readonly servingUrl: string;
    /** sha256 of the .wasm bytes served there. */
    readonly sha256: string;
    /** The URL the user wrote (normalised for OCI). */
    readonly originalUrl: string;
  };
  readonly hostEnvKeys: readonly string[];
}

export type BodyMode = 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';

/** One `extProc[]` entry of a policy. */
export interface ExtProc {
  /** `envoyextensionpolicy/<ns>/<policy>/extproc/<idx>`: filter-name suffix and cluster name. */
  readonly name: string;
  readonly destination: RouteDestination;
  /** gRPC `:authority`: `<name>.<namespace>[:<port>]` of the first backendRef. */
  readonly authority: string;
  /** Milliseconds; absent = Envoy's default. */
  readonly messageTimeoutMs?: number;
  readonly failOpen?: boolean;
  /** What Envoy sends the processor for requests. */
  readonly request: ExtProcSide;
  /** What Envoy sends the processor for responses. */
  readonly response: ExtProcSide;
  readonly allowModeOverride: boolean;
  readonly observabilityMode?: boolean;
  readonly forwardingNamespaces: readonly string[];
  readonly receivingNamespaces: readonly string[];
}

/** One direction of ext_proc processing. */
export interface ExtProcSide {
  /** Send headers (`processingMode.request`/`.response` present in the policy). */
  readonly headers: boolean;
  /** Body mode; absent = the body is not sent. */
  readonly body?: BodyMode;
  /** Envoy attributes sent with the headers (`request.path`, `source.address`, …). */
  readonly attributes: readonly string[];
}
