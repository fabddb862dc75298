import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { sha256Digest } from './digest.js';
import { isOciError } from './errors.js';
import { buildImage, detectLayout, extractModule, WASM_LAYOUTS } from './layouts.js';
import { MediaType } from './media-types.js';
import { createTar, findInTar } from './tar.js';
import { proxyWasmAbiVersions, validateModule } from './wasm.js';

const module = makeWasmModule(5000, 'layouts');

describe('buildImage / detectLayout round trip', () => {
  it.each(WASM_LAYOUTS)('%s', (layout) => {
    const built = buildImage(module, layout, { created: new Date('2026-01-02T03:04:05Z') });
    const mediaType = (JSON.parse(built.manifest.toString()) as { mediaType: string }).mediaType;
    expect(mediaType).toBe(built.manifestMediaType);
    const image = detectLayout({ bytes: built.manifest, digest: built.manifestDigest, mediaType }, 'test');
    expect(image.layout).toBe(layout);
    const layer = built.blobs.find((b) => b.digest === image.layer.digest);
    expect(layer).toBeDefined();
    expect(extractModule(image, layer?.data ?? Buffer.alloc(0), 'test', 1 << 20)).toEqual(module);
    // Deterministic: the same input gives the same digest.
    expect(buildImage(module, layout, { created: new Date('2026-01-02T03:04:05Z') }).manifestDigest).toBe(
      built.manifestDigest,
    );
  });

  it('solo "oci" variant: config duplicated as the first of two layers, ABI annotation', () => {
    const m = JSON.parse(buildImage(module, 'oci').manifest.toString()) as {
      config: { digest: string };
      layers: { mediaType: string; digest: string }[];
      annotations: Record<string, string>;
    };
    expect(m.layers).toHaveLength(2);
    expect(m.layers[0]?.digest).toBe(m.config.digest);
    expect(m.layers[1]).toMatchObject({ mediaType: MediaType.soloWasmLayer, digest: sha256Digest(module) });
    expect(m.annotations['module.wasm.runtime/abi_version']).toBe('proxy_abi_version_0_2_1');
  });

  it('compat layer is a gzip tar the system tar can list, with diff_ids of the tar', () => {
    const built = buildImage(module, 'compat');
    const layer = built.blobs.find((b) => b.mediaType === MediaType.ociLayerTarGzip);
    const config = JSON.parse(
      built.blobs.find((b) => b.mediaType === MediaType.ociImageConfig)?.data.toString() ?? '{}',
    ) as { rootfs: { diff_ids: string[] } };
    const tar = gunzipSync(layer?.data ?? Buffer.alloc(0));
    expect(config.rootfs.diff_ids).toEqual([sha256Digest(tar)]);
    const dir = mkdtempSync(join(tmpdir(), 'envext-tar-'));
    try {
      writeFileSync(join(dir, 'l.tar'), tar);
      expect(execFileSync('tar', ['-tvf', join(dir, 'l.tar')]).toString()).toMatch(/plugin\.wasm/);
      execFileSync('tar', ['-xf', join(dir, 'l.tar'), '-C', dir]);
      expect(readFileSync(join(dir, 'plugin.wasm'))).toEqual(module);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compat-docker refuses annotations', () => {
    expect(() => buildImage(module, 'compat-docker', { annotations: { a: 'b' } })).toThrow(/cannot carry annotations/);
  });
});

describe('tar', () => {
  it('finds plugin.wasm in any directory, with GNU long names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'envext-tar-'));
    try {
      const deep = join(dir, 'src', 'a'.repeat(60), 'b'.repeat(60));
      execFileSync('mkdir', ['-p', deep]);
      writeFileSync(join(deep, 'plugin.wasm'), module);
      writeFileSync(join(dir, 'src', 'README'), 'x');
      execFileSync('tar', [
        '--format=gnu',
        '-C',
        join(dir, 'src'),
        '-cf',
        join(dir, 'x.tar'),
        'README',
        'a'.repeat(60),
      ]);
      expect(findInTar(readFileSync(join(dir, 'x.tar')), 'plugin.wasm', 't')).toEqual(module);
      execFileSync('tar', ['--format=pax', '-C', join(dir, 'src'), '-cf', join(dir, 'p.tar'), 'a'.repeat(60)]);
      expect(findInTar(readFileSync(join(dir, 'p.tar')), 'plugin.wasm', 't')).toEqual(module);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects truncated and corrupt archives', () => {
    const tar = createTar([{ name: 'plugin.wasm', data: module }]);
    expect(() => findInTar(tar.subarray(0, 1000), 'plugin.wasm', 't')).toThrow(/truncated/);
    const bad = Buffer.from(tar);
    bad[0] = 0x41;
    expect(() => findInTar(bad, 'plugin.wasm', 't')).toThrow(/checksum/);
    expect(findInTar(createTar([{ name: 'other.wasm', data: module }]), 'plugin.wasm', 't')).toBeUndefined();
  });
});

describe('module checks', () => {
  it.each([
    { name: 'text', data: Buffer.from('hello world'), code: 'OCI_NOT_WASM' },
    { name: 'empty', data: Buffer.alloc(0), code: 'OCI_NOT_WASM' },
    { name: 'magic only', data: Buffer.from([0, 0x61, 0x73, 0x6d]), code: 'OCI_NOT_WASM' },
    { name: 'too large', data: module, max: 100, code: 'OCI_TOO_LARGE' },
  ])('$name → $code', ({ data, code, max }) => {
    try {
      validateModule(data, 'x', max);
      expect.unreachable();
    } catch (e) {
      expect(isOciError(e)).toBe(true);
      expect((e as { code: string }).code).toBe(code);
    }
  });

  it('reads proxy-wasm ABI exports', () => {
    expect(proxyWasmAbiVersions(module)).toEqual(['proxy_abi_version_0_2_1']);
    expect(proxyWasmAbiVersions(Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toEqual([]);
    // WebAssembly is not in the ES2023 lib typings the project compiles against.
    const wasm = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;
    expect(wasm.validate(makeWasmModule(100_000))).toBe(true);
    expect(makeWasmModule(100_000).length).toBe(100_000);
  });
});
