/**
 * A WasmModuleResolver that really fetches modules, for `envext translate` without `--offline`:
 * HTTP(S) sources with `fetch`, OCI images through `oci/` (`pullWasmModule`). It verifies what
 * Envoy Gateway's cache verifies (the `\0asm` magic, the user's sha256 or image digest) and
 * reports the module's sha256. It does not serve modules: the serving URL is where `envext
 * serve`'s module cache would publish it (`<base>/<hex sha256(url)>.wasm`).
 */
import { createHash } from 'node:crypto';
import { Agent, fetch as undiciFetch } from 'undici';
import { errorMessage } from '../../common/errors.js';
import type { WasmModuleRequest, WasmModuleResolver, WasmResolution } from './wasm-modules.js';

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

/** Pulls an OCI image's Wasm module; `oci/`'s API, injected so tests can use a real local registry. */
export type OciPull = (
  reference: string,
  opts: {
    dockerConfigJson?: string;
    expectedManifestDigest?: string;
    pullPolicy: 'IfNotPresent' | 'Always';
    caCerts?: readonly string[];
  },
) => Promise<{ bytes: Uint8Array; moduleSha256: string; manifestDigest: string }>;

export interface FetchResolverOptions {
  /** Base of serving URLs, e.g. `https://envoy-gateway.envoy-gateway-system.svc.cluster.local:18002`. */
  readonly servingBase: string;
  /** OCI pulls; without it Image sources fail with a clear message. */
  readonly ociPull?: OciPull;
  /** Per-module timeout (Envoy Gateway: 15 s per HTTP fetch). */
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

export class FetchWasmResolver implements WasmModuleResolver {
  constructor(private readonly options: FetchResolverOptions) {}

  private servingUrl(url: string): string {
    return `${this.options.servingBase.replace(/\/+$/u, '')}/${sha256Hex(url)}.wasm`;
  }

  async resolve(request: WasmModuleRequest): Promise<WasmResolution> {
    const src = request.source;
    try {
      let bytes: Uint8Array;
      if (src.type === 'HTTP') {
        const u = new URL(src.url);
        if (u.protocol !== 'https:' && u.protocol !== 'http:')
          return { ok: false, message: `unsupported URL scheme ${u.protocol} in ${src.url}` };
        const signal = AbortSignal.timeout(this.options.timeoutMs ?? 15_000);
        // The policy's http.tls.caCertificateRef: trust exactly that CA for this download.
        const res =
          src.caCertificate === undefined
            ? await fetch(src.url, { signal })
            : await undiciFetch(src.url, { signal, dispatcher: new Agent({ connect: { ca: src.caCertificate } }) });
        if (!res.ok) return { ok: false, message: `failed to fetch Wasm module ${src.url}: HTTP ${res.status}` };
        bytes = new Uint8Array(await res.arrayBuffer());
      } else {
        if (this.options.ociPull === undefined)
          return { ok: false, message: `cannot pull ${src.url}: OCI pulls are not available in this build` };
        const pulled = await this.options.ociPull(src.url, {
          ...(src.dockerConfigJson === undefined ? {} : { dockerConfigJson: src.dockerConfigJson }),
          ...(src.sha256 === undefined ? {} : { expectedManifestDigest: `sha256:${src.sha256}` }),
          pullPolicy: request.pullPolicy,
          ...(src.caCertificate === undefined ? {} : { caCerts: [src.caCertificate] }),
        });
        if (src.sha256 !== undefined && pulled.manifestDigest !== `sha256:${src.sha256}`) {
          return {
            ok: false,
            message: `module downloaded from ${src.url} has checksum ${pulled.manifestDigest.replace(/^sha256:/u, '')}, which does not match: ${src.sha256}`,
          };
        }
        bytes = pulled.bytes;
      }
      if (this.options.maxBytes !== undefined && bytes.length > this.options.maxBytes) {
        return {
          ok: false,
          message: `Wasm module ${src.url} is ${bytes.length} bytes, more than the limit of ${this.options.maxBytes}`,
        };
      }
      if (bytes.length < 4 || WASM_MAGIC.some((b, i) => bytes[i] !== b))
        return { ok: false, message: `fetched Wasm binary from ${src.url} is invalid` };
      const sum = sha256Hex(bytes);
      if (src.type === 'HTTP' && src.sha256 !== undefined && src.sha256 !== sum) {
        return {
          ok: false,
          message: `module downloaded from ${src.url} has checksum ${sum}, which does not match: ${src.sha256}`,
        };
      }
      return { ok: true, servingUrl: this.servingUrl(src.url), sha256: sum };
    } catch (e: unknown) {
      return { ok: false, message: `failed to get Wasm module ${src.url}: ${errorMessage(e)}` };
    }
  }
}
