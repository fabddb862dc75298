/**
 * The incremental path (incremental.ts) must give exactly what a full translation gives. Every
 * golden input (ours and Envoy Gateway's conformance cases) goes through a seeded random walk of
 * route edits — paths, match types, header matches, backends (valid, missing, another route's),
 * header filters, no-op copies, several routes at once — and routes added (older, newer or as old
 * as the rest) and deleted, mixed with edits the incremental path must refuse (hostnames,
 * parentRefs, rule names, policy edits, routes a policy names). After every step the
 * cached result equals a fresh translation without a cache, and so does the xDS stage with the
 * memo a serve loop keeps.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import type { GRPCRoute, HTTPRoute } from '../api/types.js';
import { builderFrom, type ResourceSnapshot } from '../provider/snapshot.js';
import { translateXds, XdsTranslationMemo } from '../xds/translator/translate.js';
import { caseSnapshot } from './conformance.js';
import { TranslationCache, translateGatewayApi } from './translate.js';
import { DeterministicWasmResolver } from './wasm-modules.js';
import { seededRandom } from '../../test/seeded-random.js';

const here = dirname(fileURLToPath(import.meta.url));
const inputs = [
  ...globSync('*.in.yaml', { cwd: join(here, 'testdata'), absolute: true }),
  ...globSync('*.in.yaml', { cwd: join(here, '..', 'testdata', 'envoy-gateway', 'gatewayapi'), absolute: true }),
].sort();

type Json = Record<string, unknown>;
/** A route copy being edited. */
interface Draft {
  readonly kind: string;
  readonly spec: Json;
}
type Edit = (r: Draft, rnd: () => number, other: Draft | undefined) => void;

const rulesOf = (r: Draft): Json[] => {
  const spec = r.spec;
  if (!Array.isArray(spec['rules'])) spec['rules'] = [{}];
  return spec['rules'] as Json[];
};
const pick = <T>(list: readonly T[], rnd: () => number): T | undefined => list[Math.floor(rnd() * list.length)];

let step = 0;
/** Steps that added or deleted a route and took the incremental path. */
let addsAndDeletes = 0;
/** Edits the incremental path takes. */
const routeEdits: Edit[] = [
  (r, rnd) => {
    const rule = pick(rulesOf(r), rnd);
    if (rule === undefined) return;
    const type = pick(['Exact', 'PathPrefix', 'RegularExpression'], rnd);
    if (r.kind === 'HTTPRoute') rule['matches'] = [{ path: { type, value: `/edited-${step}` } }];
    else rule['matches'] = [{ method: { service: `svc${step}`, method: 'Get' } }];
  },
  (r, rnd) => {
    const rule = pick(rulesOf(r), rnd);
    if (rule === undefined) return;
    const matches = Array.isArray(rule['matches']) ? (rule['matches'] as Json[]) : [{}];
    rule['matches'] = [...matches, { headers: [{ name: 'x-step', value: String(step) }] }];
  },
  (r, rnd) => {
    const rule = pick(rulesOf(r), rnd);
    if (rule !== undefined) rule['backendRefs'] = [{ name: `missing-${step}`, port: 80 }];
  },
  (r, rnd, other) => {
    const rule = pick(rulesOf(r), rnd);
    const from = other === undefined ? undefined : pick(rulesOf(structuredClone(other)), rnd);
    if (rule !== undefined) rule['backendRefs'] = from?.['backendRefs'] ?? [];
  },
  (r, rnd) => {
    const rule = pick(rulesOf(r), rnd);
    if (rule === undefined) return;
    rule['filters'] = [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-edit', value: String(step) }] } },
    ];
  },
  () => undefined, // a new object with the same content
];
/** Edits that change what other resources depend on: a full translation. */
const attachmentEdits: Edit[] = [
  (r) => {
    r.spec['hostnames'] = [`edited-${step}.example.com`];
  },
  (r) => {
    const refs = (r.spec['parentRefs'] as Json[] | undefined) ?? [];
    r.spec['parentRefs'] = refs.map((p) => ({ ...p, sectionName: `s${step}` }));
  },
  (r, rnd) => {
    const rule = pick(rulesOf(r), rnd);
    if (rule !== undefined) rule['name'] = `renamed-${step}`;
  },
];

function walk(start: ResourceSnapshot, seed: number, steps: number): { incremental: number; full: number } {
  const rnd = seededRandom(seed);
  const wasmModules = new DeterministicWasmResolver();
  const cache = new TranslationCache();
  const xdsMemo = new XdsTranslationMemo();
  let snapshot = start;
  expect(translateGatewayApi(snapshot, { wasmModules, cache })).toEqual(translateGatewayApi(snapshot, { wasmModules }));
  for (let i = 0; i < steps; i++) {
    step++;
    const routes = [
      ...[...snapshot.resources.HTTPRoute.values()].map((r) => ['HTTPRoute', r] as const),
      ...[...snapshot.resources.GRPCRoute.values()].map((r) => ['GRPCRoute', r] as const),
    ];
    if (routes.length === 0) break;
    const b = builderFrom(snapshot);
    const roll = rnd();
    let addOrDelete = false;
    if (roll < 0.1) {
      // A new route: a copy of another under a new name, created at the same time, before every
      // other route or after them (so it lands anywhere in route order).
      const [kind, r] = pick(routes, rnd) ?? routes[0]!;
      const copy = structuredClone(r);
      const meta = copy.metadata as { name: string; creationTimestamp?: string };
      meta.name = `added-${step}`;
      const when = rnd();
      if (when < 0.3) meta.creationTimestamp = '2000-01-01T00:00:00Z';
      else if (when < 0.6) meta.creationTimestamp = '2100-01-01T00:00:00Z';
      if (kind === 'HTTPRoute') b.put(kind, copy as HTTPRoute);
      else b.put(kind, copy as GRPCRoute);
      addOrDelete = true;
    } else if (roll < 0.14) {
      const [kind, r] = pick(routes, rnd) ?? routes[0]!;
      b.delete(kind, r.metadata.namespace, r.metadata.name);
      addOrDelete = true;
    } else if (roll < 0.18) {
      // A policy edit (a new object) or a route deletion.
      const policy = pick([...snapshot.resources.EnvoyExtensionPolicy.values()], rnd);
      if (policy !== undefined && rnd() < 0.5) {
        // A new object, and usually new content: another wasm config, ext_proc entries dropped.
        const copy = structuredClone(policy) as unknown as { spec: Json };
        const wasm = copy.spec['wasm'] as Json[] | undefined;
        if (wasm?.[0] !== undefined && rnd() < 0.5) wasm[0]['config'] = { step };
        else if (rnd() < 0.5) delete copy.spec['extProc'];
        b.put('EnvoyExtensionPolicy', copy as unknown as typeof policy);
      } else {
        const [kind, r] = pick(routes, rnd) ?? routes[0]!;
        b.delete(kind, r.metadata.namespace, r.metadata.name);
      }
    } else {
      const edits = roll < 0.27 ? attachmentEdits : routeEdits;
      const count = rnd() < 0.2 ? 2 : 1;
      for (let c = 0; c < count; c++) {
        const [kind, r] = pick(routes, rnd) ?? routes[0]!;
        const copy = structuredClone(r);
        const other = pick(routes, rnd)?.[1];
        pick(edits, rnd)?.(copy, rnd, other);
        if (kind === 'HTTPRoute') b.put(kind, copy as HTTPRoute);
        else b.put(kind, copy as GRPCRoute);
      }
    }
    snapshot = b.build(i + 1);
    const incrementalBefore = cache.stats.incremental;
    const cached = translateGatewayApi(snapshot, { wasmModules, cache });
    if (addOrDelete && cache.stats.incremental > incrementalBefore) addsAndDeletes++;
    expect(cached, `step ${step}`).toEqual(translateGatewayApi(snapshot, { wasmModules }));
    // The xDS stage with its memo (kept across steps, as serve keeps it) gives the same resources.
    for (const ir of cached.ir.values()) expect(translateXds(ir, xdsMemo), `step ${step}`).toEqual(translateXds(ir));
  }
  return cache.stats;
}

describe('incremental translation of route edits', () => {
  const totals = { incremental: 0, full: 0 };
  it.each(inputs.map((f) => ({ name: basename(f, '.in.yaml'), file: f })))(
    '$name: a random walk of edits matches full translation',
    ({ name, file }) => {
      const snapshot = caseSnapshot(readFileSync(file, 'utf8'), name);
      const stats = walk(snapshot, name.length * 7919 + 1, 40);
      totals.incremental += stats.incremental;
      totals.full += stats.full;
    },
  );
  it('took the incremental path for most steps, route additions and deletions included', () => {
    // Guards the property test itself: it must exercise the path it checks.
    expect(totals.incremental).toBeGreaterThan(totals.full);
    expect(addsAndDeletes).toBeGreaterThan(50);
  });
});
