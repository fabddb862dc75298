/**
 * HTTPRoutes and GRPCRoutes → IR routes on the listeners they attach to, plus route statuses.
 *
 * Attachment follows the Gateway API: parentRef (group/kind/namespace/name, optional
 * sectionName and port), the listener's allowedRoutes (namespaces From Same/All/Selector, kinds)
 * and hostname intersection. One IR route per rule × match × intersected hostname, named as
 * Envoy Gateway names them (`httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`).
 */
import { Interner, NONE, packed } from '../ir/lists.js';
import { joinName } from '../ir/names.js';
import type {
  GRPCRoute,
  GRPCRouteRule,
  HTTPRoute,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  LabelSelector,
  ParentReference,
} from '../api/types.js';
import type {
  DestinationSetting,
  HeaderMatch,
  HeaderModifier,
  HttpRoute,
  RouteDestination,
  StringMatch,
} from '../ir/types.js';
import { getResource } from '../provider/snapshot.js';
import { resolveRouteBackendRef } from './backend-refs.js';
import type { ListenerContext, MutableRoute, RouteContext, RouteParentContext, TranslationContext } from './context.js';
import { ConditionSet, cmp, condition } from './status.js';

const GW_GROUP = 'gateway.networking.k8s.io';

/** Does a label selector match these labels? */
export function selectorMatches(sel: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (sel === undefined) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const v = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(v ?? '')) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(v ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

function namespaceLabels(ctx: TranslationContext, ns: string): Record<string, string> {
  const obj = getResource(ctx.snapshot, 'Namespace', undefined, ns);
  return { ...(obj?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': ns };
}

/**
 * Intersection of a listener hostname and a route hostname (Gateway API rules), or undefined.
 * `*.example.com` matches any name with at least one more label.
 */
export function intersectHostname(listener: string | undefined, route: string): string | undefined {
  if (listener === undefined || listener === '*') return route;
  if (route === listener) return route;
  const wild = (w: string, h: string): boolean =>
    w.startsWith('*.') && h.endsWith(w.slice(1)) && h.length > w.length - 1;
  if (wild(listener, route)) return route;
  if (wild(route, listener)) return listener;
  return undefined;
}

function routeHostnames(listener: ListenerContext, hostnames: readonly string[]): string[] {
  const lh = listener.spec.hostname;
  if (hostnames.length === 0) return [lh ?? '*'];
  const out: string[] = [];
  for (const h of hostnames) {
    const x = intersectHostname(lh, h);
    if (x !== undefined && !out.includes(x)) out.push(x);
  }
  return out;
}

function headerModifier(f: HTTPRouteFilter['requestHeaderModifier']): HeaderModifier | undefined {
  if (f === undefined) return undefined;
  return {
    add: [
      ...(f.set ?? []).map((h) => ({ name: h.name, value: h.value, append: false })),
      ...(f.add ?? []).map((h) => ({ name: h.name, value: h.value, append: true })),
    ],
    remove: [...(f.remove ?? [])],
  };
}

function stringMatch(type: string | undefined, value: string): StringMatch {
  return type === 'RegularExpression' ? { safeRegex: value } : { exact: value };
}

/** The IR route name's host part: dots become underscores. */
function hostPart(host: string): string {
  return host.replaceAll('.', '_');
}

interface RuleTranslation {
  readonly destination?: RouteDestination;
  readonly directResponse?: { statusCode: number; body?: string };
  readonly mirrors: readonly RouteDestination[];
  readonly requestHeaders?: HeaderModifier;
  readonly responseHeaders?: HeaderModifier;
  readonly redirect?: HttpRoute['redirect'];
  readonly urlRewrite?: HttpRoute['urlRewrite'];
  readonly problems: readonly { reason: string; message: string; resolvedRefs: boolean }[];
}

/** Backends, filters and mirrors of one rule (the same for every match and hostname). */
function translateRule(
  ctx: TranslationContext,
  kind: 'HTTPRoute' | 'GRPCRoute',
  route: HTTPRoute | GRPCRoute,
  ruleIndex: number,
  rule: HTTPRouteRule | GRPCRouteRule,
): RuleTranslation {
  const ns = route.metadata.namespace ?? 'default';
  const prefix = joinName(kind.toLowerCase(), ns, route.metadata.name, 'rule', ruleIndex);
  const problems: { reason: string; message: string; resolvedRefs: boolean }[] = [];
  const refCtx = {
    snapshot: ctx.snapshot,
    backendEnabled: ctx.deps.backendEnabled,
    from: { group: GW_GROUP, kind, namespace: ns },
  };
  let requestHeaders: HeaderModifier | undefined;
  let responseHeaders: HeaderModifier | undefined;
  let redirect: HttpRoute['redirect'];
  let urlRewrite: HttpRoute['urlRewrite'];
  const mirrors: RouteDestination[] = [];
  const filterList = rule.filters ?? [];
  for (let fi = 0; fi < filterList.length; fi++) {
    const f = filterList[fi]!;
    switch (f.type) {
      case 'RequestHeaderModifier':
        requestHeaders = headerModifier(f.requestHeaderModifier);
        break;
      case 'ResponseHeaderModifier':
        responseHeaders = headerModifier(f.responseHeaderModifier);
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        const path =
          r.path === undefined
            ? undefined
            : r.path.type === 'ReplaceFullPath'
              ? { fullReplace: r.path.replaceFullPath ?? '/' }
              : { prefixMatchReplace: r.path.replacePrefixMatch ?? '/' };
        redirect = {
          statusCode: r.statusCode ?? 302,
          ...(r.scheme === undefined ? {} : { scheme: r.scheme }),
          ...(r.hostname === undefined ? {} : { hostname: r.hostname }),
          ...(r.port === undefined ? {} : { port: r.port }),
          ...(path === undefined ? {} : { path }),
        };
        break;
      }
      case 'URLRewrite': {
        const r = f.urlRewrite ?? {};
        const path =
          r.path === undefined
            ? undefined
            : r.path.type === 'ReplaceFullPath'
              ? { fullReplace: r.path.replaceFullPath ?? '/' }
              : { prefixMatchReplace: r.path.replacePrefixMatch ?? '/' };
        urlRewrite = {
          ...(r.hostname === undefined ? {} : { hostname: r.hostname }),
          ...(path === undefined ? {} : { path }),
        };
        break;
      }
      case 'RequestMirror': {
        const m = f.requestMirror;
        if (m === undefined) break;
        const r = resolveRouteBackendRef(refCtx, m.backendRef, ns);
        if (!r.ok) {
          problems.push({ reason: r.reason, message: r.message, resolvedRefs: true });
          break;
        }
        const name = joinName(prefix, 'filter', fi);
        mirrors.push({
          name,
          metadata: { kind, namespace: ns, name: route.metadata.name },
          settings: [
            {
              name: joinName(name, 'backend', 0),
              weight: 1,
              priority: 0,
              protocol: kind === 'GRPCRoute' ? 'GRPC' : 'HTTP',
              addressType: r.value.addressType,
              endpoints: r.value.endpoints,
              metadata: r.value.metadata,
            },
          ],
        });
        break;
      }
      default:
        problems.push({
          reason: 'UnsupportedValue',
          message: `Filter type ${f.type} is not supported by envext yet (spec.rules[${ruleIndex}].filters[${fi}])`,
          resolvedRefs: false,
        });
    }
  }
  if (redirect !== undefined) {
    return {
      mirrors: packed(mirrors),
      ...(requestHeaders === undefined ? {} : { requestHeaders }),
      ...(responseHeaders === undefined ? {} : { responseHeaders }),
      redirect,
      problems: packed(problems),
    };
  }
  const settings: DestinationSetting[] = [];
  const backendRefList = rule.backendRefs ?? [];
  for (let bi = 0; bi < backendRefList.length; bi++) {
    const ref = backendRefList[bi]!;
    const weight = ref.weight ?? 1;
    const r = resolveRouteBackendRef(refCtx, ref, ns);
    if (!r.ok) {
      problems.push({ reason: r.reason, message: r.message, resolvedRefs: true });
      continue;
    }
    if (weight === 0) continue;
    const h2 =
      kind === 'GRPCRoute' ||
      r.value.appProtocols.includes('gateway.envoyproxy.io/h2c') ||
      r.value.appProtocols.includes('kubernetes.io/h2c');
    settings.push({
      name: joinName(prefix, 'backend', bi),
      weight,
      priority: r.value.fallback ? 1 : 0,
      protocol: kind === 'GRPCRoute' ? 'GRPC' : h2 ? 'HTTP2' : 'HTTP',
      addressType: r.value.addressType,
      endpoints: r.value.endpoints,
      metadata: r.value.metadata,
    });
  }
  // Built by assignment, not `{...base, x}` (in V8 11 every object built that way gets a hidden
  // class of its own; there is one of these per rule).
  const out: { -readonly [K in keyof RuleTranslation]: RuleTranslation[K] } = {
    mirrors: packed(mirrors),
    problems: packed(problems),
  };
  if (requestHeaders !== undefined) out.requestHeaders = requestHeaders;
  if (responseHeaders !== undefined) out.responseHeaders = responseHeaders;
  if (urlRewrite !== undefined) out.urlRewrite = urlRewrite;
  // No usable backend: Gateway API says answer 500 for the share of invalid backends.
  if (problems.some((p) => !p.resolvedRefs) || settings.length === 0) out.directResponse = { statusCode: 500 };
  else
    out.destination = {
      name: prefix,
      metadata: { kind, namespace: ns, name: route.metadata.name },
      settings: packed(settings),
    };
  return out;
}

function httpMatches(rule: HTTPRouteRule): HTTPRouteMatch[] {
  return rule.matches !== undefined && rule.matches.length > 0
    ? [...rule.matches]
    : [{ path: { type: 'PathPrefix', value: '/' } }];
}

interface MatchIr {
  readonly pathMatch?: StringMatch;
  readonly headerMatches: readonly HeaderMatch[];
  readonly queryParamMatches: readonly HeaderMatch[];
}

function httpMatchIr(m: HTTPRouteMatch): MatchIr {
  const p = m.path;
  const type = p?.type ?? 'PathPrefix';
  const value = p?.value ?? '/';
  const pathMatch: StringMatch =
    type === 'Exact' ? { exact: value } : type === 'RegularExpression' ? { safeRegex: value } : { prefix: value };
  const headerMatches = (m.headers ?? []).map((h) => ({ name: h.name, match: stringMatch(h.type, h.value) }));
  if (m.method !== undefined) headerMatches.push({ name: ':method', match: { exact: m.method } });
  return {
    pathMatch,
    headerMatches: packed(headerMatches),
    queryParamMatches: packed(
      (m.queryParams ?? []).map((q) => ({ name: q.name, match: stringMatch(q.type, q.value) })),
    ),
  };
}

function grpcMatchIr(m: NonNullable<GRPCRouteRule['matches']>[number] | undefined): MatchIr {
  const headerMatches = (m?.headers ?? []).map((h) => ({ name: h.name, match: stringMatch(h.type, h.value) }));
  const method = m?.method;
  let pathMatch: StringMatch | undefined;
  if (method !== undefined) {
    const s = method.service;
    const mm = method.method;
    if (method.type === 'RegularExpression') pathMatch = { safeRegex: `/${s ?? '[^/]+'}/${mm ?? '[^/]+'}` };
    else if (s !== undefined && mm !== undefined) pathMatch = { exact: `/${s}/${mm}` };
    else if (s !== undefined) pathMatch = { prefix: `/${s}/` };
    else if (mm !== undefined) pathMatch = { safeRegex: `/[^/]+/${mm.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&')}` };
  }
  return pathMatch === undefined
    ? { headerMatches: packed(headerMatches), queryParamMatches: NONE }
    : { pathMatch, headerMatches: packed(headerMatches), queryParamMatches: NONE };
}

/** Resolves a parentRef to one of our Gateways and the listeners it may attach to. */
/** A route status's parentRef: one object per Gateway/section/port, shared by its routes. */
const parentRefs = new Interner<ParentReference>();

function attach(ctx: TranslationContext, rc: RouteContext, ref: ParentReference): RouteParentContext | undefined {
  const route = rc.route;
  const routeNs = route.metadata.namespace ?? 'default';
  if ((ref.group ?? GW_GROUP) !== GW_GROUP || (ref.kind ?? 'Gateway') !== 'Gateway') return undefined;
  const gwNs = ref.namespace ?? routeNs;
  const gateway = ctx.gateways.get(`${gwNs}/${ref.name}`);
  if (gateway === undefined) return undefined; // not ours, or missing: not our status to write
  const gen = route.metadata.generation;
  const refStatus = parentRefs.get(`${gwNs}/${ref.name}/${ref.sectionName ?? ''}/${ref.port ?? ''}`, () => ({
    group: GW_GROUP,
    kind: 'Gateway',
    namespace: gwNs,
    name: ref.name,
    ...(ref.sectionName === undefined ? {} : { sectionName: ref.sectionName }),
    ...(ref.port === undefined ? {} : { port: ref.port }),
  }));
  const conditions = new ConditionSet();
  const parent: RouteParentContext = { ref: refStatus, gateway, listeners: [], conditions, irRoutes: [] };
  let candidates = gateway.listeners;
  if (ref.sectionName !== undefined) candidates = candidates.filter((l) => l.spec.name === ref.sectionName);
  if (ref.port !== undefined) candidates = candidates.filter((l) => l.spec.port === ref.port);
  if (candidates.length === 0) {
    conditions.set(
      condition(
        'Accepted',
        false,
        'NoMatchingParent',
        ref.sectionName !== undefined
          ? `No listeners match this parent ref (sectionName ${ref.sectionName})`
          : 'No listeners match this parent ref',
        gen,
      ),
    );
    return parent;
  }
  const allowed = candidates.filter((l) => {
    if (!l.ready) return false;
    if (!l.supportedKinds.some((k) => k.kind === rc.kind)) return false;
    const from = l.spec.allowedRoutes?.namespaces?.from ?? 'Same';
    if (from === 'Same') return routeNs === gwNs;
    if (from === 'All') return true;
    return selectorMatches(l.spec.allowedRoutes?.namespaces?.selector, namespaceLabels(ctx, routeNs));
  });
  if (allowed.length === 0) {
    conditions.set(
      condition(
        'Accepted',
        false,
        'NotAllowedByListeners',
        'No listeners included by this parent ref allowed this attachment.',
        gen,
      ),
    );
    return parent;
  }
  const hostnames = route.spec.hostnames ?? [];
  const matching = allowed.filter((l) => routeHostnames(l, hostnames).length > 0);
  if (matching.length === 0) {
    conditions.set(
      condition(
        'Accepted',
        false,
        'NoMatchingListenerHostname',
        "There were no hostname intersections between the HTTPRoute and this parent ref's Listener(s).",
        gen,
      ),
    );
    return parent;
  }
  parent.listeners.push(...matching);
  return parent;
}

/** Translates every HTTPRoute and GRPCRoute onto our Gateways' IR listeners. */
export function translateRoutes(ctx: TranslationContext): void {
  const routes: { kind: 'HTTPRoute' | 'GRPCRoute'; route: HTTPRoute | GRPCRoute }[] = [
    ...[...ctx.snapshot.resources.HTTPRoute.values()].map((route) => ({ kind: 'HTTPRoute' as const, route })),
    ...[...ctx.snapshot.resources.GRPCRoute.values()].map((route) => ({ kind: 'GRPCRoute' as const, route })),
  ];
  // Gateway API precedence between routes: oldest first, then namespace/name.
  routes.sort(
    (a, b) =>
      cmp(a.route.metadata.creationTimestamp ?? '', b.route.metadata.creationTimestamp ?? '') ||
      cmp(a.route.metadata.namespace ?? '', b.route.metadata.namespace ?? '') ||
      cmp(a.route.metadata.name, b.route.metadata.name),
  );
  for (const { kind, route } of routes) {
    const rc: RouteContext = { kind, route, parents: [] };
    for (const ref of route.spec.parentRefs ?? []) {
      const parent = attach(ctx, rc, ref);
      if (parent !== undefined) rc.parents.push(parent);
    }
    if (rc.parents.length === 0) continue;
    ctx.routes.push(rc);
    const ns = route.metadata.namespace ?? 'default';
    const gen = route.metadata.generation;
    const rules: readonly (HTTPRouteRule | GRPCRouteRule)[] = route.spec.rules ?? [{}];
    const cache = ctx.deps.cache;
    const cached = cache?.rules.get(route) as RuleTranslation[] | undefined;
    const translated = cached ?? rules.map((rule, i) => translateRule(ctx, kind, route, i, rule));
    if (cache !== undefined && cached === undefined) cache.rules.set(route, translated);
    const problems = translated.flatMap((t) => t.problems);
    const prefix = joinName(kind.toLowerCase(), ns, route.metadata.name);
    // Matches and metadata are the same for every listener and hostname: build them once per rule.
    const ruleMatches: MatchIr[][] = rules.map((rule) =>
      kind === 'HTTPRoute'
        ? httpMatches(rule as HTTPRouteRule).map(httpMatchIr)
        : ((rule as GRPCRouteRule).matches ?? [undefined]).map(grpcMatchIr),
    );
    const ruleMeta = rules.map((rule) => ({
      kind,
      namespace: ns,
      name: route.metadata.name,
      ...(rule.name === undefined ? {} : { sectionName: rule.name }),
    }));
    for (const parent of rc.parents) {
      if (parent.listeners.length === 0) continue; // Accepted=False already set
      const refProblem = problems.find((p) => p.resolvedRefs);
      const otherProblem = problems.find((p) => !p.resolvedRefs);
      if (otherProblem !== undefined)
        parent.conditions.set(condition('Accepted', false, otherProblem.reason, otherProblem.message, gen));
      else parent.conditions.set(condition('Accepted', true, 'Accepted', 'Route is accepted', gen));
      parent.conditions.set(
        refProblem === undefined
          ? condition('ResolvedRefs', true, 'ResolvedRefs', 'Resolved all the Object references for the Route', gen)
          : condition(
              'ResolvedRefs',
              false,
              refProblem.reason,
              problems
                .filter((p) => p.resolvedRefs)
                .map((p) => p.message)
                .join('. '),
              gen,
            ),
      );
      for (const listener of parent.listeners) {
        listener.attachedRoutes++;
        const ir = listener.ir;
        if (ir === undefined) continue;
        for (const hostname of routeHostnames(listener, route.spec.hostnames ?? [])) {
          for (let ri = 0; ri < rules.length; ri++) {
            const rule = rules[ri]!;
            const t = translated[ri];
            const matches = ruleMatches[ri];
            if (t === undefined || matches === undefined) continue;
            const origin = {
              kind,
              namespace: ns,
              name: route.metadata.name,
              ruleIndex: ri,
              ...(rule.name === undefined ? {} : { ruleName: rule.name }),
              parent: parent.ref,
            };
            for (let mi = 0; mi < matches.length; mi++) {
              const m = matches[mi]!;
              const irRoute: MutableRoute = {
                name: joinName(prefix, 'rule', ri, 'match', mi, hostPart(hostname)),
                metadata: ruleMeta[ri] ?? { kind, namespace: ns, name: route.metadata.name },
                hostname,
                headerMatches: m.headerMatches,
                queryParamMatches: m.queryParamMatches,
                mirrors: t.mirrors,
                isHttp2: kind === 'GRPCRoute',
                origin,
              };
              // Optional fields by assignment: this loop runs for every route on every translation.
              if (rule.name !== undefined) irRoute.ruleName = rule.name;
              if (m.pathMatch !== undefined) irRoute.pathMatch = m.pathMatch;
              if (t.requestHeaders !== undefined) irRoute.requestHeaders = t.requestHeaders;
              if (t.responseHeaders !== undefined) irRoute.responseHeaders = t.responseHeaders;
              if (t.redirect !== undefined) irRoute.redirect = t.redirect;
              if (t.urlRewrite !== undefined) irRoute.urlRewrite = t.urlRewrite;
              if (t.destination !== undefined) irRoute.destination = t.destination;
              if (t.directResponse !== undefined) irRoute.directResponse = t.directResponse;
              ir.routes.push(irRoute);
              parent.irRoutes.push(irRoute);
            }
          }
        }
      }
    }
  }
}

/**
 * Orders a listener's routes by Gateway API match precedence: exact paths, then longer
 * prefixes, then regexes; then more header matches, then more query matches. Ties keep route
 * age order (the order given). Sorts in place and returns the array.
 */
export function sortRoutes<T extends HttpRoute>(routes: T[]): T[] {
  // Keys computed once per route, not twice per comparison (this runs on every translation).
  const keyed = routes.map((r, i) => {
    const p = r.pathMatch;
    let type = 3;
    let length = 0;
    if (p !== undefined) {
      if ('exact' in p) [type, length] = [0, p.exact.length];
      else if ('prefix' in p) [type, length] = [1, p.prefix.length];
      else [type, length] = [2, p.safeRegex.length];
    }
    return { r, type, length, headers: r.headerMatches.length, queries: r.queryParamMatches.length, i };
  });
  keyed.sort(
    (a, b) => a.type - b.type || b.length - a.length || b.headers - a.headers || b.queries - a.queries || a.i - b.i,
  );
  for (let i = 0; i < keyed.length; i++) routes[i] = keyed[i]!.r;
  return routes;
}
