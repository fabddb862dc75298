/**
 * The module cache against real peers: a local HTTPS server (openssl-made certificate) and the
 * real CNCF registry fixture (test/fixtures/registry.ts) in plain and basic-auth+TLS modes.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, get as httpsGet, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { pushWasmModule, staticCredentials } from '../../oci/index.js';
import { startFaultProxy, type FaultProxy } from '../../test/fixtures/fault-proxy.js';
import { startRegistry, type RegistryFixture } from '../../test/fixtures/registry.js';
import { makeWasmModule } from '../../test/fixtures/wasm-module.js';
import type { WasmModuleRequest } from '../gatewayapi/wasm-modules.js';
import { WasmModuleCache, type WasmCacheOptions } from './module-cache.js';
import { ModuleServer } from './server.js';

const quiet = createLogger({ level: 'silent' });
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let tmp: string;
let https: {
  server: Server;
  url: string;
  ca: string;
  hits: Map<string, number>;
  files: Map<string, { status: number; body: Buffer }>;
};
const moduleA = makeWasmModule(2048, 'a');
const moduleB = makeWasmModule(4096, 'b');

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'envext-wasm-cache-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'k.pem',
      '-out',
      'c.pem',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { cwd: tmp, stdio: 'ignore' },
  );
  const files = new Map<string, { status: number; body: Buffer }>();
  const hits = new Map<string, number>();
  const server = createServer(
    { key: readFileSync(join(tmp, 'k.pem')), cert: readFileSync(join(tmp, 'c.pem')) },
    (req, res) => {
      hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
      const f = files.get(req.url ?? '');
      if (f === undefined) res.writeHead(404).end();
      else res.writeHead(f.status, { 'content-type': 'application/wasm' }).end(f.body);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  https = {
    server,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ca: readFileSync(join(tmp, 'c.pem'), 'utf8'),
    hits,
    files,
  };
  files.set('/a.wasm', { status: 200, body: moduleA });
  files.set('/b.wasm', { status: 200, body: moduleB });
  files.set('/not-wasm', { status: 200, body: Buffer.from('<html>hello</html>') });
  files.set('/broken.wasm', { status: 500, body: Buffer.alloc(0) });
});

afterAll(async () => {
  https.server.closeAllConnections();
  await new Promise((r) => https.server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

let clock: number;
let cacheDir: string;
const servers: ModuleServer[] = [];

beforeEach(() => {
  clock = Date.parse('2026-11-22T00:00:00Z');
  cacheDir = mkdtempSync(join(tmp, 'cache-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function cacheWithServer(
  opts: Partial<WasmCacheOptions> = {},
): Promise<{ cache: WasmModuleCache; server: ModuleServer; base: string }> {
  // The serving base URL needs the port, so start the server with a cache that reads it late.
  let base = '';
  const cache = new WasmModuleCache({
    dir: cacheDir,
    get servingBaseUrl() {
      return base;
    },
    secret: Buffer.from('test-secret'),
    now: () => clock,
    log: quiet,
    httpRetries: 1,
    httpBackoffMs: 5,
    ...opts,
  });
  const server = new ModuleServer({ cache, port: 0, log: quiet });
  servers.push(server);
  base = `http://127.0.0.1:${await server.listen()}`;
  return { cache, server, base };
}

function http(
  url: string,
  extra: Partial<Extract<WasmModuleRequest['source'], { type: 'HTTP' }>> = {},
  policy = 'p',
): WasmModuleRequest {
  return {
    source: { type: 'HTTP', url, caCertificate: https.ca, ...extra },
    policy: { namespace: 'default', name: policy, index: 0, resourceVersion: '1' },
    pullPolicy: 'IfNotPresent',
  };
}

describe('HTTPS sources', () => {
  it('fetches, verifies, stores and serves at an unguessable path', async () => {
    const { cache } = await cacheWithServer();
    const r = await cache.resolve(http(`${https.url}/a.wasm`, { sha256: sha(moduleA) }));
    expect(r).toEqual({
      ok: true,
      servingUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{43}\.wasm$/) as string,
      sha256: sha(moduleA),
    });
    if (!r.ok) return;
    const res = await fetch(r.servingUrl);
    expect(res.headers.get('content-type')).toBe('application/wasm');
    expect(Buffer.from(await res.arrayBuffer()).equals(moduleA)).toBe(true);
    // Stored as <dir>/<sha256(url)>/<sha256(module)>.wasm.
    expect(readdirSync(join(cacheDir, sha(Buffer.from(`${https.url}/a.wasm`))))).toEqual([`${sha(moduleA)}.wasm`]);
    // A second resolve is a cache hit: no download.
    const before = https.hits.get('/a.wasm');
    expect(await cache.resolve(http(`${https.url}/a.wasm`))).toEqual(r);
    expect(https.hits.get('/a.wasm')).toBe(before);
  });

  it.each([
    {
      name: 'checksum mismatch',
      path: '/a.wasm',
      sha256: 'ab'.repeat(32),
      error:
        /^module downloaded from https:\/\/127\.0\.0\.1:\d+\/a\.wasm has checksum [0-9a-f]{64}, which does not match: (ab){32}$/,
    },
    {
      name: 'not a Wasm binary',
      path: '/not-wasm',
      error: /^fetched Wasm binary from https:\/\/127\.0\.0\.1:\d+\/not-wasm is invalid$/,
    },
    { name: 'HTTP 404', path: '/missing.wasm', error: /returned HTTP 404/ },
    { name: 'HTTP 500 after retries', path: '/broken.wasm', error: /returned HTTP 500/ },
  ])('reports $name as a resolution error', async ({ path, sha256, error }) => {
    const { cache } = await cacheWithServer();
    const r = await cache.resolve(http(`${https.url}${path}`, sha256 === undefined ? {} : { sha256 }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(error);
  });

  it('refuses a module over the size limit', async () => {
    const { cache } = await cacheWithServer({ maxModuleBytes: 1000 });
    const r = await cache.resolve(http(`${https.url}/a.wasm`));
    expect(r).toMatchObject({
      ok: false,
      message: expect.stringMatching(
        /https:\/\/127\.0\.0\.1:\d+\/a\.wasm (is 2048 bytes, )?(is )?over the 1000-byte limit/,
      ) as string,
    });
  });

  it('refuses a server certificate it was not told to trust', async () => {
    const { cache } = await cacheWithServer();
    const req = http(`${https.url}/a.wasm`);
    const { caCertificate: _ca, ...untrusted } = req.source as Extract<WasmModuleRequest['source'], { type: 'HTTP' }>;
    const r = await cache.resolve({ ...req, source: untrusted });
    expect(r).toMatchObject({ ok: false, message: expect.stringMatching(/self.signed|certificate/) as string });
  });

  it('backs off per URL and fails fast after the failure limit', async () => {
    const { cache } = await cacheWithServer({ failureLimit: 3, httpRetries: 0, failureBackoffMs: 1000 });
    const url = `${https.url}/broken.wasm`;
    https.hits.set('/broken.wasm', 0);
    await cache.resolve(http(url));
    await cache.resolve(http(url)); // within the backoff: no request
    expect(https.hits.get('/broken.wasm')).toBe(1);
    clock += 1000;
    await cache.resolve(http(url));
    clock += 2000;
    await cache.resolve(http(url));
    expect(https.hits.get('/broken.wasm')).toBe(3);
    clock += 60_000;
    expect(await cache.resolve(http(url))).toEqual({
      ok: false,
      message: `failed to get Wasm module ${url} after 3 attempts`,
    });
    expect(https.hits.get('/broken.wasm')).toBe(3);
    clock += 3_600_001; // the record expires
    await cache.resolve(http(url));
    expect(https.hits.get('/broken.wasm')).toBe(4);
  });

  it('re-pulls on Always when the policy changed, and keeps serving the last good module when that fails', async () => {
    const { cache } = await cacheWithServer({ httpRetries: 0 });
    const url = `${https.url}/swap.wasm`;
    https.files.set('/swap.wasm', { status: 200, body: moduleA });
    const always = (rv: string): WasmModuleRequest => ({
      ...http(url),
      pullPolicy: 'Always',
      policy: { namespace: 'default', name: 'p', index: 0, resourceVersion: rv },
    });
    expect(await cache.resolve(always('1'))).toMatchObject({ ok: true, sha256: sha(moduleA) });
    https.files.set('/swap.wasm', { status: 200, body: moduleB });
    expect(await cache.resolve(always('1'))).toMatchObject({ sha256: sha(moduleA) }); // same policy version: no re-pull
    const b = await cache.resolve(always('2'));
    expect(b).toMatchObject({ ok: true, sha256: sha(moduleB) });
    https.files.set('/swap.wasm', { status: 500, body: Buffer.alloc(0) });
    const kept = await cache.resolve(always('3'));
    expect(kept).toEqual(b);
    if (kept.ok) expect(Buffer.from(await (await fetch(kept.servingUrl)).arrayBuffer()).equals(moduleB)).toBe(true);
  });
});

describe('limits and serving', () => {
  it('enforces the total cap and purges modules unused for 24 h', async () => {
    const { cache } = await cacheWithServer({ maxBytes: 5000 });
    const a = await cache.resolve(http(`${https.url}/a.wasm`));
    expect(a.ok).toBe(true);
    expect(await cache.resolve(http(`${https.url}/b.wasm`))).toEqual({
      ok: false,
      message: 'wasm cache size exceeded the limit: 5000',
    });
    expect(cache.totalBytes()).toBe(moduleA.length);

    clock += 25 * 3_600_000;
    expect(await cache.purge()).toEqual([`${https.url}/a.wasm`]);
    expect(cache.totalBytes()).toBe(0);
    if (a.ok) expect((await fetch(a.servingUrl)).status).toBe(404);
    expect(await cache.resolve(http(`${https.url}/b.wasm`))).toMatchObject({ ok: true });
  });

  it('keeps modules that were served recently', async () => {
    const { cache } = await cacheWithServer();
    const a = await cache.resolve(http(`${https.url}/a.wasm`));
    clock += 23 * 3_600_000;
    if (a.ok) expect((await fetch(a.servingUrl)).status).toBe(200); // Envoy fetched it: touched
    clock += 2 * 3_600_000;
    expect(await cache.purge()).toEqual([]);
  });

  it('answers 404 to every path it did not hand out', async () => {
    const { cache, base, server } = await cacheWithServer();
    const a = await cache.resolve(http(`${https.url}/a.wasm`));
    if (!a.ok) throw new Error(a.message);
    const path = new URL(a.servingUrl).pathname;
    const guesses = [
      '/',
      `/${sha(Buffer.from(`${https.url}/a.wasm`))}.wasm`, // sha256 of the URL without the secret
      `/${createHash('sha256').update(`${https.url}/a.wasm`).digest('base64url')}.wasm`,
      `/${randomBytes(32).toString('base64url')}.wasm`,
      `${path}x`,
      path.replace('.wasm', ''),
      `/../${cacheDir}/index.json`,
    ];
    for (const g of guesses) expect({ g, status: (await fetch(base + g)).status }).toEqual({ g, status: 404 });
    expect((await fetch(base + path, { method: 'POST' })).status).toBe(404);
    expect((await fetch(base + path)).status).toBe(200);
    expect(server.served.get(404)).toBe(guesses.length + 1);
    // Another cache with another secret gives another path for the same URL.
    const other = new WasmModuleCache({
      dir: cacheDir,
      servingBaseUrl: base,
      secret: Buffer.from('other'),
      log: quiet,
    });
    expect(other.servingPath(`${https.url}/a.wasm`)).not.toBe(path);
  });

  it('serves over HTTPS when given a certificate', async () => {
    let base = '';
    const cache = new WasmModuleCache({
      dir: cacheDir,
      get servingBaseUrl() {
        return base;
      },
      secret: Buffer.from('s'),
      log: quiet,
    });
    const server = new ModuleServer({
      cache,
      port: 0,
      tls: { cert: readFileSync(join(tmp, 'c.pem')), key: readFileSync(join(tmp, 'k.pem')) },
      log: quiet,
    });
    servers.push(server);
    base = `https://127.0.0.1:${await server.listen()}`;
    const r = await cache.resolve(http(`${https.url}/a.wasm`));
    if (!r.ok) throw new Error(r.message);
    expect(r.servingUrl.startsWith('https://')).toBe(true);
    const body = await new Promise<Buffer>((resolve, reject) => {
      const req = httpsGet(r.servingUrl, { ca: https.ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
    });
    expect(body.equals(moduleA)).toBe(true);
  });

  it('survives a restart: the index maps URLs to stored modules', async () => {
    const { cache } = await cacheWithServer();
    const a = await cache.resolve(http(`${https.url}/a.wasm`));
    const again = new WasmModuleCache({
      dir: cacheDir,
      servingBaseUrl: 'http://x',
      secret: Buffer.from('test-secret'),
      log: quiet,
      now: () => clock,
    });
    const hitsBefore = https.hits.get('/a.wasm');
    const b = await again.resolve(http(`${https.url}/a.wasm`));
    expect(https.hits.get('/a.wasm')).toBe(hitsBefore);
    expect(b.ok && a.ok && new URL(b.servingUrl).pathname === new URL(a.servingUrl).pathname).toBe(true);
  });
});

describe.each(['plain', 'basic'] as const)('OCI sources (registry in %s mode)', (mode) => {
  let reg: RegistryFixture;
  let digest: string;
  const secretFor = (user: string, password: string): string =>
    JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
  const image = (
    extra: Partial<Extract<WasmModuleRequest['source'], { type: 'Image' }>> = {},
    name = 'p',
  ): WasmModuleRequest => ({
    source: {
      type: 'Image',
      url: `oci://${reg.host}/filters/headers:v1`,
      ...(reg.caPem === undefined ? {} : { caCertificate: reg.caPem }),
      ...extra,
    },
    policy: { namespace: 'default', name, index: 0, resourceVersion: '1' },
    pullPolicy: 'IfNotPresent',
  });

  beforeAll(async () => {
    reg = await startRegistry({ mode });
    const pushed = await pushWasmModule(`${reg.host}/filters/headers:v1`, moduleA, {
      ...(mode === 'basic' ? { credentials: staticCredentials({ username: 'pusher', password: 'push-secret' }) } : {}),
      ...(reg.caPem === undefined ? {} : { caCerts: [reg.caPem] }),
    });
    digest = pushed.manifestDigest.replace('sha256:', '');
  }, 60_000);
  afterAll(async () => reg.stop());

  it('pulls, verifies the manifest digest and serves the module', async () => {
    const { cache } = await cacheWithServer();
    const secret =
      mode === 'basic' ? { dockerConfigJson: secretFor('reader', 'read-secret'), pullSecret: 'default/regcred' } : {};
    const r = await cache.resolve(image({ sha256: digest, ...secret }));
    expect(r).toMatchObject({ ok: true, sha256: sha(moduleA) });
    if (r.ok) expect(Buffer.from(await (await fetch(r.servingUrl)).arrayBuffer()).equals(moduleA)).toBe(true);
  });

  it('rejects a manifest digest mismatch', async () => {
    const { cache } = await cacheWithServer();
    const secret = mode === 'basic' ? { dockerConfigJson: secretFor('reader', 'read-secret') } : {};
    const r = await cache.resolve(image({ sha256: 'cd'.repeat(32), ...secret }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/sha256:(cd){32}/);
  });

  if (mode === 'basic') {
    it('private image: the right secret pulls; no secret or a wrong one cannot ride on the cached copy', async () => {
      const { cache } = await cacheWithServer();
      const good = await cache.resolve(
        image({ dockerConfigJson: secretFor('reader', 'read-secret'), pullSecret: 'default/regcred' }, 'owner'),
      );
      expect(good).toMatchObject({ ok: true, sha256: sha(moduleA) });
      const none = await cache.resolve(image({}, 'freeloader'));
      expect(none).toMatchObject({
        ok: false,
        message: expect.stringMatching(/^not allowed to pull oci:\/\/.* without a pull secret: /) as string,
      });
      const wrong = await cache.resolve(
        image({ dockerConfigJson: secretFor('reader', 'wrong'), pullSecret: 'default/stolen' }, 'guesser'),
      );
      expect(wrong).toMatchObject({
        ok: false,
        message: expect.stringMatching(/with secret default\/stolen/) as string,
      });
      // Another valid secret passes the re-check and shares the cached module.
      const other = await cache.resolve(
        image({ dockerConfigJson: secretFor('pusher', 'push-secret'), pullSecret: 'default/ci' }, 'ci'),
      );
      expect(other).toEqual(good);
    });

    it('private image without a secret fails to pull with a clear error', async () => {
      const { cache } = await cacheWithServer();
      const r = await cache.resolve(image());
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toMatch(/unauthori[sz]ed|401|credentials/i);
    });
  }
});

describe('OCI pull policy Always (registry behind a request-logging proxy)', () => {
  let reg: RegistryFixture;
  let proxy: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'plain', relativeUrls: true });
    proxy = await startFaultProxy(reg.url);
    await pushWasmModule(`${proxy.host}/filters/live:latest`, moduleA);
  }, 60_000);
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  const always = (rv: string): WasmModuleRequest => ({
    source: { type: 'Image', url: `oci://${proxy.host}/filters/live:latest` },
    policy: { namespace: 'default', name: 'live', index: 0, resourceVersion: rv },
    pullPolicy: 'Always',
  });
  const blobGets = (): number => proxy.log.filter((l) => l.startsWith('GET ') && l.includes('/blobs/')).length;

  it('re-checks with one HEAD when the policy changes, downloads only a new digest, keeps the last good on failure', async () => {
    const { cache } = await cacheWithServer();
    expect(await cache.resolve(always('1'))).toMatchObject({ ok: true, sha256: sha(moduleA) });
    const gets = blobGets();
    const heads = (): number =>
      proxy.log.filter((l) => l.startsWith('HEAD ') && l.includes('/manifests/latest')).length;
    const headsBefore = heads();
    expect(await cache.resolve(always('2'))).toMatchObject({ ok: true, sha256: sha(moduleA) });
    expect(blobGets()).toBe(gets);
    expect(heads()).toBe(headsBefore + 1);

    await pushWasmModule(`${proxy.host}/filters/live:latest`, moduleB);
    expect(await cache.resolve(always('3'))).toMatchObject({ ok: true, sha256: sha(moduleB) });
    expect(blobGets()).toBeGreaterThan(gets);

    proxy.setRule(() => ({ status: 503, body: '{}' }));
    try {
      expect(await cache.resolve(always('4'))).toMatchObject({ ok: true, sha256: sha(moduleB) });
    } finally {
      proxy.setRule(undefined);
    }
  });
});
