/**
 * `npm start`: the quickstart with no external service.
 *
 * Runs `envext serve --provider file --config examples/quickstart`, and first starts what the
 * quickstart's resources point at on this machine:
 * - every Wasm `code.http.url` on 127.0.0.1/localhost gets a local origin on that port serving
 *   the example module of the same name (`/headers.wasm` → the SDK's built
 *   `extensions/examples/headers/build/headers.wasm`);
 * - every `Backend` Unix socket that an `extProc` entry uses gets the example ext_proc handler
 *   (`envext ext-proc serve --uds <path> --handler ext-proc/examples/header-injection`).
 * Anything it cannot start (a port in use, a socket directory it may not create) is reported
 * and the control plane runs anyway: the policy's status then says what failed.
 *
 * Usage: node dist/controlplane/serve/quickstart.js [CONFIG_DIR] [-- extra envext serve flags]
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { packageRoot } from '../../common/package-root.js';
import { errorMessage } from '../../common/errors.js';
import { main } from '../../bin/main.js';
import { loadFiles, yamlFiles } from '../provider/file/load.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);

/** What the quickstart's resources expect on this machine. */
export interface LocalNeeds {
  /** port → module file names served there (`headers.wasm`). */
  readonly origins: Map<number, Set<string>>;
  /** Unix socket paths of ext_proc Backends. */
  readonly sockets: Set<string>;
}

export function localNeeds(objects: readonly unknown[]): LocalNeeds {
  const origins = new Map<number, Set<string>>();
  const sockets = new Set<string>();
  const backends = new Map<string, Obj>();
  for (const o of objects.filter(isObj)) {
    const meta = isObj(o.metadata) ? o.metadata : {};
    if (o.kind === 'Backend') backends.set(`${str(meta.namespace, 'default')}/${str(meta.name)}`, o);
  }
  for (const o of objects.filter(isObj)) {
    if (o.kind !== 'EnvoyExtensionPolicy' || !isObj(o.spec)) continue;
    const ns = str(isObj(o.metadata) ? o.metadata.namespace : undefined, 'default');
    for (const w of list(o.spec.wasm)) {
      const code = isObj(w.code) ? w.code : {};
      const url = isObj(code.http) && typeof code.http.url === 'string' ? code.http.url : undefined;
      if (url === undefined) continue;
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        continue;
      }
      if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(u.hostname)) continue;
      const port = Number(u.port || 80);
      const names = origins.get(port) ?? new Set<string>();
      names.add(basename(u.pathname));
      origins.set(port, names);
    }
    for (const e of list(o.spec.extProc)) {
      for (const ref of list(e.backendRefs)) {
        if (ref.kind !== 'Backend') continue;
        const b = backends.get(`${str(ref.namespace, ns)}/${str(ref.name)}`);
        for (const ep of list(isObj(b?.spec) ? b.spec.endpoints : undefined)) {
          if (isObj(ep.unix) && typeof ep.unix.path === 'string') sockets.add(ep.unix.path);
        }
      }
    }
  }
  return { origins, sockets };
}

/** The example module file for `name.wasm`, if the SDK build produced it. */
export function exampleModule(fileName: string, root = packageRoot()): string | undefined {
  const name = fileName.replace(/\.wasm$/, '');
  const file = join(root, 'extensions', 'examples', name, 'build', `${name}.wasm`);
  return existsSync(file) ? file : undefined;
}

function startOrigin(port: number, names: ReadonlySet<string>): Promise<Server | undefined> {
  const files = new Map<string, string>();
  for (const n of names) {
    const f = exampleModule(n);
    if (f === undefined) process.stderr.write(`quickstart: no example module for ${n} (run npm run build)\n`);
    else files.set(`/${n}`, f);
  }
  const server = createServer((req, res) => {
    const f = files.get((req.url ?? '').split('?')[0]!);
    if (f === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/wasm' }).end(readFileSync(f));
  });
  return new Promise((resolve) => {
    server.once('error', (e) => {
      process.stderr.write(`quickstart: cannot serve modules on 127.0.0.1:${port}: ${e.message}\n`);
      resolve(undefined);
    });
    server.listen(port, '127.0.0.1', () => {
      process.stderr.write(`quickstart: serving ${[...files.keys()].join(', ')} on http://127.0.0.1:${port}\n`);
      resolve(server);
    });
  });
}

async function run(): Promise<number> {
  const args = process.argv.slice(2);
  const dash = args.indexOf('--');
  const config = (dash === 0 ? undefined : args[0]) ?? join('examples', 'quickstart');
  const extra = dash < 0 ? [] : args.slice(dash + 1);
  const needs = localNeeds(loadFiles(await yamlFiles([config])).objects.map((o) => o.value));

  const origins: Server[] = [];
  for (const [port, names] of needs.origins) {
    const s = await startOrigin(port, names);
    if (s !== undefined) origins.push(s);
  }
  // ext_proc handlers and the control plane share one process and one shutdown signal.
  const runs: Promise<number>[] = [];
  const handler = join(packageRoot(), 'dist', 'ext-proc', 'examples', 'header-injection.js');
  for (const socket of needs.sockets) {
    try {
      mkdirSync(dirname(socket), { recursive: true });
    } catch (e: unknown) {
      process.stderr.write(
        `quickstart: cannot create ${dirname(socket)} for the ext_proc socket: ${errorMessage(e)}\n`,
      );
      continue;
    }
    process.stderr.write(`quickstart: starting the example ext_proc handler on ${socket}\n`);
    runs.push(main(['ext-proc', 'serve', '--uds', socket, '--handler', handler]));
  }
  runs.push(main(['serve', '--provider', 'file', '--config', config, ...extra]));
  const codes = await Promise.all(runs);
  for (const s of origins) s.close();
  return codes.find((c) => c !== 0) ?? 0;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) {
  process.exitCode = await run();
}
