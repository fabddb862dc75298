// Operations: grpc.health.v1 status transitions, the metrics endpoint, Unix socket handling
// (permissions, stale files, path problems), TCP with TLS and mTLS, UDS and TCP at once, and
// graceful drain under load with zero failed in-flight requests.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { clientConstructor, type ProtoObject } from '../../proto/index.js';
import { RawStreamClient } from '../testing/raw-stream.js';
import { ExtProcTestClient } from '../testing/test-client.js';
import { createExtProcServer, ExtProcError, type ExtProcServer, type ExtProcServerOptions } from './server.js';
import type { ExtProcHandler } from './types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Polls `cond` every 5 ms for at most `ms`; a bounded wait, not a timing assertion. */
async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await sleep(5)) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
  }
}
const GET = { ':method': 'GET', ':path': '/' };
const quiet = createLogger({ level: 'silent' });

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'envext-xp-ops-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const servers: ExtProcServer[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  for (const s of servers.splice(0)) await s.close();
});
function server<S>(options: Partial<ExtProcServerOptions<S>> = {}): ExtProcServer {
  const s = createExtProcServer({ handler: {}, logger: quiet, ...options });
  servers.push(s);
  return s;
}
let n = 0;
const sock = (): string => join(dir, `s${n++}.sock`);

type HealthClient = grpc.Client & {
  check(req: ProtoObject, cb: (e: grpc.ServiceError | null, r?: ProtoObject) => void): void;
  watch(req: ProtoObject): grpc.ClientReadableStream<ProtoObject>;
};
function health(address: string): HealthClient {
  const Ctor = clientConstructor('grpc.health.v1.Health');
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
  closers.push(() => c.close());
  return c;
}
const check = (c: HealthClient, service: string): Promise<{ status?: unknown; code?: number }> =>
  new Promise((resolve) =>
    c.check({ service }, (e, r) => resolve(e === null ? { status: r?.['status'] } : { code: e.code })),
  );

describe('grpc.health.v1', () => {
  it('answers SERVING for the server and the ext_proc service, NOT_FOUND otherwise, NOT_SERVING on drain', async () => {
    const s = server();
    const address = await s.listen(`unix://${sock()}`);
    const c = health(address);
    expect(await check(c, '')).toEqual({ status: 'SERVING' });
    expect(await check(c, 'envoy.service.ext_proc.v3.ExternalProcessor')).toEqual({ status: 'SERVING' });
    expect(await check(c, 'nope')).toEqual({ code: grpc.status.NOT_FOUND });

    const seen: unknown[] = [];
    const w = c.watch({ service: '' });
    const ended = new Promise<void>((r) => {
      w.on('data', (m: ProtoObject) => seen.push(m['status']));
      w.on('error', () => r());
      w.on('end', () => r());
    });
    await sleep(50);
    await s.drain(1000);
    await ended;
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    expect(s.health.status()).toBe('NOT_SERVING');
  });
});

describe('metrics endpoint', () => {
  it('serves Prometheus text with streams, messages by phase, handler latency, immediate responses; /healthz follows health', async () => {
    const s = server({
      handler: {
        onRequestHeaders: (_c, { headers }) => (headers.has('x-deny') ? { immediate: { status: 403 } } : undefined),
      },
    });
    const address = await s.listen(`unix://${sock()}`);
    const port = await s.serveMetrics(0);
    const client = new ExtProcTestClient(address);
    closers.push(() => void client.close());
    await client.exchange({ request: { headers: GET } });
    await client.exchange({ request: { headers: { ...GET, 'x-deny': '1' } } });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/^envext_ext_proc_streams_total 2$/m);
    expect(text).toMatch(/^envext_ext_proc_messages_total\{phase="request_headers"\} 2$/m);
    expect(text).toMatch(/^envext_ext_proc_messages_total\{phase="response_headers"\} 1$/m);
    expect(text).toMatch(/^envext_ext_proc_handler_duration_seconds_count\{phase="request_headers"\} 2$/m);
    expect(text).toMatch(/^envext_ext_proc_immediate_responses_total\{status="403"\} 1$/m);
    expect(text).toMatch(/^envext_ext_proc_active_streams 0$/m);
    expect(text).toMatch(/^envext_ext_proc_streams_ended_total\{how="ok"\} 2$/m);
    const hz = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect([hz.status, await hz.text()]).toEqual([200, 'SERVING\n']);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    s.health.setAll('NOT_SERVING');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(503);
  });
});

describe('Unix sockets', () => {
  it.each([
    { name: 'default 0660', mode: undefined, want: 0o660 },
    { name: '0600', mode: 0o600, want: 0o600 },
    { name: '0666', mode: 0o666, want: 0o666 },
  ])('socket mode $name', async ({ mode, want }) => {
    const p = sock();
    await server().listen(`unix://${p}`, mode === undefined ? {} : { socketMode: mode });
    expect(statSync(p).mode & 0o777).toBe(want);
  });

  it('removes a stale socket left by a killed process, and serves', async () => {
    const p = sock();
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(p)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await new Promise((r) => child.on('exit', r));
    expect(statSync(p).isSocket()).toBe(true);
    const s = server({ handler: { onRequestHeaders: () => ({ headers: { set: { 'x-ok': '1' } } }) } });
    const address = await s.listen(`unix://${p}`);
    const client = new ExtProcTestClient(address);
    closers.push(() => void client.close());
    const r = await client.exchange({ request: { headers: GET } });
    expect(r.request?.headers).toContainEqual(['x-ok', '1']);
  });

  it('removes its socket file on close', async () => {
    const p = sock();
    const s = server();
    await s.listen(`unix://${p}`);
    await s.close();
    expect(existsSync(p)).toBe(false);
  });

  const errorCases = [
    {
      name: 'a regular file is never deleted',
      setup: (p: string) => writeFileSync(p, 'keep me'),
      code: 'EXT_PROC_SOCKET_PATH_IN_USE',
      after: (p: string) => expect(readFileSync(p, 'utf8')).toBe('keep me'),
    },
    {
      name: 'a path over 107 bytes',
      path: () => join(dir, 'x'.repeat(120) + '.sock'),
      code: 'EXT_PROC_SOCKET_PATH_TOO_LONG',
    },
    { name: 'a missing directory', path: () => join(dir, 'no', 'such', 'dir', 's.sock'), code: 'EXT_PROC_SOCKET_DIR' },
    {
      name: 'a directory the process may not write',
      path: () => '/proc/self/envext.sock',
      code: 'EXT_PROC_SOCKET_PERMISSION',
    },
  ];
  it.each(errorCases)('clear error for $name', async ({ setup, path, code, after }) => {
    const p = path?.() ?? sock();
    setup?.(p);
    const err = await server()
      .listen(`unix://${p}`)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ExtProcError);
    expect((err as ExtProcError).code).toBe(code);
    expect((err as ExtProcError).hint).toBeTruthy();
    after?.(p);
  });

  it('refuses a socket another process is listening on', async () => {
    const p = sock();
    const other = createServer();
    await new Promise<void>((r) => other.listen(p, () => r()));
    closers.push(() => other.close());
    const err = await server()
      .listen(`unix://${p}`)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as ExtProcError).code).toBe('EXT_PROC_ADDRESS_IN_USE');
  });

  it('TLS on a Unix socket is a usage error', async () => {
    const err = await server()
      .listen(`unix://${sock()}`, { tls: { cert: 'a', key: 'b' } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as ExtProcError).code).toBe('EXT_PROC_BAD_OPTION');
  });
});

describe('listen addresses', () => {
  it('serves the same handler on a Unix socket and TCP at once', async () => {
    const s = server({ handler: { onRequestHeaders: () => ({ headers: { set: { 'x-via': 'both' } } }) } });
    const a = await s.listen(`unix://${sock()}`);
    const b = await s.listen('127.0.0.1:0');
    expect(b).toMatch(/^127\.0\.0\.1:\d+$/);
    for (const address of [a, b]) {
      const c = new ExtProcTestClient(address);
      closers.push(() => void c.close());
      const r = await c.exchange({ request: { headers: GET } });
      expect(r.request?.headers).toContainEqual(['x-via', 'both']);
    }
  });

  it.each(['nonsense', 'host:99999', 'unix://'])('rejects %s with EXT_PROC_BAD_ADDRESS', async (a) => {
    const err = await server()
      .listen(a)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as ExtProcError).code).toBe('EXT_PROC_BAD_ADDRESS');
  });
});

describe('grpc-js options', () => {
  // Channelz records calls only for a server registered with it; GetServer answers NOT_FOUND otherwise.
  const registered = (s: ExtProcServer): Promise<boolean> =>
    new Promise((resolve) => {
      const handlers = grpc.getChannelzHandlers() as unknown as Record<
        string,
        (call: { request: { server_id: string } }, cb: (e: { code?: number } | null) => void) => void
      >;
      handlers['GetServer']?.({ request: { server_id: String(s.grpc.getChannelzRef().id) } }, (e) =>
        resolve(e === null),
      );
    });

  it.each([
    ['off by default (envext serves no channelz service)', undefined, false],
    ["on again with grpcOptions 'grpc.enable_channelz': 1", { 'grpc.enable_channelz': 1 }, true],
  ] as const)('channelz is %s', async (_name, grpcOptions, expected) => {
    const s = server(grpcOptions === undefined ? {} : { grpcOptions });
    await s.listen('127.0.0.1:0');
    expect(await registered(s)).toBe(expected);
  });
});

describe('TLS and mTLS', () => {
  let pki = '';
  beforeAll(() => {
    pki = mkdtempSync(join(tmpdir(), 'envext-xp-pki-'));
    const sh = (args: string[]): void => void execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' });
    sh([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=envext test CA',
    ]);
    writeFileSync(join(pki, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      sh([
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${name}`,
      ]);
      sh([
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        'san.ext',
      ]);
    }
  });
  afterAll(() => rmSync(pki, { recursive: true, force: true }));
  const f = (name: string): string => join(pki, name);
  const rd = (name: string): Buffer => readFileSync(f(name));

  it('TLS: a client trusting the CA gets through', async () => {
    const s = server({ handler: { onRequestHeaders: () => ({ headers: { set: { 'x-tls': '1' } } }) } });
    const address = await s.listen('127.0.0.1:0', { tls: { cert: f('server.crt'), key: f('server.key') } });
    const c = new ExtProcTestClient(address, grpc.credentials.createSsl(rd('ca.crt')));
    closers.push(() => void c.close());
    const r = await c.exchange({ request: { headers: GET } });
    expect(r.request?.headers).toContainEqual(['x-tls', '1']);
  });

  it('mTLS: a client certificate is required', async () => {
    const s = server();
    const address = await s.listen('127.0.0.1:0', {
      tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt') },
    });
    const good = new ExtProcTestClient(
      address,
      grpc.credentials.createSsl(rd('ca.crt'), rd('client.key'), rd('client.crt')),
    );
    const bad = new RawStreamClient(address, grpc.credentials.createSsl(rd('ca.crt')));
    closers.push(
      () => void good.close(),
      () => bad.close(),
    );
    expect((await good.exchange({ request: { headers: GET } })).outcome).toBe('completed');
    const r = await bad.run([{ request_headers: { headers: { headers: [] } } }]);
    expect(r.status.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('names the unreadable file', async () => {
    const err = await server()
      .listen('127.0.0.1:0', { tls: { cert: f('missing.crt'), key: f('server.key') } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as ExtProcError).code).toBe('EXT_PROC_TLS_FILE');
    expect((err as ExtProcError).message).toContain('missing.crt');
  });
});

describe('graceful drain', () => {
  it('under load: NOT_SERVING, new streams refused, every in-flight request completes, zero failures', async () => {
    // The 40 requests are held inside their request-headers handler until the drain has begun
    // (a gate, not a sleep, so a loaded machine cannot let some finish before the drain or start
    // after it); then each still does async work on both phases while the server drains.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => (open = r));
    const handler: ExtProcHandler = {
      async onRequestHeaders() {
        await gate;
        await sleep(20);
        return { headers: { set: { 'x-drained': 'ok' } } };
      },
      async onResponseHeaders() {
        await sleep(20);
        return undefined;
      },
    };
    // Envoy's message_timeout is configurable; a generous one keeps a slow machine from turning
    // a held request into a timeout, which is not what this test is about.
    const s = server({ handler, messageTimeoutMs: 30_000 });
    const uds = await s.listen(`unix://${sock()}`);
    const tcp = await s.listen('127.0.0.1:0');
    const clients = [new ExtProcTestClient(uds), new ExtProcTestClient(tcp)];
    closers.push(...clients.map((c) => () => void c.close()));
    const inflight = Array.from({ length: 40 }, (_, i) =>
      (clients[i % 2] as ExtProcTestClient).exchange({ messageTimeoutMs: 30_000, request: { headers: GET } }),
    );
    await waitUntil(() => s.activeStreams === 40, 20_000);
    const drained = s.drain(20_000);
    expect(s.health.status()).toBe('NOT_SERVING');
    const late = await new ExtProcTestClient(tcp).exchange({ request: { headers: GET } });
    expect(late.grpcStatus?.code).toBe(grpc.status.UNAVAILABLE);
    expect(s.activeStreams).toBe(40); // nothing in flight was cut
    open();
    const results = await Promise.all(inflight);
    expect(results.map((r) => r.outcome)).toEqual(Array(40).fill('completed'));
    expect(results.every((r) => r.request?.headers.some(([k, v]) => k === 'x-drained' && v === 'ok'))).toBe(true);
    expect(await drained).toEqual({ inFlightAtStart: 40, forced: 0 });
  });

  it('cancels what is still open when the grace period is over', async () => {
    const ends: string[] = [];
    const s = server({
      handlerTimeoutMs: 0,
      handler: {
        onRequestHeaders: (ctx) =>
          new Promise<undefined>((r) => ctx.signal.addEventListener('abort', () => r(undefined))),
        onStreamEnd: (_c, how) => void ends.push(how),
      },
    });
    const address = await s.listen(`unix://${sock()}`);
    const c = new ExtProcTestClient(address);
    closers.push(() => void c.close());
    const pending = c.exchange({ messageTimeoutMs: 5000, request: { headers: GET } });
    await sleep(50);
    expect(await s.drain(100)).toEqual({ inFlightAtStart: 1, forced: 1 });
    const r = await pending;
    expect(r.outcome).toBe('local_reply');
    await sleep(20);
    expect(ends).toEqual(['cancelled']);
  });
});
