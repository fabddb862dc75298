/**
 * Resolving backend references (route backendRefs and ext_proc backendRefs) to endpoints, and
 * ReferenceGrant checks. Ported from Envoy Gateway `internal/gatewayapi/ext_service.go`,
 * `validate.go` and `backend.go`; messages are verbatim where Envoy Gateway has one.
 */
import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import type { Backend, BackendRef, EndpointSlice, Service } from '../api/types.js';
import { NONE, packed } from '../ir/lists.js';
import type { DestinationSetting, Endpoint, ResourceMetadata } from '../ir/types.js';
import { getResource, listResources, type ResourceSnapshot } from '../provider/snapshot.js';

export type Resolved<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string; readonly message: string };

/**
 * True when a ReferenceGrant in `toNamespace` allows `from` (group/kind/namespace) to refer to
 * `to` (group/kind/name). An absent or empty `to.name` allows every name.
 */
export function referenceAllowed(
  snapshot: ResourceSnapshot,
  from: { readonly group: string; readonly kind: string; readonly namespace: string },
  to: { readonly group: string; readonly kind: string; readonly namespace: string; readonly name: string },
): boolean {
  if (from.namespace === to.namespace) return true;
  for (const grant of listResources(snapshot, 'ReferenceGrant')) {
    if (grant.metadata.namespace !== to.namespace) continue;
    const fromOk = grant.spec.from.some(
      (f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace,
    );
    if (!fromOk) continue;
    const toOk = grant.spec.to.some(
      (t) =>
        t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name),
    );
    if (toOk) return true;
  }
  return false;
}

const CORE_GROUP = '';
const EG_GROUP = 'gateway.envoyproxy.io';
const MCS_GROUP = 'multicluster.x-k8s.io';

export interface BackendRefContext {
  readonly snapshot: ResourceSnapshot;
  readonly backendEnabled: boolean;
  /** The referring object, for ReferenceGrants. */
  readonly from: { readonly group: string; readonly kind: string; readonly namespace: string };
}

/** Why a resource of this identity was rejected by validation, or undefined if it was not. */
export function rejectedReason(
  snapshot: ResourceSnapshot,
  kind: string,
  namespace: string,
  name: string,
): string | undefined {
  const r = snapshot.rejected.find((x) => x.kind === kind && x.namespace === namespace && x.name === name);
  return r === undefined
    ? undefined
    : r.problems.map((p) => (p.field === '' ? p.message : `${p.field}: ${p.message}`)).join('; ');
}

/** A snapshot's EndpointSlices by `namespace/service-name` (built once per snapshot: snapshots never change). */
const slicesMemo = new WeakMap<ResourceSnapshot, Map<string, EndpointSlice[]>>();

function slicesOf(
  snapshot: ResourceSnapshot,
  namespace: string | undefined,
  service: string,
): readonly EndpointSlice[] {
  let index = slicesMemo.get(snapshot);
  if (index === undefined) {
    index = new Map();
    for (const slice of listResources(snapshot, 'EndpointSlice')) {
      const name = slice.metadata.labels?.['kubernetes.io/service-name'];
      if (name === undefined) continue;
      const key = `${slice.metadata.namespace ?? ''}/${name}`;
      const list = index.get(key);
      if (list === undefined) index.set(key, [slice]);
      else list.push(slice);
    }
    slicesMemo.set(snapshot, index);
  }
  return index.get(`${namespace ?? ''}/${service}`) ?? NONE;
}

/**
 * Endpoints of a Service port, from its EndpointSlices (ready endpoints only). One list per
 * snapshot, Service and port, shared by every route that sends to it.
 */
const serviceEndpointsMemo = new WeakMap<ResourceSnapshot, WeakMap<Service, Map<number, readonly Endpoint[]>>>();

function serviceEndpoints(snapshot: ResourceSnapshot, service: Service, port: number): readonly Endpoint[] {
  let bySnapshot = serviceEndpointsMemo.get(snapshot);
  if (bySnapshot === undefined)
    serviceEndpointsMemo.set(snapshot, (bySnapshot = new WeakMap<Service, Map<number, readonly Endpoint[]>>()));
  let byPort = bySnapshot.get(service);
  if (byPort === undefined) bySnapshot.set(service, (byPort = new Map<number, readonly Endpoint[]>()));
  let endpoints = byPort.get(port);
  if (endpoints === undefined) byPort.set(port, (endpoints = readServiceEndpoints(snapshot, service, port)));
  return endpoints;
}

function readServiceEndpoints(snapshot: ResourceSnapshot, service: Service, port: number): readonly Endpoint[] {
  const sp = service.spec.ports?.find((p) => p.port === port);
  const out: Endpoint[] = [];
  for (const slice of slicesOf(snapshot, service.metadata.namespace, service.metadata.name)) {
    // The slice port with the service port's name (unnamed ports match the unnamed slice port).
    const slicePort =
      slice.ports?.find((p) => (p.name ?? '') === (sp?.name ?? '')) ??
      (slice.ports?.length === 1 ? slice.ports[0] : undefined);
    const targetPort = slicePort?.port ?? (typeof sp?.targetPort === 'number' ? sp.targetPort : port);
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready === false) continue;
      for (const address of ep.addresses) {
        out.push(
          ep.zone === undefined
            ? { host: address, port: targetPort }
            : { host: address, port: targetPort, zone: ep.zone },
        );
      }
    }
  }
  return packed(out);
}

export interface ResolvedBackend {
  readonly endpoints: readonly Endpoint[];
  readonly addressType: DestinationSetting['addressType'];
  readonly metadata: ResourceMetadata;
  readonly fallback: boolean;
  /** The Backend's appProtocols (h2c makes HTTP routes use HTTP/2). */
  readonly appProtocols: readonly string[];
}

/** Address type of a set of Backend endpoints; undefined when FQDN is mixed with others. */
function addressTypeOf(endpoints: readonly Endpoint[], fqdn: boolean[]): DestinationSetting['addressType'] | undefined {
  const hasFqdn = fqdn.some(Boolean);
  if (hasFqdn) return fqdn.every(Boolean) ? 'FQDN' : undefined;
  const uds = endpoints.filter((e) => 'path' in e).length;
  if (uds === 0) return 'IP';
  return uds === endpoints.length ? 'UDS' : 'STATIC';
}

type BackendEndpoints = Resolved<{ endpoints: readonly Endpoint[]; addressType: DestinationSetting['addressType'] }>;

/** Per Backend object (a pure function of it): one endpoint list shared by every route that uses it. */
const backendEndpointsMemo = new WeakMap<Backend, BackendEndpoints>();

function backendEndpoints(backend: Backend): BackendEndpoints {
  let r = backendEndpointsMemo.get(backend);
  if (r === undefined) backendEndpointsMemo.set(backend, (r = readBackendEndpoints(backend)));
  return r;
}

function readBackendEndpoints(backend: Backend): BackendEndpoints {
  const endpoints: Endpoint[] = [];
  const fqdn: boolean[] = [];
  for (const ep of backend.spec.endpoints ?? []) {
    if (ep.ip !== undefined) {
      endpoints.push(
        ep.zone === undefined
          ? { host: ep.ip.address, port: ep.ip.port }
          : { host: ep.ip.address, port: ep.ip.port, zone: ep.zone },
      );
      fqdn.push(false);
    } else if (ep.fqdn !== undefined) {
      endpoints.push({ host: ep.fqdn.hostname, port: ep.fqdn.port });
      fqdn.push(true);
    } else if (ep.unix !== undefined) {
      endpoints.push({ path: ep.unix.path });
      fqdn.push(false);
    }
  }
  const addressType = addressTypeOf(endpoints, fqdn);
  if (addressType === undefined) {
    return {
      ok: false,
      reason: 'Invalid',
      message: 'external service destinations having multiple endpoint types are not supported',
    };
  }
  return { ok: true, value: { endpoints: packed(endpoints), addressType } };
}

/** Why a Backend cannot be used at all (its own status says the same), or undefined. */
export function backendProblem(backend: Backend): string | undefined {
  if (backend.spec.type === 'DynamicResolver') return undefined;
  for (const ep of backend.spec.endpoints ?? []) {
    if (ep.fqdn !== undefined) {
      const h = ep.fqdn.hostname.replace(/\.$/u, '');
      if (isIP(h) !== 0) return `hostname ${ep.fqdn.hostname} is an IP address`;
      if (!h.includes('.'))
        return `hostname ${ep.fqdn.hostname} should be a domain with at least two segments separated by dots`;
    }
  }
  return undefined;
}

/**
 * Resolves one backendRef of an ext_proc entry (Envoy Gateway `ext_service.go` order: sanity,
 * existence, ReferenceGrant, destination). `policyNamespace` is the default namespace.
 */
export function resolveExtServiceRef(
  ctx: BackendRefContext,
  ref: BackendRef,
  policyNamespace: string,
): Resolved<ResolvedBackend> {
  const group = ref.group ?? CORE_GROUP;
  const kind = ref.kind ?? 'Service';
  const ns = ref.namespace ?? policyNamespace;
  if (![CORE_GROUP, MCS_GROUP, EG_GROUP].includes(group)) {
    return {
      ok: false,
      reason: 'Invalid',
      message: `group is invalid, only the core API group (specified by omitting the group field or setting it to an empty string), ${MCS_GROUP} and ${EG_GROUP} are supported`,
    };
  }
  if (kind === 'ServiceImport') {
    return {
      ok: false,
      reason: 'Invalid',
      message: `ServiceImport ${ns}/${ref.name} cannot be used: multi-cluster ServiceImports are not supported by envext yet`,
    };
  }
  if (kind !== 'Service' && kind !== 'Backend') {
    return {
      ok: false,
      reason: 'Invalid',
      message: `kind is invalid, only Service, ServiceImport and Backend are supported`,
    };
  }
  if (kind === 'Service' && ref.port === undefined) {
    return {
      ok: false,
      reason: 'Invalid',
      message: 'a valid port number corresponding to a port on the Service must be specified',
    };
  }
  return resolveRef(ctx, { group, kind, ns, name: ref.name, port: ref.port });
}

function resolveRef(
  ctx: BackendRefContext,
  ref: { group: string; kind: 'Service' | 'Backend'; ns: string; name: string; port: number | undefined },
): Resolved<ResolvedBackend> {
  const { snapshot } = ctx;
  const metadata: ResourceMetadata = {
    kind: ref.kind,
    namespace: ref.ns,
    name: ref.name,
    ...(ref.port === undefined ? {} : { sectionName: String(ref.port) }),
  };
  if (ref.kind === 'Service') {
    const svc = getResource(snapshot, 'Service', ref.ns, ref.name);
    if (svc === undefined) {
      const why = rejectedReason(snapshot, 'Service', ref.ns, ref.name);
      const message =
        why === undefined
          ? `service ${ref.ns}/${ref.name} not found`
          : `service ${ref.ns}/${ref.name} is invalid: ${why}`;
      return { ok: false, reason: 'BackendNotFound', message };
    }
    const port = ref.port ?? 0;
    const sp = svc.spec.ports?.find((p) => p.port === port && (p.protocol ?? 'TCP') === 'TCP');
    if (sp === undefined)
      return {
        ok: false,
        reason: 'BackendNotFound',
        message: `TCP Port ${port} not found on service ${ref.ns}/${ref.name}`,
      };
    if (!referenceAllowed(snapshot, ctx.from, { group: '', kind: 'Service', namespace: ref.ns, name: ref.name })) {
      return {
        ok: false,
        reason: 'RefNotPermitted',
        message: `backend ref to Service ${ref.ns}/${ref.name} not permitted by any ReferenceGrant`,
      };
    }
    return {
      ok: true,
      value: {
        endpoints: serviceEndpoints(snapshot, svc, port),
        addressType: 'IP',
        metadata,
        fallback: false,
        appProtocols: sp.appProtocol === undefined ? [] : [sp.appProtocol],
      },
    };
  }
  if (!ctx.backendEnabled) {
    return {
      ok: false,
      reason: 'Invalid',
      message: `resource ${ref.name} of type Backend cannot be used since Backend is disabled in Envoy Gateway configuration`,
    };
  }
  const backend = getResource(snapshot, 'Backend', ref.ns, ref.name);
  if (backend === undefined) {
    const why = rejectedReason(snapshot, 'Backend', ref.ns, ref.name);
    const message =
      why === undefined
        ? `backend ${ref.ns}/${ref.name} not found`
        : `backend ${ref.ns}/${ref.name} is invalid: ${why}`;
    return { ok: false, reason: 'BackendNotFound', message };
  }
  if (!referenceAllowed(snapshot, ctx.from, { group: EG_GROUP, kind: 'Backend', namespace: ref.ns, name: ref.name })) {
    return {
      ok: false,
      reason: 'RefNotPermitted',
      message: `backend ref to Backend ${ref.ns}/${ref.name} not permitted by any ReferenceGrant`,
    };
  }
  if (backend.spec.type === 'DynamicResolver') {
    return { ok: false, reason: 'Invalid', message: `dynamic resolver backend ${ref.ns}/${ref.name} is not supported` };
  }
  const problem = backendProblem(backend);
  if (problem !== undefined)
    return { ok: false, reason: 'Invalid', message: `backend ${ref.ns}/${ref.name} is invalid: ${problem}` };
  const eps = backendEndpoints(backend);
  if (!eps.ok) return eps;
  return {
    ok: true,
    value: {
      endpoints: eps.value.endpoints,
      addressType: eps.value.addressType,
      metadata,
      fallback: backend.spec.fallback === true,
      appProtocols: backend.spec.appProtocols ?? [],
    },
  };
}

/** Resolves one route backendRef (HTTPRoute/GRPCRoute rules). */
export function resolveRouteBackendRef(
  ctx: BackendRefContext,
  ref: BackendRef,
  routeNamespace: string,
): Resolved<ResolvedBackend> {
  const group = ref.group ?? CORE_GROUP;
  const kind = ref.kind ?? 'Service';
  const ns = ref.namespace ?? routeNamespace;
  if (!((group === CORE_GROUP && kind === 'Service') || (group === EG_GROUP && kind === 'Backend'))) {
    return {
      ok: false,
      reason: 'InvalidKind',
      message: `Unsupported backend kind ${group === '' ? '' : `${group}/`}${kind}: envext routes to core Services and ${EG_GROUP} Backends`,
    };
  }
  if (kind === 'Service' && ref.port === undefined) {
    return {
      ok: false,
      reason: 'UnsupportedValue',
      message: `A valid port number corresponding to a port on the Service must be specified`,
    };
  }
  const r = resolveRef(ctx, { group, kind: kind, ns, name: ref.name, port: ref.port });
  if (!r.ok && r.reason === 'BackendNotFound') {
    // Gateway API wording for routes.
    return {
      ok: false,
      reason: 'BackendNotFound',
      message: r.message.replace(/^service /u, 'Service ').replace(/^backend /u, 'Backend '),
    };
  }
  return r;
}

/** Decodes a Secret value (data is base64, stringData is plain). */
export function secretValue(
  snapshot: ResourceSnapshot,
  namespace: string,
  name: string,
  key: string,
): string | undefined {
  const s = getResource(snapshot, 'Secret', namespace, name);
  if (s === undefined) return undefined;
  const plain = s.stringData?.[key];
  if (plain !== undefined) return plain;
  const b64 = s.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

/**
 * A BackendTLSPolicy (not supported by envext yet) that targets this Service/Backend, as
 * `namespace/name`. Its presence means the peer expects TLS; envext would connect in plain text,
 * so callers refuse the reference instead of silently dropping TLS.
 */
export function unsupportedTlsPolicyFor(
  snapshot: ResourceSnapshot,
  kind: string,
  namespace: string,
  name: string,
): string | undefined {
  for (const r of snapshot.rejected) {
    if (r.kind !== 'BackendTLSPolicy' || r.namespace !== namespace) continue;
    const spec =
      typeof r.value === 'object' && r.value !== null
        ? (r.value as { spec?: { targetRefs?: unknown } }).spec
        : undefined;
    const targets = Array.isArray(spec?.targetRefs) ? (spec.targetRefs as unknown[]) : [];
    for (const t of targets) {
      if (typeof t !== 'object' || t === null) continue;
      const tr = t as { kind?: unknown; name?: unknown };
      if (tr.kind === kind && tr.name === name) return `${r.namespace}/${r.name}`;
    }
  }
  return undefined;
}
