/**
 * ext_proc server throughput, latency and CPU: the envext framework (pass-through handler and a
 * header-mutating handler) against a bare grpc-js + proto-loader server answering CONTINUE, in the
 * same run, over a Unix socket and TCP, at N = 1, 16, 128 streams in flight.
 *
 * The load comes from a native generator (test/bench/ext-proc-loadgen/loadgen.cc, gRPC C++ callback
 * API) because a Node client costs more CPU per request than the server it measures. It is built
 * here, on first use, into node_modules/.cache/envext/ext-proc-loadgen (not committed), and needs
 * Debian's `libgrpc++-dev`, `protobuf-compiler-grpc`, `pkg-config` and `g++`. Those are only for
 * this benchmark, not for the test suite.
 *
 * The three servers run the same way: compiled JavaScript (`compiledBench`, as envext runs from
 * dist/; under tsx the TypeScript side, the framework and the handlers, also pays esbuild's
 * keepNames wrappers, grpc-js does not) under `node` with the environment envext's executable starts
 * with and V8's default flags, as `envext ext-proc serve` runs (common/runtime.ts).
 *
 * Each server first gets 4 s of load to warm up its JIT. Then every point gets EXT_PROC_BENCH_WARMUP s
 * (default 0.5) of warm-up and EXT_PROC_BENCH_SECONDS s (default 2) measured, and the whole matrix is
 * repeated EXT_PROC_BENCH_REPEAT times (default 5), interleaved; medians are reported. A single
 * 2-s run is a noisy figure on this kind of 2-vCPU VM even with nothing else running: the same
 * server's CPU per request moves by ±10-15 % at N ≥ 16 from one run to the next, and by ±15-20 %
 * at N = 1, where every request sleeps and wakes the server three times and the cost of a wake-up
 * depends on where the scheduler puts the two processes; with 3 runs, one cell's CPU ratio (TCP,
 * N = 16, mutating) was 0.95× in one run and 1.14× in the next, of the same code on a quiet
 * machine. So 5 repetitions, and N = 1 points, which are cheap, are measured
 * EXT_PROC_BENCH_N1_RUNS times (default 2) per repetition, interleaved across the servers like the
 * rest. The three servers run side by side and are measured one after the other per point, in an
 * order that rotates from one round to the next (no server is always first), so drift on a shared
 * machine hits all three alike. Server CPU is utime+stime of the server process from /proc over the
 * measured window; the load generator also reports the cores everything else on the machine used
 * in that window ("other"), and a run where that exceeds EXT_PROC_BENCH_QUIET cores (default 0.15)
 * is repeated, up to EXT_PROC_BENCH_RETRIES times (default 4; the last one is kept either way), for
 * every server alike. Prints one JSON line; the table goes to stderr.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_ENV, describeRuntime } from '../../common/runtime.js';
import { compiledBench, report, round } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const src = join(here, 'ext-proc-loadgen');
const out = join(root, 'node_modules', '.cache', 'envext', 'ext-proc-loadgen');
const INSTALL = 'apt-get install -y libgrpc++-dev protobuf-compiler-grpc pkg-config g++';

const KINDS = ['bare', 'passthrough', 'mutate'] as const;
type Kind = (typeof KINDS)[number];
const TRANSPORTS = ['uds', 'tcp'] as const;
const CONCURRENCY = (process.env['EXT_PROC_BENCH_N'] ?? '1,16,128').split(',').map(Number);
const SECONDS = Number(process.env['EXT_PROC_BENCH_SECONDS'] ?? '2');
const WARMUP = Number(process.env['EXT_PROC_BENCH_WARMUP'] ?? '0.5');
const REPEAT = Number(process.env['EXT_PROC_BENCH_REPEAT'] ?? '5');
const QUIET = Number(process.env['EXT_PROC_BENCH_QUIET'] ?? '0.15');
const RETRIES = Number(process.env['EXT_PROC_BENCH_RETRIES'] ?? '4');
const N1_RUNS = Math.max(1, Number(process.env['EXT_PROC_BENCH_N1_RUNS'] ?? '2'));
/** How every server runs (the same for all three). */
const RUNTIME = `${describeRuntime([])}, compiled JavaScript`;

// Servers started by this run; killed on any exit so no orphan keeps a pipe (or a core) busy.
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGTERM');
});

function fail(message: string): never {
  process.stderr.write(`error: ext-proc bench: ${message}\n`);
  process.exit(1);
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Builds the load generator unless a build of the same sources exists. */
function buildLoadgen(): string {
  const missing = ['protoc', 'grpc_cpp_plugin', 'pkg-config', 'g++'].filter((c) => !has(c));
  if (missing.length === 0 && spawnSync('pkg-config', ['--exists', 'grpc++', 'protobuf']).status !== 0)
    missing.push('grpc++ (pkg-config)');
  if (missing.length > 0) {
    fail(`the native load generator needs ${missing.join(', ')}, which are missing (install them with: ${INSTALL})`);
  }
  const files = ['ext_proc_wire.proto', 'loadgen.cc'];
  const hash = createHash('sha256');
  for (const f of files) hash.update(readFileSync(join(src, f)));
  const digest = hash.digest('hex').slice(0, 16);
  const bin = join(out, `loadgen-${digest}`);
  if (existsSync(bin)) return bin;
  mkdirSync(out, { recursive: true });
  process.stderr.write(`ext-proc bench: building the load generator into ${out} (g++ -O2, one job)…\n`);
  try {
    execFileSync(
      'protoc',
      [
        `-I${src}`,
        `--cpp_out=${out}`,
        `--grpc_out=${out}`,
        `--plugin=protoc-gen-grpc=${execFileSync('sh', ['-c', 'command -v grpc_cpp_plugin']).toString().trim()}`,
        join(src, 'ext_proc_wire.proto'),
      ],
      {
        stdio: 'inherit',
      },
    );
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'grpc++', 'protobuf'])
      .toString()
      .trim()
      .split(/\s+/);
    execFileSync(
      'g++',
      [
        '-O2',
        '-std=c++17',
        `-I${out}`,
        join(src, 'loadgen.cc'),
        join(out, 'ext_proc_wire.pb.cc'),
        join(out, 'ext_proc_wire.grpc.pb.cc'),
        '-o',
        bin,
        ...flags,
      ],
      { stdio: 'inherit' },
    );
  } catch (e: unknown) {
    fail(
      `building the load generator failed (${e instanceof Error ? e.message : String(e)}); check that ${INSTALL} succeeded`,
    );
  }
  return bin;
}

interface Server {
  readonly kind: Kind;
  readonly child: ChildProcess;
  readonly uds: string;
  readonly tcp: string;
}

function startServer(kind: Kind, dir: string, script: string): Promise<Server> {
  const uds = join(dir, `${kind}.sock`);
  // Every server alike, as envext runs: compiled JavaScript, envext's environment.
  const child = spawn(process.execPath, [script, kind, uds], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...NODE_ENV },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /READY (\d+)/.exec(buf);
      if (m !== null) resolve({ kind, child, uds: `unix://${uds}`, tcp: `127.0.0.1:${m[1]}` });
    });
    child.on('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

interface Point {
  kind: Kind;
  transport: (typeof TRANSPORTS)[number];
  concurrency: number;
  requestsPerSec: number;
  msgP50Us: number;
  msgP99Us: number;
  serverCpuUsPerRequest: number;
  serverCores: number;
  clientCpuUsPerRequest: number;
  /** CPU cores everything else on the machine used during the window (other people's work). */
  otherCores: number;
  errors: number;
  requests: number;
}

function runPoint(
  loadgen: string,
  s: Server,
  transport: 'uds' | 'tcp',
  n: number,
  warmup = WARMUP,
  seconds = SECONDS,
): Point {
  const r = spawnSync(
    loadgen,
    [
      '--target',
      transport === 'uds' ? s.uds : s.tcp,
      '--concurrency',
      String(n),
      '--warmup',
      String(warmup),
      '--duration',
      String(seconds),
      '--server-pid',
      String(s.child.pid),
    ],
    { encoding: 'utf8', timeout: (warmup + seconds + 30) * 1000 },
  );
  if (r.status !== 0)
    fail(`load generator failed against ${s.kind} over ${transport} at N=${n}: ${r.stderr || r.error?.message || ''}`);
  const j = JSON.parse(r.stdout) as Record<string, number | string>;
  return {
    kind: s.kind,
    transport,
    concurrency: n,
    requestsPerSec: Math.round(Number(j['requestsPerSec'])),
    msgP50Us: Number(j['msgP50Us']),
    msgP99Us: Number(j['msgP99Us']),
    serverCpuUsPerRequest: round(Number(j['serverCpuUsPerRequest']), 1),
    serverCores: round(Number(j['serverCores']), 2),
    clientCpuUsPerRequest: round(Number(j['clientCpuUsPerRequest']), 1),
    otherCores: round(Number(j['otherCores']), 2),
    errors: Number(j['errors']),
    requests: Number(j['requests']),
  };
}

/**
 * A run during which other processes used more than QUIET cores measured their work as much as
 * ours; it is repeated (up to RETRIES times, the last one is kept either way). Every server and
 * point gets the same rule, so the comparison stays like for like.
 */
let retried = 0;
function quietPoint(loadgen: string, s: Server, transport: 'uds' | 'tcp', n: number): Point {
  let p = runPoint(loadgen, s, transport, n);
  for (let i = 0; i < RETRIES && p.otherCores > QUIET; i++) {
    retried++;
    p = runPoint(loadgen, s, transport, n);
  }
  return p;
}

const loadgen = buildLoadgen();
const dir = mkdtempSync(join(tmpdir(), 'envext-xp-bench-'));
const serverScript = compiledBench(join(here, 'ext-proc-server.ts'));
const servers = await Promise.all(KINDS.map((k) => startServer(k, dir, serverScript)));
const loadBefore = loadavg();
const runs: Point[] = [];
try {
  for (const s of servers) runPoint(loadgen, s, 'uds', 16, 2, 2); // JIT warm-up, not reported
  let turn = 0;
  for (let rep = 0; rep < REPEAT; rep++) {
    for (const transport of TRANSPORTS) {
      for (const n of CONCURRENCY) {
        for (let k = 0; k < (n === 1 ? N1_RUNS : 1); k++, turn++) {
          // Rotated order: bare, passthrough, mutate; then passthrough, mutate, bare; …
          for (let i = 0; i < servers.length; i++) {
            const s = servers[(i + turn) % servers.length] as Server;
            runs.push(quietPoint(loadgen, s, transport, n));
          }
        }
      }
    }
  }
} finally {
  for (const s of servers) s.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
};
// One point per (kind, transport, N): the median of the repetitions, field by field; errors summed.
const points: (Point & { requestsPerSecRange: [number, number] })[] = [];
for (const transport of TRANSPORTS) {
  for (const n of CONCURRENCY) {
    for (const kind of KINDS) {
      const rs = runs.filter((p) => p.kind === kind && p.transport === transport && p.concurrency === n);
      const med = (f: (p: Point) => number): number => median(rs.map(f));
      points.push({
        kind,
        transport,
        concurrency: n,
        requestsPerSec: Math.round(med((p) => p.requestsPerSec)),
        requestsPerSecRange: [
          Math.min(...rs.map((p) => p.requestsPerSec)),
          Math.max(...rs.map((p) => p.requestsPerSec)),
        ],
        msgP50Us: med((p) => p.msgP50Us),
        msgP99Us: med((p) => p.msgP99Us),
        serverCpuUsPerRequest: round(
          med((p) => p.serverCpuUsPerRequest),
          1,
        ),
        serverCores: round(
          med((p) => p.serverCores),
          2,
        ),
        clientCpuUsPerRequest: round(
          med((p) => p.clientCpuUsPerRequest),
          1,
        ),
        otherCores: round(
          med((p) => p.otherCores),
          2,
        ),
        errors: rs.reduce((a, p) => a + p.errors, 0),
        requests: rs.reduce((a, p) => a + p.requests, 0),
      });
    }
  }
}

const ratios = TRANSPORTS.flatMap((transport) =>
  CONCURRENCY.flatMap((n) => {
    const base = points.find((p) => p.kind === 'bare' && p.transport === transport && p.concurrency === n);
    if (base === undefined) return [];
    return (['passthrough', 'mutate'] as const).map((kind) => {
      const p = points.find((x) => x.kind === kind && x.transport === transport && x.concurrency === n) as Point;
      return {
        kind,
        transport,
        concurrency: n,
        throughputVsBare: round(p.requestsPerSec / base.requestsPerSec, 2),
        cpuPerRequestVsBare: round(p.serverCpuUsPerRequest / base.serverCpuUsPerRequest, 2),
      };
    });
  }),
);

// The table, for people (stderr keeps stdout to the one JSON line).
const pad = (v: string | number, w: number): string => String(v).padStart(w);
let table = `\next-proc: median of ${REPEAT} runs (${REPEAT * N1_RUNS} at N = 1); ${RUNTIME}; req/s (min–max), per-message p50/p99 µs, server CPU µs/request, ratios vs bare — ${SECONDS}s per run after ${WARMUP}s warm-up\n`;
table += `${'transport'.padEnd(9)} ${pad('N', 4)} ${'server'.padEnd(12)} ${pad('req/s (min–max)', 21)} ${pad('p50', 7)} ${pad('p99', 7)} ${pad('cpu µs', 7)} ${pad('cores', 5)} ${pad('other', 5)} ${pad('errors', 6)}  ${'vs bare'}\n`;
for (const p of points) {
  const r = ratios.find((x) => x.kind === p.kind && x.transport === p.transport && x.concurrency === p.concurrency);
  const vs = r === undefined ? '' : `${r.throughputVsBare.toFixed(2)}× req/s, ${r.cpuPerRequestVsBare.toFixed(2)}× cpu`;
  table += `${p.transport.padEnd(9)} ${pad(p.concurrency, 4)} ${p.kind.padEnd(12)} ${pad(`${p.requestsPerSec} (${p.requestsPerSecRange[0]}–${p.requestsPerSecRange[1]})`, 21)} ${pad(p.msgP50Us, 7)} ${pad(p.msgP99Us, 7)} ${pad(p.serverCpuUsPerRequest, 7)} ${pad(p.serverCores, 5)} ${pad(p.otherCores, 5)} ${pad(p.errors, 6)}  ${vs}\n`;
}
table += `load average before/after: ${loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${loadavg()
  .map((x) => x.toFixed(2))
  .join(
    ' ',
  )} on ${cpus().length} CPUs; "other" = cores used by everything else during the measured window; ${retried} of ${runs.length + retried} runs repeated because other work used more than ${QUIET} cores (up to ${RETRIES} times per run, the last kept)\n`;
process.stderr.write(table);

writeFileSync(join(out, 'last-run.txt'), table);
report('ext-proc', {
  loadgen: 'gRPC C++ callback API (test/bench/ext-proc-loadgen)',
  secondsPerRun: SECONDS,
  repetitions: REPEAT,
  runsPerRepetitionAtN1: N1_RUNS,
  serverOrder: 'rotates from one round to the next',
  runtime: `${RUNTIME} (tsc -p tsconfig.bench.json → .bench-dist/), the same for every server, as envext runs (common/runtime.ts)`,
  warmupSeconds: WARMUP,
  cpus: cpus().length,
  loadAverageBefore: loadBefore.map((x) => round(x, 2)),
  loadAverageAfter: loadavg().map((x) => round(x, 2)),
  quietCores: QUIET,
  retriedRuns: retried,
  baseline: 'bare grpc-js + @grpc/proto-loader server answering CONTINUE (same run)',
  results: points,
  ratios,
});
