import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DataStatus, HeadersStatus, TrailersStatus, WasmResult } from './abi.js';
import { HostEmulator, type EmulatorOptions } from './emulator.js';
import { encodePairList } from './pairs.js';
import { proxyModule } from './testdata/wat-module.js';
import { compileWat } from './wat.js';

const REQ = { ':method': 'GET', ':path': '/a?x=1', ':authority': 'example.com', ':scheme': 'https', 'x-user': 'bob' };

async function emulator(body: string, opts: EmulatorOptions = {}): Promise<HostEmulator> {
  return HostEmulator.create(await compileWat(proxyModule(body)), opts);
}

async function fromFile(name: string, opts: EmulatorOptions = {}): Promise<HostEmulator> {
  const text = readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');
  return HostEmulator.create(await compileWat(text, name), opts);
}

describe('HTTP lifecycle', () => {
  it('runs the add-header module through a whole request', async () => {
    const host = await fromFile('add-header.wat');
    host.startPlugin();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, REQ, true)).toBe(HeadersStatus.Continue);
    expect(host.currentRequestHeaders(id)).toContainEqual(['x-hello', 'bob']);
    expect(host.callOnResponseHeaders(id, { ':status': '200' }, true)).toBe(HeadersStatus.Continue);
    expect(host.currentResponseHeaders(id)).toEqual([
      [':status', '200'],
      ['x-filtered', 'true'],
    ]);
    host.completeHttpContext(id);
    expect(host.logs('info')).toEqual(['user: bob']);
  });

  it('calls back in Envoy order: on_log before on_done and on_delete', async () => {
    const host = await emulator(`
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
      (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_response_trailers") (param i32 i32) (result i32) (i32.const 0))
      (func (export "proxy_on_log") (param i32))
      (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
      (func (export "proxy_on_delete") (param i32))`);
    const root = host.startPlugin();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    host.callOnRequestBody(id, 'abc', false);
    host.callOnRequestTrailers(id, { t: '1' });
    host.callOnResponseHeaders(id, { ':status': '200' }, false);
    host.callOnResponseBody(id, 'xyz', false);
    host.callOnResponseTrailers(id, { t: '2' });
    host.completeHttpContext(id);
    expect(host.callTrace().map((t) => `${t.callback}:${t.contextId}`)).toEqual([
      `proxy_on_context_create:${root}`,
      `proxy_on_vm_start:${root}`,
      `proxy_on_configure:${root}`,
      `proxy_on_context_create:${id}`,
      `proxy_on_request_headers:${id}`,
      `proxy_on_request_body:${id}`,
      `proxy_on_request_trailers:${id}`,
      `proxy_on_response_headers:${id}`,
      `proxy_on_response_body:${id}`,
      `proxy_on_response_trailers:${id}`,
      `proxy_on_log:${id}`,
      `proxy_on_done:${id}`,
      `proxy_on_delete:${id}`,
    ]);
    expect(host.forwardedRequestBody(id)).toEqual(Buffer.from('abc'));
  });

  it('hands out context ids from one counter starting at 1, roots first', async () => {
    const host = await emulator('');
    expect(host.startPlugin({ rootId: 'a' })).toBe(1);
    expect(host.startPlugin({ rootId: 'b' })).toBe(2);
    expect(host.initializeHttpContext({ rootId: 'b' })).toBe(3);
    expect(host.initializeHttpContext()).toBe(4);
    expect(() => host.initializeHttpContext({ rootId: 'zzz' })).toThrow(/no plugin with root_id "zzz"/);
  });

  it.each([
    { name: 'on_vm_start false', vmStart: 0, configure: 1, error: /proxy_on_vm_start returned false/ },
    { name: 'on_configure false', vmStart: 1, configure: 0, error: /proxy_on_configure returned false/ },
  ])('fails the plugin load when $name', async ({ vmStart, configure, error }) => {
    const host = await emulator(`
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const ${vmStart}))
      (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const ${configure}))`);
    expect(() => host.startPlugin()).toThrow(expect.objectContaining({ code: 'WASM_PLUGIN_START_FAILED' }) as Error);
    expect(() => host.startPlugin()).toThrow(error);
  });
});

describe('status translation', () => {
  const headers = (ret: number) => `
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const ${ret}))
    (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const ${ret}))
    (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) (i32.const ${ret}))`;
  const cases = [
    { ret: 0, allow: false, h: HeadersStatus.Continue, d: DataStatus.Continue, t: TrailersStatus.Continue },
    { ret: 1, allow: false, h: HeadersStatus.StopAllIterationAndWatermark, d: 1, t: 1 },
    { ret: 1, allow: true, h: HeadersStatus.StopIteration, d: 1, t: 1 },
    { ret: 2, allow: false, h: HeadersStatus.ContinueAndEndStream, d: 2, t: 1 },
    { ret: 3, allow: false, h: HeadersStatus.StopAllIterationAndBuffer, d: 3, t: 1 },
    { ret: 7, allow: false, h: HeadersStatus.StopAllIterationAndWatermark, d: 3, t: 1 },
  ];
  it.each(cases)('guest returns $ret (allow StopIteration: $allow)', async ({ ret, allow, h, d, t }) => {
    const host = await emulator(headers(ret), { allowOnHeadersStopIteration: allow });
    const a = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(a, REQ, false)).toBe(h);
    const b = host.initializeHttpContext();
    // Body and trailers on a stream whose headers continued.
    const host2 = await emulator(
      headers(ret).replace(
        '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const ' + ret + '))',
        '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))',
      ),
    );
    const c = host2.initializeHttpContext();
    host2.callOnRequestHeaders(c, REQ, false);
    expect(host2.callOnRequestBody(c, 'x', false)).toBe(d);
    const e = host2.initializeHttpContext();
    host2.callOnRequestHeaders(e, REQ, false);
    expect(host2.callOnRequestTrailers(e, { a: 'b' })).toBe(t);
    expect(b).toBeGreaterThan(a);
  });

  it('grows body_size while the guest buffers, and forwards the whole body on Continue', async () => {
    const host = await emulator(`
      (global $sizes (mut i32) (i32.const 512))
      (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
        (i32.store (global.get $sizes) (local.get $size))
        (global.set $sizes (i32.add (global.get $sizes) (i32.const 4)))
        (if (result i32) (local.get $eos) (then (i32.const 0)) (else (i32.const 1))))`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, false);
    expect(host.callOnRequestBody(id, 'aa', false)).toBe(DataStatus.StopIterationAndBuffer);
    expect(host.callOnRequestBody(id, 'bbb', false)).toBe(DataStatus.StopIterationAndBuffer);
    expect(host.callOnRequestBody(id, 'c', true)).toBe(DataStatus.Continue);
    expect([...new Uint32Array(host.guestMemory(512, 12).buffer)]).toEqual([2, 5, 6]);
    expect(Buffer.from(host.forwardedRequestBody(id)).toString()).toBe('aabbbc');
  });

  it('buffers data while headers are stopped and delivers it on proxy_continue_stream', async () => {
    const host = await emulator(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))
      (func (export "proxy_on_request_body") (param $c i32) (param $size i32) (param $eos i32) (result i32)
        (i32.store (i32.const 512) (local.get $size)) (i32.store (i32.const 516) (local.get $eos)) (i32.const 0))
      (func (export "resume") (result i32) (call $proxy_continue_stream (i32.const 0)))`);
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, REQ, false)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    expect(host.callOnRequestBody(id, 'hello ', false)).toBe(DataStatus.StopIterationAndBuffer);
    expect(host.callOnRequestBody(id, 'world', true)).toBe(DataStatus.StopIterationAndBuffer);
    expect(host.callTrace().some((t) => t.callback === 'proxy_on_request_body')).toBe(false);
    expect(host.callExport('resume', id)).toBe(0);
    expect([...new Uint32Array(host.guestMemory(512, 8).buffer)]).toEqual([11, 1]);
    expect(Buffer.from(host.forwardedRequestBody(id)).toString()).toBe('hello world');
  });
});

describe('failure containment', () => {
  const trapping = `
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eq (i32.load (i32.const 600)) (i32.const 0)) (then unreachable)) (i32.const 0))
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))`;

  it('fail closed: the trapping stream and later ones get a local 503 wasm_fail_stream', async () => {
    const host = await emulator(trapping);
    const a = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(a, REQ, true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    expect(host.vmFailed()).toBe(true);
    expect(host.vmFailure()).toMatchObject({ callback: 'proxy_on_request_headers' });
    expect(host.logs('critical')[0]).toMatch(/Function: proxy_on_request_headers failed: RuntimeError: unreachable/);
    expect(host.sentLocalResponse(a)).toMatchObject({ statusCode: 503, details: 'wasm_fail_stream', grpcStatus: 14 });
    expect(host.currentResponseHeaders(a)).toEqual([[':status', '503']]);
    const b = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(b, REQ, true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    expect(host.sentLocalResponse(b)?.statusCode).toBe(503);
    host.completeHttpContext(b);
  });

  it('fail open: streams bypass the filter', async () => {
    const host = await emulator(trapping, { failOpen: true });
    const a = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(a, REQ, true)).toBe(HeadersStatus.Continue);
    expect(host.sentLocalResponse(a)).toBeUndefined();
    const b = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(b, REQ, false)).toBe(HeadersStatus.Continue);
    expect(host.callOnRequestBody(b, 'x', true)).toBe(DataStatus.Continue);
    expect(host.forwardedRequestBody(b)).toEqual(Buffer.from('x'));
  });

  it('fail reload: a fresh VM serves new streams, at most one reload per backoff', async () => {
    const host = await emulator(
      `(func (export "proxy_on_request_headers") (param i32) (param $n i32) (param i32) (result i32)
         (if (i32.eq (local.get $n) (i32.const 6)) (then unreachable)) (i32.const 0))`,
      { failurePolicy: 'FAIL_RELOAD', reloadBackoffMs: 1000 },
    );
    const TRAP = { ...REQ, 'x-trap': '1' };
    const a = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(a, TRAP, true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    expect(host.sentLocalResponse(a)?.details).toBe('wasm_fail_stream');
    // The next stream gets a fresh VM (first reload is immediate) and works.
    const b = host.initializeHttpContext();
    expect(host.vmGenerations).toBe(2);
    expect(host.callOnRequestHeaders(b, REQ, true)).toBe(HeadersStatus.Continue);
    // It fails again; within the backoff no reload happens and streams fail closed.
    const c = host.initializeHttpContext();
    host.callOnRequestHeaders(c, TRAP, true);
    const d = host.initializeHttpContext();
    expect(host.vmGenerations).toBe(2);
    expect(host.callOnRequestHeaders(d, REQ, true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    host.advanceTime(1000);
    const e = host.initializeHttpContext();
    expect(host.vmGenerations).toBe(3);
    expect(host.callOnRequestHeaders(e, REQ, true)).toBe(HeadersStatus.Continue);
  });

  it('never throws a trap into the caller, in any callback', async () => {
    const host = await emulator(`
      (func (export "proxy_on_context_create") (param i32 i32) (if (i32.gt_u (local.get 0) (i32.const 1)) (then unreachable)))`);
    host.startPlugin();
    const id = host.initializeHttpContext();
    expect(() => host.callOnRequestHeaders(id, REQ, true)).not.toThrow();
    expect(host.vmFailure()?.callback).toBe('proxy_on_context_create');
    expect(host.sentLocalResponse(id)?.details).toBe('wasm_fail_stream');
  });
});

describe('TCP', () => {
  const tcp = `
    (func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
    (func (export "proxy_on_downstream_data") (param $c i32) (param $n i32) (param $eos i32) (result i32)
      (i32.store (i32.const 512) (local.get $n))
      ;; hold data until 6 bytes arrived, then prepend "> " and continue
      (if (result i32) (i32.lt_u (local.get $n) (i32.const 6))
        (then (i32.const 1))
        (else (drop (call $proxy_set_buffer_bytes (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 2))) (i32.const 0))))
    (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32)
      (i32.store (i32.const 520) (call $proxy_get_buffer_status (i32.const 3) (i32.const 524) (i32.const 528)))
      (drop (call $proxy_close_stream (i32.const 2))) (i32.const 0))
    (func (export "proxy_on_downstream_connection_close") (param i32) (param $peer i32) (i32.store (i32.const 516) (local.get $peer)))
    (func (export "proxy_on_log") (param i32))
    (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
    (func (export "proxy_on_delete") (param i32))
    (data (i32.const 1024) "> ")`;

  it('runs a connection: buffering in the read buffer, edits, close, and Envoy order done → log → delete', async () => {
    const host = await emulator(tcp);
    const root = host.startPlugin();
    const id = host.initializeConnection();
    expect(host.currentTcpStreamAction(id)?.phase).toBe('new_connection');
    expect(host.callOnDownstreamData(id, 'abc')).toBe(1);
    expect(host.callOnDownstreamData(id, 'def')).toBe(0);
    expect(Buffer.from(host.downstreamData(id)).toString()).toBe('> abcdef');
    expect(host.callOnUpstreamData(id, 'reply', true)).toBe(0);
    expect(host.streamClosed(id)).toBe('connection closed by the filter');
    host.closeDownstreamConnection(id);
    host.completeConnection(id);
    expect([...new Uint32Array(host.guestMemory(512, 16).buffer.slice(0))]).toEqual([6, 2, 0, 5]);
    expect(
      host
        .callTrace()
        .filter((t) => t.contextId === id)
        .map((t) => t.callback),
    ).toEqual([
      'proxy_on_context_create',
      'proxy_on_new_connection',
      'proxy_on_downstream_data',
      'proxy_on_downstream_data',
      'proxy_on_upstream_data',
      'proxy_on_downstream_connection_close',
      'proxy_on_done',
      'proxy_on_log',
      'proxy_on_delete',
    ]);
    expect(root).toBe(1);
  });

  it.each([
    { failOpen: false, status: 1, closed: true },
    { failOpen: true, status: 0, closed: false },
  ])(
    'after a trap, TCP connections are closed or bypassed (failOpen $failOpen)',
    async ({ failOpen, status, closed }) => {
      const host = await emulator(
        `(func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) unreachable)`,
        { failOpen },
      );
      const id = host.initializeConnection();
      expect(host.callOnDownstreamData(id, 'x')).toBe(status);
      expect(host.streamClosed(id) !== undefined).toBe(closed);
      const next = host.initializeConnection();
      expect(host.callOnDownstreamData(next, 'y')).toBe(status);
    },
  );
});

describe('plugin configuration and shutdown', () => {
  const cfg = `
    (func (export "proxy_validate_configuration") (param i32) (param $n i32) (result i32) (i32.lt_u (local.get $n) (i32.const 5)))
    (func (export "proxy_on_configure") (param i32) (param $n i32) (result i32)
      (i32.store (i32.const 512) (local.get $n)) (i32.lt_u (local.get $n) (i32.const 5)))
    (func (export "proxy_on_request_metadata") (param i32) (param $n i32) (result i32) (i32.store (i32.const 516) (local.get $n)) (i32.const 0))
    (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
    (func (export "proxy_on_delete") (param $c i32) (i32.store (i32.const 520) (local.get $c)))
    (func (export "call") (result i32)
      (call $proxy_http_call (i32.const 1024) (i32.const 1) (i32.load (i32.const 248)) (i32.load (i32.const 252))
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 256)))
    (data (i32.const 1024) "c")`;

  it('validates and reconfigures through proxy_validate_configuration / proxy_on_configure', async () => {
    const host = await emulator(cfg, { pluginConfiguration: 'ok' });
    const root = host.startPlugin();
    expect(host.validateConfiguration('1234')).toBe(true);
    expect(host.validateConfiguration('12345')).toBe(false);
    expect(host.configure('12345')).toBe(false);
    expect(host.configure('abc')).toBe(true);
    expect(new Uint32Array(host.guestMemory(512, 4).buffer.slice(0))[0]).toBe(3);
    const id = host.initializeHttpContext();
    host.callOnRequestMetadata(id, 7);
    expect(new Uint32Array(host.guestMemory(516, 4).buffer.slice(0))[0]).toBe(7);
    expect(root).toBe(1);
  });

  it('finishVm: on_done true deletes the root and cancels its pending callouts', async () => {
    const host = await emulator(cfg);
    const root = host.startPlugin();
    const headers = encodePairList([
      [':method', 'GET'],
      [':path', '/'],
      [':authority', 'c'],
    ]);
    const ptr = host.callExport('malloc', 0, headers.length);
    host.guestMemoryWrite(ptr, headers);
    host.guestMemoryWrite(248, new Uint8Array(new Uint32Array([ptr, headers.length]).buffer));
    expect(host.callExport('call', root)).toBe(0);
    expect(host.pendingCallouts()).toHaveLength(1);
    host.finishVm();
    expect(host.rootAlive(root)).toBe(false);
    expect(new Uint32Array(host.guestMemory(520, 4).buffer.slice(0))[0]).toBe(root);
    expect(host.pendingCallouts()).toEqual([]);
  });
});

describe('local replies to gRPC requests', () => {
  const GRPC = { ...REQ, ':method': 'POST', 'content-type': 'application/grpc' };
  it('fail-closed answers a gRPC request with a trailers-only UNAVAILABLE', async () => {
    const host = await emulator(
      `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)`,
    );
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, GRPC, false);
    expect(host.currentResponseHeaders(id)).toEqual([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '14'],
    ]);
  });

  it.each([
    { grpc: -1, want: '7' }, // no gRPC status given: HTTP 403 maps to PERMISSION_DENIED
    { grpc: 16, want: '16' },
  ])(
    'a guest reply (grpc_status $grpc) becomes grpc-status $want with the body as grpc-message',
    async ({ grpc, want }) => {
      const host = await emulator(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $proxy_send_local_response (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 6)
          (i32.const 0) (i32.const 0) (i32.const ${grpc})))
        (i32.const 0))
      (data (i32.const 1024) "no way")`);
      const id = host.initializeHttpContext();
      host.callOnRequestHeaders(id, GRPC, false);
      expect(host.currentResponseHeaders(id)).toEqual([
        [':status', '200'],
        ['content-type', 'application/grpc'],
        ['grpc-status', want],
        ['grpc-message', 'no%20way'],
      ]);
      expect(host.forwardedResponseBody(id)).toHaveLength(0);
    },
  );
});

describe('proxy_continue_stream without a stop', () => {
  it('is a no-op when called from the callback that returns Continue', async () => {
    const host = await emulator(`
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $proxy_continue_stream (i32.const 0))) (i32.const 0))`);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, REQ, true);
    expect(host.httpStreamActions(id).map((a) => a.name)).toEqual(['Continue']);
  });
});

describe('local replies: stream callbacks in Envoy order', () => {
  // $when picks where the filter sends `403 go away`: 1 on_request_headers, 2 on_http_call_response
  // (on the root, after proxy_set_effective_context(stream)), 3 on_response_headers (the upstream
  // response has started), 4 on_response_body (its headers already went downstream).
  const CALL = encodePairList([
    [':method', 'GET'],
    [':path', '/check'],
    [':authority', 'auth'],
  ]);
  const module = `
    (global $when (mut i32) (i32.const 0))
    (global $stream (mut i32) (i32.const 0))
    (func (export "set") (param $w i32) (result i32) (global.set $when (local.get $w)) (i32.const 0))
    (func (export "switch") (result i32) (call $proxy_set_effective_context (global.get $stream)))
    (func $reply (drop (call $proxy_send_local_response (i32.const 403) (i32.const 1024) (i32.const 6)
      (i32.const 1032) (i32.const 7) (i32.const 0) (i32.const 0) (i32.const -1))))
    (func (export "proxy_on_request_headers") (param $c i32) (param i32 i32) (result i32)
      (global.set $stream (local.get $c))
      (if (i32.eq (global.get $when) (i32.const 1)) (then (call $reply)))
      (if (i32.eq (global.get $when) (i32.const 2)) (then
        (drop (call $proxy_http_call (i32.const 1040) (i32.const 4) (i32.const 1100) (i32.const ${CALL.length})
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 600)))
        (return (i32.const 1))))
      (i32.const 0))
    (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
    (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) (i32.const 0))
    (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
      (drop (call $proxy_set_effective_context (global.get $stream)))
      (call $reply))
    (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
      (if (i32.eq (global.get $when) (i32.const 3)) (then (call $reply)))
      (i32.const 0))
    (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
      (if (i32.eq (global.get $when) (i32.const 4)) (then (call $reply)))
      (i32.const 0))
    (func (export "proxy_on_log") (param i32))
    (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
    (func (export "proxy_on_delete") (param i32))
    (data (i32.const 1024) "denied") (data (i32.const 1032) "go away") (data (i32.const 1040) "auth")`;
  const UPSTREAM = { ':status': '200', 'content-type': 'text/plain' };
  const REPLY = [
    [':status', '403'],
    ['content-type', 'text/plain'],
    ['content-length', '7'],
  ];

  it.each([
    {
      name: 'sent from on_request_headers: runs after that callback; later request data never reaches the filter',
      when: 1,
      drive: (host: HostEmulator, id: number) => {
        host.callOnRequestHeaders(id, REQ, false);
        expect(host.callOnRequestBody(id, 'late', false)).toBe(DataStatus.StopIterationNoBuffer);
        expect(host.callOnRequestTrailers(id, { t: '1' })).toBe(TrailersStatus.StopIteration);
        host.callOnResponseHeaders(id, UPSTREAM, true); // no upstream response reaches it either
      },
      actions: ['request_headers StopAllIterationAndWatermark', 'response_headers Continue', 'response_body Continue'],
      trace: ['request_headers', 'response_headers', 'response_body'],
      response: { headers: REPLY, body: 'go away' },
      closed: undefined,
    },
    {
      name: 'sent from on_http_call_response on the root: the request body that follows is dropped',
      when: 2,
      drive: (host: HostEmulator, id: number) => {
        host.guestMemoryWrite(1100, CALL);
        host.callOnRequestHeaders(id, REQ, false);
        host.callOnHttpCallResponse(4, { headers: { ':status': '403' } });
        expect(host.callOnRequestBody(id, '{"item":"book"}', true)).toBe(DataStatus.StopIterationNoBuffer);
      },
      actions: ['request_headers StopAllIterationAndWatermark', 'response_headers Continue', 'response_body Continue'],
      trace: ['request_headers', 'http_call_response', 'response_headers', 'response_body'],
      response: { headers: REPLY, body: 'go away' },
      closed: undefined,
    },
    {
      name: 'sent from on_response_headers: written directly (sendDirectLocalReply), the filter does not see it',
      when: 3,
      drive: (host: HostEmulator, id: number) => {
        host.callOnRequestHeaders(id, REQ, true);
        host.callOnResponseHeaders(id, UPSTREAM, false);
        expect(host.callOnResponseBody(id, 'upstream body', true)).toBe(DataStatus.StopIterationNoBuffer);
      },
      actions: ['request_headers Continue', 'response_headers StopAllIterationAndWatermark'],
      trace: ['request_headers', 'response_headers'],
      response: { headers: REPLY, body: 'go away' },
      closed: undefined,
    },
    {
      name: 'sent from on_response_body after the headers went downstream: the stream is reset',
      when: 4,
      drive: (host: HostEmulator, id: number) => {
        host.callOnRequestHeaders(id, REQ, true);
        host.callOnResponseHeaders(id, UPSTREAM, false);
        host.callOnResponseBody(id, 'upstream body', true);
      },
      actions: ['request_headers Continue', 'response_headers Continue', 'response_body StopIterationNoBuffer'],
      trace: ['request_headers', 'response_headers', 'response_body'],
      response: { headers: Object.entries(UPSTREAM), body: '' },
      closed: /stream reset: local reply 403 \(denied\) after response headers were sent/,
    },
  ])('$name', async ({ when, drive, actions, trace, response, closed }) => {
    const host = await emulator(module);
    const root = host.startPlugin();
    host.callExport('set', root, when);
    const id = host.initializeHttpContext();
    drive(host, id);
    expect(host.httpStreamActions(id).map((a) => `${a.phase} ${a.name}`)).toEqual(actions);
    expect(host.currentResponseHeaders(id)).toEqual(response.headers);
    expect(Buffer.from(host.forwardedResponseBody(id)).toString()).toBe(response.body);
    if (closed === undefined) expect(host.streamClosed(id)).toBeUndefined();
    else expect(host.streamClosed(id)).toMatch(closed);
    // Guest callbacks as Envoy makes them. The reply completed (or reset) the response, so the
    // stream has already ended with on_log, on_done, on_delete (doEndStream), before the client
    // finished: a callout answered now could no longer switch to it.
    const calls = (): string[] =>
      host
        .callTrace()
        .map((t) => t.callback.replace(/^proxy_on_/, ''))
        .filter((c) => !['context_create', 'vm_start', 'configure', 'set', 'switch'].includes(c));
    expect(calls()).toEqual([...trace, 'log', 'done', 'delete']);
    expect(host.callExport('switch', root)).toBe(WasmResult.BadArgument);
    host.completeHttpContext(id); // nothing left to call
    expect(calls()).toEqual([...trace, 'log', 'done', 'delete']);
  });
});
