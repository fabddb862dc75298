/**
 * Fuzz test: random and mutated resource sets must give conditions, never crashes. Every input
 * goes through the whole pipeline (validation → Wasm resolution → Gateway API translation →
 * xDS translation → strict proto encoding). Seeded and bounded, so a failure reproduces: the
 * message names the seed and iteration.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { parseYaml, snapshotFromObjects } from '../provider/file/load.js';
import { encodeXds, translateXds } from '../xds/translator/translate.js';
import { wasmModuleRequests } from './envoy-extension-policy.js';
import { translateGatewayApi } from './translate.js';
import { DeterministicWasmResolver } from './wasm-modules.js';
import { seededRandom } from '../../test/seeded-random.js';

const here = dirname(fileURLToPath(import.meta.url));
// Fixed so CI is reproducible; ENVEXT_FUZZ_SEED / ENVEXT_FUZZ_ITERATIONS explore further locally.
const SEED = Number(process.env['ENVEXT_FUZZ_SEED'] ?? 0x5eed_2026);
const ITERATIONS = Number(process.env['ENVEXT_FUZZ_ITERATIONS'] ?? 400);

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

const NAMES = ['gw', 'r1', 'app', 'p', 'eg', 'default', 'x', '', 'a.b', 'UPPER', 'très', '../etc', 'gateway-1'];
const KINDS = [
  'Gateway',
  'HTTPRoute',
  'GRPCRoute',
  'Service',
  'Backend',
  'EnvoyExtensionPolicy',
  'ReferenceGrant',
  'Secret',
  'ListenerSet',
  'Pod',
];

function randomScalar(r: Rand): unknown {
  return pick(r, [
    null,
    0,
    -1,
    65536,
    1.5,
    true,
    false,
    '',
    'x',
    'HTTP',
    'Image',
    '/',
    '*',
    'gateway.networking.k8s.io',
    'https://h/x.wasm',
    'oci://r/i:t',
    'a'.repeat(300),
  ]);
}

function randomValue(r: Rand, depth: number): unknown {
  const n = r();
  if (depth <= 0 || n < 0.5) return randomScalar(r);
  if (n < 0.75) return Array.from({ length: Math.floor(r() * 3) }, () => randomValue(r, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < Math.floor(r() * 4); i++)
    o[
      pick(r, ['name', 'kind', 'group', 'port', 'spec', 'url', 'type', 'http', 'image', 'backendRefs', 'sectionName'])
    ] = randomValue(r, depth - 1);
  return o;
}

/** Replaces, deletes or duplicates something somewhere inside `v`. */
function mutate(r: Rand, v: unknown, depth = 0): unknown {
  if (Array.isArray(v)) {
    const list = v as unknown[];
    if (list.length === 0 || r() < 0.15) return r() < 0.5 ? randomValue(r, 2) : [...list, randomValue(r, 2)];
    const i = Math.floor(r() * list.length);
    const copy = [...list];
    const p = r();
    if (p < 0.2) copy.splice(i, 1);
    else if (p < 0.4) copy.push(copy[i]);
    else copy[i] = mutate(r, copy[i], depth + 1);
    return copy;
  }
  if (typeof v === 'object' && v !== null) {
    const o = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    if (keys.length === 0 || r() < 0.1) return randomValue(r, 2);
    const k = pick(r, keys);
    const p = r();
    if (p < 0.2) delete o[k];
    else if (p < 0.3) o[k] = randomScalar(r);
    else o[k] = mutate(r, o[k], depth + 1);
    return o;
  }
  return r() < 0.7 ? randomScalar(r) : randomValue(r, 2);
}

function randomResource(r: Rand): unknown {
  const kind = pick(r, KINDS);
  return {
    apiVersion: pick(r, ['gateway.networking.k8s.io/v1', 'gateway.envoyproxy.io/v1alpha1', 'v1', 'x/y']),
    kind,
    metadata: { name: pick(r, NAMES), namespace: pick(r, ['default', 'other', undefined]) },
    spec: randomValue(r, 4),
  };
}

/** Inputs to mutate: Envoy Gateway's cases, ours, and the quickstart. */
function corpus(): unknown[][] {
  const files = [
    ...globSync('../testdata/envoy-gateway/gatewayapi/*.in.yaml', { cwd: here, absolute: true }),
    ...globSync('testdata/*.in.yaml', { cwd: here, absolute: true }),
    ...globSync('../../examples/quickstart/*.yaml', { cwd: here, absolute: true }),
  ].sort();
  const sets: unknown[][] = files.map((f) =>
    parseYaml(readFileSync(f, 'utf8'), f).objects.map((o) =>
      o.defaultKind === undefined ? o.value : { kind: o.defaultKind, ...(o.value as object) },
    ),
  );
  // The quickstart is several files: one set.
  return sets;
}

/** One pass through every stage. `celRules: false` lets CEL-violating objects reach the translator, as in Envoy Gateway's harness. */
function runPipeline(objects: readonly unknown[], celRules = true): { statuses: number; problems: number } {
  const { snapshot } = snapshotFromObjects(
    objects.map((value, i) => ({ value, source: `fuzz#${i}` })),
    0,
    { celRules },
  );
  const resolver = new DeterministicWasmResolver();
  // The translator needs every request resolved; the deterministic resolver answers synchronously.
  for (const req of wasmModuleRequests(snapshot)) resolver.lookup(req);
  const result = translateGatewayApi(snapshot, { wasmModules: resolver });
  for (const ir of result.ir.values()) encodeXds(translateXds(ir));
  return { statuses: result.statuses.length, problems: result.rejected.length };
}

describe('fuzz: random and mutated resource sets', () => {
  const base = corpus();
  const gatewayClass = {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'envoy-gateway-class' },
    spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
  };

  it(`mutated corpus sets (${ITERATIONS} iterations, seed ${SEED})`, () => {
    const r = seededRandom(SEED);
    let statuses = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const set = pick(r, base);
      let objects: unknown[] = [gatewayClass, ...set];
      const mutations = 1 + Math.floor(r() * 4);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(r() * objects.length);
        objects = objects.map((o, j) => (j === at ? mutate(r, o) : o));
      }
      try {
        statuses += runPipeline(objects, i % 2 === 0).statuses;
      } catch (e: unknown) {
        throw new Error(
          `seed ${SEED} iteration ${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\ninput: ${JSON.stringify(objects).slice(0, 2000)}`,
        );
      }
    }
    expect(statuses).toBeGreaterThan(0);
  });

  it(`random sets (${ITERATIONS} iterations, seed ${SEED + 1})`, () => {
    const r = seededRandom(SEED + 1);
    let problems = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const objects = [gatewayClass, ...Array.from({ length: 1 + Math.floor(r() * 8) }, () => randomResource(r))];
      try {
        problems += runPipeline(objects).problems;
      } catch (e: unknown) {
        throw new Error(
          `seed ${SEED + 1} iteration ${i}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\ninput: ${JSON.stringify(objects).slice(0, 2000)}`,
        );
      }
    }
    // Random objects are mostly invalid: each must have been reported, not dropped silently.
    expect(problems).toBeGreaterThan(ITERATIONS);
  });

  it('reports, does not throw on, non-object documents', () => {
    expect(runPipeline([null, 42, 'text', [], { kind: 'Gateway' }]).problems).toBe(5);
  });
});
