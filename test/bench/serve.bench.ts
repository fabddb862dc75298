/**
 * `envext serve` convergence and memory (issue 8).
 *
 * One Gateway with N HTTPRoutes over 5 hostnames (Envoy Gateway's scale test shape) in a YAML
 * file, the pipeline of `envext serve --provider file` (FileProvider read → translateGatewayApi
 * with serve's TranslationCache → translateXds → SnapshotCache → ADS), and 50 delta ADS clients
 * in a second process (serve-clients.ts) behaving like Envoy on the wire.
 *
 * - convergence: rewrite the routes file with one route changed, time from the provider's read
 *   (the watch's 200 ms debounce is not included) until all 50 clients have ACKed the new
 *   RouteConfiguration version (median of 5 changes). Baselines in the same run: the same change
 *   read, translated and published with no client waiting (the control plane's own share), and
 *   the same read + translation without the TranslationCache (what serve did before).
 * - memory: RSS of the control-plane process (after GC) with N routes and 50 clients, at rest
 *   (5 s after the last push; right after it too), and the same process's RSS before anything
 *   was loaded (Node's own baseline).
 *
 * - the product itself: RSS of a real `envext serve --provider file` process (the compiled CLI, run
 *   as the control plane is deployed) on the same file with 50 clients, right after they synced
 *   and at rest (20 s later, after V8's memory reducer).
 *
 * Each size runs in its own child process so RSS figures do not carry over, as compiled
 * JavaScript (compiledBench in lib.ts) with the control plane's Node flags and environment as
 * `npm start` and the Deployment set them (common/runtime.ts).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { createLogger } from '../../common/log.js';
import { TranslationCache, translateGatewayApi } from '../../controlplane/gatewayapi/translate.js';
import { ResolvedWasmModules } from '../../controlplane/gatewayapi/wasm-modules.js';
import { FileProvider } from '../../controlplane/provider/file/provider.js';
import type { ResourceSnapshot } from '../../controlplane/provider/snapshot.js';
import { AdsServer } from '../../controlplane/xds/server/ads-server.js';
import { SnapshotCache } from '../../controlplane/xds/server/cache.js';
import { loadXdsProtos, translateXds, XdsTranslationMemo } from '../../controlplane/xds/translator/translate.js';
import type { ProtoObject } from '../../proto/index.js';
import { CONTROL_PLANE_NODE_FLAGS, NODE_ENV, describeRuntime } from '../../common/runtime.js';
import { compiledBench, report, round } from './lib.js';

const CLIENTS = 50;
const GROUP = 'default/eg';
const ROUTE = 'RouteConfiguration';

function objects(n: number, changed = -1, generation = 0): unknown[] {
  const out: unknown[] = [
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'eg' },
      spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'eg', namespace: 'default' },
      spec: { gatewayClassName: 'eg', listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
    },
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'app', namespace: 'default' },
      spec: { endpoints: [{ ip: { address: '10.0.0.1', port: 8080 } }] },
    },
  ];
  for (let i = 0; i < n; i++) {
    const path = i === changed ? `/route-${i}/v${generation}` : `/route-${i}`;
    out.push({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: `route-${i}`, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        parentRefs: [{ name: 'eg' }],
        hostnames: [`host-${i % 5}.example.com`],
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: path } }],
            backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'app', port: 8080 }],
          },
        ],
      },
    });
  }
  return out;
}

/** Writes the routes file (one YAML document per object), as a user editing it would. */
function writeConfig(file: string, objs: unknown[]): void {
  writeFileSync(file, objs.map((o) => stringify(o)).join('---\n'));
}

/** What ControlPlane keeps across translations. */
interface Memo {
  readonly translations: TranslationCache;
  readonly xds: XdsTranslationMemo;
}

/** What ControlPlane.process does after the provider's read (no Wasm in this config). */
function publish(cache: SnapshotCache, snapshot: ResourceSnapshot, memo: Memo): string {
  const result = translateGatewayApi(snapshot, { wasmModules: new ResolvedWasmModules(), cache: memo.translations });
  let version = '';
  for (const [group, ir] of result.ir) {
    const xds = translateXds(ir, memo.xds);
    version = cache.set(
      group,
      new Map<string, ProtoObject[]>(Object.entries(xds).map(([t, l]) => [t, l.map((r) => r.resource)])),
    ).version;
  }
  return version;
}

async function until(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function rssMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return round(process.memoryUsage().rss / 1024 / 1024, 1);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One size, in this process: prints a JSON object on stdout. */
async function measureSize(n: number): Promise<void> {
  const rssBefore = rssMiB();
  loadXdsProtos();
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, log: createLogger({ level: 'silent' }) });
  const port = await server.listen('127.0.0.1:0');
  const dir = mkdtempSync(join(tmpdir(), 'envext-bench-serve-'));
  const file = join(dir, 'config.yaml');
  const logger = createLogger({ level: 'silent' });
  const provider = new FileProvider({ paths: [dir], logger });
  const memo: Memo = { translations: new TranslationCache(), xds: new XdsTranslationMemo() };
  writeConfig(file, objects(n));
  let version = publish(cache, (await provider.load()).snapshot, memo);

  // Compiled (this file runs from .bench-dist/): the clients too; else under tsx.
  const self = fileURLToPath(import.meta.url);
  const compiled = self.endsWith('.js');
  const clients = spawn(
    process.execPath,
    [
      ...(compiled ? [] : ['--import', 'tsx']),
      join(dirname(self), compiled ? 'serve-clients.js' : 'serve-clients.ts'),
      `127.0.0.1:${port}`,
      GROUP,
      String(CLIENTS),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface(clients.stdout);
    lines.on('line', (l) => l === 'ready' && resolve());
    clients.on('exit', (code) => reject(new Error(`client process exited with ${code}`)));
  });
  const allAcked = (v: string): boolean => {
    const cs = server.clients();
    return (
      cs.length === CLIENTS && cs.every((c) => c.acked[ROUTE] === v && c.acked.ClusterLoadAssignment !== undefined)
    );
  };
  await until(() => allAcked(version), 120_000, 'initial sync');

  const converge: number[] = [];
  const alone: number[] = [];
  const reads: number[] = [];
  for (let k = 1; k <= 5; k++) {
    writeConfig(file, objects(n, k * 7, k));
    const t0 = performance.now();
    const { snapshot } = await provider.load();
    const read = performance.now();
    version = publish(cache, snapshot, memo);
    const published = performance.now();
    await until(() => allAcked(version), 60_000, `version ${version}`);
    converge.push(performance.now() - t0);
    alone.push(published - t0);
    reads.push(read - t0);
  }
  // Memory of the serving process at rest (where a control plane spends its time): right after
  // the last push, and once HTTP/2 write buffers and V8's young generation have settled (5 s
  // idle). Both before the baseline below allocates anything of its own.
  const rssRightAfterPushMiB = rssMiB();
  await new Promise((r) => setTimeout(r, 5000));
  const rssWithClients = rssMiB();
  const mem = process.memoryUsage();
  // Where the RSS is (V8 and mmapped memory, malloc's heap, the binary): ENVEXT_BENCH_SMAPS=1.
  if (process.env['ENVEXT_BENCH_SMAPS'] !== undefined) {
    const { readFileSync: rf } = await import('node:fs');
    const rows: [string, number][] = [];
    let cur = '';
    for (const line of rf('/proc/self/smaps', 'utf8').split('\n')) {
      const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/u.exec(line);
      if (h) cur = h[1] || '[anon]';
      const r = /^Rss:\s+(\d+) kB/u.exec(line);
      if (r) rows.push([cur, Number(r[1])]);
    }
    const agg = new Map<string, number>();
    for (const [k, v] of rows) agg.set(k, (agg.get(k) ?? 0) + v);
    process.stderr.write(JSON.stringify([...agg].sort((a, b) => b[1] - a[1]).slice(0, 8)) + '\n');
  }
  // Baseline: the same one-route change read and translated without the TranslationCache (a
  // provider of its own, so the served one's state is untouched; nothing is published).
  const uncached: number[] = [];
  const other = new FileProvider({ paths: [dir], logger });
  await other.load();
  for (let k = 6; k <= 10; k++) {
    writeConfig(file, objects(n, k * 7, k));
    const t0 = performance.now();
    const result = translateGatewayApi((await other.load()).snapshot, { wasmModules: new ResolvedWasmModules() });
    for (const ir of result.ir.values()) translateXds(ir);
    uncached.push(performance.now() - t0);
  }
  rmSync(dir, { recursive: true, force: true });
  const heapMiB = round(mem.heapUsed / 1024 / 1024, 1);
  const heapTotalMiB = round(mem.heapTotal / 1024 / 1024, 1);
  const externalMiB = round(mem.external / 1024 / 1024, 1);
  const arrayBuffersMiB = round(mem.arrayBuffers / 1024 / 1024, 1);
  clients.kill();
  await server.close(200);
  process.stdout.write(
    JSON.stringify({
      routes: n,
      clients: CLIENTS,
      convergenceMs: round(median(converge)),
      convergenceMsAll: converge.map((x) => round(x, 1)),
      baselineTranslateAndPublishMs: round(median(alone)),
      readMs: round(median(reads)),
      baselineNoTranslationCacheMs: round(median(uncached)),
      rssMiB: rssWithClients,
      rssRightAfterPushMiB,
      heapUsedMiB: heapMiB,
      heapTotalMiB,
      externalMiB,
      arrayBuffersMiB,
      baselineRssMiB: rssBefore,
    }) + '\n',
  );
}

/**
 * The product itself: `envext serve --provider file` (the compiled CLI, with the control plane's
 * flags and environment as deployed) on the same N-route file, 50 clients; its RSS once every client
 * has ACKed routes and endpoints, and 20 s later at rest (no forced GC: a real process).
 */
async function realServe(n: number): Promise<{ rssMiB: number; rssRightAfterSyncMiB: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'envext-bench-serve-real-'));
  writeConfig(join(dir, 'config.yaml'), objects(n));
  const benchDir = dirname(compiledBench(fileURLToPath(import.meta.url)));
  const main = join(benchDir, '..', '..', 'bin', 'main.js');
  const script = `const { main } = await import(${JSON.stringify(pathToFileURL(main).href)}); process.exitCode = await main(process.argv.slice(1));`;
  const args = ['serve', '--config', dir, '--xds-address', '127.0.0.1:0', '--wasm-address', '127.0.0.1:0'];
  args.push('--admin-address', '127.0.0.1:0', '--wasm-cache-dir', join(dir, 'cache'), '--log-level', 'warn');
  const serve = spawn(process.execPath, [...CONTROL_PLANE_NODE_FLAGS, '--input-type=module', '-e', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...NODE_ENV },
  });
  let clients: ReturnType<typeof spawn> | undefined;
  try {
    const ports = await new Promise<{ xds: string; admin: string }>((resolve, reject) => {
      let xds = '';
      createInterface(serve.stdout).on('line', (l) => {
        const x = /xDS \(ADS[^)]*\):\s+(\S+)/u.exec(l);
        if (x !== null) xds = x[1] ?? '';
        const a = /health\/metrics:\s+http:\/\/([^/]+)\//u.exec(l);
        if (a !== null) resolve({ xds, admin: a[1] ?? '' });
      });
      serve.on('exit', (code) => reject(new Error(`envext serve exited with ${code}`)));
    });
    clients = spawn(process.execPath, [join(benchDir, 'serve-clients.js'), ports.xds, GROUP, String(CLIENTS)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const acked = async (): Promise<boolean> => {
      const text = await (await fetch(`http://${ports.admin}/metrics`)).text();
      const count = (type: string): number =>
        Number(new RegExp(`^envext_xds_acks_total\\{type="${type}"\\} (\\d+)`, 'mu').exec(text)?.[1] ?? 0);
      return count('RouteConfiguration') >= CLIENTS && count('ClusterLoadAssignment') >= CLIENTS;
    };
    const deadline = performance.now() + 120_000;
    while (!(await acked())) {
      if (performance.now() > deadline) throw new Error('envext serve: clients did not sync within 120 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const rss = (): number => {
      const m = /^VmRSS:\s+(\d+) kB/mu.exec(readFileSync(`/proc/${serve.pid}/status`, 'utf8'));
      return round(Number(m?.[1] ?? 0) / 1024, 1);
    };
    const rssRightAfterSyncMiB = rss();
    // At rest: V8's memory reducer collects ~8 s after the last GC once the process is idle
    // (measured: 203 MiB until then, 147 after, at 5,000 routes); 20 s leaves room for it.
    await new Promise((r) => setTimeout(r, 20_000));
    return { rssMiB: rss(), rssRightAfterSyncMiB };
  } finally {
    clients?.kill();
    serve.kill('SIGINT');
    await new Promise((r) => serve.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function child(n: number): Promise<Record<string, unknown>> {
  // As the control plane runs where deployed (common/runtime.ts).
  const p = spawn(
    process.execPath,
    [...CONTROL_PLANE_NODE_FLAGS, '--expose-gc', compiledBench(fileURLToPath(import.meta.url)), '--size', String(n)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...NODE_ENV },
    },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  if (code !== 0) throw new Error(`size ${n} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

if (process.argv[2] === '--size') {
  await measureSize(Number(process.argv[3]));
} else {
  const small = await child(1000);
  const large = await child(5000);
  const real1000 = await realServe(1000);
  const real5000 = await realServe(5000);
  report('serve', {
    clients: CLIENTS,
    mode: 'delta ADS',
    runtime: `compiled JavaScript, ${describeRuntime(CONTROL_PLANE_NODE_FLAGS)} (the control plane as deployed: common/runtime.ts)`,
    convergence1000RoutesMs: small.convergenceMs,
    convergence5000RoutesMs: large.convergenceMs,
    baselinePublishNoClients1000Ms: small.baselineTranslateAndPublishMs,
    baselinePublishNoClients5000Ms: large.baselineTranslateAndPublishMs,
    fileRead1000Ms: small.readMs,
    fileRead5000Ms: large.readMs,
    baselineNoTranslationCache1000Ms: small.baselineNoTranslationCacheMs,
    baselineNoTranslationCache5000Ms: large.baselineNoTranslationCacheMs,
    rss1000RoutesMiB: small.rssMiB,
    rss5000RoutesMiB: large.rssMiB,
    rss5000RoutesRightAfterPushMiB: large.rssRightAfterPushMiB,
    heapUsed1000RoutesMiB: small.heapUsedMiB,
    heapUsed5000RoutesMiB: large.heapUsedMiB,
    baselineRssEmptyProcessMiB: small.baselineRssMiB,
    envextServeProcessRss1000RoutesMiB: real1000.rssMiB,
    envextServeProcessRss5000RoutesMiB: real5000.rssMiB,
    envextServeProcessRss5000RoutesRightAfterSyncMiB: real5000.rssRightAfterSyncMiB,
    targets: { convergenceMs: 200, rss5000MiB: 200 },
    detail: [small, large],
  });
}
