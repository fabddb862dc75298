/**
 * The status half of `envext translate` output: the input resources of our kinds with their
 * computed `status`, grouped like Envoy Gateway's golden output (`gateways:`, `httpRoutes:`,
 * `envoyExtensionPolicies:` …), plus `problems` for resources that could not be used.
 */
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { ResourceStatus } from './status.js';
import type { TranslateResult } from './translate.js';

/** Bundle keys the status output uses, per kind (Envoy Gateway's golden-file format). */
const OUTPUT_KEYS: readonly [string, string][] = [
  ['GatewayClass', 'gatewayClasses'],
  ['Gateway', 'gateways'],
  ['HTTPRoute', 'httpRoutes'],
  ['GRPCRoute', 'grpcRoutes'],
  ['EnvoyExtensionPolicy', 'envoyExtensionPolicies'],
  ['Backend', 'backends'],
];

function statusKey(kind: string, ns: string | undefined, name: string): string {
  return `${kind}/${ns ?? ''}/${name}`;
}

/** Statuses in Envoy Gateway's output format (see the file comment). */
export function statusDocument(snapshot: ResourceSnapshot, result: TranslateResult): Record<string, unknown> {
  const byKey = new Map<string, ResourceStatus>();
  for (const s of result.statuses) byKey.set(statusKey(s.kind, 'namespace' in s ? s.namespace : undefined, s.name), s);
  const out: Record<string, unknown> = {};
  for (const [kind, key] of OUTPUT_KEYS) {
    const list: unknown[] = [];
    const map = snapshot.resources[kind as 'Gateway'];
    for (const k of [...map.keys()].sort()) {
      const r = map.get(k);
      if (r === undefined) continue;
      const s = byKey.get(statusKey(kind, r.metadata.namespace, r.metadata.name));
      const { status: _old, ...rest } = r as typeof r & { status?: unknown };
      list.push(s === undefined ? rest : { ...rest, status: s.status });
    }
    if (list.length > 0) out[key] = list;
  }
  if (result.rejected.length > 0) {
    out['problems'] = result.rejected.map((r) => ({
      resource: `${r.kind === '' ? '<unknown kind>' : r.kind} ${r.namespace === '' ? '' : `${r.namespace}/`}${r.name}`,
      source: r.source,
      ...(r.unsupported ? { unsupported: true } : {}),
      messages: r.problems.map((p) => (p.field === '' ? p.message : `${p.field}: ${p.message}`)),
    }));
  }
  return out;
}
