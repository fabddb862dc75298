// Control-plane translation at scale: N HTTPRoutes on one Gateway, each with its own
// EnvoyExtensionPolicy (one wasm + one extProc), plus a Gateway-level policy. Measures the cold
// full translation (Gateway API → IR → xDS resources), a one-route change (new snapshot with one
// route edited, both stages again), strict proto encoding of the result, and RSS. Baseline in
// the same run: validating the input into a snapshot (the provider's part, not translation).
// Targets from issue 7: 1,000 routes ≤ 100 ms, 5,000 ≤ 500 ms, one-route change ≤ 20 ms,
// RSS ≤ 150 MiB at 5,000 (Envoy Gateway 1.9: 255 MiB at 1,000 routes).
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
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
import { report, round } from './lib.js';

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

/** Both stages; `memo` is what a provider keeps across changes (TranslationCache + XdsTranslationMemo). */
function translateAll(
  snapshot: ResourceSnapshot,
  memo?: { cache: TranslationCache; xds: XdsTranslationMemo },
): XdsResources[] {
  for (const r of wasmModuleRequests(snapshot)) resolver.lookup(r);
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
// Baseline memory: this process with every module and Envoy's protos loaded, before any input.
loadXdsProtos();
gc?.();
const rssBaselineMiB = round(process.memoryUsage().rss / 1048576, 1);
const results: Record<string, unknown>[] = [];
for (const n of [1000, 5000]) {
  const input = objects(n);
  const build = (): ResourceSnapshot => {
    const b = new SnapshotBuilder();
    input.forEach((o, i) => b.add(o, `bench#${i}`));
    return b.build();
  };
  const baselineMs = best(3, build);
  const snapshot = build();
  gc?.();
  const cold = time(() => translateAll(snapshot));
  const resources = cold.value[0];
  const warmMs = best(3, () => translateAll(snapshot));
  // One route changes: the provider applies it to a copy of the snapshot; both stages run again,
  // with the TranslationCache a provider keeps (unchanged routes and policies are not redone).
  let k = 0;
  const cache = { cache: new TranslationCache(), xds: new XdsTranslationMemo() };
  translateAll(snapshot, cache);
  const change = (): void => {
    const b = builderFrom(snapshot);
    b.add(route(7, `/changed-${k++}`), 'bench#change');
    translateAll(b.build(1), cache);
  };
  const changeMs = best(5, change);
  const changeNoCacheMs = best(3, () => {
    const b = builderFrom(snapshot);
    b.add(route(7, `/changed-${k++}`), 'bench#change');
    translateAll(b.build(1));
  });
  const encodeMs = resources === undefined ? 0 : best(2, () => encodeXds(resources));
  gc?.();
  const rssMiB = round(process.memoryUsage().rss / 1048576, 1);
  const counts =
    resources === undefined
      ? {}
      : Object.fromEntries(Object.entries(resources).map(([t, l]) => [t.slice(t.lastIndexOf('.') + 1), l.length]));
  results.push({
    routes: n,
    baselineSnapshotBuildMs: baselineMs,
    coldTranslateMs: round(cold.ms),
    warmTranslateMs: warmMs,
    oneRouteChangeMs: changeMs,
    oneRouteChangeNoCacheMs: changeNoCacheMs,
    encodeAllMs: encodeMs,
    rssMiB,
    resources: counts,
  });
}

report('translate', {
  note: 'translate = translateGatewayApi + translateXds (no encoding); one-route change = new snapshot with one HTTPRoute edited (builderFrom + add + build), both stages again with a TranslationCache (and without, for comparison); baseline = validating the input into a snapshot',
  // Other work on the machine inflates every figure; the 1-minute load average says how much.
  loadAverage1m: round(loadavg()[0] ?? 0, 2),
  rssBaselineMiB,
  targets: { routes1000Ms: 100, routes5000Ms: 500, oneRouteChangeMs: 20, rssMiBAt5000: 150 },
  results,
});
