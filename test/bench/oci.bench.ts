// Push and pull of a 32 MiB Wasm module against the real local registry (distribution, plain
// HTTP on 127.0.0.1), side by side with `skopeo copy` of the same-sized content in the same run,
// plus a cached resolve of a pinned reference against a raw read of the cache record.
// Every round pushes fresh content (a new seed) so no tool can skip blobs the registry has;
// the two tools alternate within each round (which goes first alternates by round) and the
// medians of 9 rounds are compared. envext runs as its CLI does: push from the file
// (`openModuleFile`), pull to a file (`outputFile`); skopeo copies an OCI layout of the same
// image to the registry and back into a fresh layout. Besides wall time, each operation's CPU
// time is read from /proc (Linux; null elsewhere), outside the timed part: the client's (envext:
// this process; skopeo: the child, from this process's cutime/cstime) and the registry's. CPU
// time moves much less than wall time when other work shares the machine.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { ModuleCache } from '../../oci/cache.js';
import { digestHex } from '../../oci/digest.js';
import { buildImage } from '../../oci/layouts.js';
import { pullWasmModule, resolveWasmModule } from '../../oci/pull.js';
import { openModuleFile, pushWasmModule } from '../../oci/push.js';
import { RegistryClient } from '../../oci/registry-client.js';
import { configureLogging } from '../../common/log.js';
import { startRegistry } from '../fixtures/registry.js';
import { makeWasmModule } from '../fixtures/wasm-module.js';
import { report, round } from './lib.js';

const run = promisify(execFile);
const SIZE = 32 * 1024 * 1024;
const ROUNDS = 9;

configureLogging({ level: 'warn', format: 'text', sink: process.stderr });

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** CPU ms of a process from /proc/PID/stat: its own (utime+stime) or its waited-for children's. */
function procCpuMs(pid: number | 'self', children = false): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [u, s] = children ? [f[13], f[14]] : [f[11], f[12]];
    return ((Number(u) + Number(s)) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function getClockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
}
const CLOCK_TICKS = getClockTicks();

/** CPU ms spent by `who` during `fn` (outside `fn`'s own timing). */
async function cpuDuring(
  fn: () => Promise<void>,
  registryPid: number | undefined,
  client: 'self' | 'children',
): Promise<{ client?: number; registry?: number }> {
  const reg0 = registryPid === undefined ? undefined : procCpuMs(registryPid);
  const self0 = process.cpuUsage();
  const child0 = procCpuMs('self', true);
  await fn();
  const self = process.cpuUsage(self0);
  const child1 = procCpuMs('self', true);
  const reg1 = registryPid === undefined ? undefined : procCpuMs(registryPid);
  const out: { client?: number; registry?: number } = {};
  if (client === 'self') out.client = (self.user + self.system) / 1000;
  else if (child0 !== undefined && child1 !== undefined) out.client = child1 - child0;
  if (reg0 !== undefined && reg1 !== undefined) out.registry = reg1 - reg0;
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** The same image envext would push, as an OCI layout skopeo can copy from. */
async function writeLayout(dir: string, module: Buffer): Promise<void> {
  const built = buildImage(module, 'oci');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of built.blobs) await writeFile(join(dir, 'blobs', 'sha256', digestHex(b.digest)), b.data);
  await writeFile(join(dir, 'blobs', 'sha256', digestHex(built.manifestDigest)), built.manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: built.manifestMediaType,
          digest: built.manifestDigest,
          size: built.manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
}

const reg = await startRegistry({ mode: 'plain' });
const work = await mkdtemp(join(tmpdir(), 'envext-oci-bench-'));
try {
  const client = new RegistryClient();
  let registryPid: number | undefined;
  try {
    const pids = execFileSync('pgrep', ['-f', `serve ${join(reg.dir, 'config.yml')}`]).toString();
    registryPid = Number(pids.trim().split('\n')[0]) || undefined;
  } catch {
    registryPid = undefined;
  }
  /** CPU ms per operation: `${tool}${Op}` → client and registry samples. */
  const cpu = new Map<string, { client: number[]; registry: number[] }>();
  const measured = async (key: string, client: 'self' | 'children', fn: () => Promise<void>): Promise<void> => {
    const c = await cpuDuring(fn, registryPid, client);
    const entry = cpu.get(key) ?? { client: [], registry: [] };
    if (c.client !== undefined) entry.client.push(c.client);
    if (c.registry !== undefined) entry.registry.push(c.registry);
    cpu.set(key, entry);
  };
  const envextPush: number[] = [];
  const skopeoPush: number[] = [];
  const envextPull: number[] = [];
  const skopeoPull: number[] = [];
  let lastRef = '';
  for (let i = 0; i < ROUNDS; i++) {
    // Fresh content for each tool and round; files on disk for both, as a user would have them.
    const mine = join(work, `e${i}.wasm`);
    await writeFile(mine, makeWasmModule(SIZE, `envext-${i}`));
    const layout = join(work, `layout-${i}`);
    await writeLayout(layout, makeWasmModule(SIZE, `skopeo-${i}`));

    const ref = `${reg.host}/bench/envext:r${i}`;
    const skopeoRef = `docker://${reg.host}/bench/skopeo:r${i}`;
    // As `envext oci push` does: the upload starts while the file is read and hashed.
    const pushEnvext = async (): Promise<void> => {
      envextPush.push(await time(async () => pushWasmModule(ref, await openModuleFile(mine), { client })));
    };
    const pushSkopeo = async (): Promise<void> => {
      skopeoPush.push(
        await time(() => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, skopeoRef])),
      );
    };
    // As `envext oci pull -o FILE` does: the module is written while it downloads.
    const pullEnvext = async (): Promise<void> => {
      envextPull.push(await time(async () => pullWasmModule(ref, { client, outputFile: join(work, `out-${i}.wasm`) })));
    };
    const pullSkopeo = async (): Promise<void> => {
      skopeoPull.push(
        await time(() =>
          run('skopeo', ['copy', '--src-tls-verify=false', skopeoRef, `oci:${join(work, `copy-${i}`)}:v1`]),
        ),
      );
    };
    // Who goes first alternates by round, so neither tool always runs right after the other's upload.
    const steps: [string, 'self' | 'children', () => Promise<void>][] = [
      ['envextPush', 'self', pushEnvext],
      ['skopeoPush', 'children', pushSkopeo],
      ['envextPull', 'self', pullEnvext],
      ['skopeoPull', 'children', pullSkopeo],
    ];
    const order = i % 2 === 0 ? [0, 1, 2, 3] : [1, 0, 3, 2];
    for (const k of order) {
      const [key, who, step] = steps[k]!;
      await measured(key, who, step);
    }
    lastRef = ref;
    // What envext wrote is the module (size checked; the digests were verified by the pull).
    if ((await stat(join(work, `out-${i}.wasm`))).size !== SIZE)
      throw new Error(`round ${i}: pulled file has the wrong size`);
    for (const p of [layout, join(work, `copy-${i}`), mine, join(work, `out-${i}.wasm`)])
      await rm(p, { recursive: true, force: true });
  }

  // Cached resolve of a pinned reference: no registry call, two small file operations.
  const cache = new ModuleCache(join(work, 'cache'));
  const pinned = await resolveWasmModule(lastRef, { client, cache });
  const pinnedRef = `${reg.host}/bench/envext@${pinned.manifestDigest}`;
  const N = 500;
  for (let i = 0; i < 50; i++) await resolveWasmModule(pinnedRef, { client, cache });
  const resolveMs =
    (await time(async () => {
      for (let i = 0; i < N; i++) await resolveWasmModule(pinnedRef, { client, cache });
    })) / N;
  const recordFile = join(work, 'cache', 'manifests', `${digestHex(pinned.manifestDigest)}.json`);
  const readMs =
    (await time(async () => {
      for (let i = 0; i < N; i++) JSON.parse(await readFile(recordFile, 'utf8'));
    })) / N;
  await client.close();

  const mibPerS = (ms: number): number => round(SIZE / 1024 / 1024 / (ms / 1000), 1);
  const cpuOf = (key: string): { clientMs: number | null; registryMs: number | null } => {
    const c = cpu.get(key);
    const m = (xs: number[] | undefined): number | null =>
      xs === undefined || xs.length === 0 ? null : round(median(xs), 1);
    return { clientMs: m(c?.client), registryMs: m(c?.registry) };
  };
  report('oci', {
    moduleBytes: SIZE,
    rounds: ROUNDS,
    push: {
      envextMs: round(median(envextPush), 1),
      skopeoMs: round(median(skopeoPush), 1),
      ratio: round(median(envextPush) / median(skopeoPush), 2),
      envextMiBps: mibPerS(median(envextPush)),
      target: '<= 1.0',
      cpu: { envext: cpuOf('envextPush'), skopeo: cpuOf('skopeoPush') },
    },
    pull: {
      envextMs: round(median(envextPull), 1),
      skopeoMs: round(median(skopeoPull), 1),
      ratio: round(median(envextPull) / median(skopeoPull), 2),
      envextMiBps: mibPerS(median(envextPull)),
      target: '<= 1.0',
      cpu: { envext: cpuOf('envextPull'), skopeo: cpuOf('skopeoPull') },
    },
    cachedResolve: { ms: round(resolveMs, 3), baselineReadRecordMs: round(readMs, 3), target: '<= 5 ms' },
    samples: {
      envextPush: envextPush.map((x) => round(x, 1)),
      skopeoPush: skopeoPush.map((x) => round(x, 1)),
      envextPull: envextPull.map((x) => round(x, 1)),
      skopeoPull: skopeoPull.map((x) => round(x, 1)),
    },
  });
} finally {
  await reg.stop();
  await rm(work, { recursive: true, force: true });
}
