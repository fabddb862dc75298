/**
 * One test (or more) per ABI 0.2.1 host call, each driving a small WAT module. Results the guest
 * gets back are stored by the module at 512 + 4*i (`$st i value`) and read with `guestMemory`.
 * The README's import table points at these test names.
 */
import { describe, expect, it } from 'vitest';
import { WasmResult as R } from './abi.js';
import { HostEmulator, type EmulatorOptions } from './emulator.js';
import { encodePairList } from './pairs.js';
import { proxyModule } from './testdata/wat-module.js';
import { compileWat } from './wat.js';

const HELPERS = `
  (func $st (param $i i32) (param $v i32) (i32.store (i32.add (i32.const 512) (i32.shl (local.get $i) (i32.const 2))) (local.get $v)))
  (func $st64 (param $i i32) (param $v i64) (i64.store (i32.add (i32.const 768) (i32.shl (local.get $i) (i32.const 3))) (local.get $v)))`;

const REQ = { ':method': 'GET', ':path': '/p?q=1', ':authority': 'example.com', ':scheme': 'https', 'x-user': 'bob' };

async function load(body: string, opts: EmulatorOptions = {}): Promise<HostEmulator> {
  return HostEmulator.create(await compileWat(proxyModule(HELPERS + body)), opts);
}

/** Data segment with `text` at `at`. */
const data = (at: number, text: string): string =>
  `(data (i32.const ${at}) "${[...Buffer.from(text)].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(16).padStart(2, '0')}`)).join('')}")`;

function results(host: HostEmulator, n: number): number[] {
  return [...new Uint32Array(host.guestMemory(512, n * 4).buffer.slice(0))].map((v) =>
    v > 0x7fffffff ? v - 2 ** 32 : v,
  );
}

function outString(host: HostEmulator, slot = 256): string {
  const [p, n] = new Uint32Array(host.guestMemory(slot, 8).buffer.slice(0));
  return Buffer.from(host.guestMemory(p!, n!)).toString();
}

function outBytes(host: HostEmulator, slot = 256): Uint8Array {
  const [p, n] = new Uint32Array(host.guestMemory(slot, 8).buffer.slice(0));
  return host.guestMemory(p!, n!);
}

describe('logging and time', () => {
  it('proxy_log: every level, BadArgument above critical, InvalidMemoryAccess', async () => {
    const host = await load(`
      ${data(1024, 'hello')}
      (func (export "t") (result i32) (local $l i32)
        (loop $next
          (call $st (local.get $l) (call $proxy_log (local.get $l) (i32.const 1024) (i32.const 5)))
          (local.set $l (i32.add (local.get $l) (i32.const 1)))
          (br_if $next (i32.le_u (local.get $l) (i32.const 6))))
        (call $st (i32.const 7) (call $proxy_log (i32.const 2) (i32.const -16) (i32.const 100)))
        (i32.const 0))`);
    const root = host.startPlugin();
    host.callExport('t', root);
    expect(results(host, 8)).toEqual([0, 0, 0, 0, 0, 0, R.BadArgument, R.InvalidMemoryAccess]);
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const) {
      expect(host.logs(level)).toEqual(['hello']);
    }
    expect(host.logEntries()[0]?.contextId).toBe(root);
  });

  it('proxy_get_log_level answers the configured level', async () => {
    const host = await load(
      `(func (export "t") (result i32) (call $st (i32.const 0) (call $proxy_get_log_level (i32.const 516))) (i32.const 0))`,
      {
        logLevel: 'warn',
      },
    );
    host.callExport('t', host.startPlugin());
    expect(results(host, 2)).toEqual([0, 3]);
  });

  it('proxy_get_current_time_nanoseconds reads the virtual clock', async () => {
    const host = await load(
      `(func (export "t") (result i32) (drop (call $proxy_get_current_time_nanoseconds (i32.const 768))) (i32.const 0))`,
    );
    const root = host.startPlugin();
    host.advanceTime(1.5);
    host.callExport('t', root);
    const ns = new DataView(host.guestMemory(768, 8).buffer).getBigUint64(0, true);
    expect(ns).toBe(BigInt(Date.UTC(2026, 0, 1)) * 1_000_000n + 1_500_000n);
  });

  it('proxy_set_tick_period_milliseconds drives proxy_on_tick; 0 disables', async () => {
    const host = await load(`
      (global $ticks (mut i32) (i32.const 0))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (drop (call $proxy_set_tick_period_milliseconds (i32.const 100))) (i32.const 1))
      (func (export "proxy_on_tick") (param i32)
        (global.set $ticks (i32.add (global.get $ticks) (i32.const 1)))
        (call $st (i32.const 0) (global.get $ticks))
        (if (i32.eq (global.get $ticks) (i32.const 3)) (then (drop (call $proxy_set_tick_period_milliseconds (i32.const 0))))))`);
    host.startPlugin();
    expect(host.tickPeriod()).toBe(100);
    host.advanceTime(250);
    expect(results(host, 1)).toEqual([2]);
    host.tick();
    expect(results(host, 1)).toEqual([3]);
    expect(host.tickPeriod()).toBe(0);
    host.advanceTime(1000);
    expect(results(host, 1)).toEqual([3]);
  });
});

describe('buffers', () => {
  it('proxy_get_buffer_bytes / proxy_get_buffer_status: configs only during start/configure; clipping; errors', async () => {
    const host = await load(
      `
      (func (export "proxy_on_vm_start") (param $r i32) (param $n i32) (result i32)
        (call $st (i32.const 0) (local.get $n))
        (call $st (i32.const 1) (call $proxy_get_buffer_bytes (i32.const 6) (i32.const 0) (local.get $n) (i32.const 256) (i32.const 260)))
        (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 256)) (i32.load (i32.const 260))))
        (call $st (i32.const 2) (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (i32.const 10) (i32.const 256) (i32.const 260)))
        (i32.const 1))
      (func (export "proxy_on_configure") (param $r i32) (param $n i32) (result i32)
        (call $st (i32.const 3) (call $proxy_get_buffer_status (i32.const 7) (i32.const 600) (i32.const 604)))
        (call $st (i32.const 4) (i32.load (i32.const 600)))
        (call $st (i32.const 5) (i32.load (i32.const 604)))
        ;; clipped read: start 2, max 100
        (call $st (i32.const 6) (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 2) (i32.const 100) (i32.const 256) (i32.const 260)))
        (drop (call $proxy_log (i32.const 2) (i32.load (i32.const 256)) (i32.load (i32.const 260))))
        ;; start beyond the end: Ok with (0, 0)
        (call $st (i32.const 7) (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 50) (i32.const 10) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 8) (i32.or (i32.load (i32.const 264)) (i32.load (i32.const 268))))
        (call $st (i32.const 9) (call $proxy_get_buffer_bytes (i32.const 9) (i32.const 0) (i32.const 1) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 10) (call $proxy_get_buffer_bytes (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 11) (call $proxy_set_buffer_bytes (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 1)))
        (i32.const 1))
      ${data(1024, 'x')}`,
      { vmConfiguration: 'vm-cfg', pluginConfiguration: '{"a":1}' },
    );
    host.startPlugin();
    expect(results(host, 12)).toEqual([6, 0, R.NotFound, 0, 7, 0, 0, 0, 0, R.BadArgument, R.NotFound, R.BadArgument]);
    expect(host.logs('info')).toEqual(['vm-cfg', 'a":1}']);
  });

  const bodyEdit = (start: number, size: number) => `
    (func (export "proxy_on_request_body") (param $c i32) (param $n i32) (param $eos i32) (result i32)
      (call $st (i32.const 0) (call $proxy_set_buffer_bytes (i32.const 0) (i32.const ${start}) (i32.const ${size}) (i32.const 1024) (i32.const 3)))
      (call $st (i32.const 1) (call $proxy_get_buffer_status (i32.const 0) (i32.const 600) (i32.const 604)))
      (call $st (i32.const 2) (i32.load (i32.const 600)))
      (i32.const 0))
    ${data(1024, 'NEW')}`;
  it.each([
    { name: 'prepend (0, 0)', start: 0, size: 0, status: 0, body: 'NEWbody' },
    { name: 'replace all (0, len)', start: 0, size: 4, status: 0, body: 'NEW' },
    { name: 'replace all (0, > len)', start: 0, size: 100, status: 0, body: 'NEW' },
    { name: 'append (len, 0)', start: 4, size: 0, status: 0, body: 'bodyNEW' },
    { name: 'append (0xffffffff)', start: -1, size: 0, status: 0, body: 'bodyNEW' },
    { name: 'middle edit refused', start: 1, size: 2, status: R.BadArgument, body: 'body' },
    { name: 'partial replace refused', start: 0, size: 2, status: R.BadArgument, body: 'body' },
  ])('proxy_set_buffer_bytes: $name', async ({ start, size, status, body }) => {
    const host = await load(bodyEdit(start, size));
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    host.callOnRequestBody(id, 'body', true);
    expect(results(host, 3)).toEqual([status, 0, body.length]);
    expect(Buffer.from(host.forwardedRequestBody(id)).toString()).toBe(body);
  });
});

describe('header maps', () => {
  it('proxy_get_header_map_pairs: Envoy encoding with pseudo-headers; empty map without malloc', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_get_header_map_pairs (i32.const 0) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 1) (call $proxy_get_header_map_pairs (i32.const 8) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 2) (call $proxy_get_header_map_pairs (i32.const 2) (i32.const 264) (i32.const 268)))
        (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 264) (i32.const 99))
        (call $st (i32.const 3) (call $proxy_get_header_map_pairs (i32.const 2) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 4) (i32.load (i32.const 264)))
        (i32.const 0))`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, [...Object.entries(REQ), ['X-Multi', 'a'], ['x-multi', 'b']], false);
    expect(Buffer.from(outBytes(host))).toEqual(
      Buffer.from(encodePairList([...Object.entries(REQ), ['x-multi', 'a'], ['x-multi', 'b']] as [string, string][])),
    );
    host.callOnResponseHeaders(id, [], true);
    // Map type 8 is BadArgument. Response headers do not exist in the request phase: Envoy's
    // getHeaderMapPairs is headerMapToPairs(getConstMap(type)), so that reads as Ok + empty (0, 0).
    expect(results(host, 5)).toEqual([0, R.BadArgument, 0, 0, 0]);
    expect(new Uint32Array(host.guestMemory(264, 8).buffer.slice(0))).toEqual(new Uint32Array([0, 0]));
  });

  it('proxy_get_header_map_value: lower-cased key, first value, NotFound, window', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 1) (call $proxy_get_header_map_value (i32.const 0) (i32.const 1040) (i32.const 4) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 2) (call $proxy_get_header_map_value (i32.const 1) (i32.const 1024) (i32.const 7) (i32.const 264) (i32.const 268)))
        (i32.const 0))
      (func (export "proxy_on_log") (param i32)
        (call $st (i32.const 3) (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 4) (call $proxy_get_header_map_value (i32.const 3) (i32.const 1024) (i32.const 7) (i32.const 272) (i32.const 276))))
      (func (export "proxy_on_done") (param i32) (result i32)
        (call $st (i32.const 5) (call $proxy_get_header_map_value (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 264) (i32.const 268)))
        (i32.const 1))
      ${data(1024, 'X-Multi')} ${data(1040, 'nope')}`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, [...Object.entries(REQ), ['x-multi', 'fïrst ✓'], ['x-multi', 'second']], true);
    expect(outString(host)).toBe('fïrst ✓'); // non-ASCII: UTF-8 bytes, not the ASCII fast path
    host.completeHttpContext(id);
    // trailers window closed ⇒ BadArgument; in on_log a missing map ⇒ NotFound; after on_log ⇒ BadArgument
    expect(results(host, 6)).toEqual([0, R.NotFound, R.BadArgument, 0, R.NotFound, R.BadArgument]);
  });

  it('proxy_add/replace/remove_header_map_value and proxy_get_header_map_size', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_add_header_map_value (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 1)))
        (call $st (i32.const 1) (call $proxy_add_header_map_value (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 1033) (i32.const 1)))
        (call $st (i32.const 2) (call $proxy_replace_header_map_value (i32.const 0) (i32.const 1040) (i32.const 6) (i32.const 1034) (i32.const 1)))
        (call $st (i32.const 3) (call $proxy_remove_header_map_value (i32.const 0) (i32.const 1048) (i32.const 10)))
        (call $st (i32.const 4) (call $proxy_remove_header_map_value (i32.const 0) (i32.const 1064) (i32.const 6)))
        (call $st (i32.const 5) (call $proxy_get_header_map_size (i32.const 0) (i32.const 536)))
        (call $st (i32.const 7) (call $proxy_add_header_map_value (i32.const 6) (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 1)))
        (i32.const 0))
      (func (export "proxy_on_log") (param i32)
        (call $st (i32.const 8) (call $proxy_add_header_map_value (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 1))))
      ${data(1024, 'X-A')} ${data(1032, '123')} ${data(1040, 'X-USER')} ${data(1048, ':authority')} ${data(1064, 'absent')}`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    const want = [
      [':method', 'GET'],
      [':path', '/p?q=1'],
      [':scheme', 'https'],
      ['x-user', '3'],
      ['x-a', '1'],
      ['x-a', '2'],
    ] as const;
    expect(host.currentRequestHeaders(id)).toEqual(want);
    host.completeHttpContext(id);
    const size = want.reduce((n, [k, v]) => n + k.length + v.length, 0);
    // writes in on_log (read-only) and to a call-response map ⇒ BadArgument
    expect(results(host, 9)).toEqual([0, 0, 0, 0, 0, 0, size, R.BadArgument, R.BadArgument]);
  });

  it('proxy_set_header_map_pairs replaces the map; malformed or over-limit pairs give an empty map', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_set_header_map_pairs (i32.const 0) (i32.load (i32.const 248)) (i32.load (i32.const 252))))
        (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 1) (call $proxy_set_header_map_pairs (i32.const 0) (i32.const 0) (i32.const 0)))
        (i32.const 0))`);
    // The test writes pairs into guest memory through the allocator by asking for a header first.
    const good = encodePairList([
      [':status', '200'],
      ['X-New', 'v'],
    ]);
    const tooMany = encodePairList(Array.from({ length: 1025 }, (_, i) => [`k${i}`, 'v'] as const));
    const cases = [
      {
        input: good,
        want: [
          [':status', '200'],
          ['x-new', 'v'],
        ],
      },
      { input: good.subarray(0, good.length - 1), want: [] }, // missing final NUL
      { input: tooMany, want: [] },
    ];
    for (const c of cases) {
      const id = host.initializeHttpContext();
      const ptr = placeBytes(host, c.input);
      host.guestMemoryWrite(248, new Uint8Array(new Uint32Array([ptr, c.input.length]).buffer));
      host.callOnRequestHeaders(id, REQ, true);
      expect(host.currentRequestHeaders(id)).toEqual(c.want);
      host.callOnResponseHeaders(id, {}, true);
    }
    expect(results(host, 2)).toEqual([0, R.BadArgument]);
  });

  it('trailers: created on demand in the last body callback', async () => {
    const host = await load(`
      (func (export "proxy_on_request_body") (param i32) (param i32) (param $eos i32) (result i32)
        (call $st (local.get $eos) (call $proxy_add_header_map_value (i32.const 1) (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 1)))
        (i32.const 0))
      ${data(1024, 'x-t')} ${data(1032, '1')}`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    host.callOnRequestBody(id, 'a', false);
    host.callOnRequestBody(id, 'b', true);
    expect(results(host, 2)).toEqual([R.BadArgument, 0]);
    expect(host.currentRequestTrailers(id)).toEqual([['x-t', '1']]);
  });
});

/** Copies bytes into guest memory with the guest's own allocator; returns the address. */
function placeBytes(host: HostEmulator, bytes: Uint8Array): number {
  const ptr = host.callExport('malloc', 0, bytes.length);
  host.guestMemoryWrite(ptr, bytes);
  return ptr;
}

describe('stream control', () => {
  it('proxy_continue_stream: resumes a paused request after the callback returns; Upstream Unimplemented; > 3 BadArgument', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))
      (func (export "resume") (result i32)
        (call $st (i32.const 0) (call $proxy_continue_stream (i32.const 3)))
        (call $st (i32.const 1) (call $proxy_continue_stream (i32.const 4)))
        (call $st (i32.const 2) (call $proxy_continue_stream (i32.const 2)))
        (call $proxy_continue_stream (i32.const 0)))`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    expect(host.callExport('resume', id)).toBe(0);
    // Downstream on an HTTP stream has no TCP connection: NotFound.
    expect(results(host, 3)).toEqual([R.Unimplemented, R.BadArgument, R.NotFound]);
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
    expect(host.callOnRequestBody(id, 'x', true)).toBe(0);
  });

  it('proxy_close_stream: resets the HTTP stream with wasm_close_stream; later callbacks are not called', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_close_stream (i32.const 0)))
        (call $st (i32.const 1) (call $proxy_close_stream (i32.const 9)))
        (i32.const 0))
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) unreachable)`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    expect(results(host, 2)).toEqual([0, R.BadArgument]);
    expect(host.streamClosed(id)).toBe('wasm_close_stream');
    host.callOnRequestBody(id, 'x', true);
    expect(host.vmFailed()).toBe(false);
  });

  it('proxy_send_local_response: deferred reply, forced stop, details and headers; response callbacks see it', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_send_local_response (i32.const 403)
          (i32.const 1024) (i32.const 13) (i32.const 1040) (i32.const 6)
          (i32.load (i32.const 248)) (i32.load (i32.const 252)) (i32.const -1)))
        (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const 1056) (i32.const 4) (i32.const 1064) (i32.const 1)))
        (i32.const 0))
      ${data(1024, 'access denied')} ${data(1040, 'nope!\n')} ${data(1056, 'x-rs')} ${data(1064, 'y')}`);
    const hdrs = encodePairList([['X-Reason', 'policy']]);
    const ptr = placeBytes(host, hdrs);
    host.guestMemoryWrite(248, new Uint8Array(new Uint32Array([ptr, hdrs.length]).buffer));
    const id = host.initializeHttpContext();
    // The guest returned Continue, but a local reply forces a stop.
    expect(host.callOnRequestHeaders(id, REQ, false)).toBe(4);
    expect(results(host, 1)).toEqual([0]);
    expect(host.sentLocalResponse(id)).toEqual({
      statusCode: 403,
      details: 'access_denied',
      body: Uint8Array.from(Buffer.from('nope!\n')),
      headers: [['x-reason', 'policy']],
      grpcStatus: undefined,
    });
    expect(host.currentResponseHeaders(id)).toEqual([
      [':status', '403'],
      ['x-reason', 'policy'],
      ['content-type', 'text/plain'],
      ['content-length', '6'],
      ['x-rs', 'y'],
    ]);
    expect(Buffer.from(host.forwardedResponseBody(id)).toString()).toBe('nope!\n');
  });
});

describe('callouts', () => {
  const caller = `
    (func (export "proxy_on_request_headers") (param $c i32) (param i32) (param i32) (result i32)
      (call $st (i32.const 0) (call $proxy_http_call (i32.const 1024) (i32.const 7)
        (i32.load (i32.const 248)) (i32.load (i32.const 252)) (i32.const 1040) (i32.const 4) (i32.const 0) (i32.const 0)
        (i32.const 500) (i32.const 516)))
      (global.set $stream (local.get $c))
      (i32.const 1))
    (global $stream (mut i32) (i32.const 0))
    (func (export "proxy_on_http_call_response") (param $root i32) (param $tok i32) (param $h i32) (param $b i32) (param $t i32)
      (call $st (i32.const 2) (local.get $root))
      (call $st (i32.const 3) (local.get $tok))
      (call $st (i32.const 4) (local.get $h))
      (call $st (i32.const 5) (local.get $b))
      (call $st (i32.const 6) (call $proxy_get_status (i32.const 540) (i32.const 264) (i32.const 268)))
      (call $st (i32.const 8) (call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (local.get $b) (i32.const 256) (i32.const 260)))
      (drop (call $proxy_get_header_map_value (i32.const 6) (i32.const 1048) (i32.const 7) (i32.const 272) (i32.const 276)))
      ;; act on the stream: switch the effective context, add a header, continue
      (call $st (i32.const 9) (call $proxy_set_effective_context (global.get $stream)))
      (call $st (i32.const 10) (call $proxy_add_header_map_value (i32.const 0) (i32.const 1056) (i32.const 6) (i32.const 1040) (i32.const 4)))
      (call $st (i32.const 11) (call $proxy_continue_stream (i32.const 0)))
      (call $st (i32.const 12) (call $proxy_set_effective_context (i32.const 999))))
    ${data(1024, 'authsvc')} ${data(1040, 'ping')} ${data(1048, ':status')} ${data(1056, 'x-auth')}`;

  async function withCall(
    opts: EmulatorOptions = {},
    headers: [string, string][] = [
      [':method', 'POST'],
      [':path', '/check'],
      [':authority', 'auth'],
    ],
  ) {
    const host = await load(caller, opts);
    const h = encodePairList(headers);
    const ptr = placeBytes(host, h);
    host.guestMemoryWrite(248, new Uint8Array(new Uint32Array([ptr, h.length]).buffer));
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    return { host, id };
  }

  it('proxy_http_call / proxy_get_status / proxy_set_effective_context: token, attributes, response on the root', async () => {
    const { host, id } = await withCall();
    expect(results(host, 2)).toEqual([0, 4]);
    const [c] = host.pendingCallouts(id);
    expect(c).toMatchObject({
      token: 4,
      kind: 'http',
      upstream: 'authsvc',
      rootContextId: 1,
      originContextId: id,
      timeoutMs: 500,
      headers: [
        [':method', 'POST'],
        [':path', '/check'],
        [':authority', 'auth'],
        ['content-length', '4'],
      ],
    });
    host.callOnHttpCallResponse(4, { headers: { ':status': '200' }, body: 'pong' });
    expect(results(host, 13)).toEqual([0, 4, 1, 4, 1, 4, 0, 0, 0, 0, 0, 0, R.BadArgument]);
    expect(outString(host, 256)).toBe('pong');
    expect(outString(host, 272)).toBe('200');
    expect(host.currentRequestHeaders(id)).toContainEqual(['x-auth', 'ping']);
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
    expect(host.pendingCallouts()).toEqual([]);
  });

  it('proxy_http_call: a failed call delivers 0 headers and BrokenConnection "reset"', async () => {
    const { host } = await withCall();
    host.failHttpCall(4);
    expect(results(host, 7).slice(4)).toEqual([0, 0, 0]);
    expect(new Uint32Array(host.guestMemory(540, 4).buffer)[0]).toBe(R.BrokenConnection);
    expect(outString(host, 264)).toBe('reset');
  });

  it('proxy_http_call: the timeout answers 504 on the virtual clock', async () => {
    const { host } = await withCall();
    host.advanceTime(499);
    expect(host.pendingCallouts()).toHaveLength(1);
    host.advanceTime(1);
    expect(outString(host, 272)).toBe('504');
  });

  it.each([
    {
      name: 'missing :path',
      headers: [
        [':method', 'GET'],
        [':authority', 'a'],
      ] as [string, string][],
      opts: {},
    },
    {
      name: 'unknown cluster',
      headers: [
        [':method', 'GET'],
        [':path', '/'],
        [':authority', 'a'],
      ] as [string, string][],
      opts: { clusters: ['other'] },
    },
  ])('proxy_http_call: BadArgument for $name', async ({ headers, opts }) => {
    const { host } = await withCall(opts, headers);
    expect(results(host, 1)).toEqual([R.BadArgument]);
    expect(host.pendingCallouts()).toEqual([]);
  });

  it('callout answers are read through the root context after proxy_set_effective_context(stream), as in Envoy', async () => {
    // $reads stores, from index b: value(6 ":status"), value(7 "x-t"), buffer 4, value(4 "a"),
    // value(5 "grpc-status"), buffer 5, pairs(6), value(0 ":path") — the last one proves that the
    // effective context really is the stream (a root context has no request headers).
    const host = await load(`
      (func $reads (param $b i32)
        (call $st (local.get $b) (call $proxy_get_header_map_value (i32.const 6) (i32.const 1100) (i32.const 7) (i32.const 256) (i32.const 260)))
        (call $st (i32.add (local.get $b) (i32.const 1)) (call $proxy_get_header_map_value (i32.const 7) (i32.const 1108) (i32.const 3) (i32.const 264) (i32.const 268)))
        (call $st (i32.add (local.get $b) (i32.const 2)) (call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (i32.const 100) (i32.const 272) (i32.const 276)))
        (call $st (i32.add (local.get $b) (i32.const 3)) (call $proxy_get_header_map_value (i32.const 4) (i32.const 1112) (i32.const 1) (i32.const 280) (i32.const 284)))
        (call $st (i32.add (local.get $b) (i32.const 4)) (call $proxy_get_header_map_value (i32.const 5) (i32.const 1116) (i32.const 11) (i32.const 288) (i32.const 292)))
        (call $st (i32.add (local.get $b) (i32.const 5)) (call $proxy_get_buffer_bytes (i32.const 5) (i32.const 0) (i32.const 100) (i32.const 296) (i32.const 300)))
        (call $st (i32.add (local.get $b) (i32.const 6)) (call $proxy_get_header_map_pairs (i32.const 6) (i32.const 304) (i32.const 308)))
        (call $st (i32.add (local.get $b) (i32.const 7)) (call $proxy_get_header_map_value (i32.const 0) (i32.const 1128) (i32.const 5) (i32.const 312) (i32.const 316))))
      (func $switch (drop (call $proxy_set_effective_context (i32.load (i32.const 720)))))
      (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
        (i32.store (i32.const 720) (local.get $ctx))
        (drop (call $proxy_http_call (i32.const 1140) (i32.const 4) (i32.load (i32.const 248)) (i32.load (i32.const 252))
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 724)))
        (drop (call $proxy_grpc_stream (i32.const 1140) (i32.const 4) (i32.const 1148) (i32.const 7) (i32.const 1156) (i32.const 5)
          (i32.const 0) (i32.const 0) (i32.const 728)))
        (i32.const 1))
      (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32) (call $switch) (call $reads (i32.const 0)))
      (func (export "proxy_on_grpc_receive_initial_metadata") (param i32 i32 i32) (call $switch) (call $reads (i32.const 8)))
      (func (export "proxy_on_grpc_receive") (param i32 i32 i32) (call $switch) (call $reads (i32.const 16)))
      (func (export "proxy_on_grpc_receive_trailing_metadata") (param i32 i32 i32) (call $switch) (call $reads (i32.const 24)))
      (func (export "outside") (result i32) (call $reads (i32.const 32)) (i32.const 0))
      (func (export "proxy_on_log") (param i32) (call $reads (i32.const 40)))
      ${data(1100, ':status')} ${data(1108, 'x-t')} ${data(1112, 'a')} ${data(1116, 'grpc-status')}
      ${data(1128, ':path')} ${data(1140, 'auth')} ${data(1148, 'pkg.Svc')} ${data(1156, 'Watch')}`);
    const h = encodePairList([
      [':method', 'GET'],
      [':path', '/check'],
      [':authority', 'auth'],
    ]);
    host.guestMemoryWrite(248, new Uint8Array(new Uint32Array([placeBytes(host, h), h.length]).buffer));
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    expect(host.pendingCallouts().map((c) => [c.token, c.kind])).toEqual([
      [4, 'http'],
      [6, 'grpc_stream'],
    ]);
    const B = R.BadArgument;
    const N = R.NotFound;
    const sizeAt = (slot: number): number => new Uint32Array(host.guestMemory(slot + 4, 4).buffer.slice(0))[0]!;

    host.callOnHttpCallResponse(4, { headers: { ':status': '200' }, body: 'pong', trailers: { 'x-t': 'tv' } });
    // The call's headers, trailers and body answer through the stream; no gRPC answer is in
    // flight: its maps are null (BadArgument), its buffer an empty one (Ok, size 0).
    expect(results(host, 8)).toEqual([0, 0, 0, B, B, 0, 0, 0]);
    expect([outString(host, 256), outString(host, 264), outString(host, 272), outString(host, 312)]).toEqual([
      '200',
      'tv',
      'pong',
      '/p?q=1',
    ]);
    expect(sizeAt(296)).toBe(0);
    expect(sizeAt(304)).toBeGreaterThan(0); // the call's headers as pairs

    host.callOnGrpcReceiveInitialMetadata(6, { a: '1' });
    expect(results(host, 16).slice(8)).toEqual([B, B, N, 0, B, 0, 0, 0]);
    expect(outString(host, 280)).toBe('1');
    expect(sizeAt(304)).toBe(0); // no call response: pairs(6) is Ok and empty

    host.callOnGrpcReceive(6, 'msg!');
    expect(results(host, 24).slice(16)).toEqual([B, B, N, B, B, 0, 0, 0]);
    expect(outString(host, 296)).toBe('msg!');

    host.callOnGrpcReceiveTrailingMetadata(6, { 'grpc-status': '0' });
    expect(results(host, 32).slice(24)).toEqual([B, B, N, B, 0, 0, 0, 0]);
    expect(outString(host, 288)).toBe('0');

    // Outside any callback (no answer in flight), on the stream: what Envoy's code answers.
    host.callExport('outside', id);
    expect(results(host, 40).slice(32)).toEqual([B, B, N, B, B, 0, 0, 0]);
    expect([sizeAt(296), sizeAt(304)]).toEqual([0, 0]);
    // In on_log a null map answers NotFound (access-log phase, ABI 0.2.x).
    host.completeHttpContext(id);
    expect(results(host, 48).slice(40)).toEqual([N, N, N, N, N, 0, 0, 0]);
  });

  it('proxy_grpc_call / proxy_grpc_stream / proxy_grpc_send / proxy_grpc_cancel / proxy_grpc_close', async () => {
    const host = await load(
      `
      (func (export "t") (result i32)
        ;; unary call to a bare cluster name
        (call $st (i32.const 0) (call $proxy_grpc_call (i32.const 1024) (i32.const 4) (i32.const 1032) (i32.const 8)
          (i32.const 1044) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 1052) (i32.const 3) (i32.const 1000) (i32.const 600)))
        ;; stream, service given as a serialized GrpcService { envoy_grpc { cluster_name: "grpc" } }
        (call $st (i32.const 1) (call $proxy_grpc_stream (i32.const 1060) (i32.const 8) (i32.const 1032) (i32.const 8)
          (i32.const 1044) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 604)))
        (call $st (i32.const 2) (call $proxy_grpc_send (i32.load (i32.const 604)) (i32.const 1052) (i32.const 3) (i32.const 0)))
        (call $st (i32.const 3) (call $proxy_grpc_send (i32.load (i32.const 600)) (i32.const 1052) (i32.const 3) (i32.const 0)))
        (call $st (i32.const 4) (call $proxy_grpc_send (i32.const 102) (i32.const 1052) (i32.const 3) (i32.const 0)))
        (call $st (i32.const 5) (call $proxy_grpc_close (i32.load (i32.const 604))))
        (call $st (i32.const 6) (call $proxy_grpc_cancel (i32.const 101)))
        ;; unknown cluster ⇒ ParseFailure
        (call $st (i32.const 7) (call $proxy_grpc_call (i32.const 1072) (i32.const 4) (i32.const 1032) (i32.const 8)
          (i32.const 1044) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 1052) (i32.const 3) (i32.const 0) (i32.const 608)))
        (i32.const 0))
      (func (export "cancel") (result i32) (call $proxy_grpc_cancel (i32.load (i32.const 600))))
      (func (export "proxy_on_grpc_receive_initial_metadata") (param i32) (param i32) (param $n i32)
        (call $st (i32.const 8) (local.get $n))
        (call $st (i32.const 14) (call $proxy_get_header_map_value (i32.const 4) (i32.const 1080) (i32.const 1) (i32.const 296) (i32.const 300))))
      (func (export "proxy_on_grpc_receive") (param $r i32) (param $t i32) (param $n i32)
        (call $st (i32.const 9) (call $proxy_get_buffer_bytes (i32.const 5) (i32.const 0) (local.get $n) (i32.const 256) (i32.const 260))))
      (func (export "proxy_on_grpc_receive_trailing_metadata") (param i32) (param i32) (param $n i32)
        (call $st (i32.const 10) (local.get $n))
        (call $st (i32.const 15) (call $proxy_get_header_map_size (i32.const 5) (i32.const 620))))
      (func (export "proxy_on_grpc_close") (param $r i32) (param $t i32) (param $s i32)
        (call $st (i32.const 11) (local.get $s))
        (drop (call $proxy_get_status (i32.const 560) (i32.const 264) (i32.const 268))))
      ${data(1024, 'grpc')} ${data(1032, 'pkg.Echo')} ${data(1044, 'Hello')} ${data(1052, 'msg')}
      (data (i32.const 1060) "\\0a\\06\\0a\\04grpc") ${data(1072, 'nope')} ${data(1080, 'a')}`,
      { clusters: ['grpc'] },
    );
    const root = host.startPlugin();
    host.callExport('t', root);
    expect(results(host, 8)).toEqual([0, 0, 0, R.BadArgument, R.NotFound, 0, R.NotFound, R.ParseFailure]);
    const [call, stream] = host.pendingCallouts();
    expect(call).toMatchObject({
      token: 5,
      kind: 'grpc_call',
      upstream: 'grpc',
      serviceName: 'pkg.Echo',
      method: 'Hello',
      timeoutMs: 1000,
    });
    expect(stream).toMatchObject({ token: 6, kind: 'grpc_stream', upstream: 'grpc', localClosed: true });
    expect(stream!.sent.map((m) => Buffer.from(m).toString())).toEqual(['msg']);
    expect(() => host.callOnHttpCallResponse(6, { headers: {} })).toThrow(/token 6 is a grpc_stream callout/);
    expect(() => host.callOnGrpcReceive(99, 'x')).toThrow(/no pending callout with token 99/);
    host.callOnGrpcReceiveInitialMetadata(6, { a: '1', b: '2' });
    host.callOnGrpcReceive(6, 'reply');
    host.callOnGrpcReceiveTrailingMetadata(6, { 'grpc-status': '0' });
    host.callOnGrpcClose(6, 14, 'unavailable');
    // 560 (index 12) receives proxy_get_status's code in on_grpc_close
    // index 15: proxy_get_header_map_size(5) is BadArgument even in its callback: Envoy's
    // getHeaderMapSize uses the mutable getMap, which holds only the request/response maps.
    expect(results(host, 16).slice(8)).toEqual([2, 0, 1, 14, 14, 0, 0, R.BadArgument]);
    expect(outString(host, 296)).toBe('1'); // map type 4: initial metadata
    expect(outString(host, 256)).toBe('reply');
    expect(outString(host, 264)).toBe('unavailable');
    expect(host.callExport('cancel', root)).toBe(0);
    expect(host.pendingCallouts()).toEqual([]);
  });
});

describe('shared data and queues', () => {
  it('proxy_get_shared_data / proxy_set_shared_data: NotFound, CAS, CasMismatch', async () => {
    const host = await load(
      `
      (func (export "t") (result i32)
        (call $st (i32.const 0) (call $proxy_get_shared_data (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260) (i32.const 600)))
        (call $st (i32.const 1) (call $proxy_set_shared_data (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 2) (i32.const 0)))
        (call $st (i32.const 2) (call $proxy_get_shared_data (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260) (i32.const 600)))
        (call $st (i32.const 3) (call $proxy_set_shared_data (i32.const 1024) (i32.const 3) (i32.const 1032) (i32.const 2) (i32.add (i32.load (i32.const 600)) (i32.const 1))))
        (call $st (i32.const 4) (call $proxy_set_shared_data (i32.const 1024) (i32.const 3) (i32.const 1034) (i32.const 2) (i32.load (i32.const 600))))
        (call $st (i32.const 5) (call $proxy_get_shared_data (i32.const 1024) (i32.const 3) (i32.const 256) (i32.const 260) (i32.const 604)))
        (call $st (i32.const 6) (i32.sub (i32.load (i32.const 604)) (i32.load (i32.const 600))))
        (i32.const 0))
      ${data(1024, 'key')} ${data(1032, 'v1v2')}`,
      { vmId: 'vm-a' },
    );
    host.callExport('t', host.startPlugin());
    expect(results(host, 7)).toEqual([R.NotFound, 0, 0, R.CasMismatch, 0, 0, 1]);
    expect(outString(host)).toBe('v2');
    expect(Buffer.from(host.sharedData('key')!).toString()).toBe('v2');
  });

  it('proxy_register/resolve/enqueue/dequeue_shared_queue and proxy_on_queue_ready', async () => {
    const host = await load(`
      (func (export "t") (result i32)
        (call $st (i32.const 0) (call $proxy_register_shared_queue (i32.const 1024) (i32.const 1) (i32.const 600)))
        (call $st (i32.const 1) (call $proxy_resolve_shared_queue (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 604)))
        (call $st (i32.const 2) (call $proxy_resolve_shared_queue (i32.const 0) (i32.const 0) (i32.const 1026) (i32.const 1) (i32.const 608)))
        (call $st (i32.const 3) (call $proxy_dequeue_shared_queue (i32.load (i32.const 600)) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 4) (call $proxy_enqueue_shared_queue (i32.load (i32.const 600)) (i32.const 1028) (i32.const 4)))
        (call $st (i32.const 5) (call $proxy_enqueue_shared_queue (i32.const 77) (i32.const 1028) (i32.const 4)))
        (call $st (i32.const 6) (call $proxy_dequeue_shared_queue (i32.const 77) (i32.const 256) (i32.const 260)))
        (i32.const 0))
      (func (export "proxy_on_queue_ready") (param $root i32) (param $q i32)
        (call $st (i32.const 7) (local.get $q))
        (call $st (i32.const 8) (call $proxy_dequeue_shared_queue (local.get $q) (i32.const 256) (i32.const 260))))
      ${data(1024, 'q')} ${data(1026, 'z')} ${data(1028, 'item')}`);
    host.callExport('t', host.startPlugin());
    // on_queue_ready runs after the VM call that enqueued returns
    expect(results(host, 9)).toEqual([0, 0, R.NotFound, R.Empty, 0, R.NotFound, R.NotFound, 1, 0]);
    expect(outString(host)).toBe('item');
    host.enqueueSharedQueue(1, 'from-host');
    expect(outString(host)).toBe('from-host');
    expect(host.queueSize(1)).toBe(0);
  });
});

describe('metrics', () => {
  it('proxy_define_metric / proxy_increment_metric / proxy_record_metric / proxy_get_metric with i64 BigInt values', async () => {
    const host = await load(`
      (func (export "t") (result i32)
        (call $st (i32.const 0) (call $proxy_define_metric (i32.const 0) (i32.const 1024) (i32.const 8) (i32.const 600)))
        (call $st (i32.const 1) (call $proxy_define_metric (i32.const 1) (i32.const 1032) (i32.const 6) (i32.const 604)))
        (call $st (i32.const 2) (call $proxy_define_metric (i32.const 2) (i32.const 1040) (i32.const 7) (i32.const 608)))
        (call $st (i32.const 3) (call $proxy_define_metric (i32.const 3) (i32.const 1040) (i32.const 7) (i32.const 612)))
        (call $st (i32.const 4) (call $proxy_increment_metric (i32.load (i32.const 600)) (i64.const 9007199254740993)))
        (call $st (i32.const 5) (call $proxy_increment_metric (i32.load (i32.const 600)) (i64.const 0)))
        (call $st (i32.const 6) (call $proxy_increment_metric (i32.load (i32.const 604)) (i64.const -5)))
        (call $st (i32.const 7) (call $proxy_increment_metric (i32.load (i32.const 608)) (i64.const 1)))
        (call $st (i32.const 8) (call $proxy_record_metric (i32.load (i32.const 608)) (i64.const 42)))
        (call $st (i32.const 9) (call $proxy_record_metric (i32.load (i32.const 608)) (i64.const 7)))
        (call $st (i32.const 10) (call $proxy_record_metric (i32.load (i32.const 600)) (i64.const 1)))
        (call $st (i32.const 11) (call $proxy_get_metric (i32.load (i32.const 600)) (i32.const 768)))
        (call $st (i32.const 12) (call $proxy_get_metric (i32.load (i32.const 608)) (i32.const 776)))
        (call $st (i32.const 13) (call $proxy_get_metric (i32.const 1000) (i32.const 776)))
        (call $st (i32.const 14) (call $proxy_record_metric (i32.load (i32.const 604)) (i64.const -3)))
        (call $st (i32.const 15) (call $proxy_define_metric (i32.const 0) (i32.const 1024) (i32.const 8) (i32.const 616)))
        (i32.const 0))
      ${data(1024, 'requests')} ${data(1032, 'active')} ${data(1040, 'latency')}`);
    host.callExport('t', host.startPlugin());
    expect(results(host, 16)).toEqual([
      0,
      0,
      0,
      R.BadArgument,
      0,
      R.BadArgument,
      0,
      R.BadArgument,
      0,
      0,
      0,
      0,
      R.BadArgument,
      R.NotFound,
      0,
      0,
    ]);
    expect([...new Uint32Array(host.guestMemory(600, 20).buffer.slice(0))]).toEqual([4, 5, 6, 0, 4]);
    expect(host.counter('requests')).toBe(9007199254740994n);
    expect(new DataView(host.guestMemory(768, 8).buffer).getBigUint64(0, true)).toBe(9007199254740994n);
    expect(host.gauge('active')).toBe(-3n);
    expect(host.histogram('latency')).toEqual([42n, 7n]);
  });
});

describe('properties', () => {
  it('proxy_get_property: plugin, request, connection attributes, Envoy encodings, NotFound', async () => {
    const paths = [
      'plugin_name',
      'plugin_root_id',
      'request\0path',
      'request\0headers\0x-user',
      'request\0method',
      'source\0port',
      'connection\0mtls',
      'request\0url_path',
      'no\0such',
      'node\0id',
      'request\0time',
    ];
    let at = 1024;
    const segs = paths.map((p) => {
      const s = { at, len: Buffer.byteLength(p), p };
      at += s.len + 8;
      return s;
    });
    const calls = segs
      .map(
        (s, i) =>
          `(call $st (i32.const ${i}) (call $proxy_get_property (i32.const ${s.at}) (i32.const ${s.len}) (i32.const ${2048 + i * 8}) (i32.const ${2052 + i * 8})))`,
      )
      .join('\n');
    const host = await load(
      `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) ${calls} (i32.const 0))
       ${segs.map((s) => `(data (i32.const ${s.at}) "${s.p.replace(/\0/g, '\\00')}")`).join(' ')}`,
      { pluginName: 'my-plugin', rootId: 'r1', properties: { node: { id: 'node-1' } } },
    );
    host.startPlugin();
    const id = host.initializeHttpContext({
      attributes: { source: { address: '10.0.0.1:5000', port: 5000n }, connection: { mtls: true } },
    });
    host.callOnRequestHeaders(id, REQ, true);
    expect(results(host, paths.length)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, R.NotFound, 0, 0]);
    const val = (i: number) => outBytes(host, 2048 + i * 8);
    const str = (i: number) => Buffer.from(val(i)).toString();
    expect([str(0), str(1), str(2), str(3), str(4), str(7), str(9)]).toEqual([
      'my-plugin',
      'r1',
      '/p?q=1',
      'bob',
      'GET',
      '/p',
      'node-1',
    ]);
    expect(Buffer.from(val(5)).readBigInt64LE()).toBe(5000n);
    expect([...val(6)]).toEqual([1]);
    // request.time: int64 ns since the epoch, from the (virtual) clock at stream creation
    expect(Buffer.from(val(10)).readBigInt64LE()).toBe(BigInt(Date.UTC(2026, 0, 1)) * 1_000_000n);
  });

  it('proxy_set_property: filter state on a stream, readable back; NotFound without a stream', async () => {
    const host = await load(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $st (i32.const 0) (call $proxy_set_property (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 3)))
        (call $st (i32.const 1) (call $proxy_get_property (i32.const 1024) (i32.const 5) (i32.const 256) (i32.const 260)))
        (i32.const 0))
      (func (export "t") (result i32) (call $proxy_set_property (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 3)))
      ${data(1024, 'mykey')} ${data(1032, 'val')}`);
    const root = host.startPlugin();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    expect(results(host, 2)).toEqual([0, 0]);
    expect(outString(host)).toBe('val');
    expect(Buffer.from(host.property('mykey', id)!).toString()).toBe('val');
    expect(host.callExport('t', root)).toBe(R.NotFound);
  });
});

describe('root lifecycle and foreign functions', () => {
  it('proxy_done: a root answering false to on_done is deleted after proxy_done; otherwise NotFound', async () => {
    const host = await load(`
      (func (export "proxy_on_done") (param i32) (result i32) (i32.const 0))
      (func (export "proxy_on_delete") (param $c i32) (call $st (i32.const 1) (local.get $c)))
      (func (export "finish") (result i32) (call $proxy_done))`);
    const root = host.startPlugin();
    expect(host.callExport('finish', root)).toBe(R.NotFound);
    host.finishVm();
    expect(host.rootAlive(root)).toBe(true);
    expect(host.callExport('finish', root)).toBe(0);
    expect(host.rootAlive(root)).toBe(false);
    expect(results(host, 2)).toEqual([0, root]);
  });

  it('proxy_call_foreign_function: registered, built-in compress/uncompress, NotFound; proxy_on_foreign_function', async () => {
    const host = await load(
      `
      (func (export "t") (result i32)
        (call $st (i32.const 0) (call $proxy_call_foreign_function (i32.const 1024) (i32.const 4) (i32.const 1040) (i32.const 5) (i32.const 256) (i32.const 260)))
        (call $st (i32.const 1) (call $proxy_call_foreign_function (i32.const 1032) (i32.const 7) (i32.const 1040) (i32.const 5) (i32.const 264) (i32.const 268)))
        (call $st (i32.const 2) (call $proxy_call_foreign_function (i32.const 1048) (i32.const 8) (i32.const 1040) (i32.const 5) (i32.const 272) (i32.const 276)))
        (call $st (i32.const 3) (call $proxy_call_foreign_function (i32.const 1056) (i32.const 10)
          (i32.load (i32.const 272)) (i32.load (i32.const 276)) (i32.const 280) (i32.const 284)))
        (i32.const 0))
      (func (export "proxy_on_foreign_function") (param $r i32) (param $f i32) (param $n i32)
        (call $st (i32.const 4) (local.get $f))
        (call $st (i32.const 5) (call $proxy_get_buffer_bytes (i32.const 8) (i32.const 0) (local.get $n) (i32.const 288) (i32.const 292))))
      ${data(1024, 'echo')} ${data(1032, 'missing')} ${data(1040, 'hello')} ${data(1048, 'compress')} ${data(1056, 'uncompress')}`,
      {
        foreignFunctions: { echo: (args) => Uint8Array.from(Buffer.from(`echo:${Buffer.from(args).toString()}`)) },
      },
    );
    const root = host.startPlugin();
    host.callExport('t', root);
    host.callOnForeignFunction(7, 'args!');
    expect(results(host, 6)).toEqual([0, R.NotFound, 0, 0, 7, 0]);
    expect(outString(host, 256)).toBe('echo:hello');
    expect(outString(host, 280)).toBe('hello');
    expect(outString(host, 288)).toBe('args!');
  });

  it('emscripten_notify_memory_growth and pthread_equal', async () => {
    const host = await load(`
      (func (export "t") (result i32)
        (call $emscripten_notify_memory_growth (i32.const 0))
        (call $st (i32.const 0) (call $pthread_equal (i32.const 3) (i32.const 3)))
        (call $st (i32.const 1) (call $pthread_equal (i32.const 3) (i32.const 4)))
        (i32.const 0))`);
    host.callExport('t', host.startPlugin());
    expect(results(host, 2)).toEqual([1, 0]);
  });
});

describe('WASI', () => {
  it('fd_write to the log, clock_time_get, random_get bound, environ, proc_exit returns, stubs', async () => {
    const host = await load(
      `
      (func (export "t") (result i32)
        ;; iovecs at 1100: "out\\n" to stdout, "err" to stderr, fd 3 ⇒ BADF
        (i32.store (i32.const 1100) (i32.const 1024)) (i32.store (i32.const 1104) (i32.const 4))
        (i32.store (i32.const 1108) (i32.const 1032)) (i32.store (i32.const 1112) (i32.const 3))
        (call $st (i32.const 0) (call $fd_write (i32.const 1) (i32.const 1100) (i32.const 1) (i32.const 600)))
        (call $st (i32.const 1) (call $fd_write (i32.const 2) (i32.const 1108) (i32.const 1) (i32.const 604)))
        (call $st (i32.const 2) (call $fd_write (i32.const 3) (i32.const 1100) (i32.const 1) (i32.const 604)))
        (call $st (i32.const 3) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 768)))
        (call $st (i32.const 4) (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 776)))
        (call $st (i32.const 5) (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 784)))
        (call $st (i32.const 6) (call $random_get (i32.const 1200) (i32.const 16)))
        (call $st (i32.const 7) (call $random_get (i32.const 65536) (i32.const 65537)))
        (call $st (i32.const 8) (call $environ_sizes_get (i32.const 608) (i32.const 612)))
        (call $st (i32.const 9) (call $environ_get (i32.const 1300) (i32.const 1400)))
        (call $proc_exit (i32.const 3))
        (call $st (i32.const 10) (call $fd_read (i32.const 0) (i32.const 1100) (i32.const 1) (i32.const 604)))
        (i32.const 0))
      ${data(1024, 'out\n')} ${data(1032, 'err')}`,
      { environment: { A: '1', LONG: 'xyz' } },
    );
    const root = host.startPlugin();
    host.advanceTime(2);
    expect(host.callExport('t', root)).toBe(0); // proc_exit did not stop the guest
    expect(results(host, 11)).toEqual([0, 0, 8, 0, 0, 58, 0, 28, 0, 0, 8]);
    expect(host.logs('info')).toEqual(['out']);
    expect(host.logs('error')).toEqual(['err', 'proc_exit(3) called']);
    expect(new DataView(host.guestMemory(776, 8).buffer).getBigUint64(0, true)).toBe(2_000_000n);
    expect([...new Uint32Array(host.guestMemory(600, 16).buffer.slice(0))]).toEqual([4, 3, 2, 13]);
    expect(Buffer.from(host.guestMemory(1400, 13)).toString()).toBe('A=1\0LONG=xyz\0');
    expect(host.guestMemory(1200, 16).some((b) => b !== 0)).toBe(true);
  });
});
