/**
 * Every bad input of the pull path, against the real registry (with a fault-injecting proxy in
 * front where the registry itself would never misbehave): each gives a typed error with a stable
 * code, and afterwards the module cache holds nothing — no blob, no record, no reference, no
 * temp file.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../test/fixtures/fault-proxy.js';
import { startRegistry, type RegistryFixture } from '../test/fixtures/registry.js';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { ModuleCache } from './cache.js';
import { sha256Digest } from './digest.js';
import { isOciError, type OciErrorCode } from './errors.js';
import { MediaType } from './media-types.js';
import { pullWasmModule } from './pull.js';
import { pushWasmModule } from './push.js';
import { RegistryClient } from './registry-client.js';
import { createTar } from './tar.js';

const module = makeWasmModule(40_000, 'bad-input');

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['blobs/sha256', 'manifests', 'refs', 'tmp', 'locks']) {
    try {
      for (const f of await readdir(join(dir, sub))) out.push(`${sub}/${f}`);
    } catch {
      // never created: empty
    }
  }
  return out;
}

/** Pushes raw blobs and a manifest (bypassing envext's own validation). */
async function pushRaw(
  client: RegistryClient,
  registry: string,
  repository: string,
  tag: string,
  blobs: Buffer[],
  manifest: object,
  mediaType: string = MediaType.ociManifest,
): Promise<string> {
  const repo = { registry, repository };
  for (const b of blobs) await client.pushBlob(repo, b);
  return client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), mediaType);
}

function desc(mediaType: string, data: Buffer): { mediaType: string; digest: string; size: number } {
  return { mediaType, digest: sha256Digest(data), size: data.length };
}

const isManifestGet = (r: { method: string; url: string }): boolean =>
  r.method === 'GET' && r.url.includes('/manifests/');
const isBlobGet = (r: { method: string; url: string }): boolean =>
  r.method === 'GET' && r.url.includes('/blobs/sha256:');

describe('pull: bad input leaves the cache clean', () => {
  let reg: RegistryFixture;
  let proxy: FaultProxy;
  let work: string;
  let direct: RegistryClient;
  let goodDigest: string;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'plain', relativeUrls: true });
    proxy = await startFaultProxy(reg.url);
    work = await mkdtemp(join(tmpdir(), 'envext-oci-bad-'));
    direct = new RegistryClient();
    goodDigest = (await pushWasmModule(`${reg.host}/bad/good:v1`, module, { client: direct })).manifestDigest;
    const cfg = Buffer.from('{}');
    const text = Buffer.from('this is a text file, not WebAssembly');
    await pushRaw(direct, reg.host, 'bad/text', 'v1', [cfg, text], {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: MediaType.wasm,
      config: desc(MediaType.ociEmpty, cfg),
      layers: [desc(MediaType.wasm, text)],
    });
    const zst = Buffer.from('not really zstd');
    await pushRaw(direct, reg.host, 'bad/zstd', 'v1', [cfg, zst], {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: desc(MediaType.ociImageConfig, cfg),
      layers: [
        desc('application/vnd.oci.image.layer.v1.tar+zstd', zst),
        desc('application/vnd.oci.image.layer.v1.tar+zstd', zst),
      ],
    });
    const noPlugin = gzipSync(createTar([{ name: 'README.md', data: Buffer.from('hi') }]));
    await pushRaw(direct, reg.host, 'bad/noplugin', 'v1', [cfg, noPlugin], {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: desc(MediaType.ociImageConfig, cfg),
      layers: [desc(MediaType.ociLayerTarGzip, noPlugin)],
    });
    const bomb = gzipSync(createTar([{ name: 'plugin.wasm', data: Buffer.alloc(3 * 1024 * 1024) }]));
    await pushRaw(direct, reg.host, 'bad/bomb', 'v1', [cfg, bomb], {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: desc(MediaType.ociImageConfig, cfg),
      layers: [desc(MediaType.ociLayerTarGzip, bomb)],
    });
    await pushWasmModule(`${reg.host}/bad/index:child`, module, { client: direct });
    const goodManifest = await direct.getManifest({ registry: reg.host, repository: 'bad/index', tag: 'child' });
    await pushRaw(
      direct,
      reg.host,
      'bad/index',
      'v1',
      [],
      {
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          {
            mediaType: MediaType.ociManifest,
            digest: goodManifest.digest,
            size: goodManifest.bytes.length,
            platform: { architecture: 'wasm', os: 'wasip1' },
          },
        ],
      },
      MediaType.ociIndex,
    );
    // An OCI manifest without a mediaType field, so a proxy can lie about its Content-Type.
    await pushRaw(direct, reg.host, 'bad/typeless', 'v1', [cfg, module], {
      schemaVersion: 2,
      config: desc(MediaType.ociEmpty, cfg),
      layers: [desc(MediaType.wasm, module)],
    });
    // A manifest whose wasm blob was deleted from the registry.
    await pushWasmModule(`${reg.host}/bad/noblob:v1`, makeWasmModule(3000, 'gone'), { client: direct, format: 'oras' });
    const del = await fetch(`${reg.url}/v2/bad/noblob/blobs/${sha256Digest(makeWasmModule(3000, 'gone'))}`, {
      method: 'DELETE',
    });
    expect(del.status).toBe(202);
  });
  afterAll(async () => {
    await direct?.close();
    await proxy?.close();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const denied = JSON.stringify({
    errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }],
  });
  const cases: ReadonlyArray<{
    name: string;
    repo: string;
    rule?: FaultRule;
    code: OciErrorCode;
    message?: RegExp;
    maxBytes?: number;
    expected?: string;
  }> = [
    {
      name: '401 with a Basic challenge and no credentials',
      repo: 'bad/good',
      rule: (r) =>
        isManifestGet(r) ? { status: 401, headers: { 'www-authenticate': 'Basic realm="test"' } } : undefined,
      code: 'OCI_UNAUTHORIZED',
      message: /401 Unauthorized.*no credentials.*anonymous/,
    },
    {
      name: '403 denied',
      repo: 'bad/good',
      rule: (r) => (isManifestGet(r) ? { status: 403, body: denied } : undefined),
      code: 'OCI_DENIED',
      message: /denied GET.*DENIED requested access.*anonymous/,
    },
    { name: '404 manifest', repo: 'bad/missing', code: 'OCI_MANIFEST_NOT_FOUND', message: /MANIFEST_UNKNOWN/ },
    { name: '404 blob', repo: 'bad/noblob', code: 'OCI_BLOB_NOT_FOUND', message: /BLOB_UNKNOWN/ },
    {
      name: 'manifest digest mismatch',
      repo: 'bad/good',
      rule: (r) => (isManifestGet(r) ? { mutate: (b) => Buffer.concat([b, Buffer.from(' ')]) } : undefined),
      code: 'OCI_DIGEST_MISMATCH',
      message: /but the registry says/,
    },
    {
      name: 'pinned manifest digest mismatch',
      repo: 'bad/good',
      expected: 'sha256:' + '0'.repeat(64),
      code: 'OCI_DIGEST_MISMATCH',
      message: /not the expected sha256:0000/,
    },
    {
      name: 'blob digest mismatch',
      repo: 'bad/good',
      rule: (r) =>
        isBlobGet(r) ? { mutate: (b) => Buffer.from(b.map((x, i) => (i === 100 ? x ^ 1 : x))) } : undefined,
      code: 'OCI_DIGEST_MISMATCH',
      message: /hashes to/,
    },
    {
      name: 'blob body longer than its descriptor',
      repo: 'bad/good',
      rule: (r) => (isBlobGet(r) ? { mutate: (b) => Buffer.concat([b, Buffer.from('xx')]) } : undefined),
      code: 'OCI_DIGEST_MISMATCH',
      message: /but its descriptor says/,
    },
    {
      name: 'early close on every try',
      repo: 'bad/good',
      rule: (r) => (isBlobGet(r) ? { truncateAt: 1000 } : undefined),
      code: 'OCI_TRUNCATED',
      message: /ended after/,
    },
    {
      name: 'short Content-Length on every try',
      repo: 'bad/good',
      rule: (r) => (isBlobGet(r) ? { mutate: (b) => b.subarray(0, 1000) } : undefined),
      code: 'OCI_TRUNCATED',
      message: /ended after 4000 of 40000 bytes/,
    },
    {
      name: 'truncated manifest',
      repo: 'bad/good',
      rule: (r) => (isManifestGet(r) ? { truncateAt: 20 } : undefined),
      code: 'OCI_TRUNCATED',
      message: /manifest/,
    },
    {
      name: 'wrong manifest media type',
      repo: 'bad/typeless',
      rule: (r) => (isManifestGet(r) ? { headers: { 'content-type': MediaType.dockerManifestV1Signed } } : undefined),
      code: 'OCI_UNSUPPORTED_MEDIA_TYPE',
      message: /prettyjws, which is not an image manifest/,
    },
    {
      name: 'Content-Type disagrees with mediaType',
      repo: 'bad/good',
      rule: (r) => (isManifestGet(r) ? { headers: { 'content-type': MediaType.dockerManifest } } : undefined),
      code: 'OCI_MANIFEST_INVALID',
      message: /disagrees/,
    },
    {
      name: 'layers of no Wasm layout',
      repo: 'bad/zstd',
      code: 'OCI_NOT_WASM',
      message: /could not parse as compat variant.*could not parse as oci variant/,
    },
    { name: 'index instead of manifest', repo: 'bad/index', code: 'OCI_INDEX_NOT_SUPPORTED', message: /image index/ },
    {
      name: 'non-wasm content',
      repo: 'bad/text',
      code: 'OCI_NOT_WASM',
      message: /not a WebAssembly module \(starts with 0x74686973/,
    },
    {
      name: 'compat layer without plugin.wasm',
      repo: 'bad/noplugin',
      code: 'OCI_NOT_WASM',
      message: /no plugin\.wasm/,
    },
    {
      name: 'over-size module',
      repo: 'bad/good',
      maxBytes: 10_000,
      code: 'OCI_TOO_LARGE',
      message: /40000 bytes, more than the 10000 allowed/,
    },
    {
      name: 'compat layer that unpacks past the cap',
      repo: 'bad/bomb',
      maxBytes: 100_000,
      code: 'OCI_TOO_LARGE',
      message: /unpacks to more than/,
    },
    {
      name: 'registry 5xx on every try',
      repo: 'bad/good',
      rule: (r) =>
        isManifestGet(r)
          ? { status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}' }
          : undefined,
      code: 'OCI_REGISTRY_UNAVAILABLE',
      message: /HTTP 503/,
    },
  ];

  it.each(cases)('$name → $code', async ({ repo, rule, code, message, maxBytes, expected }) => {
    proxy.setRule(rule);
    const cacheDir = await mkdtemp(join(work, 'cache-'));
    const client = new RegistryClient({ retries: 3, retryBaseMs: 1, retryMaxMs: 5 });
    const before = proxy.log.length;
    try {
      const err = await pullWasmModule(`${proxy.host}/${repo}:v1`, {
        client,
        cache: new ModuleCache(cacheDir),
        ...(maxBytes === undefined ? {} : { maxBytes }),
        ...(expected === undefined ? {} : { expectedManifestDigest: expected }),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isOciError(err), String(err)).toBe(true);
      expect((err as { code: string }).code).toBe(code);
      if (message !== undefined) expect((err as Error).message).toMatch(message);
      expect(await listAll(cacheDir)).toEqual([]);
      if (code === 'OCI_REGISTRY_UNAVAILABLE') {
        // One try and three retries, then a clear failure.
        expect(proxy.log.slice(before).filter((l) => l.startsWith('GET') && l.includes('/manifests/'))).toHaveLength(4);
      }
      // Without a cache, pulling to a file (written while it downloads): the file that was
      // there stays as it was, and no temporary file is left next to it.
      const outDir = await mkdtemp(join(work, 'out-'));
      const out = join(outDir, 'module.wasm');
      await writeFile(out, 'the previous module');
      const again = await pullWasmModule(`${proxy.host}/${repo}:v1`, {
        client,
        outputFile: out,
        ...(maxBytes === undefined ? {} : { maxBytes }),
        ...(expected === undefined ? {} : { expectedManifestDigest: expected }),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((again as { code?: string }).code).toBe(code);
      expect(await readdir(outDir)).toEqual(['module.wasm']);
      expect(await readFile(out, 'utf8')).toBe('the previous module');
    } finally {
      await client.close();
      proxy.setRule(undefined);
    }
  });

  it('retries 503 with backoff and then succeeds', async () => {
    let failures = 2;
    proxy.setRule((r) =>
      isManifestGet(r) && failures-- > 0 ? { status: 503, headers: { 'retry-after': '0' } } : undefined,
    );
    const client = new RegistryClient({ retryBaseMs: 1, retryMaxMs: 5 });
    try {
      const cacheDir = await mkdtemp(join(work, 'cache-'));
      const m = await pullWasmModule(`${proxy.host}/bad/good:v1`, { client, cache: new ModuleCache(cacheDir) });
      expect(m.bytes.equals(module)).toBe(true);
      expect(m.manifestDigest).toBe(goodDigest);
    } finally {
      await client.close();
      proxy.setRule(undefined);
    }
  });

  // 9 MiB: the file gets its first 4 MiB writes while the download is still running.
  it.each([
    {
      name: 'resumed after an early close',
      fault: { truncateAt: 5 * 1024 * 1024 + 7 },
      code: undefined as OciErrorCode | undefined,
    },
    {
      name: 'corrupted at 8 MiB',
      fault: { mutate: (b: Buffer) => Buffer.from(b.map((x, i) => (i === 8 * 1024 * 1024 ? x ^ 1 : x))) },
      code: 'OCI_DIGEST_MISMATCH' as OciErrorCode | undefined,
    },
  ])('pulls a large module to a file while it downloads: $name', async ({ fault, code }) => {
    const big = makeWasmModule(9 * 1024 * 1024, 'bad-input-big');
    await pushWasmModule(`${reg.host}/bad/big:v1`, big, { client: direct });
    let first = true;
    proxy.setRule((r) => {
      if (!isBlobGet(r) || (code === undefined && !first)) return undefined;
      first = false;
      return fault;
    });
    const client = new RegistryClient({ retries: 1, retryBaseMs: 1, retryMaxMs: 5 });
    try {
      const outDir = await mkdtemp(join(work, 'out-'));
      const out = join(outDir, 'module.wasm');
      await writeFile(out, 'the previous module');
      const result = await pullWasmModule(`${proxy.host}/bad/big:v1`, { client, outputFile: out }).then(
        (m) => m,
        (e: unknown) => e,
      );
      expect(await readdir(outDir)).toEqual(['module.wasm']);
      if (code === undefined) {
        expect((await readFile(out)).equals(big)).toBe(true);
      } else {
        expect(isOciError(result, code)).toBe(true);
        expect(await readFile(out, 'utf8')).toBe('the previous module');
      }
    } finally {
      await client.close();
      proxy.setRule(undefined);
    }
  });

  it('resumes an early-closed blob download with Range', async () => {
    let cut = true;
    const ranges: string[] = [];
    proxy.setRule((r) => {
      if (!isBlobGet(r)) return undefined;
      if (typeof r.headers.range === 'string') ranges.push(r.headers.range);
      if (cut) {
        cut = false;
        return { truncateAt: 12_345 };
      }
      return undefined;
    });
    const client = new RegistryClient({ retryBaseMs: 1, retryMaxMs: 5 });
    try {
      const out = join(await mkdtemp(join(work, 'out-')), 'module.wasm');
      const m = await pullWasmModule(`${proxy.host}/bad/good:v1`, { client, outputFile: out });
      expect(m.bytes.equals(module)).toBe(true);
      expect(ranges).toEqual(['bytes=12345-']);
      // The file written during the download holds both parts.
      expect((await readFile(out)).equals(module)).toBe(true);
    } finally {
      await client.close();
      proxy.setRule(undefined);
    }
  });
});
