/**
 * `envext build`: compiles an AssemblyScript filter into a module Envoy loads, using the
 * AssemblyScript compiler's programmatic API (no `asc` process, no asconfig needed).
 *
 * What it adds to a plain `asc` run (reference §5.2, §6.1–6.4):
 * - a generated entry next to the user's file that re-exports the SDK's `proxy_on_*`
 *   dispatcher, so the user's file only registers root contexts;
 * - `--exportStart _initialize` (Envoy calls it in restricted mode; no start section);
 * - `--use abort=…` pointing at the SDK's abort, which logs at critical level and traps
 *   (Envoy has no `env.abort`);
 * - the minimal runtime by default, with collections at quiet points done by the SDK
 *   (`--runtime incremental` is the alternative);
 * - after compiling: every import checked against Envoy's list (`extensions/host/envoy-imports.ts`),
 *   the ABI marker and allocator checked, and a forbidden import named with where it comes from.
 *
 * The SDK is resolved as the AssemblyScript package `envext/assembly`: any
 * `node_modules/envext/assembly/<file>` the compiler asks for is served from this package's
 * `extensions/sdk/assembly/`, so projects (and the examples in this repo) import
 * `"envext/assembly"` whether or not envext is installed under their node_modules.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import asc from 'assemblyscript/asc';
import { EnvextError } from '../../common/errors.js';
import { packageRoot } from '../../common/package-root.js';
import { checkModule } from '../host/envoy-imports.js';
import { WA } from '../host/wasm-api.js';
import { readWasmBinary } from '../host/wasm-binary.js';

export type GcRuntime = 'minimal' | 'incremental';

export interface BuildOptions {
  /** The filter's AssemblyScript entry, e.g. `assembly/index.ts`. */
  readonly entry: string;
  /** Output `.wasm`; default `<project>/build/<project-name>.wasm`. */
  readonly outFile?: string;
  /** Garbage-collector runtime; default `minimal` (see the module comment). */
  readonly runtime?: GcRuntime;
  /** Skip optimisation and keep names (for debugging). */
  readonly debug?: boolean;
  /** Also write the text format next to the binary (`.wat`). */
  readonly emitText?: boolean;
  /** Working directory for relative paths (default `process.cwd()`). */
  readonly cwd?: string;
  /**
   * Export every `proxy_on_*` callback, not only those the sources override (see
   * `selectCallbacks`). Needed when a base class from another package overrides callbacks.
   */
  readonly allExports?: boolean;
}

export interface BuildResult {
  readonly outFile: string;
  readonly size: number;
  readonly gzipSize: number;
  readonly imports: readonly string[];
  readonly exports: readonly string[];
  readonly runtime: GcRuntime;
  readonly binary: Uint8Array;
}

/** The SDK's AssemblyScript sources. */
export function sdkAssemblyDir(): string {
  return join(packageRoot(), 'extensions', 'sdk', 'assembly');
}

const ENTRY_NAME = '__envext_entry__.ts';
const SDK_SPECIFIER = /(?:^|[\\/])node_modules[\\/]envext[\\/]assembly[\\/](.+)$/;

/**
 * Where a known forbidden import comes from in AssemblyScript, and what to use instead. Envoy
 * provides none of these (reference §5.2).
 */
const KNOWN_FORBIDDEN: Readonly<Record<string, string>> = {
  'env.abort': "AssemblyScript's default abort (build with envext build, which uses the SDK's abort)",
  'env.trace': 'trace() — use logDebug()/log() from "envext/assembly"',
  'env.seed': 'Math.random() — Envoy offers no seed; derive randomness from the request or the WASI random_get',
  'env.Date.now': 'Date.now() / new Date() — use currentTimeNanoseconds() from "envext/assembly"',
  'env.console.log': 'console.log() — use logInfo() from "envext/assembly"',
  'env.console.info': 'console.info() — use logInfo() from "envext/assembly"',
  'env.console.warn': 'console.warn() — use logWarn() from "envext/assembly"',
  'env.console.error': 'console.error() — use logError() from "envext/assembly"',
  'env.console.debug': 'console.debug() — use logDebug() from "envext/assembly"',
  'env.console.time': 'console.time() — not available in Envoy',
  'env.console.timeEnd': 'console.timeEnd() — not available in Envoy',
  'env.process.hrtime': 'process.hrtime() — use currentTimeNanoseconds() from "envext/assembly"',
};

/** Callbacks every module exports: the ABI marker, allocators and the context lifecycle. */
const ALWAYS_EXPORTED = [
  'proxy_abi_version_0_2_1',
  'malloc',
  'proxy_on_memory_allocate',
  'proxy_on_context_create',
  'proxy_on_vm_start',
  'proxy_on_configure',
  'proxy_on_done',
  'proxy_on_delete',
] as const;

/** SDK method a user overrides → the export that calls it. */
const CALLBACK_EXPORTS: readonly (readonly [method: string, exportName: string])[] = [
  ['onValidateConfiguration', 'proxy_validate_configuration'],
  ['onTick', 'proxy_on_tick'],
  ['onQueueReady', 'proxy_on_queue_ready'],
  ['onForeignFunction', 'proxy_on_foreign_function'],
  ['onLog', 'proxy_on_log'],
  ['onRequestHeaders', 'proxy_on_request_headers'],
  ['onRequestBody', 'proxy_on_request_body'],
  ['onRequestTrailers', 'proxy_on_request_trailers'],
  ['onRequestMetadata', 'proxy_on_request_metadata'],
  ['onResponseHeaders', 'proxy_on_response_headers'],
  ['onResponseBody', 'proxy_on_response_body'],
  ['onResponseTrailers', 'proxy_on_response_trailers'],
  ['onResponseMetadata', 'proxy_on_response_metadata'],
  ['onNewConnection', 'proxy_on_new_connection'],
  ['onDownstreamData', 'proxy_on_downstream_data'],
  ['onUpstreamData', 'proxy_on_upstream_data'],
  ['onDownstreamConnectionClose', 'proxy_on_downstream_connection_close'],
  ['onUpstreamConnectionClose', 'proxy_on_upstream_connection_close'],
  ['onHttpCallResponse', 'proxy_on_http_call_response'],
  ['onGrpcReceiveInitialMetadata', 'proxy_on_grpc_receive_initial_metadata'],
  ['onGrpcReceive', 'proxy_on_grpc_receive'],
  ['onGrpcReceiveTrailingMetadata', 'proxy_on_grpc_receive_trailing_metadata'],
  ['onGrpcClose', 'proxy_on_grpc_close'],
];

/** Every callback the SDK can export. */
export const ALL_CALLBACK_EXPORTS: readonly string[] = [...ALWAYS_EXPORTED, ...CALLBACK_EXPORTS.map(([, e]) => e)];

/**
 * The `proxy_on_*` exports a filter needs: the lifecycle ones, plus one per SDK callback whose
 * name appears in its sources. Envoy treats a missing callback as "continue" and does not even
 * enter the VM for it, so leaving out what the filter never overrides saves both size (about
 * 60 bytes per callback) and per-request work in Envoy.
 */
export function selectCallbacks(sources: readonly string[]): string[] {
  const out: string[] = [...ALWAYS_EXPORTED];
  for (const [method, exportName] of CALLBACK_EXPORTS) {
    const re = new RegExp(`\\b${method}\\b`);
    if (sources.some((s) => re.test(s))) out.push(exportName);
  }
  return out;
}

/** The project's own AssemblyScript sources: every .ts under the entry's folder. */
function projectSources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 8) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'build' || e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.name.endsWith('.ts') && e.name !== ENTRY_NAME) out.push(readFileSync(p, 'utf8'));
    }
  };
  walk(dir, 0);
  return out;
}

/** Default output for an entry: `<project>/build/<project>.wasm`, project = the folder above `assembly/`. */
export function defaultOutFile(entry: string): string {
  const dir = dirname(entry);
  const project = basename(dir) === 'assembly' ? dirname(dir) : dir;
  return join(project, 'build', `${basename(project)}.wasm`);
}

function findDeclaration(sources: ReadonlyMap<string, string>, module: string, name: string): string | undefined {
  // `@external("module", "name")`, or `declare function name` in a file named after the module
  // (AssemblyScript's default import module is the declaring file's name).
  const ext = new RegExp(`@external\\(\\s*["']${escape(module)}["']\\s*,\\s*["']${escape(name)}["']`);
  const decl = new RegExp(`declare\\s+function\\s+${escape(name)}\\s*[(<]`);
  for (const [file, text] of sources) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? '';
      if (ext.test(line) || (decl.test(line) && basename(file, '.ts') === module)) return `${file}:${i + 1}`;
    }
  }
  return undefined;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Compiles, checks and writes a filter. Throws `EnvextError` with a stable code on failure. */
export async function buildFilter(options: BuildOptions): Promise<BuildResult> {
  const cwd = options.cwd ?? process.cwd();
  const entry = resolve(cwd, options.entry);
  if (!existsSync(entry) || !statSync(entry).isFile()) {
    throw new EnvextError('SDK_ENTRY_NOT_FOUND', `filter entry ${options.entry} does not exist`, {
      hint: 'pass the AssemblyScript entry file, e.g. envext build assembly/index.ts',
    });
  }
  if (!entry.endsWith('.ts')) {
    throw new EnvextError('SDK_ENTRY_NOT_TS', `filter entry ${options.entry} is not a .ts file`, {
      hint: 'the entry is AssemblyScript source, e.g. assembly/index.ts',
    });
  }
  const runtime = options.runtime ?? 'minimal';
  const outFile = resolve(cwd, options.outFile ?? defaultOutFile(entry));
  const entryDir = dirname(entry);
  const wrapper = join(entryDir, ENTRY_NAME);
  const userModule = './' + basename(entry, '.ts');
  const callbacks = options.allExports === true ? [...ALL_CALLBACK_EXPORTS] : selectCallbacks(projectSources(entryDir));
  const wrapperText =
    `// generated by envext build: the SDK's proxy_on_* exports plus the filter's own exports\n` +
    `import "envext/assembly/runtime";\n` +
    `export { ${callbacks.join(', ')} } from "envext/assembly/dispatch";\n` +
    `export * from "${userModule}";\n`;
  const sdkDir = sdkAssemblyDir();

  const userSources = new Map<string, string>();
  const outputs = new Map<string, Uint8Array | string>();
  let stderr = '';
  // The compiler asks for paths relative to `baseDir`; serve the wrapper and the SDK virtually.
  const readFile = (filename: string, baseDir: string): string | null => {
    const abs = resolve(baseDir, filename);
    if (abs === wrapper) return wrapperText;
    const m = SDK_SPECIFIER.exec(abs);
    if (m?.[1] !== undefined) {
      const target = join(sdkDir, m[1]);
      return existsSync(target) ? readFileSync(target, 'utf8') : null;
    }
    try {
      const text = readFileSync(abs, 'utf8');
      if (!abs.includes(`${sep}node_modules${sep}`)) userSources.set(relative(cwd, abs) || abs, text);
      return text;
    } catch {
      return null;
    }
  };
  const listFiles = (dirname_: string, baseDir: string): string[] | null => {
    try {
      return readdirSync(resolve(baseDir, dirname_)).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    } catch {
      return null;
    }
  };
  const argv = [
    relative(cwd, wrapper) || wrapper,
    '--baseDir',
    cwd,
    '--outFile',
    'module.wasm',
    '--runtime',
    runtime,
    '--exportStart',
    '_initialize',
    '--use',
    'abort=~lib/envext/assembly/runtime/abort',
    ...(options.emitText === true ? ['--textFile', 'module.wat'] : []),
    ...(options.debug === true ? ['--debug'] : ['-Oz', '--noAssert']),
  ];
  const result = await asc.main(argv, {
    readFile,
    listFiles,
    writeFile: (name: string, contents: Uint8Array | string) => {
      outputs.set(basename(name), contents);
    },
    stdout: { write: () => true },
    stderr: {
      write: (chunk: string | Uint8Array) => {
        stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
        return true;
      },
    },
  });
  const binaryOut = outputs.get('module.wasm');
  if (result.error !== null || !(binaryOut instanceof Uint8Array)) {
    throw new EnvextError(
      'SDK_COMPILE_FAILED',
      `AssemblyScript compilation of ${options.entry} failed:\n${stripAnsi(stderr).trim() || String(result.error)}`,
      { hint: 'fix the errors above (file:line as reported by asc)' },
    );
  }
  const binary = binaryOut;
  const module = new WA.Module(binary);
  const info = readWasmBinary(binary, outFile);
  const check = checkModule(module, info);
  const imports = WA.Module.imports(module).map((i) => `${i.module}.${i.name}`);
  const exports = WA.Module.exports(module).map((e) => e.name);
  const problems: string[] = [];
  for (const p of check.problems) {
    if (p.severity !== 'envoy') continue;
    if (p.code === 'MISSING_IMPORT' && p.subject !== undefined) {
      const [mod = '', ...rest] = p.subject.split('.');
      const name = rest.join('.');
      const known = KNOWN_FORBIDDEN[p.subject];
      const where = findDeclaration(userSources, mod, name);
      problems.push(
        `import ${p.subject} is not provided by Envoy` +
          (known !== undefined ? `; it comes from ${known}` : '') +
          (where !== undefined ? `; declared at ${where}` : ''),
      );
    } else {
      problems.push(p.message);
    }
  }
  if (!exports.includes('_initialize')) problems.push('the module does not export _initialize');
  if (problems.length > 0) {
    throw new EnvextError(
      'SDK_MODULE_NOT_LOADABLE',
      `${options.entry}: Envoy would not load the built module:\n  - ${problems.join('\n  - ')}`,
      { hint: 'remove the calls named above; Envoy provides only the proxy-wasm ABI 0.2.1 imports and WASI' },
    );
  }
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, binary);
  const text = outputs.get('module.wat');
  if (typeof text === 'string') writeFileSync(outFile.replace(/\.wasm$/, '') + '.wat', text);
  return {
    outFile,
    size: binary.length,
    gzipSize: gzipSync(binary, { level: 9 }).length,
    imports,
    exports,
    runtime,
    binary,
  };
}

function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*m/g, '');
}
