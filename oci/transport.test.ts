/**
 * Transport behaviour against the real registry: chunked uploads with Content-Range, HEAD skips,
 * cross-repository mounts with the 202 fallback, redirects that must not carry Authorization to
 * another host, TLS trust, token caching and expiry, OAuth2 identity tokens, tag listing.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdtemp, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../test/fixtures/fault-proxy.js';
import { startRegistry, type RegistryFixture } from '../test/fixtures/registry.js';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { Authenticator } from './auth.js';
import { ModuleCache } from './cache.js';
import { parseChallenges } from './challenge.js';
import { staticCredentials } from './credentials.js';
import { sha256Digest } from './digest.js';
import { isOciError } from './errors.js';
import { pullWasmModule } from './pull.js';
import { ModuleFile, openModuleFile, pushWasmModule, readModuleFile } from './push.js';
import { RegistryClient, type IncomingBlob } from './registry-client.js';

const run = promisify(execFile);

const module = makeWasmModule(40_000, 'transport');

describe('uploads (plain registry behind a recording proxy)', () => {
  let reg: RegistryFixture;
  let proxy: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'plain', relativeUrls: true });
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  it('uploads above the threshold in PATCH chunks with Content-Range, then skips existing blobs', async () => {
    const ranges: string[] = [];
    proxy.setRule((r) => {
      if (r.method === 'PATCH') ranges.push(String(r.headers['content-range']));
      return undefined;
    });
    const client = new RegistryClient({ chunkThreshold: 10_000, chunkSize: 16_384 });
    try {
      const first = await pushWasmModule(`${proxy.host}/up/chunked:v1`, module, { client });
      expect(first.blobs.map((b) => b.result)).toEqual(['uploaded', 'uploaded']);
      expect(ranges).toEqual(['0-16383', '16384-32767', '32768-39999']);
      const mark = proxy.log.length;
      const again = await pushWasmModule(`${proxy.host}/up/chunked:v2`, module, { client });
      expect(again.blobs.map((b) => b.result)).toEqual(['exists', 'exists']);
      expect(proxy.log.slice(mark).filter((l) => /^(POST|PATCH|PUT) .*blobs/.test(l))).toEqual([]);
      const pulled = await pullWasmModule(`${proxy.host}/up/chunked:v1`, { client });
      expect(pulled.bytes.equals(module)).toBe(true);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });

  it.each([{ input: 'bytes' }, { input: 'file' }])(
    'streams large chunks and replays one after a 503 ($input)',
    async ({ input }) => {
      const big = makeWasmModule(5 * 1024 * 1024, `big-${input}`);
      let failed = false;
      const lengths: string[] = [];
      proxy.setRule((r) => {
        if (r.method !== 'PATCH') return undefined;
        lengths.push(String(r.headers['content-length']));
        if (!failed) {
          failed = true;
          return { status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}' };
        }
        return undefined;
      });
      const client = new RegistryClient({
        chunkThreshold: 1024 * 1024,
        chunkSize: 3 * 1024 * 1024,
        retryBaseMs: 1,
        retryMaxMs: 5,
      });
      const dir = await mkdtemp(join(tmpdir(), 'envext-oci-503-'));
      try {
        await writeFile(join(dir, 'big.wasm'), big);
        // A file is uploaded while it is read: the replay must send the same bytes again.
        const source = input === 'file' ? await openModuleFile(join(dir, 'big.wasm')) : big;
        await pushWasmModule(`${proxy.host}/up/big-${input}:v1`, source, { client });
        // The first 3 MiB chunk twice (503, then the replay), then the 2 MiB rest; Content-Length kept.
        expect(lengths).toEqual(['3145728', '3145728', '2097152']);
        expect((await pullWasmModule(`${proxy.host}/up/big-${input}:v1`, { client })).bytes.equals(big)).toBe(true);
      } finally {
        proxy.setRule(undefined);
        await client.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  it('mounts from another repository, and falls back to an upload on 202', async () => {
    const client = new RegistryClient();
    try {
      await pushWasmModule(`${proxy.host}/up/source:v1`, module, { client });
      const mounted = await pushWasmModule(`${proxy.host}/up/target:v1`, module, { client, mountFrom: 'up/source' });
      expect(mounted.blobs.map((b) => b.result)).toEqual(['mounted', 'mounted']);
      const other = makeWasmModule(5000, 'not-in-source');
      const fallback = await pushWasmModule(`${proxy.host}/up/target2:v1`, other, { client, mountFrom: 'up/empty' });
      expect(fallback.blobs.map((b) => b.result)).toEqual(['uploaded', 'uploaded']);
      expect((await pullWasmModule(`${proxy.host}/up/target2:v1`, { client })).bytes.equals(other)).toBe(true);
      expect(await client.listTags({ registry: proxy.host, repository: 'up/target' })).toEqual(['v1']);
      // Pagination: distribution 2.8 ignores `n` on tags/list, so the proxy serves a first page
      // with a relative Link header and the registry answers the follow-up.
      for (const t of ['a', 'b', 'c'])
        await pushWasmModule(`${proxy.host}/up/paged:${t}`, other, { client, format: 'oras' });
      proxy.setRule((r) =>
        r.url.includes('/tags/list') && !r.url.includes('last=')
          ? {
              status: 200,
              body: '{"name":"up/paged","tags":["0-first-page"]}',
              headers: { link: '</v2/up/paged/tags/list?n=2&last=0-first-page>; rel="next"' },
            }
          : undefined,
      );
      const mark = proxy.log.length;
      expect((await client.listTags({ registry: proxy.host, repository: 'up/paged' }, 2)).sort()).toEqual([
        '0-first-page',
        'a',
        'b',
        'c',
      ]);
      expect(proxy.log.slice(mark).filter((l) => l.includes('/tags/list'))).toEqual([
        'GET /v2/up/paged/tags/list?n=2',
        'GET /v2/up/paged/tags/list?n=2&last=0-first-page',
      ]);
      proxy.setRule(undefined);
    } finally {
      await client.close();
    }
  });

  it('speaks plain HTTP to a non-loopback host only with plainHttp', async () => {
    // 0.0.0.0 reaches the local registry on Linux but is not a loopback name: no automatic fallback.
    const ref = `0.0.0.0:${reg.host.split(':')[1] ?? ''}/up/plain:v1`;
    const err = await pushWasmModule(ref, module).catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_TLS')).toBe(true);
    expect((err as { hint: string }).hint).toMatch(/--plain-http/);
    const pushed = await pushWasmModule(ref, module, { plainHttp: true });
    expect((await pullWasmModule(ref, { plainHttp: true })).manifestDigest).toBe(pushed.manifestDigest);
  });

  it('readModuleFile hashes while reading, and push uses that digest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-read-'));
    const client = new RegistryClient();
    try {
      const big = makeWasmModule(3 * 1024 * 1024 + 17, 'read');
      await writeFile(join(dir, 'm.wasm'), big);
      const hashed = await readModuleFile(join(dir, 'm.wasm'));
      expect(hashed.data.equals(big)).toBe(true);
      expect(hashed.digest).toBe(sha256Digest(big));
      const pushed = await pushWasmModule(`${proxy.host}/up/read:v1`, hashed, { client });
      expect(pushed.moduleDigest).toBe(hashed.digest);
      expect((await pullWasmModule(`${proxy.host}/up/read:v1`, { client })).bytes.equals(big)).toBe(true);
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Regular files are read into one buffer in 4 MiB reads (hashing one while the next is read);
  // anything else (a FIFO here) takes the streaming path. Both must give the exact bytes.
  it.each([
    { name: 'empty file', size: 0, fifo: false },
    { name: 'exactly one read', size: 4 * 1024 * 1024, fifo: false },
    { name: 'several reads and a short tail', size: 9 * 1024 * 1024 + 3, fifo: false },
    { name: 'FIFO', size: 5 * 1024 * 1024 + 1, fifo: true },
  ])('readModuleFile returns the exact bytes and digest: $name', async ({ size, fifo }) => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-read-'));
    try {
      const data = size === 0 ? Buffer.alloc(0) : makeWasmModule(size, `read-${size}`);
      const file = join(dir, 'm.wasm');
      let writer: Promise<void> | undefined;
      if (fifo) {
        await run('mkfifo', [file]);
        writer = writeFile(file, data);
      } else {
        await writeFile(file, data);
      }
      const hashed = await readModuleFile(file);
      await writer;
      expect(hashed.data.length).toBe(size);
      expect(hashed.data.equals(data)).toBe(true);
      expect(hashed.digest).toBe(sha256Digest(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('uploads a module file while reading it, then skips it on a re-push without completing an upload', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-stream-'));
    const streamed = makeWasmModule(40_000, 'streamed');
    const ranges: string[] = [];
    proxy.setRule((r) => {
      if (r.method === 'PATCH') ranges.push(String(r.headers['content-range']));
      return undefined;
    });
    const client = new RegistryClient({ chunkThreshold: 10_000, chunkSize: 16_384 });
    try {
      const file = join(dir, 'm.wasm');
      await writeFile(file, streamed);
      const mark = proxy.log.length;
      const first = await pushWasmModule(`${proxy.host}/up/streamed:v1`, await openModuleFile(file), { client });
      expect(first.blobs.map((b) => b.result)).toEqual(['uploaded', 'uploaded']);
      expect(first.moduleDigest).toBe(sha256Digest(streamed));
      // POST without a digest, the chunks with Content-Range, the digest on the final PUT.
      expect(ranges).toEqual(['0-16383', '16384-32767', '32768-39999']);
      // Two sessions (module, config); the module's bytes went in the PATCHes, so its PUT is empty.
      const uploads = proxy.log.slice(mark).filter((l) => l.includes('/v2/up/streamed/blobs/uploads/'));
      expect(uploads.filter((l) => l.startsWith('POST')).length).toBe(2);
      expect(uploads.filter((l) => l.startsWith('PATCH')).length).toBe(3);
      expect(
        uploads.filter((l) => l.startsWith('PUT') && l.includes(encodeURIComponent(first.moduleDigest))),
      ).toHaveLength(1);

      const again = proxy.log.length;
      const second = await pushWasmModule(`${proxy.host}/up/streamed:v2`, await openModuleFile(file), { client });
      expect(second.blobs.map((b) => b.result)).toEqual(['exists', 'exists']);
      expect(second.manifestDigest).toBe(first.manifestDigest);
      // The HEAD found the module: no upload was completed, and a session that had sent bytes was cancelled.
      const log = proxy.log.slice(again);
      expect(log.filter((l) => /^PUT .*\/blobs\/uploads\//.test(l))).toEqual([]);
      if (log.some((l) => l.startsWith('PATCH '))) expect(log.some((l) => l.startsWith('DELETE '))).toBe(true);
      expect((await pullWasmModule(`${proxy.host}/up/streamed:v2`, { client })).bytes.equals(streamed)).toBe(true);
    } finally {
      proxy.setRule(undefined);
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops an upload under way once the HEAD finds the blob, and cancels the session', async () => {
    const client = new RegistryClient({ chunkThreshold: 1024 * 1024 });
    const data = makeWasmModule(3 * 1024 * 1024, 'stop');
    const repo = { registry: proxy.host, repository: 'up/stop' };
    try {
      expect(await client.pushBlob(repo, data)).toBe('uploaded');
      // Bytes still being read: the first MiB is there, the rest never comes; the digest is
      // known once the PATCH carrying that first MiB is under way.
      let patching: () => void = () => undefined;
      const digestKnown = new Promise<void>((resolve) => (patching = resolve));
      proxy.setRule((r) => {
        if (r.method === 'PATCH') patching();
        return undefined;
      });
      const blob: IncomingBlob = {
        size: data.length,
        data,
        ready: (n) => (n <= 1024 * 1024 ? Promise.resolve(1024 * 1024) : new Promise<number>(() => undefined)),
        digest: digestKnown.then(() => sha256Digest(data)),
      };
      const mark = proxy.log.length;
      expect(await client.pushBlobFrom(repo, blob)).toBe('exists');
      expect(proxy.log.slice(mark).map((l) => l.split(' ')[0])).toEqual(['POST', 'PATCH', 'HEAD', 'DELETE']);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });

  // The file's size changed between the fstat and the end of the read (simulated by starting the
  // read with a size that is off): the streamed upload is dropped and the re-read bytes are pushed.
  it.each([
    { name: 'grew', sizeAtOpen: (n: number) => n - 1000 },
    { name: 'shrank', sizeAtOpen: (n: number) => n + 1000 },
  ])('pushes what a module file holds after it $name while being read', async ({ sizeAtOpen }) => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-grow-'));
    const client = new RegistryClient({ chunkThreshold: 1024 * 1024, chunkSize: 4 * 1024 * 1024 });
    try {
      const file = join(dir, 'm.wasm');
      const actual = makeWasmModule(12 * 1024 * 1024, `changed-${sizeAtOpen(0)}`);
      await writeFile(file, actual);
      const opened = ModuleFile.start(file, sizeAtOpen(actual.length), await open(file, 'r'));
      const mark = proxy.log.length;
      const pushed = await pushWasmModule(`${proxy.host}/up/changed:v${sizeAtOpen(0)}`, opened, { client });
      expect(pushed.moduleDigest).toBe(sha256Digest(actual));
      expect(pushed.size).toBe(actual.length);
      const tag = `v${sizeAtOpen(0)}`;
      expect((await pullWasmModule(`${proxy.host}/up/changed:${tag}`, { client })).bytes.equals(actual)).toBe(true);
      // The streamed session never completed: the only finished module upload is the re-read one.
      const puts = proxy.log.slice(mark).filter((l) => /^PUT .*\/blobs\/uploads\//.test(l));
      expect(puts.filter((l) => l.includes(encodeURIComponent(pushed.moduleDigest)))).toHaveLength(1);
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    { name: 'not wasm', data: Buffer.alloc(64 * 1024, 7), maxBytes: undefined, code: 'OCI_NOT_WASM' as const },
    {
      name: 'over the size cap',
      data: makeWasmModule(64 * 1024, 'cap'),
      maxBytes: 32 * 1024,
      code: 'OCI_TOO_LARGE' as const,
    },
  ])('refuses a module file that is $name before any request', async ({ data, maxBytes, code }) => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-refuse-'));
    const client = new RegistryClient({ chunkThreshold: 10_000 });
    try {
      await writeFile(join(dir, 'm.wasm'), data);
      const mark = proxy.log.length;
      const err = await pushWasmModule(`${proxy.host}/up/refused:v1`, await openModuleFile(join(dir, 'm.wasm')), {
        client,
        ...(maxBytes === undefined ? {} : { maxBytes }),
      }).catch((e: unknown) => e);
      expect(isOciError(err, code)).toBe(true);
      expect(proxy.log.slice(mark)).toEqual([]);
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(['oci', 'compat'] as const)('pulls a %s image to a file, replacing what was there', async (format) => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-out-'));
    const client = new RegistryClient();
    try {
      const wasm = makeWasmModule(6 * 1024 * 1024, `out-${format}`);
      await pushWasmModule(`${proxy.host}/up/out-${format}:v1`, wasm, { client, format });
      const out = join(dir, 'filter.wasm');
      await writeFile(out, 'old', { mode: 0o640 });
      await chmod(out, 0o640);
      const pulled = await pullWasmModule(`${proxy.host}/up/out-${format}:v1`, { client, outputFile: out });
      expect(pulled.bytes.equals(wasm)).toBe(true);
      expect((await readFile(out)).equals(wasm)).toBe(true);
      expect(await readdir(dir)).toEqual(['filter.wasm']);
      // Replaced with the old file's mode.
      expect((await stat(out)).mode & 0o777).toBe(0o640);
      // A symlink is written through, not replaced.
      await symlink(out, join(dir, 'link.wasm'));
      await writeFile(out, 'old again');
      await pullWasmModule(`${proxy.host}/up/out-${format}:v1`, { client, outputFile: join(dir, 'link.wasm') });
      expect((await lstat(join(dir, 'link.wasm'))).isSymbolicLink()).toBe(true);
      expect((await readFile(out)).equals(wasm)).toBe(true);
      // Not a regular file: written in place once verified, no temporary file in /dev.
      await pullWasmModule(`${proxy.host}/up/out-${format}:v1`, { client, outputFile: '/dev/null' });
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cancels the upload session when the final PUT fails', async () => {
    const deletes: string[] = [];
    proxy.setRule((r) => {
      if (r.method === 'DELETE') deletes.push(r.url);
      if (r.method === 'PUT' && r.url.includes('/blobs/uploads/'))
        return {
          status: 400,
          body: '{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}',
        };
      return undefined;
    });
    const client = new RegistryClient();
    try {
      const err = await pushWasmModule(`${proxy.host}/up/failing:v1`, makeWasmModule(3000, 'failing'), {
        client,
      }).catch((e: unknown) => e);
      expect(isOciError(err, 'OCI_DIGEST_MISMATCH')).toBe(true);
      expect(deletes.length).toBeGreaterThan(0);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });
});

describe('Bearer tokens (token registry)', () => {
  let reg: RegistryFixture;
  let proxy: FaultProxy;
  let storage: Server;
  let storageAuth: (string | undefined)[];
  let storagePort: number;
  const pusher = staticCredentials({ username: 'pusher', password: 'push-secret' });

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'token', relativeUrls: true });
    proxy = await startFaultProxy(reg.url);
    storageAuth = [];
    // "Cloud storage" on another port: serves the module and remembers what auth it was sent.
    storage = createServer((req, res) => {
      storageAuth.push(req.headers.authorization);
      if (req.method === 'PUT') {
        // An upload target on another host: accept the bytes, confirm the digest.
        req.resume();
        req.on('end', () => {
          res.writeHead(201, {
            'docker-content-digest': new URL(req.url ?? '/', 'http://x').searchParams.get('digest') ?? '',
          });
          res.end();
        });
        return;
      }
      res.writeHead(200, { 'content-length': String(module.length) });
      res.end(module);
    });
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
    storagePort = (storage.address() as AddressInfo).port;
    await pushWasmModule(`${reg.host}/tok/f:v1`, module, { credentials: pusher });
  });
  afterAll(async () => {
    await new Promise<void>((r) => storage.close(() => r()));
    await proxy?.close();
    await reg?.stop();
  });

  it('follows a blob redirect to another host without sending Authorization there', async () => {
    const registryAuth: (string | undefined)[] = [];
    proxy.setRule((r) => {
      if (r.method === 'GET' && r.url.includes('/blobs/sha256:')) {
        registryAuth.push(r.headers.authorization);
        return { status: 307, headers: { location: `http://127.0.0.1:${storagePort}/bucket/${sha256Digest(module)}` } };
      }
      return undefined;
    });
    const client = new RegistryClient({ credentials: pusher });
    try {
      const m = await pullWasmModule(`${proxy.host}/tok/f:v1`, { client });
      expect(m.bytes.equals(module)).toBe(true);
      expect(registryAuth[0]).toMatch(/^Bearer /);
      expect(storageAuth).toEqual([undefined]);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });

  it('does not send Authorization to an upload Location on another host', async () => {
    storageAuth.length = 0;
    const seenAtRegistry: (string | undefined)[] = [];
    proxy.setRule((r) => {
      if (r.method === 'POST' && r.url.includes('/blobs/uploads/')) {
        seenAtRegistry.push(r.headers.authorization);
        return { status: 202, headers: { location: `http://127.0.0.1:${storagePort}/upload/session-1?state=abc` } };
      }
      return undefined;
    });
    const client = new RegistryClient({ credentials: pusher });
    try {
      const blob = makeWasmModule(2000, 'elsewhere');
      expect(await client.pushBlob({ registry: proxy.host, repository: 'tok/elsewhere' }, blob)).toBe('uploaded');
      expect(seenAtRegistry[0]).toMatch(/^Bearer /);
      expect(storageAuth).toEqual([undefined]);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });

  it('keeps Authorization on a same-host redirect', async () => {
    let redirected = false;
    const seen: (string | undefined)[] = [];
    proxy.setRule((r) => {
      if (r.method === 'GET' && r.url.includes('/blobs/sha256:') && !r.url.includes('moved=1')) {
        redirected = true;
        return { status: 302, headers: { location: `${r.url}?moved=1` } };
      }
      if (r.url.includes('moved=1')) seen.push(r.headers.authorization);
      return undefined;
    });
    const client = new RegistryClient({ credentials: pusher });
    try {
      expect((await pullWasmModule(`${proxy.host}/tok/f:v1`, { client })).bytes.equals(module)).toBe(true);
      expect(redirected).toBe(true);
      expect(seen[0]).toMatch(/^Bearer /);
    } finally {
      proxy.setRule(undefined);
      await client.close();
    }
  });

  it('asks the token server once per scope set and reuses the token', async () => {
    const client = new RegistryClient({ credentials: pusher });
    try {
      const before = reg.tokenServer?.requests.length ?? 0;
      await pullWasmModule(`${reg.host}/tok/f:v1`, { client });
      await pullWasmModule(`${reg.host}/tok/f:v1`, { client });
      const asked = reg.tokenServer?.requests.slice(before) ?? [];
      expect(asked.filter((r) => r.scopes.includes('repository:tok/f:pull'))).toHaveLength(1);
      expect(asked.every((r) => r.user === 'pusher')).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('expires cached tokens by expires_in (fake clock)', async () => {
    let now = 1_000_000;
    const auth = new Authenticator(
      pusher,
      (url, init) => fetch(url, init),
      () => now,
    );
    const res = await fetch(`${reg.url}/v2/`);
    auth.learn(reg.host, parseChallenges(res.headers.get('www-authenticate') ?? ''));
    const before = reg.tokenServer?.requests.length ?? 0;
    const t1 = await auth.authorization(reg.host, ['repository:tok/f:pull']);
    const t2 = await auth.authorization(reg.host, ['repository:tok/f:pull']);
    expect(t2).toBe(t1);
    now += 300_000; // the fixture issues 300 s tokens; a 5 s margin expires them early
    await auth.authorization(reg.host, ['repository:tok/f:pull']);
    expect((reg.tokenServer?.requests.length ?? 0) - before).toBe(2);
  });

  it('uses an identity token through the OAuth2 refresh_token grant', async () => {
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'pusher',
      password: 'push-secret',
      service: 'envext-test-registry',
      client_id: 'test',
    });
    const realm = reg.tokenServer?.realm ?? '';
    const issued = (await (await fetch(realm, { method: 'POST', body: form })).json()) as { refresh_token: string };
    const before = reg.tokenServer?.requests.length ?? 0;
    const m = await pullWasmModule(`${reg.host}/tok/f:v1`, {
      credentials: staticCredentials({ identityToken: issued.refresh_token }),
    });
    expect(m.bytes.equals(module)).toBe(true);
    const asked = reg.tokenServer?.requests.slice(before) ?? [];
    expect(asked.map((r) => [r.method, r.grantType, r.user])).toContainEqual(['POST', 'refresh_token', 'pusher']);
  });

  it('sends a registry token as it is', async () => {
    const res = await fetch(`${reg.tokenServer?.realm ?? ''}?service=envext-test-registry&scope=repository:tok/f:pull`);
    const { token } = (await res.json()) as { token: string };
    const before = reg.tokenServer?.requests.length ?? 0;
    const m = await pullWasmModule(`${reg.host}/tok/f:v1`, {
      credentials: staticCredentials({ registryToken: token }),
    });
    expect(m.bytes.equals(module)).toBe(true);
    expect(reg.tokenServer?.requests.length).toBe(before);
  });

  it('a token without pull stops at insufficient_scope and leaves the cache empty', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'envext-oci-scope-'));
    try {
      const before = reg.tokenServer?.requests.length ?? 0;
      const err = await pullWasmModule(`${reg.host}/tok/f:v1`, {
        credentials: staticCredentials({ username: 'outsider', password: 'out-secret' }),
        cache: new ModuleCache(dir),
      }).catch((e: unknown) => e);
      expect(isOciError(err, 'OCI_INSUFFICIENT_SCOPE')).toBe(true);
      expect((err as Error).message).toMatch(
        /lacks repository:tok\/f:pull .*credentials from command-line credentials/,
      );
      // Asked once, then stopped: no loop of token requests.
      expect((reg.tokenServer?.requests.length ?? 0) - before).toBe(1);
      expect(
        (await readdir(dir, { recursive: true })).filter(
          (f) => !['blobs', 'blobs/sha256', 'manifests', 'refs', 'tmp', 'locks'].includes(f),
        ),
      ).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('wrong password at the token server is a clear 401', async () => {
    const err = await pullWasmModule(`${reg.host}/tok/f:v1`, {
      credentials: staticCredentials({ username: 'pusher', password: 'bad' }, undefined),
    }).catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_UNAUTHORIZED')).toBe(true);
    expect((err as Error).message).toMatch(/token server .* rejected credentials from command-line credentials/);
  });
});

describe('TLS (htpasswd registry with a self-signed certificate)', () => {
  let reg: RegistryFixture;
  beforeAll(async () => {
    reg = await startRegistry({ mode: 'basic' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('refuses an untrusted certificate with a hint, accepts it with the CA or --insecure', async () => {
    const creds = staticCredentials({ username: 'pusher', password: 'push-secret' });
    const err = await pushWasmModule(`${reg.host}/tls/f:v1`, module, { credentials: creds }).catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_TLS')).toBe(true);
    expect((err as { hint: string }).hint).toMatch(/--ca-file.*--insecure/);
    const pushed = await pushWasmModule(`${reg.host}/tls/f:v1`, module, {
      credentials: creds,
      caCerts: [reg.caPem ?? ''],
    });
    const pulled = await pullWasmModule(`${reg.host}/tls/f:v1`, { credentials: creds, insecure: true });
    expect(pulled.manifestDigest).toBe(pushed.manifestDigest);
  });
});
