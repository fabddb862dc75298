/**
 * The Gateway API translator: ResourceSnapshot → per-Gateway xDS IR + statuses. Pure: no I/O,
 * no clock, no randomness; Wasm modules come in already resolved (wasm-modules.ts).
 *
 *   translateGateways          GatewayClass / EnvoyProxy / Gateway / listeners  (gateway.ts)
 *   translateRoutes            HTTPRoute / GRPCRoute → IR routes                (http-route.ts)
 *   translateEnvoyExtensionPolicies  policy attachment → route extensions      (envoy-extension-policy.ts)
 *   Backend statuses, then freeze IR and statuses.
 */
import { EG_CONTROLLER_NAME } from '../api/types.js';
import { joinName } from '../ir/names.js';
import type { HttpListener, HttpRoute, XdsIr } from '../ir/types.js';
import { listResources, type RejectedResource, type ResourceSnapshot } from '../provider/snapshot.js';
import { backendProblem } from './backend-refs.js';
import type { MutableRoute, TranslateDeps, TranslationContext } from './context.js';
import { translateEnvoyExtensionPolicies } from './envoy-extension-policy.js';
import { translateGateways } from './gateway.js';
import { translateRouteEdits, type FullTranslation } from './incremental.js';
import { sortRoutes, translateRoutes } from './http-route.js';
import { cmp, condition, type ResourceStatus } from './status.js';

export type { TranslateDeps } from './context.js';
export { TranslationCache } from './cache.js';

export interface TranslateResult {
  /** One IR per Gateway of ours, keyed `namespace/name` (Envoy's `node.cluster`). */
  readonly ir: ReadonlyMap<string, XdsIr>;
  /** Statuses of every resource we own a status for, in a stable order. */
  readonly statuses: readonly ResourceStatus[];
  /** Resources the provider could not use (schema errors, unsupported kinds), passed through for reporting. */
  readonly rejected: readonly RejectedResource[];
}

function freezeRoute(r: MutableRoute): HttpRoute {
  // Drop the translation-time `origin`; IR is plain data.
  const { origin: _origin, ...route } = r;
  return route;
}

/**
 * Translates a snapshot. Never throws on user input: problems become status conditions.
 *
 * With a `cache`, route edits since the previous call are translated incrementally
 * (incremental.ts) and everything else reuses per-route and per-policy results; the result is
 * the same as without a cache.
 */
export function translateGatewayApi(snapshot: ResourceSnapshot, given: TranslateDeps): TranslateResult {
  const deps: TranslationContext['deps'] = {
    wasmModules: given.wasmModules,
    controllerName: given.controllerName ?? EG_CONTROLLER_NAME,
    controllerNamespace: given.controllerNamespace ?? 'envoy-gateway-system',
    backendEnabled: given.backendEnabled ?? true,
    ...(given.cache === undefined ? {} : { cache: given.cache }),
  };
  const cache = deps.cache;
  if (cache === undefined) return translateFull(snapshot, deps).result;
  const options = `${deps.controllerName}|${deps.controllerNamespace}|${String(deps.backendEnabled)}`;
  const kept = cache.prepare(snapshot, deps.wasmModules, options);
  const previous = cache.last;
  const full = (s: ResourceSnapshot): FullTranslation => translateFull(s, deps);
  let t = kept && previous !== undefined ? translateRouteEdits(previous, snapshot, full) : undefined;
  if (t === undefined) {
    t = full(snapshot);
    cache.stats.full++;
  } else cache.stats.incremental++;
  cache.last = { snapshot, ...t };
  return t.result;
}

function translateFull(snapshot: ResourceSnapshot, deps: TranslationContext['deps']): FullTranslation {
  const ctx: TranslationContext = {
    snapshot,
    deps,
    gateways: new Map(),
    routes: [],
    classConditions: new Map(),
  };
  translateGateways(ctx);
  translateRoutes(ctx);
  const policyStatuses = translateEnvoyExtensionPolicies(ctx);

  const statuses: ResourceStatus[] = [];
  for (const [name, conditions] of [...ctx.classConditions].sort(([a], [b]) => cmp(a, b))) {
    statuses.push({ kind: 'GatewayClass', name, status: { conditions } });
  }
  const ir = new Map<string, XdsIr>();
  const unsorted = new Map<string, HttpRoute[][]>();
  for (const gw of [...ctx.gateways.values()].sort((a, b) => cmp(a.key, b.key))) {
    statuses.push({
      kind: 'Gateway',
      namespace: gw.gateway.metadata.namespace ?? 'default',
      name: gw.gateway.metadata.name,
      status: {
        conditions: gw.conditions.toArray(),
        listeners: gw.listeners.map((l) => ({
          name: l.spec.name,
          supportedKinds: l.supportedKinds,
          attachedRoutes: l.attachedRoutes,
          conditions: l.conditions.toArray(),
        })),
      },
    });
    const http: HttpListener[] = [];
    const lists: HttpRoute[][] = [];
    for (const l of gw.listeners) {
      if (l.ir === undefined) continue;
      const routes = l.ir.routes.map(freezeRoute);
      lists.push(routes);
      http.push({ ...l.ir, routes: sortRoutes([...routes]) });
    }
    if (http.length > 0) {
      ir.set(gw.key, { name: gw.key, http, filterOrder: gw.filterOrder });
      unsorted.set(gw.key, lists);
    }
  }
  // Keys computed once, not in every comparison.
  const byKey = ctx.routes.map((r) => ({
    key: joinName(r.kind, r.route.metadata.namespace ?? '', r.route.metadata.name),
    r,
  }));
  for (const { r: rc } of byKey.sort((a, b) => cmp(a.key, b.key))) {
    statuses.push({
      kind: rc.kind,
      namespace: rc.route.metadata.namespace ?? 'default',
      name: rc.route.metadata.name,
      status: {
        parents: rc.parents.map((p) => ({
          parentRef: p.ref,
          controllerName: ctx.deps.controllerName,
          conditions: p.conditions.toArray(),
        })),
      },
    });
  }
  for (const [key, ancestors] of [...policyStatuses].sort(([a], [b]) => cmp(a, b))) {
    const slash = key.indexOf('/');
    statuses.push({
      kind: 'EnvoyExtensionPolicy',
      namespace: key.slice(0, slash),
      name: key.slice(slash + 1),
      status: { ancestors },
    });
  }
  for (const b of listResources(snapshot, 'Backend')) {
    const gen = b.metadata.generation;
    const problem = ctx.deps.backendEnabled ? backendProblem(b) : 'Backend is not enabled in Envoy Gateway Config';
    // Envoy Gateway's quirk, kept so statuses compare equal: failure is type Invalid with reason Accepted.
    const c =
      problem === undefined
        ? condition('Accepted', true, 'Accepted', 'The Backend was accepted', gen)
        : condition('Invalid', false, 'Accepted', `The Backend was not accepted: ${problem}`, gen);
    statuses.push({
      kind: 'Backend',
      namespace: b.metadata.namespace ?? 'default',
      name: b.metadata.name,
      status: { conditions: [c] },
    });
  }
  return { result: { ir, statuses, rejected: snapshot.rejected }, unsorted };
}
