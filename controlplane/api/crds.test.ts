/**
 * The CRD manifests under crds/ are generated from schemas.ts (golden files: `npm run
 * testdata:update` rewrites them). The structural checks below are the API server's own rules
 * for `kubectl apply` of a v1 CRD: every node typed (or int-or-string / preserve-unknown),
 * `items` on arrays, only known keywords, CEL rules with a message.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CRDS, crdManifest } from './crds.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'crds');

const KEYWORDS = new Set([
  'type',
  'description',
  'properties',
  'required',
  'items',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'default',
  'format',
  'additionalProperties',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-int-or-string',
  'x-kubernetes-validations',
]);

function structuralProblems(node: Record<string, unknown>, path: string, out: string[]): void {
  for (const k of Object.keys(node)) if (!KEYWORDS.has(k)) out.push(`${path}: unknown keyword ${k}`);
  const typed =
    typeof node['type'] === 'string' ||
    node['x-kubernetes-int-or-string'] === true ||
    node['x-kubernetes-preserve-unknown-fields'] === true;
  if (!typed) out.push(`${path}: no type`);
  if (node['type'] === 'array' && typeof node['items'] !== 'object') out.push(`${path}: array without items`);
  for (const v of (node['x-kubernetes-validations'] as { rule?: unknown; message?: unknown }[] | undefined) ?? []) {
    if (typeof v.rule !== 'string' || typeof v.message !== 'string') out.push(`${path}: CEL rule without rule/message`);
    else if ([...v.rule].filter((c) => c === '(').length !== [...v.rule].filter((c) => c === ')').length)
      out.push(`${path}: unbalanced parentheses in ${v.rule}`);
  }
  const props = node['properties'] as Record<string, Record<string, unknown>> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) structuralProblems(v, `${path}.${k}`, out);
  if (typeof node['items'] === 'object') structuralProblems(node['items'] as Record<string, unknown>, `${path}[]`, out);
  if (typeof node['additionalProperties'] === 'object')
    structuralProblems(node['additionalProperties'] as Record<string, unknown>, `${path}{}`, out);
}

describe('CRD manifests', () => {
  it.each(CRDS)('$plural is up to date', async (crd) => {
    await expect(
      `# Generated from controlplane/api/schemas.ts by controlplane/api/crds.test.ts; do not edit.\n${stringify(crdManifest(crd), { lineWidth: 0 })}`,
    ).toMatchFileSnapshot(join(dir, `gateway.envoyproxy.io_${crd.plural}.yaml`));
  });

  it.each(CRDS)('$plural is a structural v1 schema with a status subresource', (crd) => {
    const m = crdManifest(crd) as {
      spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> }; subresources: unknown }[] };
    };
    const v = m.spec.versions[0]!;
    expect(v.subresources).toEqual({ status: {} });
    const problems: string[] = [];
    structuralProblems(v.schema.openAPIV3Schema, crd.kind, problems);
    expect(problems).toEqual([]);
  });

  it('carries the CEL rules with Envoy Gateway messages', () => {
    const text = stringify(crdManifest(CRDS[0]!), { lineWidth: 0 });
    for (const msg of [
      'either targetRef or targetRefs must be used',
      'If type is HTTP, http field needs to be set.',
      'BackendRefs must be used, backendRef is not supported.',
      'writableNamespaces cannot contain well-known Envoy HTTP filter namespaces',
      'Replace is not a valid MergeType for EnvoyExtensionPolicy',
    ]) {
      expect(text).toContain(msg);
    }
  });
});
