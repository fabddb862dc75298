/**
 * Working state shared by the per-kind translation modules during one `translateGatewayApi`
 * call. Everything here is built fresh per call and discarded; the result is frozen into IR and
 * statuses at the end, so the call stays pure.
 */
import type { Condition, EnvoyProxy, Gateway, GRPCRoute, HTTPRoute, Listener } from '../api/types.js';
import type { FilterPosition, HttpListener, HttpRoute } from '../ir/types.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { ConditionSet, ParentRefStatus } from './status.js';
import type { TranslationCache } from './cache.js';
import type { WasmModuleLookup } from './wasm-modules.js';

/** Options and injected services of the Gateway API translator. */
export interface TranslateDeps {
  /** Resolved Wasm modules (see wasm-modules.ts). */
  readonly wasmModules: WasmModuleLookup;
  /** GatewayClasses with this controllerName are ours. Default: Envoy Gateway's. */
  readonly controllerName?: string;
  /** Namespace of the control plane (Envoy Gateway's `envoy-gateway-system`); used in names and the wasm cache host. */
  readonly controllerNamespace?: string;
  /** Whether `Backend` resources may be used (Envoy Gateway's `extensionApis.enableBackend`). Default true. */
  readonly backendEnabled?: boolean;
  /** Memo kept across calls (cache.ts); pass the same one each time, with the same `wasmModules` when nothing was re-resolved. */
  readonly cache?: TranslationCache;
}

/** A mutable IR route while translation runs; frozen into `HttpRoute` at the end. */
export type MutableRoute = { -readonly [K in keyof HttpRoute]: HttpRoute[K] } & {
  /** Which route object, rule and parentRef produced this IR route. */
  readonly origin: RouteOrigin;
};

export interface RouteOrigin {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace: string;
  readonly name: string;
  readonly ruleIndex: number;
  readonly ruleName?: string;
  /** Ancestor (parent Gateway) ref as written in the route, for policy statuses. */
  readonly parent: ParentRefStatus;
}

export interface MutableListener {
  readonly ir: Omit<HttpListener, 'routes'> & { routes: MutableRoute[] };
}

export interface ListenerContext {
  readonly gateway: GatewayContext;
  readonly spec: Listener;
  /** False when the listener is invalid (unsupported protocol, bad certificate): routes cannot attach. */
  ready: boolean;
  attachedRoutes: number;
  readonly conditions: ConditionSet;
  readonly supportedKinds: { readonly group: string; readonly kind: string }[];
  /** The IR listener, when ready. */
  ir?: MutableListener['ir'];
}

export interface GatewayContext {
  readonly gateway: Gateway;
  /** `namespace/name`: IR key. */
  readonly key: string;
  readonly envoyProxy?: EnvoyProxy;
  readonly listeners: ListenerContext[];
  readonly filterOrder: readonly FilterPosition[];
  readonly conditions: ConditionSet;
}

export interface RouteParentContext {
  readonly ref: ParentRefStatus;
  readonly gateway: GatewayContext;
  /** Listeners the route attached to through this parentRef. */
  readonly listeners: ListenerContext[];
  readonly conditions: ConditionSet;
  readonly irRoutes: MutableRoute[];
}

export interface RouteContext {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly route: HTTPRoute | GRPCRoute;
  /** Only parentRefs that name one of our Gateways. */
  readonly parents: RouteParentContext[];
}

/** Everything one translation call knows. */
export interface TranslationContext {
  readonly snapshot: ResourceSnapshot;
  readonly deps: Required<Omit<TranslateDeps, 'wasmModules' | 'cache'>> & {
    readonly wasmModules: WasmModuleLookup;
    readonly cache?: TranslationCache;
  };
  readonly gateways: Map<string, GatewayContext>;
  readonly routes: RouteContext[];
  /** Extra conditions for GatewayClasses, by name. */
  readonly classConditions: Map<string, Condition[]>;
}
