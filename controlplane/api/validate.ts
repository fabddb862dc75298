/**
 * Turning untrusted objects (YAML documents, API server items) into typed resources.
 *
 * `parseResource` identifies the kind from `apiVersion`/`kind`, runs the kind's schema (structure,
 * enums, limits, patterns and the CEL rules, schemas.ts) and returns either the typed, defaulted
 * resource or every problem found. Nothing here throws on bad input.
 */
import type { Problem } from '../../common/errors.js';
import { validate, type ValidateOptions } from './schema.js';
import { SCHEMAS } from './schemas.js';
import { CLUSTER_SCOPED, RESOURCE_KINDS, type ResourceByKind, type ResourceKind } from './types.js';

/** API groups each kind may come from (the group part of apiVersion; "" is core). */
const GROUPS: Readonly<Record<ResourceKind, readonly string[]>> = {
  GatewayClass: ['gateway.networking.k8s.io'],
  Gateway: ['gateway.networking.k8s.io'],
  HTTPRoute: ['gateway.networking.k8s.io'],
  GRPCRoute: ['gateway.networking.k8s.io'],
  ReferenceGrant: ['gateway.networking.k8s.io'],
  Service: [''],
  EndpointSlice: ['discovery.k8s.io'],
  Secret: [''],
  ConfigMap: [''],
  Namespace: [''],
  EnvoyExtensionPolicy: ['gateway.envoyproxy.io'],
  Backend: ['gateway.envoyproxy.io'],
  EnvoyProxy: ['gateway.envoyproxy.io'],
};

/** Kinds we recognise but do not translate yet; they get a clear "not supported" message. */
export const UNSUPPORTED_KINDS: ReadonlySet<string> = new Set([
  'ListenerSet',
  'XListenerSet',
  'BackendTLSPolicy',
  'TCPRoute',
  'UDPRoute',
  'TLSRoute',
  'ServiceImport',
  'BackendTrafficPolicy',
  'ClientTrafficPolicy',
  'SecurityPolicy',
  'EnvoyPatchPolicy',
  'HTTPRouteFilter',
]);

export type ParsedResource =
  | { readonly ok: true; readonly kind: ResourceKind; readonly resource: ResourceByKind[ResourceKind] }
  | {
      readonly ok: false;
      readonly kind: string;
      readonly name: string;
      readonly namespace: string;
      readonly problems: Problem[];
      readonly unsupported: boolean;
    };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isResourceKind(kind: string): kind is ResourceKind {
  return (RESOURCE_KINDS as readonly string[]).includes(kind);
}

/** `Kind namespace/name` (or `Kind name`), the way problems and logs name a resource. */
export function describeResource(kind: string, namespace: string | undefined, name: string): string {
  return namespace === undefined || namespace === '' ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

/**
 * Validates one object. `defaultKind` is used when the object has no `kind` (Envoy Gateway's test
 * bundles list resources under a key that names the kind). `defaultNamespace` fills in a missing
 * namespace of namespaced kinds, as `kubectl apply` does.
 */
export function parseResource(
  input: unknown,
  where: string,
  defaultKind?: ResourceKind,
  defaultNamespace = 'default',
  options: ValidateOptions = {},
): ParsedResource {
  if (!isRecord(input)) {
    return {
      ok: false,
      kind: defaultKind ?? '',
      name: '',
      namespace: '',
      unsupported: false,
      problems: [{ resource: where, field: '', message: 'a resource must be a YAML/JSON object' }],
    };
  }
  const meta = isRecord(input['metadata']) ? input['metadata'] : {};
  const name = typeof meta['name'] === 'string' ? meta['name'] : '';
  const rawNs = typeof meta['namespace'] === 'string' ? meta['namespace'] : '';
  const kind = typeof input['kind'] === 'string' ? input['kind'] : (defaultKind ?? '');
  const resourceName = describeResource(kind === '' ? '<no kind>' : kind, rawNs, name === '' ? '<no name>' : name);
  const resource = `${resourceName} (${where})`;
  if (kind === '') {
    return {
      ok: false,
      kind,
      name,
      namespace: rawNs,
      unsupported: false,
      problems: [{ resource, field: 'kind', message: 'Required value: every resource needs apiVersion and kind' }],
    };
  }
  if (!isResourceKind(kind)) {
    const unsupported = UNSUPPORTED_KINDS.has(kind);
    return {
      ok: false,
      kind,
      name,
      namespace: rawNs,
      unsupported,
      problems: [
        {
          resource,
          field: 'kind',
          message: unsupported
            ? `${kind} is not supported by envext yet; the resource is ignored`
            : `unknown kind "${kind}"; envext reads ${RESOURCE_KINDS.join(', ')}`,
        },
      ],
    };
  }
  const problems: Problem[] = [];
  const apiVersion = input['apiVersion'];
  if (typeof apiVersion === 'string') {
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
    if (!GROUPS[kind].includes(group)) {
      problems.push({
        resource,
        field: 'apiVersion',
        message: `${kind} belongs to API group "${GROUPS[kind][0] ?? ''}", not "${group}"`,
      });
    }
  }
  const { value, problems: schemaProblems } = validate(SCHEMAS[kind], input, resource, '', options);
  problems.push(...schemaProblems);
  if (problems.length > 0) return { ok: false, kind, name, namespace: rawNs, unsupported: false, problems };
  const obj = value as Record<string, unknown>;
  // Objects are copied only where something changes (copy(), not `{...o}`: in V8 11 a spread
  // copy gets a hidden class of its own), so a valid input shares its parts with the resource.
  const rawMeta = obj['metadata'] as Record<string, unknown>;
  const metaFix: Record<string, unknown> = {};
  if (CLUSTER_SCOPED.has(kind)) {
    if ('namespace' in rawMeta) metaFix['namespace'] = undefined;
  } else if (rawNs === '') metaFix['namespace'] = defaultNamespace;
  // YAML may give a timestamp as a number or Date; policies are ordered by its string form.
  const ts = rawMeta['creationTimestamp'];
  if (typeof ts === 'number' || typeof ts === 'boolean') metaFix['creationTimestamp'] = String(ts);
  else if (ts instanceof Date) metaFix['creationTimestamp'] = ts.toISOString();
  const metadata = Object.keys(metaFix).length === 0 ? rawMeta : copy(rawMeta, metaFix);
  const fix: Record<string, unknown> = {};
  if (obj['kind'] !== kind) fix['kind'] = kind;
  if (metadata !== rawMeta) fix['metadata'] = metadata;
  // Kinds whose spec is optional (EnvoyProxy, Namespace) get an empty one, so readers need no checks.
  if (obj['spec'] === undefined && (kind === 'EnvoyProxy' || kind === 'Namespace')) fix['spec'] = {};
  const typed = Object.keys(fix).length === 0 ? obj : copy(obj, fix);
  return { ok: true, kind, resource: typed as unknown as ResourceByKind[ResourceKind] };
}

/** `o` with `changes` applied (an undefined value removes the key); keys keep their order. */
function copy(o: Record<string, unknown>, changes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!(k in changes)) out[k] = v;
    else if (changes[k] !== undefined) out[k] = changes[k];
  }
  for (const [k, v] of Object.entries(changes)) if (!(k in o) && v !== undefined) out[k] = v;
  return out;
}
