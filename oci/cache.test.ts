/**
 * The module cache and pull policies against the real registry, with a pass-through proxy that
 * counts requests (so "no registry call" is measured, not assumed).
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../test/fixtures/fault-proxy.js';
import { startRegistry, type RegistryFixture } from '../test/fixtures/registry.js';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { ModuleCache } from './cache.js';
import { isOciError } from './errors.js';
import { pullWasmModule, resolveWasmModule } from './pull.js';
import { pushWasmModule } from './push.js';
import { RegistryClient } from './registry-client.js';

describe('module cache and pull policies', () => {
  let reg: RegistryFixture;
  let proxy: FaultProxy;
  let work: string;
  let client: RegistryClient;
  const v1 = makeWasmModule(40_000, 'cache-v1');
  const v2 = makeWasmModule(40_000, 'cache-v2');
  let d1: string;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'plain', relativeUrls: true });
    proxy = await startFaultProxy(reg.url);
    work = await mkdtemp(join(tmpdir(), 'envext-oci-cache-'));
    client = new RegistryClient();
    d1 = (await pushWasmModule(`${reg.host}/c/f:v1`, v1, { client })).manifestDigest;
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.close();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const requests = (from: number): string[] => proxy.log.slice(from).filter((l) => !l.endsWith(' /v2/'));

  it('IfNotPresent: pinned and previously resolved references need no registry call', async () => {
    const cache = new ModuleCache(await mkdtemp(join(work, 'c-')));
    const first = await pullWasmModule(`${proxy.host}/c/f:v1`, { client, cache });
    expect(first.fromCache).toBe(false);
    let mark = proxy.log.length;
    const again = await pullWasmModule(`${proxy.host}/c/f:v1`, { client, cache });
    expect(again).toMatchObject({ fromCache: true, manifestDigest: d1 });
    expect(again.bytes.equals(v1)).toBe(true);
    expect(requests(mark)).toEqual([]);
    mark = proxy.log.length;
    const pinned = await resolveWasmModule(`${proxy.host}/c/f@${d1}`, { client, cache });
    expect(pinned).toMatchObject({ fromCache: true, manifestDigest: d1 });
    // EG's code.image.sha256 (hex without prefix) pins the same way.
    const bySha = await resolveWasmModule(`${proxy.host}/c/other:tag`, {
      client,
      cache,
      expectedManifestDigest: d1.slice(7),
    });
    expect(bySha.fromCache).toBe(true);
    expect(requests(mark)).toEqual([]);
  });

  it('verifyAccess: a cache hit still checks the caller may read the image', async () => {
    const cache = new ModuleCache(await mkdtemp(join(work, 'c-')));
    await pullWasmModule(`${proxy.host}/c/f:v1`, { client, cache });
    const mark = proxy.log.length;
    const ok = await resolveWasmModule(`${proxy.host}/c/f:v1`, { client, cache, verifyAccess: true });
    expect(ok).toMatchObject({ manifestDigest: d1, fromCache: false });
    expect(requests(mark)).toEqual([`HEAD /v2/c/f/manifests/${d1}`]);
    proxy.setRule((r) =>
      r.method === 'HEAD' ? { status: 403, body: '{"errors":[{"code":"DENIED","message":"no"}]}' } : undefined,
    );
    try {
      const err = await resolveWasmModule(`${proxy.host}/c/f:v1`, { client, cache, verifyAccess: true }).catch(
        (e: unknown) => e,
      );
      expect(isOciError(err, 'OCI_DENIED')).toBe(true);
    } finally {
      proxy.setRule(undefined);
    }
  });

  it('Always: one HEAD when the tag did not move, a download when it did', async () => {
    const cache = new ModuleCache(await mkdtemp(join(work, 'c-')));
    await pushWasmModule(`${reg.host}/c/moving:v1`, v1, { client });
    await pullWasmModule(`${proxy.host}/c/moving:v1`, { client, cache });
    let mark = proxy.log.length;
    const same = await pullWasmModule(`${proxy.host}/c/moving:v1`, { client, cache, pullPolicy: 'Always' });
    expect(same.manifestDigest).toBe(d1);
    expect(requests(mark)).toEqual(['HEAD /v2/c/moving/manifests/v1']);
    const moved = await pushWasmModule(`${reg.host}/c/moving:v1`, v2, { client });
    mark = proxy.log.length;
    const ifNotPresent = await pullWasmModule(`${proxy.host}/c/moving:v1`, { client, cache });
    expect(ifNotPresent.manifestDigest).toBe(d1);
    expect(requests(mark)).toEqual([]);
    const fresh = await pullWasmModule(`${proxy.host}/c/moving:v1`, { client, cache, pullPolicy: 'Always' });
    expect(fresh).toMatchObject({ manifestDigest: moved.manifestDigest, fromCache: false });
    expect(fresh.bytes.equals(v2)).toBe(true);
  });

  it(':latest defaults to Always', async () => {
    const cache = new ModuleCache(await mkdtemp(join(work, 'c-')));
    await pushWasmModule(`${reg.host}/c/l:latest`, v1, { client });
    await pullWasmModule(`${proxy.host}/c/l`, { client, cache });
    const mark = proxy.log.length;
    await pullWasmModule(`${proxy.host}/c/l`, { client, cache });
    expect(requests(mark)).toEqual(['HEAD /v2/c/l/manifests/latest']);
  });

  it('concurrent pulls of one image download it once', async () => {
    const cache = new ModuleCache(await mkdtemp(join(work, 'c-')));
    const mark = proxy.log.length;
    const all = await Promise.all(
      Array.from({ length: 8 }, () => pullWasmModule(`${proxy.host}/c/f@${d1}`, { client, cache })),
    );
    expect(all.every((m) => m.bytes.equals(v1))).toBe(true);
    expect(requests(mark).filter((l) => l.startsWith('GET') && l.includes('/blobs/'))).toHaveLength(1);
  });

  it('two caches on one directory (as two processes would) download once through the lock file', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const mark = proxy.log.length;
    const [a, b] = await Promise.all([
      pullWasmModule(`${proxy.host}/c/f:v1`, { client, cache: new ModuleCache(dir) }),
      pullWasmModule(`${proxy.host}/c/f:v1`, { client, cache: new ModuleCache(dir) }),
    ]);
    expect(a.path).toBe(b.path);
    expect(a.bytes.equals(v1) && b.bytes.equals(v1)).toBe(true);
    expect(requests(mark).filter((l) => l.startsWith('GET') && l.includes('/blobs/'))).toHaveLength(1);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await readdir(join(dir, 'locks'))).toEqual([]);
  });

  it('takes over a lock whose holder is gone', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const cache = new ModuleCache(dir);
    await mkdir(join(dir, 'locks'), { recursive: true });
    // A pid that cannot exist on Linux (above pid_max), on this host.
    await writeFile(join(dir, 'locks', `${d1.slice(7)}.lock`), `4194305 ${hostname()}\n`);
    const m = await pullWasmModule(`${proxy.host}/c/f@${d1}`, { client, cache });
    expect(m.bytes.equals(v1)).toBe(true);
    expect(await readdir(join(dir, 'locks'))).toEqual([]);
  });

  it('waits for a live holder, then gives up with OCI_CACHE_LOCKED', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const cache = new ModuleCache(dir);
    let release = (): void => undefined;
    let holding = (): void => undefined;
    const held = new Promise<void>((r) => (holding = r));
    const hold = cache.withLock(d1, () => {
      holding();
      return new Promise<void>((r) => (release = r));
    });
    await held;
    let entered = false;
    const err = await cache
      .withLock(d1, () => Promise.resolve((entered = true)), { timeoutMs: 100, pollMs: 10 })
      .catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_CACHE_LOCKED')).toBe(true);
    expect(entered).toBe(false);
    release();
    await hold;
    expect(await cache.withLock(d1, () => Promise.resolve('free'))).toBe('free');
  });

  it('evicts the least recently used module above the size cap', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const modules = [0, 1, 2].map((i) => makeWasmModule(40_000, `lru-${i}`));
    const digests: string[] = [];
    for (const [i, m] of modules.entries())
      digests.push((await pushWasmModule(`${reg.host}/c/lru:${i}`, m, { client })).manifestDigest);
    // Room for two modules (and their small manifests), not three.
    const cache = new ModuleCache(dir, { maxBytes: 90_000 });
    await pullWasmModule(`${proxy.host}/c/lru@${digests[0]}`, { client, cache });
    await new Promise((r) => setTimeout(r, 20));
    await pullWasmModule(`${proxy.host}/c/lru@${digests[1]}`, { client, cache });
    await new Promise((r) => setTimeout(r, 20));
    // Using module 0 again makes module 1 the least recently used.
    expect((await resolveWasmModule(`${proxy.host}/c/lru@${digests[0]}`, { client, cache })).fromCache).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    await pullWasmModule(`${proxy.host}/c/lru@${digests[2]}`, { client, cache });
    expect(await cache.lookupDigest(digests[1] ?? '')).toBeUndefined();
    expect(await cache.lookupDigest(digests[0] ?? '')).toBeDefined();
    expect(await cache.lookupDigest(digests[2] ?? '')).toBeDefined();
    expect(await cache.size()).toBeLessThanOrEqual(90_000);
  });

  it('refuses a module larger than the whole cache, leaving it empty', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const err = await pullWasmModule(`${proxy.host}/c/f:v1`, {
      client,
      cache: new ModuleCache(dir, { maxBytes: 1000 }),
    }).catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_TOO_LARGE')).toBe(true);
    expect(await readdir(join(dir, 'blobs', 'sha256')).catch(() => [])).toEqual([]);
  });
});
