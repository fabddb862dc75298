/**
 * Every ABI 0.2.1 capability reached through the SDK's public API: the filter in
 * testdata/capabilities/ runs in the host emulator; each case checks what the host saw.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DataStatus, HeadersStatus, HostEmulator, type EmulatorOptions, type HeaderPair } from '../host/index.js';
import { sdkTestModule } from './build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await sdkTestModule('capabilities');
}, 180_000);

async function emulator(options: EmulatorOptions = {}): Promise<HostEmulator> {
  const host = await HostEmulator.create(wasm, {
    rootId: 'caps',
    pluginName: 'caps-plugin',
    vmId: 'vm-1',
    vmConfiguration: 'vm-cfg',
    pluginConfiguration: 'plugin-cfg',
    clusters: ['svc', 'grpcsvc'],
    foreignFunctions: { echo: (args) => new Uint8Array([...args].reverse()) },
    ...options,
  });
  host.startPlugin();
  return host;
}

function op(name: string, extra: HeaderPair[] = []): HeaderPair[] {
  return [[':method', 'GET'], [':path', '/caps?q=1'], [':authority', 'example.com'], ['x-op', name], ...extra];
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('SDK capabilities through the host emulator', () => {
  it('root lifecycle: vm start and configure read their configurations; tick; validate', async () => {
    const host = await emulator();
    expect(host.logs('info')).toEqual(['vm_start: vm-cfg size 6', 'configure: plugin-cfg root_id caps']);
    expect(host.tickPeriod()).toBe(50);
    host.advanceTime(120);
    expect(host.gauge('caps_inflight')).toBe(2n);
    expect(host.validateConfiguration('ok')).toBe(true);
    expect(host.validateConfiguration('invalid')).toBe(false);
  });

  it('root done later: onDone false, then proxy_done from a tick deletes the root', async () => {
    const host = await emulator();
    host.finishVm();
    expect(host.rootAlive()).toBe(true);
    host.advanceTime(60);
    expect(host.logs('info')).toContain('tick: finishing, proxy_done 0');
    expect(host.rootAlive()).toBe(false);
    expect(host.logs('info')).toContain('root deleted');
  });

  it('headers: pairs get/set, bytes variants, remove, first value, NotFound as null', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(
      id,
      op('headers', [
        ['x-remove-me', '1'],
        ['x-replaced', 'old'],
      ]),
      true,
    );
    expect(host.logs('info')).toContain('headers: 6 headers missing <null>');
    expect(host.currentRequestHeaders(id)).toEqual([
      [':method', 'GET'],
      [':path', '/caps?q=1'],
      [':authority', 'example.com'],
      ['x-op', 'headers'],
      ['x-replaced', 'r1'],
      ['x-set-all', '1'],
      ['x-bytes', 'b1'],
    ]);
  });

  it('properties: typed request/connection/plugin helpers, map properties, set_property', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext({
      attributes: { source: { address: '10.0.0.7:5555', port: 5555n } },
    });
    host.callOnRequestHeaders(id, op('props', [['user-agent', 'curl/8']]), true);
    expect(host.logs('info')).toContain(
      'props: path /caps?q=1 method GET plugin caps-plugin root caps vm vm-1 source 10.0.0.7:5555 port 5555 ua curl/8 headers 5 state v1 missing null',
    );
  });

  it('shared data: set, get with cas, CasMismatch on a stale cas, NotFound as null', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('shared'), true);
    expect(host.logs('info')).toContain('shared: 0 0 conflict cas_mismatch value two missing null');
    expect(text(host.sharedData('caps.k')!)).toBe('two');
  });

  it('queues: register on configure, resolve, enqueue, onQueueReady on the root, dequeue until Empty', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('queue'), true);
    expect(host.logs('info')).toContain('queue: resolved same missing not_found');
    expect(host.logs('info')).toContain('queue_ready: item-1 then empty');
  });

  it('metrics: counter, gauge add/sub, histogram, read back', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('metrics'), true);
    expect(host.logs('info')).toContain('metrics: requests 1 inflight 3');
    expect(host.counter('caps_requests')).toBe(1n);
    expect(host.gauge('caps_inflight')).toBe(3n);
    expect(host.histogram('caps_sizes')).toEqual([42n, 7n]);
  });

  it('HTTP callout from a stream: answer routed back to that stream, which reads it and continues', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, op('http'), true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    const [call] = host.pendingCallouts();
    expect(call?.upstream).toBe('svc');
    expect(text(call!.body)).toBe('question');
    expect(call?.trailers).toEqual([['x-trailer', 't1']]);
    host.callOnHttpCallResponse(call!.token, {
      headers: [
        [':status', '200'],
        ['x-answer', '42'],
      ],
      body: 'the answer',
      trailers: [['x-t', 'end']],
    });
    expect(host.logs('info')).toContain(
      'http_response: headers :status=200,x-answer=42 body the answer trailers x-t=end',
    );
    expect(host.currentRequestHeaders(id)).toContainEqual(['x-lookup', '42']);
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
  });

  it('gRPC stream: send, initial metadata, messages, trailing metadata, close with status message', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('grpc-stream'), true);
    const [call] = host.pendingCallouts();
    expect(call?.kind).toBe('grpc_stream');
    expect(call?.serviceName).toBe('pkg.Svc');
    expect(call?.method).toBe('Chat');
    expect(call?.headers).toContainEqual(['x-md', 'm1']);
    expect(call?.sent.map(text)).toEqual(['ping', 'last']);
    expect(call?.localClosed).toBe(true);
    host.callOnGrpcReceiveInitialMetadata(call!.token, [['x-im', 'i']]);
    host.callOnGrpcReceive(call!.token, 'pong');
    host.callOnGrpcReceiveTrailingMetadata(call!.token, [['grpc-status', '0']]);
    host.callOnGrpcClose(call!.token, 0, 'done');
    expect(host.logs('info')).toEqual(
      expect.arrayContaining([
        'grpc_initial_metadata: x-im=i',
        'grpc_receive: pong',
        'grpc_trailing_metadata: grpc-status=0',
        'grpc_close: 0 done',
      ]),
    );
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
  });

  it('gRPC call cancel: no further callbacks', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('grpc-cancel'), true);
    expect(host.logs('info')).toContain('grpc-cancel: 0');
    expect(host.pendingCallouts()).toEqual([]);
  });

  it('foreign functions: call by name (NotFound for an unknown one) and the host calling back', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('foreign'), true);
    expect(host.logs('info')).toContain('foreign: cba missing 1');
    host.callOnForeignFunction(7, 'args!');
    expect(host.logs('info')).toContain('foreign_function 7: args!');
  });

  it('local response with headers, details and gRPC status', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('local'), true);
    const r = host.sentLocalResponse(id);
    expect(r?.statusCode).toBe(418);
    expect(r?.details).toBe('i_am_a_teapot');
    expect(text(r!.body)).toBe('short and stout');
    expect(r?.headers).toContainEqual(['x-local', 'yes']);
    expect(r?.grpcStatus).toBe(2);
  });

  it('close stream resets the request', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('close'), true);
    expect(host.streamClosed(id)).toBe('wasm_close_stream');
  });

  it.each([
    { level: 'debug' as const, want: 'on', debugLogged: true },
    { level: 'info' as const, want: 'off', debugLogged: false },
  ])('log level check before formatting (host at $level)', async ({ level, want, debugLogged }) => {
    const host = await emulator({ logLevel: level });
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('log'), true);
    expect(host.logs('info')).toContain(`log: debug ${want} time set`);
    expect(host.logs('debug').includes('log: debug was enabled')).toBe(debugLogged);
  });

  it('bodies, trailers and metadata: buffer, read slices, replace/append/prepend, trailers on demand', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, op('body'), false)).toBe(HeadersStatus.Continue);
    expect(host.callOnRequestBody(id, 'hel', false)).toBe(DataStatus.StopIterationAndBuffer);
    expect(host.callOnRequestBody(id, 'lo', true)).toBe(DataStatus.Continue);
    expect(host.logs('info')).toContain('body: hello slice ell');
    expect(text(host.forwardedRequestBody(id))).toBe('<B>');
    expect(host.currentRequestTrailers(id)).toEqual([['x-added-trailer', 't']]);
    host.callOnRequestMetadata(id, 3);
    expect(host.logs('info')).toContain('request_metadata: 3');
    host.callOnResponseHeaders(id, [[':status', '200']], false);
    expect(host.currentResponseHeaders(id)).toContainEqual(['x-op-seen', 'body']);
    host.callOnResponseBody(id, 'resp', true);
    expect(text(host.forwardedResponseBody(id))).toBe('resp!');
    host.completeHttpContext(id);
    expect(host.logs('info')).toContain('log_phase: body status 200');
  });

  it('request and response trailers callbacks read and edit trailers', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('trailers'), false);
    host.callOnRequestBody(id, 'x', false);
    host.callOnRequestTrailers(id, [['x-t', 'orig']]);
    expect(host.logs('info')).toContain('request_trailers: x-t=orig');
    expect(host.currentRequestTrailers(id)).toEqual([['x-t', 'changed']]);
    host.callOnResponseHeaders(id, [[':status', '200']], false);
    host.callOnResponseTrailers(id, [['grpc-status', '0']]);
    expect(host.currentResponseTrailers(id)).toContainEqual(['x-rt', 'added']);
  });

  it('low-level hostcalls: header map byte size, buffer status, effective context', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('sizes'), true);
    // Envoy reports the map's byte size (key and value lengths), not the number of entries.
    const bytes = op('sizes').reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(host.logs('info')).toContain(`sizes: request headers ${bytes} body unavailable effective 0`);
  });

  it('abort logs at critical level with the source position, then traps (Envoy fails the VM)', async () => {
    const host = await emulator();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, op('throw'), true);
    expect(host.vmFailed()).toBe(true);
    expect(host.logs('critical').join('\n')).toMatch(/^abort: boom at .*capabilities\/assembly\/index\.ts:\d+:\d+$/m);
    expect(host.sentLocalResponse(id)?.details).toBe('wasm_fail_stream');
  });

  it('a module with one root serves any root_id; unknown stream ids are tolerated', async () => {
    const host = await HostEmulator.create(wasm, { rootId: 'other', pluginConfiguration: 'x' });
    host.startPlugin();
    expect(host.logs('info')).toContain('configure: x root_id other');
    // A context the host created on the VM context directly (not through a root) gets Continue.
    expect(host.callExport('proxy_on_request_headers', 0, 999, 0, 1)).toBe(0);
    expect(host.callExport('proxy_on_delete', 0, 999)).toBe(0);
    expect(host.vmFailed()).toBe(false);
  });
});

describe('several root contexts in one module', () => {
  it('picks the root by root_id, keeps their streams apart, and logs an unknown root_id', async () => {
    const wasm2 = await sdkTestModule('two-roots');
    const host = await HostEmulator.create(wasm2);
    host.startPlugin({ rootId: 'alpha' });
    host.startPlugin({ rootId: 'beta' });
    expect(host.logs('info')).toEqual(['alpha configured', 'beta configured']);
    for (const rootId of ['alpha', 'beta']) {
      const id = host.initializeHttpContext({ rootId });
      host.callOnRequestHeaders(id, [[':path', '/']], true);
      expect(host.currentRequestHeaders(id)).toContainEqual(['x-root', rootId]);
      host.completeHttpContext(id);
    }
    host.startPlugin({ rootId: 'gamma' });
    expect(host.logs('error')).toEqual(["no root context registered for root_id 'gamma' (registerRootContext)"]);
    const id = host.initializeHttpContext({ rootId: 'gamma' });
    expect(host.callOnRequestHeaders(id, [[':path', '/']], true)).toBe(HeadersStatus.Continue);
    expect(host.currentRequestHeaders(id)).toEqual([[':path', '/']]);
    expect(host.vmFailed()).toBe(false);
  }, 180_000);
});
