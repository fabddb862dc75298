/**
 * EnvoyExtensionPolicy attachment, translation and status, ported from Envoy Gateway
 * `internal/gatewayapi/envoyextensionpolicy.go` (upstream d32f2829). The rules, in short
 * (`reference/eg-extension-policy.md` d):
 *
 *   - policies are sorted by creationTimestamp, then namespace, then name;
 *   - six passes, most specific scope first: route rule → route → (ListenerSet listener →
 *     ListenerSet: not supported yet) → Gateway listener → Gateway; a pass skips IR routes that
 *     already have extensions, so the most specific policy wins and nothing is inherited;
 *   - within a pass the first policy to claim a scope wins; later ones are `Conflicted`;
 *   - a missing target gives no status at all; a missing sectionName gives `TargetNotFound`;
 *   - translation errors are `Wasm: …`/`ExtProc: …`, joined by newlines, and turn the targeted
 *     routes into 500 direct responses unless every failed entry is failOpen;
 *   - a Gateway/listener/route policy that more specific policies override gets `Overridden`.
 */
import { Interner, NONE, packed } from '../ir/lists.js';
import { joinName } from '../ir/names.js';
import type { Condition, EnvoyExtensionPolicy, ExtProcSpec, PolicyTargetReference, WasmSpec } from '../api/types.js';
import type { BodyMode, DestinationSetting, EnvoyExtensions, ExtProc, ExtProcSide, Wasm } from '../ir/types.js';
import { getResource, listResources } from '../provider/snapshot.js';
import { referenceAllowed, resolveExtServiceRef, secretValue, unsupportedTlsPolicyFor } from './backend-refs.js';
import type { GatewayContext, ListenerContext, MutableRoute, RouteContext, TranslationContext } from './context.js';
import { selectorMatches } from './http-route.js';
import {
  ConditionSet,
  cmp,
  condition,
  truncateMessage,
  type ParentRefStatus,
  type PolicyAncestorStatus,
} from './status.js';
import { defaultPullPolicy, normalizeImageUrl, type WasmCodeSource, type WasmModuleRequest } from './wasm-modules.js';

const GW_GROUP = 'gateway.networking.k8s.io';
const EG_GROUP = 'gateway.envoyproxy.io';
const KIND = 'EnvoyExtensionPolicy';
const MAX_ANCESTORS = 16;

/** Envoy Gateway's policy order: creationTimestamp (oldest first), then namespace, then name. */
export function sortPolicies(policies: readonly EnvoyExtensionPolicy[]): EnvoyExtensionPolicy[] {
  return [...policies].sort(
    (a, b) =>
      cmp(a.metadata.creationTimestamp ?? '', b.metadata.creationTimestamp ?? '') ||
      cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '') ||
      cmp(a.metadata.name, b.metadata.name),
  );
}

// ---- translating one policy's extensions --------------------------------------------------------

/** The IR extensions of a policy, or its errors per extension type, and whether the route must fail. */
export interface PolicyExtensions {
  readonly extensions: EnvoyExtensions;
  /** `Wasm: a\nb` style messages, in Envoy Gateway's order (Wasm, Lua, ExtProc, DynamicModule). */
  readonly errors: readonly string[];
  /** True when the route must become a 500 direct response. */
  readonly failRoute: boolean;
  /** Warnings (unsupported fields that were ignored). */
  readonly warnings: readonly string[];
}

/** Processing-mode sides without attributes, shared (IR is never mutated). */
const sides = new Interner<ExtProcSide>();

/** The extensions of a route that a failed policy turns into a 500 (shared: IR is never mutated). */
const NO_EXTENSIONS: EnvoyExtensions = { wasms: NONE, extProcs: NONE };

function policyName(p: EnvoyExtensionPolicy): string {
  return `envoyextensionpolicy/${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

type WasmRequestResult = { ok: true; request: WasmModuleRequest } | { ok: false; message: string };

/**
 * Per snapshot and policy object, the requests of its wasm entries by index: the module cache's
 * collection (wasmModuleRequests) and the translation of the same snapshot ask for the same ones.
 */
const wasmRequestMemo = new WeakMap<object, WeakMap<EnvoyExtensionPolicy, WasmRequestResult[]>>();

/** The module-cache request for one wasm entry, or the error that prevents asking. */
export function wasmRequest(
  ctx: Pick<TranslationContext, 'snapshot'>,
  policy: EnvoyExtensionPolicy,
  index: number,
  wasm: WasmSpec,
): WasmRequestResult {
  let bySnapshot = wasmRequestMemo.get(ctx.snapshot);
  if (bySnapshot === undefined) {
    bySnapshot = new WeakMap<EnvoyExtensionPolicy, WasmRequestResult[]>();
    wasmRequestMemo.set(ctx.snapshot, bySnapshot);
  }
  let list = bySnapshot.get(policy);
  if (list === undefined) bySnapshot.set(policy, (list = []));
  let r = list[index];
  if (r === undefined) list[index] = r = buildWasmRequest(ctx, policy, index, wasm);
  return r;
}

function buildWasmRequest(
  ctx: Pick<TranslationContext, 'snapshot'>,
  policy: EnvoyExtensionPolicy,
  index: number,
  wasm: WasmSpec,
): WasmRequestResult {
  const ns = policy.metadata.namespace ?? 'default';
  const code = wasm.code;
  const from = { group: EG_GROUP, kind: KIND, namespace: ns };
  const caCert = (
    ref: { name: string; namespace?: string; kind?: string } | undefined,
  ): { ok: true; pem?: string } | { ok: false; message: string } => {
    if (ref === undefined) return { ok: true };
    const refNs = ref.namespace ?? ns;
    const kind = ref.kind ?? 'Secret';
    if (!referenceAllowed(ctx.snapshot, from, { group: '', kind, namespace: refNs, name: ref.name })) {
      return {
        ok: false,
        message: `certificate ref to ${kind} ${refNs}/${ref.name} not permitted by any ReferenceGrant`,
      };
    }
    const pem =
      kind === 'ConfigMap'
        ? getResource(ctx.snapshot, 'ConfigMap', refNs, ref.name)?.data?.['ca.crt']
        : secretValue(ctx.snapshot, refNs, ref.name, 'ca.crt');
    if (pem === undefined)
      return { ok: false, message: `${kind.toLowerCase()} ${refNs}/${ref.name} not found or has no ca.crt key` };
    return { ok: true, pem };
  };
  let source: WasmCodeSource;
  if (code.type === 'HTTP' && code.http !== undefined) {
    const ca = caCert(code.http.tls?.caCertificateRef);
    if (!ca.ok) return ca;
    source = {
      type: 'HTTP',
      url: code.http.url,
      ...(code.http.sha256 === undefined || code.http.sha256 === '' ? {} : { sha256: code.http.sha256 }),
      ...(ca.pem === undefined ? {} : { caCertificate: ca.pem }),
    };
  } else if (code.type === 'Image' && code.image !== undefined) {
    const img = code.image;
    let dockerConfigJson: string | undefined;
    let pullSecret: string | undefined;
    if (img.pullSecretRef !== undefined) {
      const sns = img.pullSecretRef.namespace ?? ns;
      pullSecret = `${sns}/${img.pullSecretRef.name}`;
      if (
        !referenceAllowed(ctx.snapshot, from, {
          group: '',
          kind: 'Secret',
          namespace: sns,
          name: img.pullSecretRef.name,
        })
      ) {
        return { ok: false, message: `secret ref to ${pullSecret} not permitted by any ReferenceGrant` };
      }
      if (getResource(ctx.snapshot, 'Secret', sns, img.pullSecretRef.name) === undefined) {
        return { ok: false, message: `secret ${pullSecret} does not exist` };
      }
      dockerConfigJson = secretValue(ctx.snapshot, sns, img.pullSecretRef.name, '.dockerconfigjson');
      if (dockerConfigJson === undefined)
        return { ok: false, message: `missing '.dockerconfigjson' key in secret ${pullSecret}` };
    }
    const ca = caCert(img.tls?.caCertificateRef);
    if (!ca.ok) return ca;
    source = {
      type: 'Image',
      url: normalizeImageUrl(img.url),
      ...(img.sha256 === undefined || img.sha256 === '' ? {} : { sha256: img.sha256 }),
      ...(dockerConfigJson === undefined ? {} : { dockerConfigJson }),
      ...(pullSecret === undefined ? {} : { pullSecret }),
      ...(ca.pem === undefined ? {} : { caCertificate: ca.pem }),
    };
  } else {
    return { ok: false, message: `unsupported code source type ${code.type}` };
  }
  const policyId = {
    namespace: ns,
    name: policy.metadata.name,
    index,
    ...(policy.metadata.resourceVersion === undefined ? {} : { resourceVersion: policy.metadata.resourceVersion }),
    ...(policy.metadata.generation === undefined ? {} : { generation: policy.metadata.generation }),
  };
  return { ok: true, request: { source, policy: policyId, pullPolicy: code.pullPolicy ?? defaultPullPolicy(source) } };
}

const requestMemo = new WeakMap<ReadonlyMap<string, EnvoyExtensionPolicy>, readonly WasmModuleRequest[]>();

/**
 * Every wasm module request of every policy in the snapshot (for `resolveWasmModules`). A
 * snapshot whose policies did not change (the same map, see SnapshotBuilder) gives the same list.
 */
export function wasmModuleRequests(snapshot: TranslationContext['snapshot']): readonly WasmModuleRequest[] {
  const policies = snapshot.resources.EnvoyExtensionPolicy;
  let out = requestMemo.get(policies);
  if (out === undefined) {
    out = collectWasmModuleRequests(snapshot);
    requestMemo.set(policies, out);
  }
  return out;
}

function collectWasmModuleRequests(snapshot: TranslationContext['snapshot']): WasmModuleRequest[] {
  const out: WasmModuleRequest[] = [];
  for (const p of sortPolicies(listResources(snapshot, 'EnvoyExtensionPolicy'))) {
    const wasmList = p.spec.wasm ?? [];
    for (let i = 0; i < wasmList.length; i++) {
      const w = wasmList[i]!;
      const r = wasmRequest({ snapshot }, p, i, w);
      if (r.ok) out.push(r.request);
    }
  }
  return out;
}

function translateWasm(
  ctx: TranslationContext,
  policy: EnvoyExtensionPolicy,
  index: number,
  w: WasmSpec,
): { ok: true; wasm: Wasm } | { ok: false; message: string } {
  const name = joinName(policyName(policy), 'wasm', index);
  const req = wasmRequest(ctx, policy, index, w);
  if (!req.ok) return req;
  const res = ctx.deps.wasmModules.lookup(req.request);
  if (res === undefined)
    return { ok: false, message: `wasm module ${req.request.source.url} was not resolved before translation` };
  if (!res.ok) return { ok: false, message: res.message };
  return {
    ok: true,
    wasm: {
      name,
      wasmName: w.name ?? name,
      ...(w.rootID === undefined ? {} : { rootId: w.rootID }),
      ...(w.config === undefined || w.config === null ? {} : { config: JSON.stringify(w.config) }),
      failOpen: w.failOpen === true,
      code: { servingUrl: res.servingUrl, sha256: res.sha256, originalUrl: req.request.source.url },
      hostEnvKeys: packed(w.env?.hostKeys ?? NONE),
    },
  };
}

const BODY: Readonly<Record<string, BodyMode>> = {
  Streamed: 'STREAMED',
  Buffered: 'BUFFERED',
  BufferedPartial: 'BUFFERED_PARTIAL',
  FullDuplexStreamed: 'FULL_DUPLEX_STREAMED',
};

/** Parses a Gateway API duration (`1h2m3s4ms`) into milliseconds. */
export function durationMs(d: string): number | undefined {
  const re = /([0-9]{1,5})(h|ms|m|s)/gu;
  let total = 0;
  let consumed = 0;
  for (const m of d.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'h' ? n * 3_600_000 : unit === 'm' ? n * 60_000 : unit === 's' ? n * 1000 : n;
    consumed += m[0].length;
  }
  return consumed === d.length && d.length > 0 ? total : undefined;
}

function translateExtProc(
  ctx: TranslationContext,
  policy: EnvoyExtensionPolicy,
  index: number,
  e: ExtProcSpec,
): { ok: true; extProc: ExtProc } | { ok: false; message: string } {
  const ns = policy.metadata.namespace ?? 'default';
  const name = joinName(policyName(policy), 'extproc', index);
  const refs = e.backendRefs ?? [];
  if (refs.length === 0) return { ok: false, message: 'no backendRefs found for external service' };
  const refCtx = {
    snapshot: ctx.snapshot,
    backendEnabled: ctx.deps.backendEnabled,
    from: { group: EG_GROUP, kind: KIND, namespace: ns },
  };
  const settings: DestinationSetting[] = [];
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i]!;
    const r = resolveExtServiceRef(refCtx, ref, ns);
    if (!r.ok) return { ok: false, message: r.message };
    const tls = unsupportedTlsPolicyFor(
      ctx.snapshot,
      r.value.metadata.kind,
      r.value.metadata.namespace,
      r.value.metadata.name,
    );
    if (tls !== undefined) {
      return {
        ok: false,
        message: `BackendTLSPolicy ${tls} applies to ${r.value.metadata.kind} ${r.value.metadata.namespace}/${r.value.metadata.name}, but BackendTLSPolicy is not supported by envext yet`,
      };
    }
    if ((ref.weight ?? 1) === 0) continue;
    settings.push({
      name: joinName(name, 'backend', i),
      weight: ref.weight ?? 1,
      priority: ref.fallback === true || r.value.fallback ? 1 : 0,
      protocol: 'GRPC',
      addressType: r.value.addressType,
      endpoints: r.value.endpoints,
      metadata: r.value.metadata,
    });
  }
  const fqdn = settings.some((s) => s.addressType === 'FQDN');
  if (fqdn && settings.some((s) => s.addressType !== 'FQDN'))
    return { ok: false, message: 'external service destinations having multiple endpoint types are not supported' };
  const first = refs[0];
  if (first === undefined) return { ok: false, message: 'no backendRefs found for external service' };
  const authority = `${first.name}.${first.namespace ?? ns}${first.port === undefined ? '' : `:${first.port}`}`;
  const side = (s: { body?: string; attributes?: readonly string[] } | undefined): ExtProcSide => {
    const body = s?.body === undefined ? undefined : BODY[s.body];
    const make = (): ExtProcSide => ({
      headers: s !== undefined,
      ...(body === undefined ? {} : { body }),
      attributes: packed(s?.attributes ?? NONE),
    });
    // Without attributes there are a handful of distinct sides: one shared object each.
    return (s?.attributes?.length ?? 0) === 0 ? sides.get(`${String(s !== undefined)}|${body ?? ''}`, make) : make();
  };
  const request = side(e.processingMode?.request);
  const response = side(e.processingMode?.response);
  const timeout = e.messageTimeout === undefined ? undefined : durationMs(e.messageTimeout);
  return {
    ok: true,
    extProc: {
      name,
      destination: {
        name,
        metadata: { kind: KIND, namespace: ns, name: policy.metadata.name },
        settings: packed(settings),
      },
      authority,
      ...(timeout === undefined ? {} : { messageTimeoutMs: timeout }),
      ...(e.failOpen === undefined ? {} : { failOpen: e.failOpen }),
      request,
      response,
      allowModeOverride: e.processingMode?.allowModeOverride === true,
      ...(e.shadowMode === undefined ? {} : { observabilityMode: e.shadowMode }),
      forwardingNamespaces: packed(e.metadata?.accessibleNamespaces ?? NONE),
      receivingNamespaces: packed(e.metadata?.writableNamespaces ?? NONE),
    },
  };
}

/**
 * Translates a policy's extension lists. Failed entries are dropped; a list is "fail open" only
 * if every failed entry has `failOpen: true`. Lua and dynamic modules are not supported by envext
 * yet: like an invalid Lua entry in Envoy Gateway they fail the route.
 */
export function translatePolicyExtensions(ctx: TranslationContext, policy: EnvoyExtensionPolicy): PolicyExtensions {
  const wasms: Wasm[] = [];
  const wasmErrors: string[] = [];
  let wasmFailClosed = false;
  const wasmList = policy.spec.wasm ?? [];
  for (let i = 0; i < wasmList.length; i++) {
    const w = wasmList[i]!;
    const r = translateWasm(ctx, policy, i, w);
    if (r.ok) wasms.push(r.wasm);
    else {
      wasmErrors.push(r.message);
      if (w.failOpen !== true) wasmFailClosed = true;
    }
  }
  const extProcs: ExtProc[] = [];
  const extErrors: string[] = [];
  let extFailClosed = false;
  const warnings: string[] = [];
  const extProcList = policy.spec.extProc ?? [];
  for (let i = 0; i < extProcList.length; i++) {
    const e = extProcList[i]!;
    const r = translateExtProc(ctx, policy, i, e);
    if (r.ok) extProcs.push(r.extProc);
    else {
      extErrors.push(r.message);
      if (e.failOpen !== true) extFailClosed = true;
    }
    if (e.statusOnError !== undefined) {
      // ExternalProcessor.status_on_error is newer than the Envoy API protos envext encodes with.
      warnings.push(
        `spec.extProc[${i}].statusOnError is not supported by envext yet and is ignored (errors answer 500)`,
      );
    }
    if (e.backendSettings !== undefined && Object.keys(e.backendSettings).length > 0) {
      warnings.push(
        `spec.extProc[${i}].backendSettings (${Object.keys(e.backendSettings).sort().join(', ')}) are not supported by envext yet and are ignored`,
      );
    }
  }
  if (policy.spec.mergeType !== undefined) {
    warnings.push(
      `spec.mergeType (${policy.spec.mergeType}) is not supported by envext yet: this policy replaces the parent policy instead of merging with it`,
    );
  }
  const errors: string[] = [];
  if (wasmErrors.length > 0) errors.push(`Wasm: ${wasmErrors.join('\n')}`);
  const lua = policy.spec.lua ?? [];
  if (lua.length > 0) errors.push('Lua: Lua extensions (spec.lua) are not supported by envext yet');
  if (extErrors.length > 0) errors.push(`ExtProc: ${extErrors.join('\n')}`);
  const dm = policy.spec.dynamicModule ?? [];
  if (dm.length > 0)
    errors.push(
      `DynamicModule: dynamic modules are not supported by envext yet (spec.dynamicModule has ${dm.length} entries)`,
    );
  return {
    extensions: { wasms: packed(wasms), extProcs: packed(extProcs) },
    errors: packed(errors),
    failRoute: wasmFailClosed || extFailClosed || lua.length > 0 || dm.length > 0,
    warnings: packed(warnings),
  };
}

/** Envoy Gateway's final message: errors joined by newlines, first letter upper-cased, trailing full stop. */
export function errorMessageOf(errors: readonly string[]): string {
  const joined = errors.join('\n');
  const msg = joined.charAt(0).toUpperCase() + joined.slice(1);
  return truncateMessage(msg.endsWith('.') ? msg : `${msg}.`);
}

// ---- attachment -------------------------------------------------------------------------------------

type Tier = 'rule' | 'route' | 'listener' | 'gateway';

interface AncestorEntry {
  readonly ref: ParentRefStatus;
  readonly conditions: ConditionSet;
}

/**
 * Status being built for one policy. Like Envoy Gateway (status/policy.go), the ancestor list is
 * bounded while it grows: past 17 entries the lowest-ranked one is evicted at once, so a policy
 * with very many ancestors stays O(1) per insert; an evicted ancestor that later gets a
 * higher-ranked condition comes back with only that condition.
 */
class PolicyStatusBuilder {
  readonly ancestors: AncestorEntry[] = [];
  constructor(readonly policy: EnvoyExtensionPolicy) {}
  get(ref: ParentRefStatus): ConditionSet | undefined {
    return this.ancestors.find((x) => sameAncestor(x.ref, ref))?.conditions;
  }
  set(ref: ParentRefStatus, c: Condition): void {
    const existing = this.get(ref);
    if (existing !== undefined) {
      existing.set(c);
      return;
    }
    const conditions = new ConditionSet();
    conditions.set(c);
    this.ancestors.push({ ref, conditions });
    if (this.ancestors.length > MAX_ANCESTORS + 1) {
      let worst = 0;
      for (let i = 1; i < this.ancestors.length; i++) {
        const a = this.ancestors[worst];
        const b = this.ancestors[i];
        if (
          a !== undefined &&
          b !== undefined &&
          lessAncestor(a.ref, a.conditions.toArray(), b.ref, b.conditions.toArray())
        )
          worst = i;
      }
      this.ancestors.splice(worst, 1);
    }
  }
}

/** Envoy Gateway's keep-first order: Accepted=False, then Overridden, then the rest; then namespace, then name. */
function ancestorRank(conditions: readonly Condition[]): number {
  if (conditions.some((c) => c.type === 'Accepted' && c.status === 'False')) return 0;
  if (conditions.some((c) => c.type === 'Overridden' && c.status === 'True')) return 1;
  return 2;
}

function lessAncestor(
  a: ParentRefStatus,
  ac: readonly Condition[],
  b: ParentRefStatus,
  bc: readonly Condition[],
): boolean {
  const ra = ancestorRank(ac);
  const rb = ancestorRank(bc);
  if (ra !== rb) return ra < rb;
  const na = a.namespace ?? '';
  const nb = b.namespace ?? '';
  if (na !== nb) return na < nb;
  return a.name < b.name;
}

/** Same group, kind, namespace, name and sectionName (usually the same shared object). */
function sameAncestor(a: ParentRefStatus, b: ParentRefStatus): boolean {
  return (
    a === b ||
    ((a.group ?? '') === (b.group ?? '') &&
      (a.kind ?? '') === (b.kind ?? '') &&
      (a.namespace ?? '') === (b.namespace ?? '') &&
      a.name === b.name &&
      (a.sectionName ?? '') === (b.sectionName ?? ''))
  );
}

interface ResolvedTarget {
  readonly tier: Tier;
  readonly ref: PolicyTargetReference;
  readonly gateway?: GatewayContext;
  readonly listener?: ListenerContext;
  readonly route?: RouteContext;
}

function gatewayRef(gw: GatewayContext, sectionName?: string): ParentRefStatus {
  return {
    group: GW_GROUP,
    kind: 'Gateway',
    namespace: gw.gateway.metadata.namespace ?? 'default',
    name: gw.gateway.metadata.name,
    ...(sectionName === undefined ? {} : { sectionName }),
  };
}

/** The ancestors of a route target: its parent Gateways as the route's parentRefs name them. */
function routeAncestors(route: RouteContext): ParentRefStatus[] {
  const out: ParentRefStatus[] = [];
  for (const p of route.parents) {
    // The route's own parentRef status when it has no port (the usual case): the same fields.
    const ref: ParentRefStatus =
      p.ref.port === undefined && p.ref.group === GW_GROUP && p.ref.kind === 'Gateway' && p.ref.namespace !== undefined
        ? p.ref
        : {
            group: GW_GROUP,
            kind: 'Gateway',
            namespace: p.ref.namespace ?? '',
            name: p.ref.name,
            ...(p.ref.sectionName === undefined ? {} : { sectionName: p.ref.sectionName }),
          };
    if (!out.some((r) => sameAncestor(r, ref))) out.push(ref);
  }
  return out;
}

/** Targets of a policy: targetSelectors matches first (oldest object first), then targetRef(s). */
function policyTargets(ctx: TranslationContext, policy: EnvoyExtensionPolicy): PolicyTargetReference[] {
  const ns = policy.metadata.namespace ?? 'default';
  const out: PolicyTargetReference[] = [];
  const seen = new Set<string>();
  const push = (t: PolicyTargetReference): void => {
    const k = `${t.group}/${t.kind}/${t.name}/${t.sectionName ?? ''}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(t);
    }
  };
  for (const sel of policy.spec.targetSelectors ?? []) {
    const candidates: { kind: string; name: string; ns: string; labels: Record<string, string>; created: string }[] =
      [];
    if (sel.kind === 'Gateway') {
      for (const g of ctx.gateways.values()) {
        const m = g.gateway.metadata;
        candidates.push({
          kind: 'Gateway',
          name: m.name,
          ns: m.namespace ?? '',
          labels: { ...(m.labels ?? {}) },
          created: m.creationTimestamp ?? '',
        });
      }
    } else {
      for (const r of ctx.routes) {
        if (r.kind !== sel.kind) continue;
        const m = r.route.metadata;
        candidates.push({
          kind: r.kind,
          name: m.name,
          ns: m.namespace ?? '',
          labels: { ...(m.labels ?? {}) },
          created: m.creationTimestamp ?? '',
        });
      }
    }
    const matched = candidates
      .filter((c) => c.ns === ns) // cross-namespace selection needs ReferenceGrants; only Same is supported so far
      .filter((c) =>
        selectorMatches(
          {
            ...(sel.matchLabels === undefined ? {} : { matchLabels: sel.matchLabels }),
            ...(sel.matchExpressions === undefined ? {} : { matchExpressions: sel.matchExpressions }),
          },
          c.labels,
        ),
      )
      .sort((a, b) => cmp(a.created, b.created) || cmp(a.name, b.name));
    for (const c of matched) push({ group: GW_GROUP, kind: c.kind, name: c.name });
  }
  if (policy.spec.targetRef !== undefined) push(policy.spec.targetRef);
  for (const t of policy.spec.targetRefs ?? []) push(t);
  return out;
}

function tierOf(t: PolicyTargetReference): Tier | 'listenerset' | 'other' {
  if (t.kind === 'Gateway') return t.sectionName === undefined ? 'gateway' : 'listener';
  if (t.kind === 'ListenerSet') return 'listenerset';
  if (t.kind === 'HTTPRoute' || t.kind === 'GRPCRoute') return t.sectionName === undefined ? 'route' : 'rule';
  return 'other';
}

/**
 * Attaches every EnvoyExtensionPolicy to the IR routes of our Gateways and returns the policy
 * statuses (only policies with at least one ancestor have one).
 */
export function translateEnvoyExtensionPolicies(ctx: TranslationContext): Map<string, PolicyAncestorStatus[]> {
  const policies = sortPolicies(listResources(ctx.snapshot, 'EnvoyExtensionPolicy'));
  const builders = new Map<EnvoyExtensionPolicy, PolicyStatusBuilder>();
  const translations = new Map<EnvoyExtensionPolicy, PolicyExtensions>();
  const translated = (p: EnvoyExtensionPolicy): PolicyExtensions => {
    let t = translations.get(p) ?? (ctx.deps.cache?.policies.get(p) as PolicyExtensions | undefined);
    if (t === undefined) {
      t = translatePolicyExtensions(ctx, p);
      ctx.deps.cache?.policies.set(p, t);
    }
    translations.set(p, t);
    return t;
  };
  const builder = (p: EnvoyExtensionPolicy): PolicyStatusBuilder => {
    let b = builders.get(p);
    if (b === undefined) {
      b = new PolicyStatusBuilder(p);
      builders.set(p, b);
    }
    return b;
  };

  const routesByKey = new Map<string, RouteContext>();
  for (const r of ctx.routes)
    routesByKey.set(`${r.kind}/${r.route.metadata.namespace ?? ''}/${r.route.metadata.name}`, r);

  // Who claimed which scope (for Conflicted and Overridden).
  const claimed = new Map<string, EnvoyExtensionPolicy>();
  /** Scope keys claimed per tier, with what they cover, for Overridden messages. */
  const claimedRoutes: RouteContext[] = [];
  const claimedRules: { route: RouteContext; rule: string }[] = [];
  const claimedListeners: ListenerContext[] = [];
  const gatewayClaims: { policy: EnvoyExtensionPolicy; gateway: GatewayContext; listener?: ListenerContext }[] = [];
  const routeClaims: { policy: EnvoyExtensionPolicy; route: RouteContext }[] = [];

  // Pre-resolve targets once per policy.
  /** Resolved targets per tier, in policy order (policies are sorted). */
  const targetsByTier: Record<Tier, { policy: EnvoyExtensionPolicy; target: ResolvedTarget }[]> = {
    rule: [],
    route: [],
    listener: [],
    gateway: [],
  };
  for (const p of policies) {
    const ns = p.metadata.namespace ?? 'default';
    const out: ResolvedTarget[] = [];
    for (const t of policyTargets(ctx, p)) {
      const tier = tierOf(t);
      if (t.group !== GW_GROUP) continue;
      if (tier === 'gateway' || tier === 'listener') {
        const gw = ctx.gateways.get(`${ns}/${t.name}`);
        if (gw === undefined) continue; // missing or not ours: no status (Envoy Gateway assumes another controller)
        out.push({ tier, ref: t, gateway: gw });
      } else if (tier === 'route' || tier === 'rule') {
        const r = routesByKey.get(`${t.kind}/${ns}/${t.name}`);
        if (r === undefined) {
          // A route whose parents are ListenerSets (not supported yet) would otherwise get no status.
          const route =
            t.kind === 'HTTPRoute' || t.kind === 'GRPCRoute'
              ? getResource(ctx.snapshot, t.kind, ns, t.name)
              : undefined;
          for (const pr of route?.spec.parentRefs ?? []) {
            if (pr.kind !== 'ListenerSet') continue;
            builder(p).set(
              {
                group: GW_GROUP,
                kind: 'ListenerSet',
                namespace: pr.namespace ?? ns,
                name: pr.name,
                ...(pr.sectionName === undefined ? {} : { sectionName: pr.sectionName }),
              },
              condition(
                'Accepted',
                false,
                'Invalid',
                `${t.kind} ${ns}/${t.name} attaches through a ListenerSet; ListenerSet parents are not supported by envext yet.`,
                p.metadata.generation,
              ),
            );
          }
          continue;
        }
        out.push({ tier, ref: t, route: r });
      } else if (tier === 'listenerset') {
        // ListenerSet is not supported yet: say so on the ancestor, never silently.
        builder(p).set(
          {
            group: GW_GROUP,
            kind: 'ListenerSet',
            namespace: ns,
            name: t.name,
            ...(t.sectionName === undefined ? {} : { sectionName: t.sectionName }),
          },
          condition(
            'Accepted',
            false,
            'Invalid',
            'ListenerSet targets are not supported by envext yet.',
            p.metadata.generation,
          ),
        );
      }
      // TCPRoute/UDPRoute/TLSRoute: envext does not translate these kinds, so they never exist here.
    }
    for (const target of out) targetsByTier[target.tier].push({ policy: p, target });
  }

  const apply = (p: EnvoyExtensionPolicy, routes: readonly MutableRoute[]): void => {
    const t = translated(p);
    for (const r of routes) {
      if (r.envoyExtensions !== undefined) continue; // a more specific policy already decided
      if (t.failRoute) {
        r.envoyExtensions = NO_EXTENSIONS;
        r.directResponse = { statusCode: 500 };
        delete r.destination;
      } else {
        r.envoyExtensions = t.extensions;
      }
    }
  };

  const markAccepted = (p: EnvoyExtensionPolicy, refs: readonly ParentRefStatus[]): void => {
    const t = translated(p);
    const gen = p.metadata.generation;
    for (const ref of refs) {
      const b = builder(p);
      if (t.errors.length > 0) b.set(ref, condition('Accepted', false, 'Invalid', errorMessageOf(t.errors), gen));
      else if (b.get(ref)?.has('Accepted') !== true)
        b.set(ref, condition('Accepted', true, 'Accepted', 'Policy has been accepted.', gen));
    }
  };

  /**
   * Claims a scope (`rule/…`, `route/…`, `listener/…`, `gateway/…`) for `p`. When another policy
   * of the same tier holds it already, `p` is Conflicted on `refs` and does not attach there.
   */
  const claim = (p: EnvoyExtensionPolicy, key: string, refs: readonly ParentRefStatus[], target: string): boolean => {
    const holder = claimed.get(key);
    if (holder !== undefined && holder !== p) {
      const message = `Unable to target ${target}, another EnvoyExtensionPolicy has already attached to it`;
      for (const ref of refs)
        builder(p).set(ref, condition('Accepted', false, 'Conflicted', message, p.metadata.generation));
      return false;
    }
    claimed.set(key, p);
    return true;
  };

  const tiers: Tier[] = ['rule', 'route', 'listener', 'gateway'];
  for (const tier of tiers) {
    for (const { policy: p, target } of targetsByTier[tier]) {
      const gen = p.metadata.generation;
      if ((tier === 'route' || tier === 'rule') && target.route !== undefined) {
        const rc = target.route;
        const routeName = rc.route.metadata.name;
        const ancestors = routeAncestors(rc);
        if (tier === 'rule') {
          const section = target.ref.sectionName ?? '';
          const hasRule = (rc.route.spec.rules ?? []).some((r) => r.name === section);
          if (!hasRule) {
            for (const a of ancestors) {
              builder(p).set(
                a,
                condition(
                  'Accepted',
                  false,
                  'TargetNotFound',
                  `No section name ${section} found for ${rc.kind} ${rc.route.metadata.namespace ?? ''}/${routeName}`,
                  gen,
                ),
              );
            }
            continue;
          }
          const key = `rule/${rc.kind}/${rc.route.metadata.namespace ?? ''}/${routeName}/${section}`;
          if (!claim(p, key, ancestors, `RouteRule ${routeName}/${section}`)) continue;
          claimedRules.push({ route: rc, rule: section });
          markAccepted(p, ancestors);
          apply(
            p,
            rc.parents.flatMap((pc) => pc.irRoutes.filter((r) => r.origin.ruleName === section)),
          );
        } else {
          const key = `route/${rc.kind}/${rc.route.metadata.namespace ?? ''}/${routeName}`;
          if (!claim(p, key, ancestors, `${rc.kind} ${routeName}`)) continue;
          claimedRoutes.push(rc);
          routeClaims.push({ policy: p, route: rc });
          markAccepted(p, ancestors);
          apply(
            p,
            rc.parents.flatMap((pc) => pc.irRoutes),
          );
        }
      } else if ((tier === 'listener' || tier === 'gateway') && target.gateway !== undefined) {
        const gw = target.gateway;
        const gwName = gw.gateway.metadata.name;
        if (tier === 'listener') {
          const section = target.ref.sectionName ?? '';
          const ref = gatewayRef(gw, section);
          const listener = gw.listeners.find((l) => l.spec.name === section);
          if (listener === undefined) {
            builder(p).set(
              ref,
              condition(
                'Accepted',
                false,
                'TargetNotFound',
                `No section name ${section} found for Gateway ${gw.key}`,
                gen,
              ),
            );
            continue;
          }
          const key = `listener/${gw.key}/${section}`;
          if (!claim(p, key, [ref], `Listener ${gwName}/${section}`)) continue;
          claimedListeners.push(listener);
          gatewayClaims.push({ policy: p, gateway: gw, listener });
          markAccepted(p, [ref]);
          apply(p, listener.ir?.routes ?? []);
        } else {
          const ref = gatewayRef(gw);
          const key = `gateway/${gw.key}`;
          if (!claim(p, key, [ref], `Gateway ${gwName}`)) continue;
          gatewayClaims.push({ policy: p, gateway: gw });
          markAccepted(p, [ref]);
          apply(
            p,
            gw.listeners.flatMap((l) => l.ir?.routes ?? []),
          );
        }
      }
    }
  }

  // Overridden: more specific scopes beneath a claimed scope that have their own policy.
  const routeKey = (r: RouteContext): string => `${r.route.metadata.namespace ?? ''}/${r.route.metadata.name}`;
  const routeOnGateway = (r: RouteContext, gw: GatewayContext, listener?: ListenerContext): boolean =>
    r.parents.some((pc) => pc.gateway === gw && (listener === undefined || pc.listeners.includes(listener)));
  for (const claim of gatewayClaims) {
    const parts: string[] = [];
    if (claim.listener === undefined) {
      const ls = claimedListeners
        .filter((l) => l.gateway === claim.gateway)
        .map((l) => `${claim.gateway.key}/${l.spec.name}`);
      if (ls.length > 0) parts.push(`these gateway listeners: [${[...new Set(ls)].sort().join(' ')}]`);
    }
    const rs = claimedRoutes.filter((r) => routeOnGateway(r, claim.gateway, claim.listener)).map(routeKey);
    if (rs.length > 0) parts.push(`these routes: [${[...new Set(rs)].sort().join(' ')}]`);
    const rules = claimedRules
      .filter((x) => routeOnGateway(x.route, claim.gateway, claim.listener))
      .map((x) => `${routeKey(x.route)}/${x.rule}`);
    if (rules.length > 0) parts.push(`these route rules: [${[...new Set(rules)].sort().join(' ')}]`);
    if (parts.length === 0) continue;
    const ref = gatewayRef(claim.gateway, claim.listener?.spec.name);
    builder(claim.policy).set(
      ref,
      condition(
        'Overridden',
        true,
        'Overridden',
        `This policy is being overridden by other envoyExtensionPolicies for ${parts.join(' and ')}`,
        claim.policy.metadata.generation,
      ),
    );
  }
  for (const claim of routeClaims) {
    const rules = claimedRules.filter((x) => x.route === claim.route).map((x) => x.rule);
    if (rules.length === 0) continue;
    for (const a of routeAncestors(claim.route)) {
      builder(claim.policy).set(
        a,
        condition(
          'Overridden',
          true,
          'Overridden',
          `This policy is being overridden by other envoyExtensionPolicies for these route rules: [${[...new Set(rules)].sort().join(' ')}]`,
          claim.policy.metadata.generation,
        ),
      );
    }
  }

  // Warnings and the final shape.
  const out = new Map<string, PolicyAncestorStatus[]>();
  for (const p of policies) {
    const b = builders.get(p);
    if (b === undefined || b.ancestors.length === 0) continue;
    const gen = p.metadata.generation;
    const warnings: { reason: string; message: string }[] = [];
    if (p.spec.targetRef !== undefined)
      warnings.push({
        reason: 'DeprecatedField',
        message: 'spec.targetRef is deprecated, use spec.targetRefs instead',
      });
    for (const w of translations.get(p)?.warnings ?? []) warnings.push({ reason: 'UnsupportedField', message: w });
    const ancestors = b.ancestors.map((a) => {
      const list = a.conditions.toArray();
      if (warnings.length > 0) {
        const reasons = new Set(warnings.map((w) => w.reason));
        const warning = condition(
          'Warning',
          true,
          reasons.size === 1 ? (warnings[0]?.reason ?? 'Warnings') : 'Warnings',
          warnings.map((w) => w.message).join('; '),
          gen,
        );
        // Envoy Gateway writes Accepted, then Warning, then the rest.
        const acceptedAt = list.findIndex((c) => c.type === 'Accepted');
        list.splice(acceptedAt + 1, 0, warning);
      }
      return { ref: a.ref, conditions: list };
    });
    out.set(
      `${p.metadata.namespace ?? ''}/${p.metadata.name}`,
      truncateAncestors(ancestors, ctx.deps.controllerName, gen),
    );
  }
  return out;
}

/** More than 16 ancestors: keep the 16 most relevant (Envoy Gateway order) and add `Aggregated` to the last. */
function truncateAncestors(
  ancestors: { ref: ParentRefStatus; conditions: Condition[] }[],
  controllerName: string,
  gen: number | undefined,
): PolicyAncestorStatus[] {
  let list = ancestors;
  if (list.length > MAX_ANCESTORS) {
    list = [...list]
      .sort((a, b) =>
        lessAncestor(a.ref, a.conditions, b.ref, b.conditions)
          ? -1
          : lessAncestor(b.ref, b.conditions, a.ref, a.conditions)
            ? 1
            : 0,
      )
      .slice(0, MAX_ANCESTORS);
    const last = list[MAX_ANCESTORS - 1];
    if (last !== undefined) {
      list[MAX_ANCESTORS - 1] = {
        ref: last.ref,
        conditions: [
          ...last.conditions,
          condition(
            'Aggregated',
            true,
            'Aggregated',
            `Ancestors have been truncated because the number of policy ancestors exceeds ${MAX_ANCESTORS}.`,
            gen,
          ),
        ],
      };
    }
  }
  return list.map((a) => ({ ancestorRef: a.ref, controllerName, conditions: a.conditions }));
}
