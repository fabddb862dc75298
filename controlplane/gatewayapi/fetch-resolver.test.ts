/**
 * The real resolver against real HTTP(S) servers on 127.0.0.1: the policy's CA
 * (`http.tls.caCertificateRef`) is trusted for that download only; the wasm magic and sha256 are
 * checked. The TLS pair under testdata/tls/ is a self-signed test certificate for 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchWasmResolver } from './fetch-resolver.js';
import type { WasmModuleRequest } from './wasm-modules.js';

const tls = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'tls');
const cert = readFileSync(join(tls, 'server.crt'), 'utf8');
const wasm = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const sum = createHash('sha256').update(wasm).digest('hex');

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer({ cert, key: readFileSync(join(tls, 'server.key')) }, (_req, res) => res.end(wasm));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  base = typeof a === 'object' && a !== null ? `https://127.0.0.1:${a.port}` : '';
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const request = (url: string, extra: { caCertificate?: string; sha256?: string } = {}): WasmModuleRequest => ({
  source: { type: 'HTTP', url, ...extra },
  policy: { namespace: 'default', name: 'p', index: 0 },
  pullPolicy: 'IfNotPresent',
});

describe('FetchWasmResolver over HTTPS', () => {
  const resolver = new FetchWasmResolver({ servingBase: 'http://cache.local:18002/' });

  it("trusts the policy's CA for its download", async () => {
    const r = await resolver.resolve(request(`${base}/m.wasm`, { caCertificate: cert, sha256: sum }));
    expect(r).toEqual({
      ok: true,
      servingUrl: `http://cache.local:18002/${createHash('sha256').update(`${base}/m.wasm`).digest('hex')}.wasm`,
      sha256: sum,
    });
  });

  it('refuses a certificate nobody vouched for, with a message naming the URL', async () => {
    const r = await resolver.resolve(request(`${base}/m.wasm`));
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.message).toMatch(new RegExp(`^failed to get Wasm module ${base.replace(/[.]/g, '\\.')}/m\\.wasm: `));
  });

  it('fails an Image source clearly when no OCI pull is configured', async () => {
    const r = await resolver.resolve({
      source: { type: 'Image', url: 'oci://r.example/x:v1' },
      policy: { namespace: 'd', name: 'p', index: 0 },
      pullPolicy: 'IfNotPresent',
    });
    expect(r).toEqual({
      ok: false,
      message: 'cannot pull oci://r.example/x:v1: OCI pulls are not available in this build',
    });
  });
});
