// Control-plane translation at scale: N HTTPRoutes on one Gateway, each with its own
// EnvoyExtensionPolicy (one wasm + one extProc), plus a Gateway-level policy. Measures the cold
// full translation (Gateway API → IR → xDS resources), a one-route change (new snapshot with one
// route edited, both stages again), strict proto encoding of the result, and RSS. Baseline in
// the same run: validating the input into a snapshot (the provider's part, not translation).
// Targets from issue 7: 1,000 routes ≤ 100 ms, 5,000 ≤ 500 ms, one-route change ≤ 20 ms,
// RSS ≤ 150 MiB at 5,000 (Envoy Gateway 1.9: 255 MiB at 1,000 routes).
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { wasmModuleRequests } from '../../controlplane/gatewayapi/envoy-extension-policy.js';
import { TranslationCache, translateGatewayApi } from '../../controlplane/gatewayapi/translate.js';
import { DeterministicWasmResolver } from '../../controlplane/gatewayapi/wasm-modules.js';
import { SnapshotBuilder, builderFrom, type ResourceSnapshot } from '../../controlplane/provider/snapshot.js';
import {
  encodeXds,
  loadXdsProtos,
  translateXds,
  XdsTranslationMemo,
  type XdsResources,
} from '../../controlplane/xds/translator/translate.js';
import { CONTROL_PLANE_NODE_FLAGS, NODE_ENV, describeRuntime } from '../../common/runtime.js';
import { compiledBench, report, round } from './lib.js';

const EG = 'gateway.envoyproxy.io/v1alpha1';
const GW = 'gateway.networking.k8s.io/v1';

function objects(n: number): unknown[] {
  const out: unknown[] = [
    {
      apiVersion: GW,
      kind: 'GatewayClass',
      metadata: { name: 'envext' },
      spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
    },
    {
      apiVersion: GW,
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: 'default' },
      spec: { gatewayClassName: 'envext', listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
    },
    {
      apiVersion: EG,
      kind: 'Backend',
      metadata: { name: 'app', namespace: 'default' },
      spec: { endpoints: [{ ip: { address: '10.0.0.1', port: 8080 } }] },
    },
    {
      apiVersion: EG,
      kind: 'Backend',
      metadata: { name: 'proc', namespace: 'default' },
      spec: { endpoints: [{ unix: { path: '/var/run/ext-proc.sock' } }] },
    },
    {
      apiVersion: EG,
      kind: 'EnvoyExtensionPolicy',
      metadata: { name: 'gateway-wide', namespace: 'default' },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }],
        wasm: [{ code: { type: 'HTTP', http: { url: 'https://f.example.com/log.wasm' } } }],
      },
    },
  ];
  for (let i = 0; i < n; i++) out.push(route(i, `/r${i}`));
  for (let i = 0; i < n; i++) {
    out.push({
      apiVersion: EG,
      kind: 'EnvoyExtensionPolicy',
      metadata: { name: `p${i}`, namespace: 'default' },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: `r${i}` }],
        wasm: [
          {
            name: `w${i}`,
            code: { type: 'Image', image: { url: `registry.example.com/f/w${i}:v1` } },
            config: { route: i },
          },
        ],
        extProc: [
          {
            backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'proc' }],
            processingMode: { request: {} },
          },
        ],
      },
    });
  }
  return out;
}

function route(i: number, path: string): unknown {
  return {
    apiVersion: GW,
    kind: 'HTTPRoute',
    metadata: { name: `r${i}`, namespace: 'default' },
    spec: {
      parentRefs: [{ name: 'gw' }],
      hostnames: [`h${i % 50}.example.com`],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: path } }],
          backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'app', port: 8080 }],
        },
      ],
    },
  };
}

const resolver = new DeterministicWasmResolver();

/**
 * The module cache's part, before translation (serve resolves every module first, then
 * translates): here Envoy Gateway's deterministic mock. Not timed.
 */
function resolveModules(snapshot: ResourceSnapshot): void {
  for (const r of wasmModuleRequests(snapshot)) resolver.lookup(r);
}

/** Both stages; `memo` is what a provider keeps across changes (TranslationCache + XdsTranslationMemo). */
function translateAll(
  snapshot: ResourceSnapshot,
  memo?: { cache: TranslationCache; xds: XdsTranslationMemo },
): XdsResources[] {
  const { ir } = translateGatewayApi(snapshot, {
    wasmModules: resolver,
    ...(memo === undefined ? {} : { cache: memo.cache }),
  });
  return [...ir.values()].map((x) => translateXds(x, memo?.xds));
}

function time<T>(fn: () => T): { ms: number; value: T } {
  const start = performance.now();
  const value = fn();
  return { ms: performance.now() - start, value };
}

function best(runs: number, fn: () => unknown): number {
  let b = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) b = Math.min(b, time(fn).ms);
  return round(b);
}

const gc = (globalThis as { gc?: () => void }).gc;

/** One size, in this process (compiled, plain node): returns the figures. */
function measureSize(n: number): Record<string, unknown> {
  const input = objects(n);
  const build = (): ResourceSnapshot => {
    const b = new SnapshotBuilder();
    input.forEach((o, i) => b.add(o, `bench#${i}`));
    return b.build();
  };
  const baselineMs = best(3, build);
  const snapshot = build();
  resolveModules(snapshot);
  gc?.();
  const cold = time(() => translateAll(snapshot));
  const resources = cold.value[0];
  const warmMs = best(3, () => translateAll(snapshot));
  // One route changes: the provider applies it to a copy of the snapshot; both stages run again,
  // with the memo a provider keeps (TranslationCache + XdsTranslationMemo).
  let k = 0;
  const memo = { cache: new TranslationCache(), xds: new XdsTranslationMemo() };
  translateAll(snapshot, memo);
  // Timed: applying the change to a copy of the snapshot and both stages (the changed route's
  // policy and modules are unchanged, so resolution has nothing new to do).
  const change = (): void => {
    const b = builderFrom(snapshot);
    b.add(route(7, `/changed-${k++}`), 'bench#change');
    translateAll(b.build(1), memo);
  };
  const changeMs = best(5, change);
  // One route added (no policy names it yet), each on top of the last, with the same memo.
  let grown = snapshot;
  translateAll(grown, memo);
  const addMs = best(5, () => {
    const b = builderFrom(grown);
    b.add(route(n + k, `/added-${k++}`), 'bench#add');
    grown = b.build(1);
    translateAll(grown, memo);
  });
  const changeNoCacheMs = best(3, () => {
    const b = builderFrom(snapshot);
    b.add(route(7, `/changed-${k++}`), 'bench#change');
    translateAll(b.build(1));
  });
  const counts =
    resources === undefined
      ? {}
      : Object.fromEntries(Object.entries(resources).map(([t, l]) => [t.slice(t.lastIndexOf('.') + 1), l.length]));
  const encodeMs = resources === undefined ? 0 : best(2, () => encodeXds(resources));
  return {
    routes: n,
    baselineSnapshotBuildMs: baselineMs,
    coldTranslateMs: round(cold.ms),
    warmTranslateMs: warmMs,
    oneRouteChangeMs: changeMs,
    oneRouteChangeNoCacheMs: changeNoCacheMs,
    oneRouteAddMs: addMs,
    incremental: memo.cache.stats,
    encodeAllMs: encodeMs,
    resources: counts,
  };
}

/**
 * Memory, in a process of its own: what a serving control plane holds after translating N
 * routes and then one change — the snapshot and the memo with the last translation — after GC.
 * (The timing runs would leave their peaks in RSS.)
 */
function measureMemory(n: number): Record<string, unknown> {
  loadXdsProtos();
  gc?.();
  const rssBaselineMiB = round(process.memoryUsage().rss / 1048576, 1);
  let input: unknown[] | undefined = objects(n);
  const b = new SnapshotBuilder();
  input.forEach((o, i) => b.add(o, `bench#${i}`));
  input = undefined; // a provider's raw objects are the provider's memory (see serve.bench.ts)
  const snapshot = b.build();
  resolveModules(snapshot);
  const memo = { cache: new TranslationCache(), xds: new XdsTranslationMemo() };
  translateAll(snapshot, memo);
  const changed = builderFrom(snapshot);
  changed.add(route(7, '/changed'), 'bench#change');
  translateAll(changed.build(1), memo);
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  // For finding where the memory goes: ENVEXT_BENCH_HEAP=file.heapsnapshot npm run bench -- translate
  const heapFile = process.env['ENVEXT_BENCH_HEAP'];
  if (heapFile !== undefined) writeHeapSnapshot(heapFile.replace(/(\.heapsnapshot)?$/u, `-${n}.heapsnapshot`));
  return {
    rssMiB: round(m.rss / 1048576, 1),
    heapUsedMiB: round(m.heapUsed / 1048576, 1),
    heapTotalMiB: round(m.heapTotal / 1048576, 1),
    rssBaselineMiB,
  };
}

if (process.argv[2] === '--size') {
  const n = Number(process.argv[3]);
  process.stdout.write(JSON.stringify(process.argv[4] === 'memory' ? measureMemory(n) : measureSize(n)) + '\n');
} else {
  // Each size in its own process (RSS does not carry over), as compiled JavaScript under plain
  // node, the way envext runs from dist/.
  const results: Record<string, unknown>[] = [];
  const run = (n: number, phase: string): Record<string, unknown> => {
    const file = compiledBench(fileURLToPath(import.meta.url));
    // As the control plane runs where deployed (common/runtime.ts).
    const r = spawnSync(
      process.execPath,
      [...CONTROL_PLANE_NODE_FLAGS, '--expose-gc', file, '--size', String(n), phase],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ...NODE_ENV },
      },
    );
    if (r.status !== 0)
      throw new Error(`translate benchmark (${n} routes, ${phase}) exited with ${r.status ?? r.signal}`);
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
  };
  for (const n of [1000, 5000]) results.push({ ...run(n, 'time'), ...run(n, 'memory') });
  report('translate', {
    note: "translate = translateGatewayApi + translateXds (no encoding), after the Wasm modules were resolved (the module cache's part, here Envoy Gateway's deterministic mock: not timed); one-route change = new snapshot with one HTTPRoute edited (builderFrom + add + build), both stages again with the memo a provider keeps (and without, for comparison); one-route add = the same with a new HTTPRoute no policy names; baseline = validating the input into a snapshot; RSS in a process of its own after GC, holding the snapshot and the memo with the last translation (a full one, then one route change)",
    runtime: `compiled JavaScript, ${describeRuntime(CONTROL_PLANE_NODE_FLAGS)} (the control plane as deployed: common/runtime.ts)`,
    // Other work on the machine inflates every figure; the 1-minute load average says how much.
    loadAverage1m: round(loadavg()[0] ?? 0, 2),
    targets: { routes1000Ms: 100, routes5000Ms: 500, oneRouteChangeMs: 20, rssMiBAt5000: 150 },
    results,
  });
}
