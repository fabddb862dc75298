/**
 * Incremental translation of route edits: the common change in a running control plane (one
 * HTTPRoute's paths, matches, filters or backends edited) is translated in time proportional to
 * the change, not to the number of routes.
 *
 * A route edit may take this path when, compared with the previous translation, nothing but
 * HTTPRoute/GRPCRoute objects changed (same keys, new objects) and each changed route kept
 * everything that other resources' results depend on — its creation time (route order), labels
 * (policy targetSelectors), parentRefs and hostnames (listener attachment, `attachedRoutes`,
 * policy ancestors, Overridden lists) and its rule names (rule-level policy targets). Then
 * Gateway, listener, GatewayClass, Backend and policy statuses are unchanged, and only the
 * changed routes' own IR routes and statuses can differ. Those are computed by translating a
 * snapshot that holds the changed routes, every non-route resource, and the policies that can
 * apply to them (all except policies that only name other routes), and spliced into the
 * previous result at the same positions before each listener's routes are sorted again.
 *
 * A policy edit that keeps its targets (targetRefs naming routes, creation time) is handled the
 * same way: the routes it names are translated again, and its status is taken from that
 * translation. Policies attaching to Gateways or by selector change too much to be worth it.
 *
 * Everything else (adds, deletes, Gateway or Backend edits, more than MAX_CHANGED_ROUTES
 * routes, any inconsistency) returns undefined and the caller translates in full. A property test checks
 * that both paths give equal results (translate.test.ts).
 */
import type { HTTPRoute, GRPCRoute, EnvoyExtensionPolicy, ResourceKind } from '../api/types.js';
import { RESOURCE_KINDS } from '../api/types.js';
import type { HttpRoute } from '../ir/types.js';
import type { ResourceMaps, ResourceSnapshot } from '../provider/snapshot.js';
import { sortRoutes } from './http-route.js';
import type { ResourceStatus } from './status.js';
import type { TranslateResult } from './translate.js';

/** What a full translation returns besides the result: each IR listener's routes before sorting. */
export interface FullTranslation {
  readonly result: TranslateResult;
  /** Per IR key (`namespace/name`), per entry of `ir.http`: frozen routes in translation order. */
  readonly unsorted: ReadonlyMap<string, readonly (readonly HttpRoute[])[]>;
}

/** The previous translation, as the cache keeps it. */
export interface TranslationRecord extends FullTranslation {
  readonly snapshot: ResourceSnapshot;
}

/** More changed routes than this in one snapshot: a full translation is as cheap. */
export const MAX_CHANGED_ROUTES = 64;

type RouteKind = 'HTTPRoute' | 'GRPCRoute';
type AnyRoute = HTTPRoute | GRPCRoute;

/** Everything about a route that other resources' translation results depend on. */
function attachmentSignature(route: AnyRoute): string {
  const m = route.metadata;
  return JSON.stringify([
    m.creationTimestamp ?? '',
    m.labels ?? {},
    route.spec.parentRefs ?? [],
    route.spec.hostnames ?? [],
    (route.spec.rules ?? [{}]).map((r) => r.name ?? null),
  ]);
}

/** `Kind/namespace/name` of a route, the way IR route metadata and statuses name it. */
function routeId(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? 'default'}/${name}`;
}

/** Everything about a policy that decides what it attaches to and in which order. */
function policySignature(p: EnvoyExtensionPolicy): string {
  return JSON.stringify([
    p.metadata.creationTimestamp ?? '',
    p.spec.targetRef ?? null,
    p.spec.targetRefs ?? [],
    p.spec.targetSelectors ?? [],
  ]);
}

const policyRouteTargets = new WeakMap<EnvoyExtensionPolicy, readonly string[] | 'any'>();

/** The route ids a policy names, or `any` when it may apply to any route (selectors, Gateway targets). */
function routeTargets(p: EnvoyExtensionPolicy): readonly string[] | 'any' {
  let t = policyRouteTargets.get(p);
  if (t !== undefined) return t;
  const ns = p.metadata.namespace ?? 'default';
  const refs = [...(p.spec.targetRef === undefined ? [] : [p.spec.targetRef]), ...(p.spec.targetRefs ?? [])];
  if ((p.spec.targetSelectors?.length ?? 0) > 0 || refs.some((r) => r.kind !== 'HTTPRoute' && r.kind !== 'GRPCRoute'))
    t = 'any';
  else t = refs.map((r) => routeId(r.kind, ns, r.name));
  policyRouteTargets.set(p, t);
  return t;
}

/**
 * The result for `snapshot` derived from `previous` by translating only the changed routes, or
 * undefined when the change is not a route edit this path can handle.
 */
export function translateRouteEdits(
  previous: TranslationRecord,
  snapshot: ResourceSnapshot,
  translateFull: (snapshot: ResourceSnapshot) => FullTranslation,
): FullTranslation | undefined {
  const changed = new Map<string, { kind: RouteKind; key: string; route: AnyRoute }>();
  const changedPolicies = new Set<string>();
  /** Routes whose extensions may change because a policy naming them changed. */
  const touched = new Set<string>();
  for (const kind of RESOURCE_KINDS) {
    const before = previous.snapshot.resources[kind] as ReadonlyMap<string, unknown>;
    const after = snapshot.resources[kind] as ReadonlyMap<string, unknown>;
    if (before === after) continue;
    if (before.size !== after.size) return undefined;
    const isRoute = kind === 'HTTPRoute' || kind === 'GRPCRoute';
    for (const [key, now] of after) {
      const old = before.get(key);
      if (old === now) continue;
      if (old === undefined) return undefined;
      if (kind === 'EnvoyExtensionPolicy') {
        // A policy edit that keeps its targets: only the routes it names and its own status change.
        const p = now as EnvoyExtensionPolicy;
        const targets = routeTargets(p);
        if (targets === 'any' || policySignature(old as EnvoyExtensionPolicy) !== policySignature(p)) return undefined;
        changedPolicies.add(`${p.metadata.namespace ?? 'default'}/${p.metadata.name}`);
        for (const id of targets) touched.add(id);
        continue;
      }
      if (!isRoute) return undefined;
      if (attachmentSignature(old as AnyRoute) !== attachmentSignature(now as AnyRoute)) return undefined;
      const route = now as AnyRoute;
      changed.set(routeId(kind, route.metadata.namespace, route.metadata.name), { kind, key, route });
      if (changed.size > MAX_CHANGED_ROUTES) return undefined;
    }
  }
  // The routes a changed policy names are translated again too (same objects, new extensions).
  for (const id of touched) {
    if (changed.has(id)) continue;
    const [kind, ns, name] = id.split('/') as [string, string, string];
    if (kind !== 'HTTPRoute' && kind !== 'GRPCRoute') return undefined;
    const key = `${ns}/${name}`;
    const route = snapshot.resources[kind].get(key);
    if (route === undefined) continue; // a missing target: no route, no status
    changed.set(id, { kind, key, route });
    if (changed.size > MAX_CHANGED_ROUTES) return undefined;
  }
  if (snapshot.rejected.length !== previous.snapshot.rejected.length) return undefined;
  for (const [i, r] of snapshot.rejected.entries())
    if (r.value !== previous.snapshot.rejected[i]?.value) return undefined;
  if (changed.size === 0 && changedPolicies.size === 0) {
    return { result: { ...previous.result, rejected: snapshot.rejected }, unsorted: previous.unsorted };
  }

  // The changed routes, every other kind as is, and the policies that can reach them.
  const resources: Partial<Record<ResourceKind, ReadonlyMap<string, unknown>>> = { ...snapshot.resources };
  const http = new Map<string, HTTPRoute>();
  const grpc = new Map<string, GRPCRoute>();
  for (const c of changed.values()) {
    if (c.kind === 'HTTPRoute') http.set(c.key, c.route as HTTPRoute);
    else grpc.set(c.key, c.route as GRPCRoute);
  }
  resources.HTTPRoute = http;
  resources.GRPCRoute = grpc;
  const policies = new Map<string, EnvoyExtensionPolicy>();
  for (const [key, p] of snapshot.resources.EnvoyExtensionPolicy) {
    const t = routeTargets(p);
    if (t === 'any' || t.some((id) => changed.has(id)) || changedPolicies.has(key)) policies.set(key, p);
  }
  resources.EnvoyExtensionPolicy = policies;
  const part = translateFull({
    resources: resources as ResourceMaps,
    rejected: snapshot.rejected,
    revision: snapshot.revision,
  });

  // Statuses: the changed routes' and policies' own, at their previous positions.
  const statusId = (s: ResourceStatus): string => routeId(s.kind, 'namespace' in s ? s.namespace : '', s.name);
  const changedNames = new Set([...changed.values()].map((c) => c.route.metadata.name));
  const changedPolicyNames = new Set([...changedPolicies].map((k) => k.slice(k.indexOf('/') + 1)));
  const isChanged = (s: ResourceStatus): boolean =>
    s.kind === 'EnvoyExtensionPolicy'
      ? changedPolicyNames.has(s.name) && changedPolicies.has(`${s.namespace}/${s.name}`)
      : (s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute') && changedNames.has(s.name) && changed.has(statusId(s));
  const statuses = new Map<string, ResourceStatus>();
  for (const s of part.result.statuses) if (isChanged(s)) statuses.set(statusId(s), s);
  let replaced = 0;
  const newStatuses = previous.result.statuses.map((s) => {
    if (!isChanged(s)) return s;
    const now = statuses.get(statusId(s));
    if (now === undefined) return s; // detected below as a mismatch
    replaced++;
    return now;
  });
  if (replaced !== statuses.size) return undefined;

  // IR: each listener's translation-order list with the changed routes' segments replaced.
  const ir = new Map(previous.result.ir);
  const unsorted = new Map(previous.unsorted);
  for (const [gwKey, lists] of part.unsorted) {
    const prevIr = previous.result.ir.get(gwKey);
    const prevLists = previous.unsorted.get(gwKey);
    if (prevIr === undefined || prevLists === undefined || prevLists.length !== lists.length) return undefined;
    let http = prevIr.http;
    const newLists = [...prevLists];
    for (const [i, list] of lists.entries()) {
      const before = prevLists[i] ?? [];
      // New routes per changed route, in order.
      const groups = new Map<string, HttpRoute[]>();
      for (const r of list) {
        const id = routeId(r.metadata.kind, r.metadata.namespace, r.metadata.name);
        const g = groups.get(id);
        if (g === undefined) groups.set(id, [r]);
        else g.push(r);
      }
      const out: HttpRoute[] = [];
      const placed = new Set<string>();
      let touched = false;
      for (const r of before) {
        // Names first: no id string per unchanged route.
        const id = changedNames.has(r.metadata.name)
          ? routeId(r.metadata.kind, r.metadata.namespace, r.metadata.name)
          : undefined;
        if (id === undefined || !changed.has(id)) {
          out.push(r);
          continue;
        }
        touched = true;
        if (placed.has(id)) continue;
        const g = groups.get(id);
        if (g === undefined) return undefined; // had routes here, has none now: not a plain edit
        out.push(...g);
        placed.add(id);
      }
      if (placed.size !== groups.size) return undefined; // routes where it had none
      if (!touched) continue;
      newLists[i] = out;
      const listener = http[i];
      if (listener === undefined) return undefined;
      http = http.map((l, j) => (j === i ? { ...l, routes: sortRoutes([...out]) } : l));
    }
    unsorted.set(gwKey, newLists);
    if (http !== prevIr.http) ir.set(gwKey, { ...prevIr, http });
  }
  return { result: { ir, statuses: newStatuses, rejected: snapshot.rejected }, unsorted };
}
