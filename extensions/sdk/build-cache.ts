/**
 * Builds with a content stamp, so `npm run build`, the example tests and the benchmarks share
 * one compilation per source state: `<out>.sha256` records a digest of every input (the
 * project's .ts files, the SDK's AssemblyScript sources, the build options and the compiler
 * version); an output whose stamp matches is reused.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../common/package-root.js';
import { buildFilter, defaultOutFile, sdkAssemblyDir, type BuildOptions } from './build.js';

const require = createRequire(import.meta.url);

function tsFiles(dir: string, out: string[], depth = 0): string[] {
  if (depth > 8 || !existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === 'node_modules' || e.name === 'build' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) tsFiles(p, out, depth + 1);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function digest(entry: string, options: Omit<BuildOptions, 'entry' | 'outFile'>): string {
  const h = createHash('sha256');
  const ascVersion = (require('assemblyscript/package.json') as { version: string }).version;
  h.update(JSON.stringify({ ascVersion, runtime: options.runtime ?? 'minimal', debug: options.debug === true }));
  // The build code itself is an input too: its source when present (a checkout, whether this
  // runs from source or from dist/), else the compiled build.js of an installed package.
  const source = join(packageRoot(), 'extensions', 'sdk', 'build.ts');
  h.update(readFileSync(existsSync(source) ? source : fileURLToPath(new URL('build.js', import.meta.url))));
  for (const f of [...tsFiles(dirname(entry), []), ...tsFiles(sdkAssemblyDir(), [])]) {
    h.update(f);
    h.update(readFileSync(f));
  }
  return h.digest('hex');
}

export interface CachedBuild {
  readonly outFile: string;
  readonly binary: Uint8Array;
  /** False when a stamped output was reused. */
  readonly built: boolean;
}

/** Builds `entry` unless `outFile` is up to date with its sources; returns the module bytes. */
export async function buildCached(entry: string, options: Omit<BuildOptions, 'entry'> = {}): Promise<CachedBuild> {
  const outFile = options.outFile ?? defaultOutFile(entry);
  const stampFile = `${outFile}.sha256`;
  const want = digest(entry, options);
  if (existsSync(outFile) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === want) {
    return { outFile, binary: new Uint8Array(readFileSync(outFile)), built: false };
  }
  // Build to a private file, then rename: concurrent test workers never see half a module.
  const tmp = join(dirname(outFile), `.${basename(outFile)}.${process.pid}.tmp`);
  const r = await buildFilter({ ...options, entry, outFile: tmp });
  renameSync(tmp, outFile);
  writeFileSync(stampFile, want + '\n');
  return { outFile, binary: r.binary, built: true };
}

/** Every example under `extensions/examples/<name>/assembly/index.ts`. */
export function exampleEntries(): { name: string; entry: string; outFile: string }[] {
  const root = join(packageRoot(), 'extensions', 'examples');
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'assembly', 'index.ts')))
    .map((e) => e.name)
    .sort()
    .map((name) => ({
      name,
      entry: join(root, name, 'assembly', 'index.ts'),
      outFile: join(root, name, 'build', `${name}.wasm`),
    }));
}

/** The built module of example `name` (built on first use, then reused while sources are unchanged). */
export async function exampleModule(name: string): Promise<Uint8Array> {
  const ex = exampleEntries().find((e) => e.name === name);
  if (ex === undefined) throw new Error(`no example ${name} under extensions/examples`);
  return (await buildCached(ex.entry, { outFile: ex.outFile })).binary;
}

/** The built module of an SDK test filter, `extensions/sdk/testdata/<name>/assembly/index.ts`. */
export async function sdkTestModule(name: string, options: Omit<BuildOptions, 'entry'> = {}): Promise<Uint8Array> {
  const entry = join(packageRoot(), 'extensions', 'sdk', 'testdata', name, 'assembly', 'index.ts');
  return (await buildCached(entry, options)).binary;
}
