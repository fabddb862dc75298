import { describe, expect, it } from 'vitest';
import { checkModule, detectAbiVersion, envoyImportsFor, ENV_IMPORTS, WASI_IMPORTS } from './envoy-imports.js';
import { WA } from './wasm-api.js';
import { readWasmBinary } from './wasm-binary.js';
import { compileWat } from './wat.js';

async function check(wat: string): Promise<ReturnType<typeof checkModule>> {
  const bytes = await compileWat(`(module ${wat})`);
  return checkModule(new WA.Module(bytes), readWasmBinary(bytes));
}

const MARK = '(func (export "proxy_abi_version_0_2_1")) (memory (export "memory") 1)';
const MALLOC = '(func (export "malloc") (param i32) (result i32) (i32.const 0))';

describe('detectAbiVersion', () => {
  const cases = [
    { name: 'none', exports: [], want: 'unknown' },
    { name: '0.2.1', exports: [{ name: 'proxy_abi_version_0_2_1', kind: 'function' }], want: '0.2.1' },
    { name: '0.2.0', exports: [{ name: 'proxy_abi_version_0_2_0', kind: 'function' }], want: '0.2.0' },
    { name: '0.1.0', exports: [{ name: 'proxy_abi_version_0_1_0', kind: 'function' }], want: '0.1.0' },
    {
      name: 'first marker wins',
      exports: [
        { name: 'proxy_abi_version_0_2_0', kind: 'function' },
        { name: 'proxy_abi_version_0_2_1', kind: 'function' },
      ],
      want: '0.2.0',
    },
    {
      name: 'a global is not a marker',
      exports: [{ name: 'proxy_abi_version_0_2_1', kind: 'global' }],
      want: 'unknown',
    },
  ] as const;
  it.each(cases)('$name', ({ exports, want }) => expect(detectAbiVersion(exports)).toBe(want));
});

describe('checkModule', () => {
  it('accepts a module using only what Envoy provides', async () => {
    const r = await check(`
      (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
      (import "env" "proxy_increment_metric" (func (param i32 i64) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_unstable" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      ${MARK} ${MALLOC}`);
    expect(r).toEqual({ abiVersion: '0.2.1', allocator: 'malloc', problems: [], loadable: true });
  });

  it('names every unknown import', async () => {
    const r = await check(`
      (import "env" "proxy_foo" (func))
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))
      (import "env" "memory" (memory 1))
      (func (export "proxy_abi_version_0_2_1")) ${MALLOC}`);
    expect(r.loadable).toBe(false);
    expect(r.problems.map((p) => p.message)).toEqual([
      'Failed to load Wasm module due to a missing import: env.proxy_foo',
      'Failed to load Wasm module due to a missing import: env.abort',
      // a 0.1.0-only call is not registered for a 0.2.1 module
      'Failed to load Wasm module due to a missing import: env.proxy_get_configuration',
      'Failed to load Wasm module due to a missing import: env.memory',
    ]);
  });

  it('reports a signature mismatch', async () => {
    const r = await check(`(import "env" "proxy_log" (func (param i32 i32) (result i32))) ${MARK} ${MALLOC}`);
    expect(r.problems).toEqual([
      expect.objectContaining({
        code: 'IMPORT_TYPE_MISMATCH',
        subject: 'env.proxy_log',
        message: expect.stringContaining('(i32, i32) -> i32') as unknown,
      }),
    ]);
  });

  it('reports a missing ABI marker', async () => {
    const r = await check(MALLOC);
    expect(r.abiVersion).toBe('unknown');
    expect(r.problems.map((p) => p.code)).toEqual(['UNKNOWN_ABI']);
  });

  it('looks up malloc before proxy_on_memory_allocate, and needs one', async () => {
    const both = await check(
      `${MARK} ${MALLOC} (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0))`,
    );
    expect(both.allocator).toBe('malloc');
    const none = await check(MARK);
    expect(none.problems.map((p) => p.code)).toEqual(['MISSING_ALLOCATOR']);
  });

  it('reports 0.1.0 as loadable by Envoy but not run by this host', async () => {
    const r = await check(`(import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))
      (func (export "proxy_abi_version_0_1_0")) ${MALLOC}`);
    expect(r).toMatchObject({
      abiVersion: '0.1.0',
      loadable: true,
      problems: [{ code: 'UNSUPPORTED_ABI', severity: 'host' }],
    });
  });
});

describe('import list', () => {
  it('registers get_log_level only for 0.2.1 and the WASI set under both module names', () => {
    expect(envoyImportsFor('0.2.1').has('env.proxy_get_log_level')).toBe(true);
    expect(envoyImportsFor('0.2.0').has('env.proxy_get_log_level')).toBe(false);
    expect(envoyImportsFor('0.2.0').has('env.proxy_continue_stream')).toBe(true);
    expect(envoyImportsFor('0.1.0').has('env.proxy_continue_stream')).toBe(false);
    const m = envoyImportsFor('0.2.1');
    for (const w of WASI_IMPORTS) {
      expect(m.has(`wasi_snapshot_preview1.${w.name}`)).toBe(true);
      expect(m.has(`wasi_unstable.${w.name}`)).toBe(true);
    }
    expect(ENV_IMPORTS.filter((i) => i.abi.includes('0.2.1')).length).toBe(41);
    expect(WASI_IMPORTS.length).toBe(45);
  });
});
