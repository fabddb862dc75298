/**
 * How Wasm code sources reach the translator already resolved.
 *
 * The translator is pure (STYLE.md §1), but a policy's `wasm[].code` names a module somewhere
 * on the network. So resolution happens before translation, in two steps:
 *
 *   1. `wasmModuleRequests(snapshot)` lists every code source of every policy (with the pull
 *      secret's contents already looked up), deterministically;
 *   2. `resolveWasmModules(requests, resolver)` asks a `WasmModuleResolver` (the module cache of
 *      `controlplane/wasm-cache/`, or the deterministic resolver in tests and `--offline`)
 *      for each, concurrently, and returns a synchronous `WasmModuleLookup`;
 *
 * then `translateGatewayApi(snapshot, { wasmModules: lookup })` reads the results. A failure
 * becomes the policy's `Accepted=False` condition with the `Wasm: ` prefix; a fail-closed entry
 * turns the targeted routes into 500 direct responses.
 */
import { createHash } from 'node:crypto';
import { errorMessage } from '../../common/errors.js';
import { concat } from '../ir/names.js';

/** A policy's code source, as the module cache needs it. */
export type WasmCodeSource =
  | {
      readonly type: 'HTTP';
      /** The URL from the policy, unchanged. */
      readonly url: string;
      /** Expected sha256 of the .wasm file (lower-case hex), when the policy gives one. */
      readonly sha256?: string;
      /** PEM CA bundle from `http.tls.caCertificateRef`, when given. */
      readonly caCertificate?: string;
    }
  | {
      readonly type: 'Image';
      /** Normalised: `oci://` prefix, `:latest` appended when neither tag nor digest is given. */
      readonly url: string;
      /** Expected OCI manifest digest (hex, without `sha256:`), when the policy gives one. */
      readonly sha256?: string;
      /** `.dockerconfigjson` contents of `image.pullSecretRef` (decoded JSON text), when given. */
      readonly dockerConfigJson?: string;
      /** `namespace/name` of the pull secret, for messages and permission caching. */
      readonly pullSecret?: string;
      readonly caCertificate?: string;
    };

/** Which policy entry asks. The cache uses it for `pullPolicy: Always` (re-pull when the policy changes) and for logs. */
export interface WasmPolicyIdentity {
  readonly namespace: string;
  readonly name: string;
  /** Index in `spec.wasm`. */
  readonly index: number;
  readonly resourceVersion?: string;
  readonly generation?: number;
}

export interface WasmModuleRequest {
  readonly source: WasmCodeSource;
  readonly policy: WasmPolicyIdentity;
  readonly pullPolicy: 'IfNotPresent' | 'Always';
}

export type WasmResolution =
  | {
      readonly ok: true;
      /** URL Envoy fetches the module from (the cache's HTTP server). */
      readonly servingUrl: string;
      /** sha256 (hex) of the .wasm bytes served at `servingUrl`; Envoy verifies it. */
      readonly sha256: string;
    }
  | {
      readonly ok: false;
      /** Becomes `Wasm: <message>.` in the policy status, e.g. `module downloaded from <url> has checksum <x>, which does not match: <y>`. */
      readonly message: string;
    };

/** Implemented by the module cache (`controlplane/wasm-cache/`). May fetch; must not throw (return `ok: false`). */
export interface WasmModuleResolver {
  resolve(request: WasmModuleRequest): Promise<WasmResolution>;
}

/** What the translator reads: resolutions by request, synchronously. */
export interface WasmModuleLookup {
  /** The resolution for this request, or undefined when it was never resolved. */
  lookup(request: WasmModuleRequest): WasmResolution | undefined;
  /**
   * Optional: a string that changes whenever any resolution changes. A TranslationCache keeps its
   * memo across calls when it is equal, even if the lookup is a new object each time.
   */
  fingerprint?(): string;
}

/** Identity of a request: same policy entry and same source → same resolution. */
export function wasmRequestKey(request: WasmModuleRequest): string {
  const s = request.source;
  return JSON.stringify([
    request.policy.namespace,
    request.policy.name,
    request.policy.index,
    s.type,
    s.url,
    s.sha256 ?? '',
    s.type === 'Image' ? (s.pullSecret ?? '') : '',
    // Secrets change without the policy changing; hash them so the key follows the credentials.
    s.type === 'Image' && s.dockerConfigJson !== undefined
      ? createHash('sha256').update(s.dockerConfigJson).digest('hex')
      : '',
    request.pullPolicy,
  ]);
}

/** A lookup over precomputed resolutions. */
export class ResolvedWasmModules implements WasmModuleLookup {
  private readonly byKey = new Map<string, WasmResolution>();
  set(request: WasmModuleRequest, resolution: WasmResolution): void {
    this.byKey.set(wasmRequestKey(request), resolution);
  }
  lookup(request: WasmModuleRequest): WasmResolution | undefined {
    return this.byKey.get(wasmRequestKey(request));
  }
  get size(): number {
    return this.byKey.size;
  }
  fingerprint(): string {
    const parts: string[] = [];
    for (const [k, r] of this.byKey) parts.push(k, r.ok ? `${r.servingUrl} ${r.sha256}` : `! ${r.message}`);
    return parts.join('\n');
  }
}

/**
 * Resolves every request through `resolver`, at most `concurrency` at a time. A resolver that
 * throws (it should not) is reported as a failed resolution with its message.
 */
export async function resolveWasmModules(
  requests: readonly WasmModuleRequest[],
  resolver: WasmModuleResolver,
  concurrency = 4,
): Promise<ResolvedWasmModules> {
  const out = new ResolvedWasmModules();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const req = requests[next++];
      if (req === undefined) break;
      let res: WasmResolution;
      try {
        res = await resolver.resolve(req);
      } catch (e: unknown) {
        res = { ok: false, message: errorMessage(e) };
      }
      out.set(req, res);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, requests.length)) }, worker));
  return out;
}

/**
 * Normalises an image URL the way Envoy Gateway does: prefix `oci://` when absent; append
 * `:latest` when the reference has neither a digest (`@`) nor a tag (a `:` in the last path
 * segment — a `:` in the host is a port).
 */
export function normalizeImageUrl(url: string): string {
  // Flat strings (concat): these URLs live as long as the translation, one per policy entry.
  const withScheme = url.startsWith('oci://') ? url : concat('oci://', url);
  const rest = withScheme.slice('oci://'.length);
  if (rest.includes('@')) return withScheme;
  const lastSegment = rest.slice(rest.lastIndexOf('/') + 1);
  if (rest.includes('/') && lastSegment.includes(':')) return withScheme;
  return concat(withScheme, ':latest');
}

/** The default pull policy: `Always` for OCI `:latest`, else `IfNotPresent`. */
export function defaultPullPolicy(source: WasmCodeSource): 'IfNotPresent' | 'Always' {
  return source.type === 'Image' && source.sha256 === undefined && source.url.endsWith(':latest')
    ? 'Always'
    : 'IfNotPresent';
}

const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Envoy Gateway's golden-file mock cache (`internal/gatewayapi/translator_test.go`), used by
 * tests and `envext translate --offline`: no network, deterministic results.
 *
 *   servingURL = https://envoy-gateway.<ns>.svc.cluster.local:18002/<hex sha256(url)>.wasm
 *   checksum   = hex sha256("salt" + hex sha256(url))
 *
 * A user sha256 that differs gives Envoy Gateway's checksum-mismatch message (for HTTP and
 * image sources alike, as in the mock).
 */
export class DeterministicWasmResolver implements WasmModuleResolver, WasmModuleLookup {
  constructor(private readonly controllerNamespace = 'envoy-gateway-system') {}

  private readonly memo = new Map<string, WasmResolution>();

  resolveSync(request: WasmModuleRequest): WasmResolution {
    const memoKey = concat(request.source.url, '\n', request.source.sha256 ?? '');
    const known = this.memo.get(memoKey);
    if (known !== undefined) return known;
    const r = this.compute(request);
    this.memo.set(memoKey, r);
    return r;
  }

  private compute(request: WasmModuleRequest): WasmResolution {
    const url = request.source.url;
    const hash = sha256Hex(url);
    const checksum = sha256Hex(`salt${hash}`);
    const servingUrl = concat(
      'https://envoy-gateway.',
      this.controllerNamespace,
      '.svc.cluster.local:18002/',
      hash,
      '.wasm',
    );
    const want = request.source.sha256;
    if (want !== undefined && want !== '' && want !== checksum) {
      return {
        ok: false,
        message: `module downloaded from ${url} has checksum ${checksum}, which does not match: ${want}`,
      };
    }
    return { ok: true, servingUrl, sha256: checksum };
  }

  resolve(request: WasmModuleRequest): Promise<WasmResolution> {
    return Promise.resolve(this.resolveSync(request));
  }

  lookup(request: WasmModuleRequest): WasmResolution {
    return this.resolveSync(request);
  }
}
