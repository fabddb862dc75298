/**
 * Round trips against the real CNCF distribution registry in its three auth modes, checked with
 * skopeo (a client nobody here wrote): what envext pushes, skopeo reads byte for byte; what
 * skopeo pushes (from OCI layouts built here, the compat layer made with the system tar and gzip),
 * envext pulls.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RegistryFixture, type RegistryMode } from '../test/fixtures/registry.js';
import { skopeo, skopeoFlags } from '../test/fixtures/skopeo.js';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { ModuleCache } from './cache.js';
import { dockerConfigJsonCredentials, staticCredentials } from './credentials.js';
import { digestHex, sha256Digest } from './digest.js';
import { isOciError } from './errors.js';
import { inspectWasmImage } from './inspect.js';
import { WASM_LAYOUTS, type WasmLayout } from './layouts.js';
import { MediaType } from './media-types.js';
import { pullWasmModule, type RegistryConnectionOptions } from './pull.js';
import { openModuleFile, pushWasmModule } from './push.js';
import { RegistryClient } from './registry-client.js';

const run = promisify(execFile);

function connection(reg: RegistryFixture, user = 'pusher', password = 'push-secret'): RegistryConnectionOptions {
  return {
    ...(reg.mode === 'plain' ? {} : { credentials: staticCredentials({ username: user, password }) }),
    ...(reg.caPem === undefined ? {} : { caCerts: [reg.caPem] }),
  };
}

/** Writes an OCI image layout with one tagged manifest; returns `oci:DIR:TAG` for skopeo. */
async function writeLayout(
  dir: string,
  tag: string,
  manifest: object,
  blobs: readonly Buffer[],
): Promise<{ src: string; manifestBytes: Buffer }> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of blobs) await writeFile(join(dir, 'blobs', 'sha256', digestHex(sha256Digest(b))), b);
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  await writeFile(join(dir, 'blobs', 'sha256', digestHex(sha256Digest(bytes))), bytes);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaType.ociManifest,
          digest: sha256Digest(bytes),
          size: bytes.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { src: `oci:${dir}:${tag}`, manifestBytes: bytes };
}

function desc(mediaType: string, data: Buffer, annotations?: Record<string, string>): object {
  return {
    mediaType,
    digest: sha256Digest(data),
    size: data.length,
    ...(annotations === undefined ? {} : { annotations }),
  };
}

describe.each<RegistryMode>(['plain', 'basic', 'token'])('registry in %s mode', (mode) => {
  let reg: RegistryFixture;
  let work: string;
  const module = makeWasmModule(40_000, `rt-${mode}`);

  beforeAll(async () => {
    reg = await startRegistry({ mode });
    work = await mkdtemp(join(tmpdir(), 'envext-oci-rt-'));
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it.each(WASM_LAYOUTS)('push --format %s, read back with skopeo, pull with envext', async (format: WasmLayout) => {
    const ref = `${reg.host}/filters/${format}:v1`;
    const pushed = await pushWasmModule(ref, module, { format, ...connection(reg) });
    expect(pushed.layout).toBe(format);
    expect(pushed.moduleDigest).toBe(sha256Digest(module));

    // skopeo's view of the manifest hashes to the digest envext reported.
    const raw = await skopeo(['inspect', '--raw', ...skopeoFlags(reg, ''), `docker://${ref}`]);
    expect(sha256Digest(raw)).toBe(pushed.manifestDigest);
    expect((JSON.parse(raw.toString()) as { mediaType: string }).mediaType).toBe(pushed.manifestMediaType);

    // skopeo can copy every blob out, and the digests survive.
    const out = join(work, `copy-${format}`);
    await skopeo(['copy', '--preserve-digests', ...skopeoFlags(reg, 'src'), `docker://${ref}`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]?.digest).toBe(pushed.manifestDigest);
    if (format === 'oci' || format === 'cncf' || format === 'oras') {
      // Raw layouts: the module is a blob named by its own sha256.
      expect(await readFile(join(out, 'blobs', 'sha256', pushed.moduleSha256))).toEqual(module);
    }

    const cacheDir = join(work, `cache-${format}`);
    const pulled = await pullWasmModule(ref, { ...connection(reg), cache: new ModuleCache(cacheDir) });
    expect(pulled.bytes.equals(module)).toBe(true);
    expect(pulled).toMatchObject({
      layout: format,
      manifestDigest: pushed.manifestDigest,
      moduleSha256: pushed.moduleSha256,
      fromCache: false,
    });
    expect(await readFile(pulled.path ?? '')).toEqual(module);

    const inspected = await inspectWasmImage(ref, connection(reg));
    expect(inspected).toMatchObject({
      layout: format,
      manifestDigest: pushed.manifestDigest,
      moduleDigest: pushed.moduleDigest,
      moduleSize: module.length,
    });
  });

  it('uploads a module file while reading it (chunked), read back by skopeo; a re-push skips it', async () => {
    const big = makeWasmModule(300_000, `streamed-${mode}`);
    const file = join(work, 'streamed.wasm');
    await writeFile(file, big);
    const client = new RegistryClient({ ...connection(reg), chunkThreshold: 64 * 1024, chunkSize: 100 * 1024 });
    try {
      const ref = `${reg.host}/filters/streamed:v1`;
      const pushed = await pushWasmModule(ref, await openModuleFile(file), { client });
      expect(pushed.blobs.map((b) => b.result)).toEqual(['uploaded', 'uploaded']);
      expect(pushed.moduleDigest).toBe(sha256Digest(big));
      const raw = await skopeo(['inspect', '--raw', ...skopeoFlags(reg, ''), `docker://${ref}`]);
      expect(sha256Digest(raw)).toBe(pushed.manifestDigest);
      const out = join(work, 'copy-streamed');
      await skopeo(['copy', '--preserve-digests', ...skopeoFlags(reg, 'src'), `docker://${ref}`, `oci:${out}:v1`]);
      expect(await readFile(join(out, 'blobs', 'sha256', pushed.moduleSha256))).toEqual(big);
      const again = await pushWasmModule(`${reg.host}/filters/streamed:v2`, await openModuleFile(file), { client });
      expect(again.blobs.map((b) => b.result)).toEqual(['exists', 'exists']);
      expect(again.manifestDigest).toBe(pushed.manifestDigest);
    } finally {
      await client.close();
    }
  });

  it('pulls every layout pushed by skopeo copy', async () => {
    const wasm = makeWasmModule(30_000, `skopeo-${mode}`);
    const src = join(work, 'src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'plugin.wasm'), wasm);
    // The compat layer comes from the system tar and gzip, not from envext's tar writer.
    await run('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      src,
      '-cf',
      join(work, 'layer.tar'),
      'plugin.wasm',
    ]);
    const tar = await readFile(join(work, 'layer.tar'));
    await run('sh', ['-c', `gzip -n -c "${join(work, 'layer.tar')}" > "${join(work, 'layer.tar.gz')}"`]);
    const tgz = await readFile(join(work, 'layer.tar.gz'));
    const runtimeConfig = Buffer.from(
      '{"type":"envoy_proxy","abiVersions":["v0-097b7f2e4cc1fb490cc1943d0d633655ac3c522f"],"config":{"rootIds":["root"]}}',
    );
    const imageConfig = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] } }),
    );
    const cncfConfig = Buffer.from(
      JSON.stringify({
        created: '2026-01-01T00:00:00Z',
        architecture: 'wasm',
        os: 'wasip1',
        layerDigests: [sha256Digest(wasm)],
      }),
    );
    const empty = Buffer.from('{}');
    const cases: { name: string; layout: WasmLayout; manifest: object; blobs: Buffer[]; format?: string }[] = [
      {
        name: 'wasme-oci',
        layout: 'oci',
        manifest: {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: desc(MediaType.soloWasmConfig, runtimeConfig),
          layers: [
            desc(MediaType.soloWasmConfig, runtimeConfig, { 'org.opencontainers.image.title': 'runtime-config.json' }),
            desc(MediaType.soloWasmLayer, wasm, { 'org.opencontainers.image.title': 'filter.wasm' }),
          ],
        },
        blobs: [runtimeConfig, wasm],
      },
      {
        name: 'compat',
        layout: 'compat',
        manifest: {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: desc(MediaType.ociImageConfig, imageConfig),
          layers: [desc(MediaType.ociLayerTarGzip, tgz)],
        },
        blobs: [imageConfig, tgz],
      },
      {
        name: 'compat-docker',
        layout: 'compat-docker',
        manifest: {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: desc(MediaType.ociImageConfig, imageConfig),
          layers: [desc(MediaType.ociLayerTarGzip, tgz)],
        },
        blobs: [imageConfig, tgz],
        // skopeo converts the OCI image to a Docker schema 2 manifest on the way.
        format: 'v2s2',
      },
      {
        name: 'cncf',
        layout: 'cncf',
        manifest: {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: desc(MediaType.cncfWasmConfig, cncfConfig),
          layers: [desc(MediaType.wasm, wasm)],
        },
        blobs: [cncfConfig, wasm],
      },
      {
        name: 'oras-default',
        layout: 'oras',
        // What a plain `oras push REF plugin.wasm` writes: artifactType unknown, a ".tar" layer holding raw bytes.
        manifest: {
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType: 'application/vnd.unknown.artifact.v1',
          config: desc(MediaType.ociEmpty, empty),
          layers: [desc(MediaType.ociLayerTar, wasm, { 'org.opencontainers.image.title': 'plugin.wasm' })],
        },
        blobs: [empty, wasm],
      },
    ];
    for (const c of cases) {
      const { src: layout } = await writeLayout(join(work, `layout-${c.name}`), 'v1', c.manifest, c.blobs);
      const ref = `${reg.host}/skopeo/${c.name}:v1`;
      await skopeo([
        'copy',
        ...(c.format === undefined ? [] : ['--format', c.format]),
        ...skopeoFlags(reg, 'dest'),
        layout,
        `docker://${ref}`,
      ]);
      const raw = await skopeo(['inspect', '--raw', ...skopeoFlags(reg, ''), `docker://${ref}`]);
      const pulled = await pullWasmModule(ref, connection(reg));
      expect({
        name: c.name,
        layout: pulled.layout,
        same: pulled.bytes.equals(wasm),
        digest: pulled.manifestDigest,
      }).toEqual({
        name: c.name,
        layout: c.layout,
        same: true,
        digest: sha256Digest(raw),
      });
    }
  });

  it.runIf(mode === 'token')(
    'pulls anonymously with a pull-only token, and stops at insufficient_scope when pushing',
    async () => {
      const ref = `${reg.host}/filters/anon:v1`;
      await pushWasmModule(ref, module, connection(reg));
      const pulled = await pullWasmModule(ref, {});
      expect(pulled.bytes.equals(module)).toBe(true);
      const before = reg.tokenServer?.requests.length ?? 0;
      const err = await pushWasmModule(
        `${reg.host}/filters/denied:v1`,
        makeWasmModule(2000, 'denied'),
        connection(reg, 'reader', 'read-secret'),
      ).catch((e: unknown) => e);
      expect(isOciError(err, 'OCI_INSUFFICIENT_SCOPE')).toBe(true);
      expect((err as Error).message).toContain('credentials from command-line credentials');
      // One token request for the push scope, no loop.
      expect((reg.tokenServer?.requests.length ?? 0) - before).toBeLessThanOrEqual(2);
      // The same from a module file streamed while it is read: the upload session is refused.
      const file = join(work, 'denied.wasm');
      await writeFile(file, makeWasmModule(300_000, 'denied-file'));
      const client = new RegistryClient({ ...connection(reg, 'reader', 'read-secret'), chunkThreshold: 64 * 1024 });
      try {
        const streamed = await pushWasmModule(`${reg.host}/filters/denied:v2`, await openModuleFile(file), {
          client,
        }).catch((e: unknown) => e);
        expect(isOciError(streamed, 'OCI_INSUFFICIENT_SCOPE'), String(streamed)).toBe(true);
      } finally {
        await client.close();
      }
    },
  );

  it.runIf(mode !== 'plain')(
    'pulls with a Kubernetes .dockerconfigjson secret, as the control plane does',
    async () => {
      const ref = `${reg.host}/filters/oci:v1`;
      const secret = (user: string, password: string): string =>
        JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
      const tls = reg.caPem === undefined ? {} : { caCerts: [reg.caPem] };
      const cacheDir = join(work, 'secret-cache');
      const m = await pullWasmModule(ref, {
        credentials: dockerConfigJsonCredentials(secret('reader', 'read-secret'), 'secret default/regcred'),
        cache: new ModuleCache(cacheDir),
        pullPolicy: 'IfNotPresent',
        ...tls,
      });
      expect(m.bytes.equals(module)).toBe(true);
      const err = await pullWasmModule(ref, {
        credentials: dockerConfigJsonCredentials(secret('reader', 'stale'), 'secret default/regcred'),
        cache: new ModuleCache(join(work, 'secret-cache-2')),
        ...tls,
      }).catch((e: unknown) => e);
      expect(isOciError(err, 'OCI_UNAUTHORIZED')).toBe(true);
      expect((err as Error).message).toContain('secret default/regcred');
    },
  );

  it.runIf(mode !== 'plain')('401 names the credential source', async () => {
    const err = await pullWasmModule(`${reg.host}/filters/oci:v1`, connection(reg, 'pusher', 'wrong')).catch(
      (e: unknown) => e,
    );
    expect(isOciError(err, 'OCI_UNAUTHORIZED')).toBe(true);
    expect((err as Error).message).toMatch(/command-line credentials/);
    const anon = await pullWasmModule(
      `${reg.host}/filters/oci:v1`,
      reg.caPem === undefined ? {} : { caCerts: [reg.caPem] },
    ).catch((e: unknown) => e);
    if (mode === 'basic') {
      expect(isOciError(anon, 'OCI_UNAUTHORIZED')).toBe(true);
      expect((anon as Error).message).toMatch(/anonymous/);
    }
  });
});
