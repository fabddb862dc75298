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
 * Routes added or deleted take this path too when no policy names them or selects routes by
 * label: an added route is translated like an edited one and its IR routes and status are placed
 * by route order (creation time, namespace, name); a deleted route's are dropped; each listener's
 * `attachedRoutes` is counted again from what the added and deleted routes attach.
 *
 * Everything else (Gateway or Backend edits, more than MAX_CHANGED_ROUTES routes, any
 * inconsistency) returns undefined and the caller translates in full. A property test checks
 * that both paths give equal results (incremental.test.ts).
 */
import type { HTTPRoute, GRPCRoute, EnvoyExtensionPolicy, ResourceKind } from '../api/types.js';
import { RESOURCE_KINDS } from '../api/types.js';
import type { HttpRoute } from '../ir/types.js';
import type { ResourceMaps, ResourceSnapshot } from '../provider/snapshot.js';
import { joinName } from '../ir/names.js';
import { sortRoutes } from './http-route.js';
import { cmp, type ResourceStatus } from './status.js';
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
 * Whether added and deleted routes change nothing but themselves and their listeners'
 * `attachedRoutes`: no policy selects routes by label, and none names an added or deleted route
 * (its status would change), in either snapshot.
 */
function localAddsAndDeletes(
  before: ResourceSnapshot,
  after: ResourceSnapshot,
  added: ReadonlySet<string>,
  deleted: ReadonlyMap<string, unknown>,
): boolean {
  // Policies unchanged (the same map, see SnapshotBuilder): one look is enough.
  const maps = [after.resources.EnvoyExtensionPolicy];
  if (before.resources.EnvoyExtensionPolicy !== maps[0]) maps.push(before.resources.EnvoyExtensionPolicy);
  for (const policies of maps) {
    for (const p of policies.values()) {
      if ((p.spec.targetSelectors?.length ?? 0) > 0) return false;
      const t = routeTargets(p);
      if (t !== 'any' && t.some((id) => added.has(id) || deleted.has(id))) return false;
    }
  }
  return true;
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
  /** Routes new in this snapshot (translated like edits, then placed by route order). */
  const added = new Set<string>();
  /** Routes gone from this snapshot: the previous objects. */
  const deleted = new Map<string, { kind: RouteKind; key: string; route: AnyRoute }>();
  const changedPolicies = new Set<string>();
  /** Routes whose extensions may change because a policy naming them changed. */
  const touched = new Set<string>();
  for (const kind of RESOURCE_KINDS) {
    const before = previous.snapshot.resources[kind] as ReadonlyMap<string, unknown>;
    const after = snapshot.resources[kind] as ReadonlyMap<string, unknown>;
    if (before === after) continue;
    const isRoute = kind === 'HTTPRoute' || kind === 'GRPCRoute';
    if (!isRoute && before.size !== after.size) return undefined;
    let addedHere = 0;
    for (const [key, now] of after) {
      const old = before.get(key);
      if (old === now) continue;
      if (old === undefined) {
        if (!isRoute) return undefined;
        const route = now as AnyRoute;
        // Without a namespace, statuses and IR say `default`: the splice below could not map back.
        if (route.metadata.namespace === undefined) return undefined;
        const id = routeId(kind, route.metadata.namespace, route.metadata.name);
        changed.set(id, { kind, key, route });
        added.add(id);
        addedHere++;
        if (changed.size + deleted.size > MAX_CHANGED_ROUTES) return undefined;
        continue;
      }
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
      if (changed.size + deleted.size > MAX_CHANGED_ROUTES) return undefined;
    }
    // Edits keep the count: any other difference is routes deleted.
    if (isRoute && before.size + addedHere !== after.size) {
      for (const [key, old] of before) {
        if (after.has(key)) continue;
        const route = old as AnyRoute;
        if (route.metadata.namespace === undefined) return undefined;
        deleted.set(routeId(kind, route.metadata.namespace, route.metadata.name), { kind, key, route });
        if (changed.size + deleted.size > MAX_CHANGED_ROUTES) return undefined;
      }
    }
  }
  if ((added.size > 0 || deleted.size > 0) && !localAddsAndDeletes(previous.snapshot, snapshot, added, deleted))
    return undefined;
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
  if (changed.size === 0 && changedPolicies.size === 0 && deleted.size === 0) {
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

  // attachedRoutes: the partial translation counts the added and edited routes' attachments; the
  // same of the deleted routes' previous objects and the edited routes (an edit keeps its
  // attachment) is taken off again.
  let gateways: ((s: ResourceStatus) => ResourceStatus | undefined) | undefined;
  if (added.size > 0 || deleted.size > 0) {
    const counted = [...deleted.values()];
    for (const [id, c] of changed) if (!added.has(id)) counted.push(c);
    const old: Partial<Record<ResourceKind, ReadonlyMap<string, unknown>>> = { ...snapshot.resources };
    old.HTTPRoute = new Map(counted.filter((d) => d.kind === 'HTTPRoute').map((d) => [d.key, d.route]));
    old.GRPCRoute = new Map(counted.filter((d) => d.kind === 'GRPCRoute').map((d) => [d.key, d.route]));
    old.EnvoyExtensionPolicy = new Map();
    const gone = translateFull({
      resources: old as ResourceMaps,
      rejected: snapshot.rejected,
      revision: snapshot.revision,
    });
    gateways = attachedRoutesDelta(part.result.statuses, gone.result.statuses);
    if (gateways === undefined) return undefined;
  }

  // Statuses: the changed routes' and policies' own at their previous positions, added routes'
  // at theirs in route-status order, deleted routes' dropped, and attachedRoutes counted again.
  const statusId = (s: ResourceStatus): string => routeId(s.kind, 'namespace' in s ? s.namespace : '', s.name);
  const changedNames = new Set([...changed.values()].map((c) => c.route.metadata.name));
  for (const d of deleted.values()) changedNames.add(d.route.metadata.name);
  const changedPolicyNames = new Set([...changedPolicies].map((k) => k.slice(k.indexOf('/') + 1)));
  const isRouteStatus = (s: ResourceStatus): boolean => s.kind === 'HTTPRoute' || s.kind === 'GRPCRoute';
  const isChanged = (s: ResourceStatus): boolean =>
    s.kind === 'EnvoyExtensionPolicy'
      ? changedPolicyNames.has(s.name) && changedPolicies.has(`${s.namespace}/${s.name}`)
      : isRouteStatus(s) && changedNames.has(s.name) && (changed.has(statusId(s)) || deleted.has(statusId(s)));
  const statuses = new Map<string, ResourceStatus>();
  const addedStatuses: ResourceStatus[] = [];
  for (const s of part.result.statuses) {
    if (!isChanged(s)) continue;
    if (added.has(statusId(s))) addedStatuses.push(s);
    else statuses.set(statusId(s), s);
  }
  // Route statuses are ordered by `kind/namespace/name` of the route object (translate.ts; a
  // route without a namespace sorts as ''): added ones go in there.
  const statusKey = (s: ResourceStatus): string | undefined => {
    if (s.kind !== 'HTTPRoute' && s.kind !== 'GRPCRoute') return undefined;
    const key = `${s.namespace}/${s.name}`;
    const m = (snapshot.resources[s.kind].get(key) ?? previous.snapshot.resources[s.kind].get(key))?.metadata;
    return m === undefined ? undefined : joinName(s.kind, m.namespace ?? '', m.name);
  };
  const addedKeys = new Map<ResourceStatus, string>();
  for (const s of addedStatuses) {
    const k = statusKey(s);
    if (k === undefined) return undefined;
    addedKeys.set(s, k);
  }
  addedStatuses.sort((a, b) => cmp(addedKeys.get(a)!, addedKeys.get(b)!));
  // Where each added status goes: a binary search in the previous route statuses (contiguous,
  // after the Gateways; where they would be when there are none).
  const prev = previous.result.statuses;
  let lo = 0;
  while (lo < prev.length && (prev[lo]!.kind === 'GatewayClass' || prev[lo]!.kind === 'Gateway')) lo++;
  let hi = lo;
  while (hi < prev.length && isRouteStatus(prev[hi]!)) hi++;
  const insertAt: number[] = [];
  for (const a of addedStatuses) {
    const key = addedKeys.get(a)!;
    let l = lo;
    let h = hi;
    while (l < h) {
      const mid = (l + h) >> 1;
      const k = statusKey(prev[mid]!);
      if (k === undefined) return undefined;
      if (cmp(k, key) < 0) l = mid + 1;
      else h = mid;
    }
    insertAt.push(l);
  }
  let replaced = 0;
  let next = 0;
  const newStatuses: ResourceStatus[] = [];
  for (let at = 0; at <= prev.length; at++) {
    while (next < addedStatuses.length && insertAt[next] === at) newStatuses.push(addedStatuses[next++]!);
    const s = prev[at];
    if (s === undefined) break;
    if (s.kind === 'Gateway' && gateways !== undefined) {
      newStatuses.push(gateways(s) ?? s);
      continue;
    }
    if (!isChanged(s)) {
      newStatuses.push(s);
      continue;
    }
    if (deleted.has(statusId(s)) && !changed.has(statusId(s))) continue; // a deleted route's
    const now = statuses.get(statusId(s));
    if (now === undefined) return undefined; // had a status, has none now: not a plain edit
    replaced++;
    newStatuses.push(now);
  }
  if (replaced !== statuses.size || next !== addedStatuses.length) return undefined;

  // IR: each listener's translation-order list with the changed routes' segments replaced, the
  // deleted routes' removed and the added routes' inserted in route order.
  const order = routeOrder(snapshot, previous.snapshot);
  const ir = new Map(previous.result.ir);
  const unsorted = new Map(previous.unsorted);
  for (const [gwKey, prevLists] of previous.unsorted) {
    const lists = part.unsorted.get(gwKey);
    const prevIr = previous.result.ir.get(gwKey);
    if (lists === undefined || prevIr === undefined || prevLists.length !== lists.length) return undefined;
    let http = prevIr.http;
    const newLists = [...prevLists];
    for (const [i, list] of lists.entries()) {
      const before = prevLists[i] ?? [];
      // New routes per changed or added route, in order.
      const groups = new Map<string, HttpRoute[]>();
      const addedHere: string[] = [];
      for (const r of list) {
        const id = routeId(r.metadata.kind, r.metadata.namespace, r.metadata.name);
        const g = groups.get(id);
        if (g === undefined) {
          groups.set(id, [r]);
          if (added.has(id)) addedHere.push(id);
        } else g.push(r);
      }
      // Where each added route's IR routes go: before the first route that comes after it in
      // route order (a binary search; each route's IR routes are contiguous, in route order).
      const insertAt: number[] = [];
      for (const a of addedHere) {
        const key = order(a)!;
        let l = 0;
        let h = before.length;
        while (l < h) {
          const mid = (l + h) >> 1;
          const m = before[mid]!.metadata;
          const k = order(routeId(m.kind, m.namespace, m.name));
          if (k === undefined) return undefined;
          if (k < key) l = mid + 1;
          else h = mid;
        }
        insertAt.push(l);
      }
      const out: HttpRoute[] = [];
      const placed = new Set<string>();
      let touched = addedHere.length > 0;
      let nextAdded = 0;
      for (let at = 0; at <= before.length; at++) {
        while (nextAdded < addedHere.length && insertAt[nextAdded] === at) {
          const a = addedHere[nextAdded++]!;
          for (const r of groups.get(a)!) out.push(r);
          placed.add(a);
        }
        const r = before[at];
        if (r === undefined) break;
        // Names first: no id string per unchanged route.
        const id = changedNames.has(r.metadata.name)
          ? routeId(r.metadata.kind, r.metadata.namespace, r.metadata.name)
          : undefined;
        if (id === undefined || (!changed.has(id) && !deleted.has(id))) {
          out.push(r);
          continue;
        }
        touched = true;
        if (placed.has(id)) continue;
        const g = groups.get(id);
        if (g === undefined) {
          if (deleted.has(id) && !changed.has(id)) continue; // a deleted route's
          return undefined; // had routes here, has none now: not a plain edit
        }
        for (const x of g) out.push(x);
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
  if (part.unsorted.size !== previous.unsorted.size) return undefined;
  return { result: { ir, statuses: newStatuses, rejected: snapshot.rejected }, unsorted };
}

/**
 * A route's place in translation order (translateRoutes: creation time, namespace, name; an
 * HTTPRoute before a GRPCRoute on a tie), as a string that compares the same way; undefined when
 * the route is in neither snapshot.
 */
function routeOrder(snapshot: ResourceSnapshot, previous: ResourceSnapshot): (id: string) => string | undefined {
  const memo = new Map<string, string | undefined>();
  return (id) => {
    let key = memo.get(id);
    if (key !== undefined || memo.has(id)) return key;
    const slash = id.indexOf('/');
    const kind = id.slice(0, slash);
    const rest = id.slice(slash + 1);
    // A deleted route is only in the previous snapshot; an edited one keeps its order.
    const route =
      kind === 'HTTPRoute' || kind === 'GRPCRoute'
        ? (snapshot.resources[kind].get(rest) ?? previous.resources[kind].get(rest))
        : undefined;
    const m = route?.metadata;
    // NUL separates the parts: it sorts before every character a part can hold.
    key =
      m === undefined
        ? undefined
        : [m.creationTimestamp ?? '', m.namespace ?? '', m.name, kind === 'HTTPRoute' ? '0' : '1'].join('\u0000');
    memo.set(id, key);
    return key;
  };
}

/**
 * The Gateway statuses with each listener's attachedRoutes plus what `added` attached and minus
 * what `gone` attached (both partial translations' Gateway statuses); undefined when their
 * listeners do not line up.
 */
function attachedRoutesDelta(
  added: readonly ResourceStatus[],
  gone: readonly ResourceStatus[],
): ((s: ResourceStatus) => ResourceStatus | undefined) | undefined {
  type GatewayStatus = Extract<ResourceStatus, { kind: 'Gateway' }>;
  const delta = new Map<string, number[]>();
  const add = (list: readonly ResourceStatus[], sign: number): boolean => {
    for (const s of list) {
      if (s.kind !== 'Gateway') continue;
      const key = `${s.namespace}/${s.name}`;
      const d = delta.get(key) ?? s.status.listeners.map(() => 0);
      if (d.length !== s.status.listeners.length) return false;
      s.status.listeners.forEach((l, i) => (d[i] = (d[i] ?? 0) + sign * l.attachedRoutes));
      delta.set(key, d);
    }
    return true;
  };
  if (!add(added, 1) || !add(gone, -1)) return undefined;
  return (s) => {
    if (s.kind !== 'Gateway') return undefined;
    const d = delta.get(`${s.namespace}/${s.name}`);
    if (d === undefined || d.every((x) => x === 0)) return undefined;
    const g: GatewayStatus = s;
    return {
      ...g,
      status: {
        ...g.status,
        listeners: g.status.listeners.map((l, i) =>
          (d[i] ?? 0) === 0 ? l : { ...l, attachedRoutes: l.attachedRoutes + (d[i] ?? 0) },
        ),
      },
    };
  };
}
