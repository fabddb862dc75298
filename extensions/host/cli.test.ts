import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../bin/dispatch.js';
import { wasmCommands } from './cli.js';

const program = { root: { name: 'envext', summary: 'test', subcommands: [wasmCommands] }, version: 'test' };
const examples = new URL('../../examples/wasm/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'envext-wasm-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (c: Buffer) => o.push(c));
  err.on('data', (c: Buffer) => e.push(c));
  const code = await runCli(program, argv, { stdout: out, stderr: err });
  return { code, out: Buffer.concat(o).toString(), err: Buffer.concat(e).toString() };
}

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

  it('answers callouts from --callouts and shows a local reply', async () => {
    const wat = join(tmp, 'auth.wat');
    // Calls "authsvc" on request headers and pauses; on the answer, denies with 403 unless 200.
    writeFileSync(
      wat,
      `(module
        (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (import "env" "proxy_set_effective_context" (func $eff (param i32) (result i32)))
        (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
        (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 2)
        (global $heap (mut i32) (i32.const 65536))
        (global $stream (mut i32) (i32.const 0))
        (func (export "proxy_abi_version_0_2_1"))
        (func $st (param i32) (i32.store (i32.const 600) (local.get 0)))
        (func (export "malloc") (param $n i32) (result i32) (local $p i32)
          (local.set $p (global.get $heap)) (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
        (func (export "proxy_on_request_headers") (param $c i32) (param i32 i32) (result i32)
          (global.set $stream (local.get $c))
          (drop (call $call (i32.const 1024) (i32.const 7) (i32.const 1100) (i32.const 70) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 256)))
          (i32.const 1))
        (func (export "proxy_on_http_call_response") (param i32) (param i32) (param $h i32) (param i32) (param i32)
          ;; read the call's :status on the root context, then act on the stream
          (call $st (call $get (i32.const 6) (i32.const 1040) (i32.const 7) (i32.const 264) (i32.const 268)))
          (drop (call $eff (global.get $stream)))
          (if (i32.eqz (i32.load (i32.const 600)))
            (then (if (i32.eq (i32.load8_u (i32.load (i32.const 264))) (i32.const 50))
              (then (drop (call $cont (i32.const 0))) (return)))))
          (drop (call $reply (i32.const 403) (i32.const 1056) (i32.const 6) (i32.const 1064) (i32.const 7) (i32.const 0) (i32.const 0) (i32.const -1))))
        (data (i32.const 1024) "authsvc")
        (data (i32.const 1040) ":status")
        (data (i32.const 1056) "denied")
        (data (i32.const 1064) "go away")
        (data (i32.const 1100) "\\03\\00\\00\\00\\07\\00\\00\\00\\04\\00\\00\\00\\0a\\00\\00\\00\\04\\00\\00\\00\\05\\00\\00\\00\\06\\00\\00\\00:method\\00POST\\00:authority\\00auth\\00:path\\00/check\\00")
      )`,
    );
    const callouts = join(tmp, 'callouts.json');
    for (const [status, want] of [
      [200, 'request_headers:Continue (proxy_continue_stream)'],
      [500, 'response_headers:Continue'],
    ] as const) {
      writeFileSync(callouts, JSON.stringify({ authsvc: { status } }));
      const r = await run('wasm', 'run', wat, '--request', `${examples}request.json`, '--callouts', callouts, '--json');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as {
        actions: { phase: string; name: string }[];
        callouts: { cluster: string; answer: string }[];
        localReply?: { statusCode: number; details: string; body: string };
        request: { forwarded: boolean };
      };
      expect(out.callouts).toEqual([expect.objectContaining({ cluster: 'authsvc', answer: `answered ${status}` })]);
      expect(
        out.actions.map((a) => `${a.phase}:${a.name}`),
        JSON.stringify(out),
      ).toContain(want);
      if (status === 200) expect(out.request.forwarded).toBe(true);
      else expect(out.localReply).toMatchObject({ statusCode: 403, details: 'denied', body: 'go away' });
    }
    // Without an answer the callout fails (reset) and the filter denies.
    const r = await run('wasm', 'run', wat, '--request', `${examples}request.json`);
    expect(r.out).toContain('failed: cluster not in --callouts (reset)');
    expect(r.out).toContain('local reply: 403 (denied)');
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
