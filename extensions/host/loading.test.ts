/**
 * Loading as Envoy does it: import refusal, ABI detection, allocator lookup, restricted
 * `_initialize`/`_start`, the memory cap, and that every import Envoy registers is provided.
 */
import { describe, expect, it } from 'vitest';
import { HostEmulator } from './emulator.js';
import { ENV_IMPORTS, WASI_IMPORTS } from './envoy-imports.js';
import { proxyModule } from './testdata/wat-module.js';
import { capMemory, readWasmBinary } from './wasm-binary.js';
import { compileWat } from './wat.js';

const REQ = { ':method': 'GET', ':path': '/', ':authority': 'a', ':scheme': 'http' };

describe('refusal', () => {
  it('refuses a module with unknown imports, naming each one', async () => {
    const bytes = await compileWat(`(module
      (import "env" "proxy_foo" (func (param i32) (result i32)))
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) (i32.const 0)))`);
    const err = await HostEmulator.create(bytes, {}, 'bad.wasm').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WASM_MODULE_REJECTED' });
    expect((err as Error).message).toBe(
      'bad.wasm: Failed to load Wasm module due to a missing import: env.proxy_foo; ' +
        'Failed to load Wasm module due to a missing import: env.abort; ' +
        'Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.sock_open',
    );
  });

  it.each([
    { name: 'no ABI marker', wat: proxyModule('', { abi: '' }), error: /unknown ABI/ },
    { name: 'ABI 0.1.0', wat: proxyModule('', { abi: '0_1_0', imports: [] }), error: /ABI 0.1.0/ },
    { name: 'no allocator', wat: proxyModule('', { allocator: '' }), error: /missing malloc function/ },
    {
      name: 'import signature mismatch',
      wat: '(module (import "env" "proxy_log" (func (param i32) (result i32))) (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) (i32.const 0)))',
      error: /import type mismatch for env.proxy_log/,
    },
  ])('refuses a module with $name', async ({ wat, error }) => {
    await expect(HostEmulator.create(await compileWat(wat))).rejects.toThrow(error);
  });

  it('accepts ABI 0.2.0 and uses proxy_on_memory_allocate when there is no malloc', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(
          `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (drop (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
             (i32.const 0))
           (data (i32.const 1024) ":path")`,
          { abi: '0_2_0', allocator: 'proxy_on_memory_allocate', imports: ['proxy_get_header_map_value'] },
        ),
      ),
    );
    expect(host.check).toMatchObject({ abiVersion: '0.2.0', allocator: 'proxy_on_memory_allocate' });
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    expect(new Uint32Array(host.guestMemory(256, 8).buffer.slice(0))).toEqual(new Uint32Array([65536, 1]));
  });

  it('prefers malloc over proxy_on_memory_allocate, as Envoy does', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(
          `(func (export "proxy_on_memory_allocate") (param i32) (result i32) unreachable)
           (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
             (drop (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
             (i32.const 0))
           (data (i32.const 1024) ":path")`,
          { imports: ['proxy_get_header_map_value'] },
        ),
      ),
    );
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    expect(host.vmFailed()).toBe(false);
  });
});

describe('restricted mode during _initialize / _start', () => {
  it.each([
    { name: '_initialize calling proxy_log and WASI clock: allowed', init: '_initialize', call: 'log', ok: true },
    { name: '_initialize calling proxy_http_call: traps', init: '_initialize', call: 'http', ok: false },
    { name: '_start calling proxy_define_metric: traps', init: '_start', call: 'metric', ok: false },
    { name: '_initialize calling proc_exit: traps', init: '_initialize', call: 'exit', ok: false },
  ])('$name', async ({ init, call, ok }) => {
    const calls: Record<string, string> = {
      log: `(drop (call $proxy_log (i32.const 2) (i32.const 1024) (i32.const 4)))
            (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 768)))`,
      http: `(drop (call $proxy_http_call (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 256)))`,
      metric: `(drop (call $proxy_define_metric (i32.const 0) (i32.const 1024) (i32.const 4) (i32.const 256)))`,
      exit: `(call $proc_exit (i32.const 0))`,
    };
    const host = await HostEmulator.create(
      await compileWat(proxyModule(`(func (export "${init}") ${calls[call]}) (data (i32.const 1024) "init")`)),
    );
    if (ok) {
      host.startVm();
      expect(host.logs('info')).toEqual(['init']);
      return;
    }
    expect(() => host.startVm()).toThrow(expect.objectContaining({ code: 'WASM_VM_START_FAILED' }) as Error);
    expect(host.vmFailure()).toBeUndefined(); // the VM never started
  });

  it('runs main(0, 0) after _initialize, and not _start', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(`
          (func (export "_initialize") (drop (call $proxy_log (i32.const 2) (i32.const 1024) (i32.const 4))))
          (func (export "main") (param i32 i32) (result i32) (drop (call $proxy_log (i32.const 2) (i32.const 1028) (i32.const 4))) (i32.const 0))
          (func (export "_start") unreachable)
          (data (i32.const 1024) "initmain")`),
      ),
    );
    host.startPlugin();
    expect(host.logs('info')).toEqual(['init', 'main']);
  });
});

describe('memory cap', () => {
  it('caps growth: memory.grow past the cap fails inside the guest, the VM fails, streams get 503', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(`
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            ;; ask the host for a header: the allocator needs 64 pages it cannot get
            (global.set $heap (i32.const 0x7ff000))
            (drop (call $proxy_get_header_map_pairs (i32.const 0) (i32.const 256) (i32.const 260)))
            (i32.const 0))`),
      ),
      { maxMemoryBytes: 4 * 1024 * 1024 },
    );
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, REQ, true)).toBe(4);
    expect(host.vmFailure()).toMatchObject({ callback: 'proxy_on_request_headers', message: /unreachable/ });
    expect(host.sentLocalResponse(id)).toMatchObject({ statusCode: 503, details: 'wasm_fail_stream' });
    expect(host.memoryBytes()).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('lets memory grow during malloc (views are refreshed) under the cap', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(`
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (global.set $heap (i32.const 131000))   ;; the next allocation crosses into a new page
            (drop (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 256) (i32.const 260)))
            (i32.const 0))
          (data (i32.const 1024) "x")`),
      ),
    );
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, { ...REQ, x: 'v'.repeat(5000) }, true);
    expect(host.vmFailed()).toBe(false);
    expect(host.memoryBytes()).toBe(3 * 65536);
    const [p, n] = new Uint32Array(host.guestMemory(256, 8).buffer.slice(0));
    expect(Buffer.from(host.guestMemory(p!, n!)).toString()).toBe('v'.repeat(5000));
  });

  it('refuses a module whose initial memory exceeds the cap', async () => {
    const bytes = await compileWat(proxyModule('', { pages: 100 }));
    await expect(HostEmulator.create(bytes, { maxMemoryBytes: 65536 * 10 })).rejects.toMatchObject({
      code: 'WASM_MEMORY_CAP',
    });
  });

  it('capMemory rewrites the limits and keeps a lower declared maximum', async () => {
    const unbounded = await compileWat(proxyModule(''));
    expect(readWasmBinary(capMemory(unbounded, 16384)).memories).toEqual([
      { initial: 2, maximum: 16384, shared: false, memory64: false },
    ]);
    const bounded = await compileWat(proxyModule('', { maxPages: 8 }));
    expect(readWasmBinary(capMemory(bounded, 16384)).memories[0]?.maximum).toBe(8);
  });
});

describe('import coverage', () => {
  it('provides every env and WASI import Envoy registers for 0.2.1, with its signature', async () => {
    const env = ENV_IMPORTS.filter((i) => i.abi.includes('0.2.1'));
    const sig = (p: readonly string[], r: readonly string[]): string =>
      `${p.length ? ` (param ${p.join(' ')})` : ''}${r.length ? ` (result ${r.join(' ')})` : ''}`;
    const imports = [
      ...env.map((i) => `(import "env" "${i.name}" (func${sig(i.params, i.results)}))`),
      ...WASI_IMPORTS.map((i) => `(import "wasi_snapshot_preview1" "${i.name}" (func${sig(i.params, i.results)}))`),
      ...WASI_IMPORTS.map((i) => `(import "wasi_unstable" "${i.name}" (func${sig(i.params, i.results)}))`),
    ];
    const bytes = await compileWat(`(module ${imports.join('\n')}
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) (i32.const 0)))`);
    const host = await HostEmulator.create(bytes);
    // Instantiation links every import: a missing or mistyped host function would throw here.
    expect(() => host.startPlugin()).not.toThrow();
    expect(env).toHaveLength(41);
  });

  it('answers every import called with zero arguments with a status, never a trap', async () => {
    const all = [
      ...ENV_IMPORTS.filter((i) => i.abi.includes('0.2.1')).map((i) => ({ ...i, module: 'env' })),
      ...WASI_IMPORTS,
    ];
    const zero = (t: string): string => (t === 'i64' ? '(i64.const 0)' : '(i32.const 0)');
    const sig = (p: readonly string[], r: readonly string[]): string =>
      `${p.length ? ` (param ${p.join(' ')})` : ''}${r.length ? ` (result ${r.join(' ')})` : ''}`;
    const wat = `(module
      ${all.map((i, n) => `(import "${i.module}" "${i.name}" (func $f${n}${sig(i.params, i.results)}))`).join('\n')}
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) (i32.const 1024))
      ${all
        .map(
          (i, n) =>
            `(func (export "call${n}") (result i32) ${i.results.length ? '' : '(i32.const 99)'} (call $f${n} ${i.params.map(zero).join(' ')}))`,
        )
        .join('\n')})`;
    const host = await HostEmulator.create(await compileWat(wat));
    const root = host.startPlugin();
    const got: Record<string, number> = {};
    all.forEach((i, n) => {
      got[`${i.module}.${i.name}`] = host.callExport(`call${n}`, root);
    });
    expect(host.vmFailed()).toBe(false);
    for (const [name, status] of Object.entries(got)) {
      if (name.startsWith('env.')) expect([99, 0, 1, 2, 4, 6, 7, 8, 10, 12], name).toContain(status);
      else expect([99, 0, 8, 21, 28, 44, 52, 58], name).toContain(status);
    }
    // A few answers Envoy gives to these arguments:
    expect(got).toMatchObject({
      'env.proxy_done': 1, // NotFound: the root did not answer false to on_done
      'env.proxy_set_effective_context': 2, // BadArgument: context 0 is not a plugin or stream context
      'env.proxy_dequeue_shared_queue': 1, // NotFound: no queue 0
      'env.proxy_get_buffer_bytes': 1, // NotFound: no request body on a root context
      'env.proxy_get_header_map_value': 2, // BadArgument: no request headers on a root context
      'env.pthread_equal': 1,
      'wasi_snapshot_preview1.fd_read': 8,
      'wasi_snapshot_preview1.path_open': 52,
      'wasi_snapshot_preview1.sched_yield': 0,
      'wasi_snapshot_preview1.args_sizes_get': 0,
      'wasi_snapshot_preview1.clock_res_get': 0,
      'wasi_snapshot_preview1.poll_oneoff': 0,
      'wasi_snapshot_preview1.fd_fdstat_get': 8, // fd 0 (stdin) is not provided
      'wasi_snapshot_preview1.random_get': 0,
    });
  });
});

describe('capability restriction', () => {
  it('stubs host calls and skips callbacks outside allowed_capabilities, as Envoy does', async () => {
    const host = await HostEmulator.create(
      await compileWat(
        proxyModule(`
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (i32.store (i32.const 512) (call $proxy_log (i32.const 2) (i32.const 1024) (i32.const 2)))
            (i32.store (i32.const 516) (call $proxy_add_header_map_value (i32.const 0) (i32.const 1024) (i32.const 2) (i32.const 1024) (i32.const 2)))
            (i32.store (i32.const 520) (call $random_get (i32.const 600) (i32.const 4)))
            (i32.const 0))
          (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) unreachable)
          (data (i32.const 1024) "hi")`),
      ),
      { allowedCapabilities: ['proxy_on_request_headers', 'proxy_log'] },
    );
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    host.callOnResponseHeaders(id, { ':status': '200' }, true); // not allowed: never called, no trap
    expect(host.vmFailed()).toBe(false);
    expect([...new Uint32Array(host.guestMemory(512, 12).buffer.slice(0))]).toEqual([0, 10, 76]);
    expect(host.currentRequestHeaders(id)).toEqual(Object.entries(REQ));
    expect(host.logs('error')).toEqual([
      'proxy_add_header_map_value is not allowed by capability_restriction_config',
      'random_get is not allowed by capability_restriction_config',
    ]);
  });
});
