/**
 * Pulling Wasm modules: the programmatic API the control plane's module cache builds on.
 *
 * ```ts
 * import { pullWasmModule, dockerConfigJsonCredentials, ModuleCache } from '../oci/index.js';
 * const cache = new ModuleCache('/var/cache/envext/wasm');
 * const m = await pullWasmModule('oci://registry.example/filters/auth:v1', {
 *   credentials: dockerConfigJsonCredentials(secret.data['.dockerconfigjson'], 'secret default/regcred'),
 *   cache,
 *   pullPolicy: 'IfNotPresent',
 * });
 * m.bytes;            // the module
 * m.manifestDigest;   // 'sha256:…' — what EG's code.image.sha256 pins
 * m.moduleSha256;     // hex — what Envoy's RemoteDataSource.sha256 checks
 * m.path;             // the cached file, servable as is
 * ```
 *
 * Pull policy, as Istio and Envoy Gateway (reference oci.md §1.8): `IfNotPresent` answers from
 * the cache without touching the registry when the reference is pinned (`@sha256:` or
 * `expectedManifestDigest`) or was resolved before; `Always` asks the registry for the current
 * manifest digest (one `HEAD`) and downloads only when that digest is not cached. The default is
 * `IfNotPresent`, except for the tag `latest`, which defaults to `Always`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { rootLogger } from '../common/log.js';
import type { CachedModule, ModuleCache } from './cache.js';
import type { CredentialProvider } from './credentials.js';
import { digestHex, sha256Digest } from './digest.js';
import { OciError } from './errors.js';
import { detectLayout, envoyGatewayCompatible, extractModule, type WasmImage, type WasmLayout } from './layouts.js';
import { formatReference, parseReference, repositoryName, type Reference } from './reference.js';
import { RegistryClient, type FetchedManifest, type ProgressFn } from './registry-client.js';
import { DEFAULT_MAX_MODULE_BYTES } from './wasm.js';

const log = rootLogger.child({ component: 'oci' });

/** When to ask the registry (Istio/EG semantics; see the file comment). */
export type PullPolicy = 'IfNotPresent' | 'Always';
/** Every pull policy, for flag validation. */
export const PULL_POLICIES: readonly PullPolicy[] = ['IfNotPresent', 'Always'];

/** Connection settings shared by pull, push and inspect. */
export interface RegistryConnectionOptions {
  /** Credentials; anonymous when absent. */
  readonly credentials?: CredentialProvider;
  /** Plain HTTP for every host (loopback hosts fall back to it anyway). */
  readonly plainHttp?: boolean;
  /** Skip TLS verification. */
  readonly insecure?: boolean;
  /** Extra CA certificates (PEM). */
  readonly caCerts?: readonly (string | Buffer)[];
  /** Reuse a client (its connection pool and token cache). Its own settings win over the three above. */
  readonly client?: RegistryClient;
  readonly signal?: AbortSignal;
}

/** Options of `pullWasmModule` and `resolveWasmModule`. */
export interface PullOptions extends RegistryConnectionOptions {
  /** The on-disk cache; without one every call downloads and nothing is written. */
  readonly cache?: ModuleCache;
  /** Default: `IfNotPresent`, or `Always` for the tag `latest`. */
  readonly pullPolicy?: PullPolicy;
  /**
   * A manifest digest the image must have (EG's `code.image.sha256`, with or without `sha256:`).
   * A pinned reference is answered from the cache without a registry call.
   */
  readonly expectedManifestDigest?: string;
  /**
   * On a cache hit, still prove that these credentials may read the image: one `HEAD` of the
   * manifest by digest (Envoy Gateway's permission check for private images). Without it a
   * module cached for one pull secret is served to any caller that names it.
   */
  readonly verifyAccess?: boolean;
  /** Module size cap (and cap of the layer download). Default 256 MiB. */
  readonly maxBytes?: number;
  readonly onProgress?: ProgressFn;
}

/** A resolved module, without its bytes. */
export interface ResolvedModule {
  /** Canonical reference: `registry/repository:tag` or `…@sha256:…`. */
  readonly reference: string;
  /** `sha256:` of the manifest bytes — what `@sha256:` references and EG's `code.image.sha256` pin. */
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  /** `sha256:` of the module bytes. */
  readonly moduleDigest: string;
  /** Hex sha256 of the module — what Envoy's `RemoteDataSource.sha256` (and EG's `code.http.sha256`) checks. */
  readonly moduleSha256: string;
  readonly layout: WasmLayout;
  /** True when Envoy Gateway and Istio can pull this layout. */
  readonly envoyGatewayCompatible: boolean;
  /** Module size in bytes. */
  readonly size: number;
  /** The cached module file, when a cache was given. */
  readonly path?: string;
  /** True when no registry request was needed. */
  readonly fromCache: boolean;
}

/** A pulled module with its bytes. */
export interface PulledModule extends ResolvedModule {
  readonly bytes: Buffer;
}

function normaliseExpected(d: string | undefined): string | undefined {
  if (d === undefined) return undefined;
  const v = d.startsWith('sha256:') ? d : `sha256:${d}`;
  if (!/^sha256:[a-f0-9]{64}$/.test(v)) {
    throw new OciError('OCI_DIGEST_INVALID', `expected manifest digest "${d}" is not 64 lowercase hex characters`, {
      hint: 'give the sha256 of the image manifest, e.g. from envext oci push or envext oci inspect',
    });
  }
  return v;
}

/** The client for a call: the caller's, or a new one closed at the end. */
export function clientFor(opts: RegistryConnectionOptions): { client: RegistryClient; owned: boolean } {
  if (opts.client !== undefined) return { client: opts.client, owned: false };
  return {
    client: new RegistryClient({
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
      ...(opts.plainHttp === undefined ? {} : { plainHttp: opts.plainHttp }),
      ...(opts.insecure === undefined ? {} : { insecure: opts.insecure }),
      ...(opts.caCerts === undefined ? {} : { caCerts: opts.caCerts }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    }),
    owned: true,
  };
}

function fromCached(reference: string, c: CachedModule, fromCache: boolean): ResolvedModule {
  return {
    reference,
    manifestDigest: c.manifestDigest,
    manifestMediaType: c.manifestMediaType,
    moduleDigest: c.moduleDigest,
    moduleSha256: digestHex(c.moduleDigest),
    layout: c.layout,
    envoyGatewayCompatible: envoyGatewayCompatible(c.layout),
    size: c.size,
    path: c.path,
    fromCache,
  };
}

/**
 * Downloads the module a manifest describes, verifies and validates it. With `writeTo` (a
 * temporary file the caller renames on success and deletes on failure) a raw layer (every layout
 * but compat) is also written there while it downloads; `written` says whether that happened.
 */
export async function fetchModule(
  client: RegistryClient,
  ref: Reference,
  manifest: FetchedManifest,
  opts: { maxBytes?: number; onProgress?: ProgressFn; writeTo?: string } = {},
): Promise<{ image: WasmImage; module: Buffer; written: boolean }> {
  const subject = formatReference(ref);
  const image = detectLayout(manifest, subject);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODULE_BYTES;
  const raw = image.layout !== 'compat' && image.layout !== 'compat-docker';
  const fh = opts.writeTo !== undefined && raw ? await open(opts.writeTo, 'w') : undefined;
  let blob: Buffer;
  try {
    blob = await client.fetchBlob(ref, image.layer, {
      maxBytes,
      ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
      ...(fh === undefined ? {} : { writeTo: fh }),
    });
  } finally {
    await fh?.close();
  }
  return { image, module: extractModule(image, blob, subject, maxBytes), written: fh !== undefined };
}

/**
 * Resolves a reference to a verified module in the cache (downloading it when the policy says
 * so) and returns its digests and path, without reading the bytes. Without a cache it downloads
 * and returns no `path`.
 */
export async function resolveWasmModule(reference: string, opts: PullOptions = {}): Promise<ResolvedModule> {
  const r = await pull(reference, opts, false);
  return r.resolved;
}

/** Options of `pullWasmModule`. */
export interface PullModuleOptions extends PullOptions {
  /**
   * Also write the module to this file. A regular file (or a new one) is replaced atomically: a
   * temporary file next to it, written while the module downloads, renamed once every digest is
   * verified (with the old file's mode), so the path never shows a partial or unverified module.
   * Anything else (a symlink, a device, a FIFO) is written to once the module is verified.
   */
  readonly outputFile?: string;
}

/** Like `resolveWasmModule`, and also returns the module bytes (and writes `outputFile`). */
export async function pullWasmModule(reference: string, opts: PullModuleOptions = {}): Promise<PulledModule> {
  const out = opts.outputFile;
  // A symlink is written through, like any other non-regular path; a regular file keeps its mode.
  const existing = out === undefined ? undefined : await lstat(out).catch(() => undefined);
  const atomic = out !== undefined && (existing?.isFile() ?? true);
  const temp = atomic ? join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`) : undefined;
  try {
    const r = await pull(reference, opts, true, temp);
    const bytes = r.bytes ?? (await readFile(r.resolved.path ?? ''));
    if (temp !== undefined && out !== undefined) {
      if (r.written !== true) await writeFile(temp, bytes);
      if (existing !== undefined) await chmod(temp, existing.mode & 0o7777);
      await rename(temp, out);
    } else if (out !== undefined) {
      await writeFile(out, bytes);
    }
    return { ...r.resolved, bytes };
  } finally {
    if (temp !== undefined) await rm(temp, { force: true });
  }
}

async function pull(
  reference: string,
  opts: PullOptions,
  wantBytes: boolean,
  outputTemp?: string,
): Promise<{ resolved: ResolvedModule; bytes?: Buffer; written?: boolean }> {
  const ref = parseReference(reference);
  const canonical = formatReference(ref);
  const expected = normaliseExpected(opts.expectedManifestDigest);
  if (expected !== undefined && ref.digest !== undefined && ref.digest !== expected) {
    throw new OciError(
      'OCI_DIGEST_MISMATCH',
      `${canonical} pins ${ref.digest}, but the expected manifest digest is ${expected}`,
      {
        hint: 'make the reference digest and the sha256 field agree',
      },
    );
  }
  const pinned = ref.digest ?? expected;
  const policy = opts.pullPolicy ?? (ref.digest === undefined && ref.tag === 'latest' ? 'Always' : 'IfNotPresent');
  const cache = opts.cache;

  if (cache !== undefined && policy === 'IfNotPresent') {
    const digest = pinned ?? (await cache.lookupReference(canonical));
    if (digest !== undefined) {
      const hit = await cache.lookupDigest(digest);
      if (hit !== undefined) {
        if (opts.verifyAccess === true) await verifyAccess(opts, ref, digest, canonical);
        if (log.isEnabled('debug')) log.debug('module cache hit', { reference: canonical, manifestDigest: digest });
        return { resolved: fromCached(canonical, hit, opts.verifyAccess !== true) };
      }
    }
  }

  const { client, owned } = clientFor(opts);
  try {
    if (cache !== undefined && policy === 'Always' && pinned === undefined) {
      // One HEAD tells whether the tag moved; an unchanged digest needs no download.
      const head = await client.headManifest(ref);
      if (head !== undefined) {
        const hit = await cache.lookupDigest(head.digest);
        if (hit !== undefined) {
          await cache.setReference(canonical, head.digest);
          return { resolved: fromCached(canonical, hit, false) };
        }
      }
    }
    const manifest = await client.getManifest(ref);
    if (expected !== undefined && manifest.digest !== expected) {
      throw new OciError(
        'OCI_DIGEST_MISMATCH',
        `${canonical} resolved to manifest ${manifest.digest}, not the expected ${expected}`,
        {
          hint: 'the tag now points at another image; update the pinned sha256 or the tag',
        },
      );
    }
    if (cache !== undefined) {
      const hit = await cache.lookupDigest(manifest.digest);
      if (hit !== undefined) {
        if (ref.digest === undefined) await cache.setReference(canonical, manifest.digest);
        return { resolved: fromCached(canonical, hit, false) };
      }
      const stored = await cache.singleFlight(manifest.digest, () =>
        cache.withLock(manifest.digest, async (): Promise<{ cached: CachedModule; module?: Buffer }> => {
          // Another process may have stored it while this one waited for the lock.
          const done = await cache.lookupDigest(manifest.digest);
          if (done !== undefined) {
            if (ref.digest === undefined) await cache.setReference(canonical, manifest.digest);
            return { cached: done };
          }
          // The module goes to a file in the cache's tmp/ as it downloads, renamed in by `store`.
          const temp = await cache.temporaryPath();
          try {
            const { image, module, written } = await fetchModule(client, ref, manifest, {
              ...withProgress(opts),
              writeTo: temp,
            });
            const record = {
              repository: repositoryName(ref),
              manifestDigest: manifest.digest,
              manifestMediaType: manifest.mediaType,
              layout: image.layout,
              // Raw layouts: the layer digest, verified while downloading, is the module's sha256.
              moduleDigest: image.moduleDigest ?? sha256Digest(module),
              size: module.length,
            };
            const reference = ref.digest === undefined ? canonical : undefined;
            const stored = await cache.store(
              record,
              module,
              manifest.bytes,
              reference,
              written ? { moduleFile: temp } : {},
            );
            return { cached: stored, module };
          } finally {
            await rm(temp, { force: true });
          }
        }),
      );
      log.debug('pulled module', {
        reference: canonical,
        manifestDigest: manifest.digest,
        layout: stored.cached.layout,
      });
      return {
        resolved: fromCached(canonical, stored.cached, false),
        ...(wantBytes && stored.module !== undefined ? { bytes: stored.module } : {}),
      };
    }
    const { image, module, written } = await fetchModule(client, ref, manifest, {
      ...withProgress(opts),
      ...(outputTemp === undefined ? {} : { writeTo: outputTemp }),
    });
    const moduleDigest = image.moduleDigest ?? sha256Digest(module);
    return {
      resolved: {
        reference: canonical,
        manifestDigest: manifest.digest,
        manifestMediaType: manifest.mediaType,
        moduleDigest,
        moduleSha256: digestHex(moduleDigest),
        layout: image.layout,
        envoyGatewayCompatible: envoyGatewayCompatible(image.layout),
        size: module.length,
        fromCache: false,
      },
      bytes: module,
      written,
    };
  } finally {
    if (owned) await client.close();
  }
}

/** `HEAD` of the manifest by digest with the caller's credentials: 401/403 throw, 404 is a miss. */
async function verifyAccess(opts: PullOptions, ref: Reference, digest: string, canonical: string): Promise<void> {
  const { client, owned } = clientFor(opts);
  try {
    const head = await client.headManifest({ registry: ref.registry, repository: ref.repository, digest });
    if (head === undefined) {
      throw new OciError(
        'OCI_MANIFEST_NOT_FOUND',
        `${canonical}: manifest ${digest} is cached but no longer in the registry`,
        {
          hint: 'the image was deleted upstream; push it again or drop the reference',
        },
      );
    }
  } finally {
    if (owned) await client.close();
  }
}

function withProgress(opts: PullOptions): { maxBytes?: number; onProgress?: ProgressFn } {
  return {
    ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }),
    ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
  };
}
