/**
 * Running one of Envoy Gateway's Gateway API golden cases (`testdata/envoy-gateway/gatewayapi`)
 * through envext and comparing EnvoyExtensionPolicy statuses. Used by the conformance test and
 * kept out of the test file so `npm test` and ad-hoc scripts share one comparison.
 *
 * Harness facts copied from Envoy Gateway's `translator_test.go`: controller name
 * `gateway.envoyproxy.io/gatewayclass-controller`, GatewayClass `envoy-gateway-class` (implied
 * when the case has none), Backend enabled except in `backend-invalid-feature-disabled`, and the
 * mock Wasm cache (DeterministicWasmResolver).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { EG_CONTROLLER_NAME } from '../api/types.js';
import { parseYaml, snapshotFromObjects } from '../provider/file/load.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { ResourceStatus } from './status.js';
import { translateGatewayApi, type TranslateResult } from './translate.js';
import { DeterministicWasmResolver } from './wasm-modules.js';

export interface ComparableCondition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

/** ancestorRef key → conditions sorted by type. */
export type ComparableStatus = Record<string, ComparableCondition[]>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `namespace/name` of a metadata object (namespace defaults to `default`). */
export function policyKey(meta: unknown): string {
  const m = isRecord(meta) ? meta : {};
  const ns = typeof m['namespace'] === 'string' ? m['namespace'] : 'default';
  const name = typeof m['name'] === 'string' ? m['name'] : '';
  return `${ns}/${name}`;
}

function refKey(r: unknown): string {
  const o = isRecord(r) ? r : {};
  const s = (k: string): string => (typeof o[k] === 'string' ? o[k] : '');
  return `${s('group')}/${s('kind')}/${s('namespace')}/${s('name')}${s('sectionName') === '' ? '' : `#${s('sectionName')}`}`;
}

function comparable(ancestors: readonly unknown[]): ComparableStatus {
  const out: ComparableStatus = {};
  for (const a of ancestors) {
    if (!isRecord(a)) continue;
    const conds = Array.isArray(a['conditions']) ? a['conditions'] : [];
    out[refKey(a['ancestorRef'])] = conds
      .filter(isRecord)
      .map((c) => ({
        type: String(c['type']),
        status: String(c['status']),
        reason: String(c['reason']),
        message: String(c['message']),
      }))
      .sort((x, y) => x.type.localeCompare(y.type));
  }
  return out;
}

/** Expected EEP statuses of a case: `ns/name` → comparable status (empty when Envoy Gateway writes none). */
export function expectedPolicyStatuses(outYaml: string): Record<string, ComparableStatus> {
  const doc: unknown = parse(outYaml);
  const out: Record<string, ComparableStatus> = {};
  if (!isRecord(doc)) return out;
  for (const [key, list] of Object.entries(doc)) {
    if (key.toLowerCase() !== 'envoyextensionpolicies' || !Array.isArray(list)) continue;
    for (const p of list) {
      if (!isRecord(p) || !isRecord(p['metadata'])) continue;
      const m = p['metadata'];
      const status = isRecord(p['status']) ? p['status'] : {};
      const ancestors = Array.isArray(status['ancestors']) ? status['ancestors'] : [];
      out[policyKey(m)] = comparable(ancestors);
    }
  }
  return out;
}

/** Our EEP statuses in the same comparable form. */
export function actualPolicyStatuses(
  statuses: readonly ResourceStatus[],
  policies: readonly string[],
): Record<string, ComparableStatus> {
  const out: Record<string, ComparableStatus> = {};
  for (const p of policies) out[p] = {};
  for (const s of statuses) {
    if (s.kind !== 'EnvoyExtensionPolicy') continue;
    out[`${s.namespace}/${s.name}`] = comparable(s.status.ancestors);
  }
  return out;
}

/** Translates a case's input the way Envoy Gateway's harness does. */
export function translateCase(inYaml: string, caseName: string): TranslateResult {
  return translateGatewayApi(caseSnapshot(inYaml, caseName), {
    wasmModules: new DeterministicWasmResolver(),
    backendEnabled: caseName !== 'backend-invalid-feature-disabled',
  });
}

/** A case's input as a snapshot, with the GatewayClass Envoy Gateway's harness adds. */
export function caseSnapshot(inYaml: string, caseName: string): ResourceSnapshot {
  const loaded = parseYaml(inYaml, `${caseName}.in.yaml`);
  const objects = [...loaded.objects];
  const hasClass = objects.some(
    (o) => o.defaultKind === 'GatewayClass' || (isRecord(o.value) && o.value['kind'] === 'GatewayClass'),
  );
  if (!hasClass) {
    objects.unshift({
      value: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GatewayClass',
        metadata: { name: 'envoy-gateway-class' },
        spec: { controllerName: EG_CONTROLLER_NAME },
      },
      source: 'harness',
    });
  }
  return snapshotFromObjects(objects, 0, { celRules: false }).snapshot;
}

/** Reads, translates and compares one case. */
export function runCase(
  inFile: string,
  outFile: string,
  caseName: string,
): { expected: Record<string, ComparableStatus>; actual: Record<string, ComparableStatus>; result: TranslateResult } {
  const expected = expectedPolicyStatuses(readFileSync(outFile, 'utf8'));
  const result = translateCase(readFileSync(inFile, 'utf8'), caseName);
  const actual = actualPolicyStatuses(result.statuses, Object.keys(expected));
  return { expected, actual, result };
}
