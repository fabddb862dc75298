import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvextError } from '../../common/errors.js';
import { checkModule, envoyImportsFor, readWasmBinary } from '../host/index.js';
import { WA } from '../host/wasm-api.js';
import { ALL_CALLBACK_EXPORTS, buildFilter, defaultOutFile, selectCallbacks } from './build.js';
import { buildCached, exampleEntries, sdkTestModule } from './build-cache.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A throw-away project with `assembly/index.ts` = `source`. */
function project(source: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'envext-build-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'assembly'));
  writeFileSync(join(dir, 'assembly', 'index.ts'), source);
  return dir;
}

const prelude = `import { HttpContext, RootContext, registerRootContext, FilterHeadersStatus } from "envext/assembly";
class F extends HttpContext {
  onRequestHeaders(n: u32, eos: bool): FilterHeadersStatus {
`;
const postlude = `    return FilterHeadersStatus.Continue;
  }
}
class R extends RootContext {
  createHttpContext(id: u32): HttpContext | null { return new F(id, this); }
}
registerRootContext((id: u32): RootContext => new R(id));
`;

describe('every built module loads in Envoy', () => {
  const modules = [
    ...exampleEntries().map((e) => ({
      name: `example ${e.name}`,
      load: async () => (await buildCached(e.entry, { outFile: e.outFile })).binary,
    })),
    { name: 'minimal filter', load: () => sdkTestModule('minimal') },
    {
      name: 'minimal filter, incremental runtime',
      load: () =>
        sdkTestModule('minimal', {
          runtime: 'incremental',
          outFile: join(tmpdir(), `envext-minimal-incremental-${process.pid}.wasm`),
        }),
    },
    { name: 'capabilities filter', load: () => sdkTestModule('capabilities') },
  ];
  it.each(modules)(
    "$name: imports on Envoy's list, ABI marker, allocators, _initialize, no start section",
    async ({ load }) => {
      const bytes = await load();
      const module = new WA.Module(bytes);
      const info = readWasmBinary(bytes);
      const check = checkModule(module, info);
      expect(check.problems).toEqual([]);
      expect(check.abiVersion).toBe('0.2.1');
      expect(check.allocator).toBe('malloc');
      const envoy = envoyImportsFor('0.2.1');
      for (const i of WA.Module.imports(module)) expect(envoy.has(`${i.module}.${i.name}`)).toBe(true);
      const exports = WA.Module.exports(module).map((e) => e.name);
      expect(exports).toEqual(
        expect.arrayContaining([
          'proxy_abi_version_0_2_1',
          'malloc',
          'proxy_on_memory_allocate',
          '_initialize',
          'memory',
        ]),
      );
      expect(info.hasStartSection).toBe(false);
    },
    180_000,
  );
});

describe('envext build', () => {
  it('builds the minimal filter under 8 KiB with only the callbacks it overrides', async () => {
    const dir = project(readFileSync(join(import.meta.dirname, 'testdata', 'minimal', 'assembly', 'index.ts'), 'utf8'));
    const r = await buildFilter({ entry: join(dir, 'assembly', 'index.ts') });
    expect(r.outFile).toBe(join(dir, 'build', `${dir.split('/').pop()}.wasm`));
    expect(readFileSync(r.outFile).length).toBe(r.size);
    expect(r.size).toBeLessThanOrEqual(8192);
    expect(r.exports.filter((e) => e.startsWith('proxy_on_')).sort()).toEqual([
      'proxy_on_configure',
      'proxy_on_context_create',
      'proxy_on_delete',
      'proxy_on_done',
      'proxy_on_memory_allocate',
      'proxy_on_response_headers',
      'proxy_on_vm_start',
    ]);
    expect(r.runtime).toBe('minimal');
  }, 180_000);

  it('--all-exports exports every callback', async () => {
    const dir = project(prelude + postlude);
    const r = await buildFilter({ entry: join(dir, 'assembly', 'index.ts'), allExports: true });
    expect(r.exports).toEqual(expect.arrayContaining([...ALL_CALLBACK_EXPORTS]));
  }, 180_000);

  const forbidden: ReadonlyArray<{ name: string; code: string; want: RegExp }> = [
    {
      name: 'Math.random',
      code: 'if (Math.random() > 2) return FilterHeadersStatus.StopIteration;',
      want: /import env\.seed is not provided by Envoy; it comes from Math\.random\(\)/,
    },
    {
      name: 'Date.now',
      code: 'if (Date.now() < 0) return FilterHeadersStatus.StopIteration;',
      want: /import env\.Date\.now is not provided by Envoy; it comes from Date\.now\(\)/,
    },
    {
      name: 'console.log',
      code: 'console.log("hi");',
      want: /import env\.console\.log is not provided by Envoy; it comes from console\.log\(\)/,
    },
    {
      name: 'trace',
      code: 'trace("hi");',
      want: /import env\.trace is not provided by Envoy; it comes from trace\(\)/,
    },
  ];
  it.each(forbidden)(
    'fails on a forbidden import from $name, naming the import and its source',
    async ({ code, want }) => {
      const dir = project(prelude + code + '\n' + postlude);
      const err = await buildFilter({ entry: join(dir, 'assembly', 'index.ts') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnvextError);
      expect((err as EnvextError).code).toBe('SDK_MODULE_NOT_LOADABLE');
      expect((err as EnvextError).message).toMatch(want);
    },
    180_000,
  );

  it('names the file and line of a user-declared import Envoy lacks', async () => {
    const dir = project(
      prelude.replace('class F', '@external("env", "my_host_fn")\ndeclare function myHostFn(): u32;\nclass F') +
        'myHostFn();\n' +
        postlude,
    );
    const err = (await buildFilter({ entry: join(dir, 'assembly', 'index.ts'), cwd: dir }).catch(
      (e: unknown) => e,
    )) as EnvextError;
    expect(err.code).toBe('SDK_MODULE_NOT_LOADABLE');
    expect(err.message).toContain('import env.my_host_fn is not provided by Envoy; declared at assembly/index.ts:2');
  }, 180_000);

  it('reports compile errors with file and position', async () => {
    const dir = project(prelude + 'const x: i32 = "not a number";\n' + postlude);
    const err = (await buildFilter({ entry: join(dir, 'assembly', 'index.ts') }).catch(
      (e: unknown) => e,
    )) as EnvextError;
    expect(err.code).toBe('SDK_COMPILE_FAILED');
    expect(err.message).toMatch(/TS2322: Type '~lib\/string\/String' is not assignable to type 'i32'/);
    expect(err.message).toMatch(/assembly\/index\.ts\(4,/);
  }, 180_000);

  it.each([
    { name: 'a missing entry', entry: 'nope/index.ts', code: 'SDK_ENTRY_NOT_FOUND' },
    { name: 'an entry that is not .ts', entry: 'package.json', code: 'SDK_ENTRY_NOT_TS' },
  ])('rejects $name', async ({ entry, code }) => {
    const err = (await buildFilter({ entry, cwd: join(import.meta.dirname, '..', '..') }).catch(
      (e: unknown) => e,
    )) as EnvextError;
    expect(err.code).toBe(code);
    expect(err.hint).toBeDefined();
  });
});

describe('selectCallbacks', () => {
  it.each([
    { name: 'nothing overridden', src: 'class A {}', extra: [] },
    {
      name: 'headers both ways',
      src: 'onRequestHeaders() onResponseHeaders()',
      extra: ['proxy_on_request_headers', 'proxy_on_response_headers'],
    },
    {
      name: 'onGrpcReceive is not onGrpcReceiveInitialMetadata',
      src: 'onGrpcReceiveInitialMetadata(',
      extra: ['proxy_on_grpc_receive_initial_metadata'],
    },
    {
      name: 'tcp',
      src: 'onNewConnection onDownstreamData onUpstreamConnectionClose',
      extra: ['proxy_on_new_connection', 'proxy_on_downstream_data', 'proxy_on_upstream_connection_close'],
    },
  ])('$name', ({ src, extra }) => {
    const got = selectCallbacks([src]);
    expect(got.slice(0, 8)).toEqual([
      'proxy_abi_version_0_2_1',
      'malloc',
      'proxy_on_memory_allocate',
      'proxy_on_context_create',
      'proxy_on_vm_start',
      'proxy_on_configure',
      'proxy_on_done',
      'proxy_on_delete',
    ]);
    expect(got.slice(8).sort()).toEqual([...extra].sort());
  });

  it('defaultOutFile names the output after the project folder', () => {
    expect(defaultOutFile('/p/my-filter/assembly/index.ts')).toBe('/p/my-filter/build/my-filter.wasm');
    expect(defaultOutFile('/p/src/main.ts')).toBe('/p/src/build/src.wasm');
  });
});
