// `envext ext-proc serve` as a user runs it (from source through tsx, so it does not depend on a
// fresh build): serves an example over a Unix socket, answers health and metrics, drains and
// exits 0 on SIGTERM; bad flags exit 2, a missing handler exits 1 with a hint.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { program } from '../bin/commands.js';
import { runCli } from '../bin/dispatch.js';
import { resolveHandlerPath } from './cli.js';
import { ExtProcTestClient } from './testing/test-client.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'envext-xp-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function envext(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "const m = await import('./bin/main.ts'); process.exitCode = await m.main(process.argv.slice(1));",
      ...args,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exit };
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

describe('envext ext-proc serve', () => {
  it('serves an example on a Unix socket with metrics, then drains and exits 0 on SIGTERM', async () => {
    const sock = join(dir, 'x.sock');
    const p = envext([
      'ext-proc',
      'serve',
      '--uds',
      sock,
      '--handler',
      'ext-proc/examples/api-key-auth',
      '--metrics-port',
      '0',
      '--socket-mode',
      '0600',
    ]);
    await waitFor(() => /serving handler=/.test(p.out()), 60_000);
    expect(p.out()).toMatch(/listening address=unix:\/\/.*x\.sock mode=600/);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const port = /metrics url=http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(p.out())?.[1];
    const client = new ExtProcTestClient(`unix://${sock}`);
    const denied = await client.exchange({
      messageTimeoutMs: 10_000,
      request: { headers: { ':method': 'GET', ':path': '/' } },
    });
    expect(denied.immediateResponse?.status).toBe(401);
    const allowed = await client.exchange({
      messageTimeoutMs: 10_000,
      request: { headers: { ':method': 'GET', ':path': '/', 'x-api-key': 'demo-key-1' } },
    });
    expect(allowed.request?.headers).toContainEqual(['x-user', 'alice']);
    await client.close();
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^envext_ext_proc_immediate_responses_total\{status="401"\} 1$/m);
    expect(metrics).toMatch(/^process_cpu_user_seconds_total /m);
    const probe = envext([
      'ext-proc',
      'probe',
      `unix://${sock}`,
      '--header',
      'x-api-key: demo-key-2',
      '--path',
      '/items',
      '--message-timeout',
      '10000',
    ]);
    expect(await probe.exit).toBe(0);
    expect(probe.out()).toMatch(/outcome: completed\nrequest forwarded upstream:\n(.*\n)* {2}x-user: bob\n/);
    const hc = envext(['ext-proc', 'health', `unix://${sock}`]);
    expect(await hc.exit).toBe(0);
    expect(hc.out()).toBe('SERVING\n');
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.out()).toMatch(/draining/);
    expect(p.out()).toMatch(/stopped inFlightAtDrain=0 cancelled=0/);
  }, 180_000);

  it.each([
    {
      name: 'no address',
      args: ['--handler', 'x'],
      code: 2,
      msg: /give at least one --uds PATH or --listen HOST:PORT/,
    },
    { name: 'no handler', args: ['--uds', '/tmp/a.sock'], code: 2, msg: /--handler MODULE is required/ },
    {
      name: 'bad policy',
      args: ['--uds', '/tmp/a.sock', '--handler', 'x', '--on-timeout', 'maybe'],
      code: 2,
      msg: /--on-timeout maybe/,
    },
    {
      name: 'bad socket mode',
      args: ['--uds', '/tmp/a.sock', '--handler', 'x', '--socket-mode', '999'],
      code: 2,
      msg: /octal/,
    },
    {
      name: 'tls without tcp',
      args: ['--uds', '/tmp/a.sock', '--handler', 'x', '--tls-cert', 'c', '--tls-key', 'k'],
      code: 2,
      msg: /--listen/,
    },
    {
      name: 'missing handler module',
      args: ['--uds', join(dir, 'm.sock'), '--handler', 'no/such/handler'],
      code: 1,
      msg: /^error: handler module "no\/such\/handler" not found .*\(pass the path of a module whose default export is the handler object\)\n$/,
    },
  ])('$name → exit $code', async ({ args, code, msg }) => {
    // In process (the dispatcher is the same one bin/envext.js runs): spawning is slow on a busy machine.
    let err = '';
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => ((err += chunk.toString()), cb()) });
    const got = await runCli(program, ['ext-proc', 'serve', ...args], {
      stdout: sink,
      stderr: sink,
      signal: new AbortController().signal,
    });
    expect(got).toBe(code);
    expect(err).toMatch(msg);
  });
});

describe('resolveHandlerPath', () => {
  it.each(['ext-proc/examples/header-injection', 'ext-proc/examples/header-injection.ts'])('finds %s', (spec) => {
    expect(resolveHandlerPath(spec, root)).toBe(join(root, 'ext-proc/examples/header-injection.ts'));
  });
});
