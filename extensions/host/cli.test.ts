import { runEnvext, type CliRun } from '../../test/cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wasmCommands } from './cli.js';

const program = { root: { name: 'envext', summary: 'test', subcommands: [wasmCommands] }, version: 'test' };
const examples = new URL('../../examples/wasm/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'envext-wasm-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface RunJson {
  request: { headers: [string, string][]; body: string; forwarded: boolean };
  response?: { headers: [string, string][] };
  actions: { phase: string; name: string }[];
  callouts: { token: number; cluster: string; answer: string }[];
  localReply?: { statusCode: number; details: string; body: string };
  logs: { level: string; message: string }[];
}

const run = (...argv: string[]): Promise<CliRun> => runEnvext(argv, program);

describe('envext wasm inspect', () => {
  it('reports ABI, allocator, imports with signatures, and that Envoy would load it', async () => {
    const r = await run('wasm', 'inspect', `${examples}add-header.wat`, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Record<string, unknown>;
    expect(report).toMatchObject({ abiVersion: '0.2.1', allocator: 'malloc', envoyLoads: true, problems: [] });
    expect(report['imports']).toContainEqual({
      module: 'env',
      name: 'proxy_log',
      kind: 'function',
      signature: '(i32, i32, i32) -> i32',
      providedByEnvoy: true,
    });
  });

  it('names each unknown import and exits 1', async () => {
    const file = join(tmp, 'bad.wat');
    writeFileSync(
      file,
      '(module (import "env" "proxy_nope" (func)) (import "env" "abort" (func)) (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) (i32.const 0)))',
    );
    const r = await run('wasm', 'inspect', file);
    expect(r.code).toBe(1);
    expect(r.out).toContain('envoy would load it: no');
    expect(r.out).toContain('refused: Failed to load Wasm module due to a missing import: env.proxy_nope');
    expect(r.out).toContain('refused: Failed to load Wasm module due to a missing import: env.abort');
  });

  it('explains a missing file', async () => {
    const r = await run('wasm', 'inspect', join(tmp, 'nope.wasm'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: .*nope.wasm: no such file \(pass the path of a .wasm or .wat file\)/);
  });
});

describe('envext wasm run', () => {
  it('runs the example request and response and prints JSON', async () => {
    const r = await run(
      'wasm',
      'run',
      `${examples}add-header.wat`,
      '--request',
      `${examples}request.json`,
      '--response',
      `${examples}response.json`,
      '--json',
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as {
      request: { headers: [string, string][]; body: string; forwarded: boolean };
      response: { headers: [string, string][] };
      actions: { phase: string; name: string }[];
      logs: { level: string; message: string }[];
    };
    expect(out.request.forwarded).toBe(true);
    expect(out.request.headers).toContainEqual(['x-hello', 'alice']);
    expect(out.request.body).toBe('{"item":"book"}');
    expect(out.response.headers).toContainEqual(['x-filtered', 'true']);
    expect(out.actions.map((a) => `${a.phase}:${a.name}`)).toEqual([
      'request_headers:Continue',
      'request_body:Continue',
      'response_headers:Continue',
      'response_body:Continue',
    ]);
    expect(out.logs).toEqual([{ level: 'info', message: 'user: alice', contextId: 2 }]);
  });

  it('answers callouts from --callouts and shows a local reply (examples/wasm/auth-callout.wat)', async () => {
    const wat = `${examples}auth-callout.wat`;
    const allow = await run(
      'wasm',
      'run',
      wat,
      '--request',
      `${examples}request.json`,
      '--response',
      `${examples}response.json`,
      '--callouts',
      `${examples}callouts-allow.json`,
      '--json',
    );
    expect(allow.code).toBe(0);
    const a = JSON.parse(allow.out) as RunJson;
    expect(a.callouts).toEqual([expect.objectContaining({ token: 4, cluster: 'authsvc', answer: 'answered 200' })]);
    expect(a.actions.map((x) => `${x.phase}:${x.name}`)).toEqual([
      'request_headers:StopAllIterationAndWatermark',
      'request_headers:Continue (proxy_continue_stream)',
      'request_body:Continue',
      'response_headers:Continue',
      'response_body:Continue',
    ]);
    expect(a.request.forwarded).toBe(true);
    expect(a.localReply).toBeUndefined();

    const deny = await run(
      'wasm',
      'run',
      wat,
      '--request',
      `${examples}request.json`,
      '--response',
      `${examples}response.json`,
      '--callouts',
      `${examples}callouts-deny.json`,
      '--json',
    );
    const d = JSON.parse(deny.out) as RunJson;
    expect(d.request.forwarded).toBe(false);
    // As in Envoy, the reply goes through the response callbacks and the request body that
    // follows it never reaches the filter (no request_body action).
    expect(d.actions.map((x) => `${x.phase}:${x.name}`)).toEqual([
      'request_headers:StopAllIterationAndWatermark',
      'response_headers:Continue',
      'response_body:Continue',
    ]);
    expect(d.localReply).toMatchObject({ statusCode: 403, details: 'denied', body: 'go away' });
    expect(d.response?.headers).toEqual([
      [':status', '403'],
      ['content-type', 'text/plain'],
      ['content-length', '7'],
    ]);

    // Without an answer the callout fails (reset) and the filter denies.
    const none = await run('wasm', 'run', wat, '--request', `${examples}request.json`);
    expect(none.out).toContain('failed: cluster not in --callouts (reset)');
    expect(none.out).toContain('local reply: 403 (denied)');
  });

  it.each([
    { flags: [], status: 503, forwarded: false, code: 1 },
    { flags: ['--fail-open'], status: 200, forwarded: true, code: 1 },
  ])('a trap fails the VM: 503 wasm_fail_stream, or bypass with $flags', async ({ flags, status, forwarded, code }) => {
    const r = await run(
      'wasm',
      'run',
      `${examples}trap.wat`,
      '--request',
      `${examples}request.json`,
      '--response',
      `${examples}response.json`,
      '--json',
      ...flags,
    );
    expect(r.code).toBe(code);
    const out = JSON.parse(r.out) as RunJson & { vmFailure: { callback: string } };
    expect(out.vmFailure.callback).toBe('proxy_on_request_headers');
    expect(out.request.forwarded).toBe(forwarded);
    expect(out.response?.headers[0]).toEqual([':status', String(status)]);
    if (status === 503) expect(out.localReply).toMatchObject({ details: 'wasm_fail_stream', grpcStatus: 14 });
  });

  it('refuses a module with unknown imports (examples/wasm/bad-imports.wat)', async () => {
    const r = await run('wasm', 'run', `${examples}bad-imports.wat`, '--request', `${examples}request.json`);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'missing import: env.abort; Failed to load Wasm module due to a missing import: env.proxy_nope',
    );
  });

  it('supplies --property values to proxy_get_property', async () => {
    const wat = join(tmp, 'prop.wat');
    writeFileSync(
      wat,
      `(module
        (import "env" "proxy_get_property" (func $get (param i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
        (memory (export "memory") 2)
        (global $heap (mut i32) (i32.const 65536))
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param $n i32) (result i32) (local $p i32)
          (local.set $p (global.get $heap)) (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (if (i32.eqz (call $get (i32.const 1024) (i32.const 16) (i32.const 256) (i32.const 260)))
            (then (drop (call $log (i32.const 2) (i32.load (i32.const 256)) (i32.load (i32.const 260))))))
          (i32.const 0))
        (data (i32.const 1024) "xds\\00cluster_name"))`,
    );
    const r = await run(
      'wasm',
      'run',
      wat,
      '--request',
      `${examples}request.json`,
      '--property',
      'xds.cluster_name=backend',
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('[info] backend');
    const bad = await run('wasm', 'run', wat, '--request', `${examples}request.json`, '--property', 'nope');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--property nope: expected PATH=VALUE');
  });

  it('answers gRPC callouts from the "grpc" entry of --callouts', async () => {
    const wat = join(tmp, 'grpc.wat');
    writeFileSync(
      wat,
      `(module
        (import "env" "proxy_grpc_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_get_status" (func $status (param i32 i32 i32) (result i32)))
        (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
        (memory (export "memory") 2)
        (global $heap (mut i32) (i32.const 65536))
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param $n i32) (result i32) (local $p i32)
          (local.set $p (global.get $heap)) (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (drop (call $call (i32.const 1024) (i32.const 7) (i32.const 1032) (i32.const 4) (i32.const 1040) (i32.const 5)
            (i32.const 0) (i32.const 0) (i32.const 1048) (i32.const 2) (i32.const 100) (i32.const 256)))
          (i32.const 0))
        (func (export "proxy_on_grpc_receive") (param i32) (param i32) (param $n i32)
          (drop (call $buf (i32.const 5) (i32.const 0) (local.get $n) (i32.const 264) (i32.const 268)))
          (drop (call $log (i32.const 2) (i32.load (i32.const 264)) (i32.load (i32.const 268)))))
        (func (export "proxy_on_grpc_close") (param i32) (param i32) (param i32)
          (drop (call $status (i32.const 280) (i32.const 264) (i32.const 268)))
          (drop (call $log (i32.const 3) (i32.load (i32.const 264)) (i32.load (i32.const 268)))))
        (data (i32.const 1024) "grpcsvc") (data (i32.const 1032) "Echo") (data (i32.const 1040) "Hello") (data (i32.const 1048) "hi"))`,
    );
    const callouts = join(tmp, 'grpc-callouts.json');
    writeFileSync(callouts, JSON.stringify({ grpcsvc: { grpc: { message: 'pong' } } }));
    const ok = await run('wasm', 'run', wat, '--request', `${examples}request.json`, '--callouts', callouts);
    expect(ok.out).toContain('#5 grpc_call → grpcsvc: answered grpc-status 0');
    expect(ok.out).toContain('[info] pong');
    writeFileSync(callouts, JSON.stringify({ grpcsvc: { grpc: { status: 7, statusMessage: 'denied' } } }));
    const denied = await run('wasm', 'run', wat, '--request', `${examples}request.json`, '--callouts', callouts);
    expect(denied.out).toContain('answered grpc-status 7');
    expect(denied.out).toContain('[warn] denied');
    const none = await run('wasm', 'run', wat, '--request', `${examples}request.json`);
    expect(none.out).toContain('closed UNAVAILABLE');
    expect(none.out).toContain('[warn] unavailable');
    writeFileSync(callouts, JSON.stringify({ grpcsvc: { grpc: { status: 99 } } }));
    const bad = await run('wasm', 'run', wat, '--request', `${examples}request.json`, '--callouts', callouts);
    expect(bad.err).toContain('grpcsvc.grpc.status: expected a gRPC status code 0-16');
  });

  it('rejects a bad request file naming the field', async () => {
    const req = join(tmp, 'bad-req.json');
    writeFileSync(req, JSON.stringify({ path: 'nope', headers: { a: 1, b: {} } }));
    const r = await run('wasm', 'run', `${examples}add-header.wat`, '--request', req);
    expect(r.code).toBe(1);
    expect(r.err).toContain('path: must start with "/"; headers.b: expected a string or a list of strings');
  });

  it('needs --request', async () => {
    const r = await run('wasm', 'run', `${examples}add-header.wat`);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--request REQ.json is required');
  });
});

describe('envext wasm bench', () => {
  it('prints requests/s, µs per lifecycle and host calls', async () => {
    const r = await run(
      'wasm',
      'bench',
      `${examples}add-header.wat`,
      '--request',
      `${examples}request.json`,
      '--iterations',
      '200',
      '--json',
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Record<string, unknown>;
    expect(report).toMatchObject({ iterations: 200, hostCallsPerLifecycle: 3, vmFailed: false });
    expect(report['requestsPerSec']).toEqual(expect.any(Number));
  });
});
