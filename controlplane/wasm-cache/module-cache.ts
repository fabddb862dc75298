/**
 * The Wasm module cache: resolves a policy's code source (HTTPS or OCI image) to a verified
 * module stored on disk and served to Envoy at an unguessable URL. It implements part 1's
 * `WasmModuleResolver`, after Envoy Gateway's `internal/wasm` (reference
 * eg-extension-policy.md §e.4):
 *
 *   <dir>/<hex sha256(module name)>/<hex sha256(module)>.wasm     module name = HTTP URL, or
 *   <dir>/index.json                                              oci://<repository> (no tag)
 *
 * - Serving path: `/<base64url(HMAC-SHA256(secret, source URL))>.wasm`. It depends on the URL
 *   only and points at the newest good module for it; without the secret no one can guess the
 *   path of a private image (EG uses sha256(url + salt) the same way).
 * - Verification: the `\0asm` magic, the expected sha256 (HTTP: of the file; OCI: of the
 *   manifest), and a size cap per module.
 * - Pull policy: `IfNotPresent` answers from the cache; `Always` re-checks when the policy's
 *   resourceVersion changed since the last check for that policy entry (an OCI `HEAD` decides
 *   whether to download). `:latest` images default to `Always` (decided by part 1).
 * - Private images: a module pulled with a pull secret remembers it; a cache hit by a request
 *   with other credentials (or none) re-checks pull permission with *its* credentials
 *   (a manifest `HEAD`), cached for 1 h, so one policy cannot ride on another's secret.
 * - Failures: one backoff per URL (1 s doubling to 5 min); after 10 failures the URL fails fast
 *   until the record is an hour old. A failed re-pull keeps serving the last good module.
 * - Limits: a total size cap (1 GiB default; a module that does not fit is an error, like EG's
 *   "wasm cache size exceeded the limit") and a purge of modules untouched for 24 h.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { rootLogger, type Logger } from '../../common/log.js';
import {
  RegistryClient,
  dockerConfigJsonCredentials,
  parseReference,
  pullWasmModule,
  type CredentialProvider,
} from '../../oci/index.js';
import type { WasmModuleRequest, WasmModuleResolver, WasmResolution } from '../gatewayapi/wasm-modules.js';
import { concat } from '../ir/names.js';
import { httpFetch } from './http-fetch.js';

export const DEFAULT_CACHE_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MODULE_MAX_BYTES = 256 * 1024 * 1024;
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

export interface WasmCacheOptions {
  /** Where modules are stored. */
  readonly dir: string;
  /** Base URL Envoy reaches the module server at, e.g. `http://127.0.0.1:18002`. */
  readonly servingBaseUrl: string;
  /** HMAC key for serving paths; random per process when absent (paths then change on restart). */
  readonly secret?: Buffer;
  readonly maxBytes?: number;
  readonly maxModuleBytes?: number;
  /** Modules untouched this long are purged (default 24 h). */
  readonly maxIdleMs?: number;
  readonly httpTimeoutMs?: number;
  readonly httpRetries?: number;
  readonly httpBackoffMs?: number;
  /** Failures of one URL before it fails fast (default 10), and how long that lasts (1 h). */
  readonly failureLimit?: number;
  readonly failureTtlMs?: number;
  /** First backoff after a failure (default 1 s, doubling to 5 min). */
  readonly failureBackoffMs?: number;
  /** How long a pull-permission check stays valid (default 1 h). */
  readonly permissionTtlMs?: number;
  /** Registry connection settings for every OCI source (a source's CA is added). */
  readonly oci?: { readonly plainHttp?: boolean; readonly insecure?: boolean; readonly caCerts?: readonly string[] };
  readonly now?: () => number;
  readonly log?: Logger;
}

/** One cached module of one source URL. */
interface Entry {
  readonly url: string;
  /** hex sha256 of the module bytes. */
  readonly sha256: string;
  /** `sha256:…` of the OCI manifest (images only). */
  readonly manifestDigest?: string;
  readonly size: number;
  readonly file: string;
  /** Hash of the pull secret the module was pulled with; absent = pulled anonymously. */
  readonly secretHash?: string;
  lastUsed: number;
}

interface Failure {
  count: number;
  first: number;
  next: number;
  message: string;
}

function hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** EG's module name: the HTTP URL, or `oci://<registry>/<repository>` without tag or digest. */
export function moduleName(request: WasmModuleRequest): string {
  if (request.source.type === 'HTTP') return request.source.url;
  const ref = parseReference(request.source.url.replace(/^oci:\/\//, ''));
  return `oci://${ref.registry}/${ref.repository}`;
}

export class WasmModuleCache implements WasmModuleResolver {
  private readonly secret: Buffer;
  private readonly entries = new Map<string, Entry>(); // by source URL
  private readonly paths = new Map<string, string>(); // serving path → source URL
  private readonly failures = new Map<string, Failure>();
  private readonly permissions = new Map<string, number>(); // url|secretHash → checked at
  private readonly checkedVersions = new Map<string, string>(); // policy entry → resourceVersion
  private readonly inflight = new Map<string, Promise<WasmResolution>>();
  private readonly log: Logger;
  private loaded = false;

  constructor(private readonly options: WasmCacheOptions) {
    this.secret = options.secret ?? randomBytes(32);
    this.log = options.log ?? rootLogger.child({ component: 'wasm-cache' });
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** The serving path of a source URL (`/<hmac>.wasm`). */
  servingPath(url: string): string {
    return `/${createHmac('sha256', this.secret).update(url).digest('base64url')}.wasm`;
  }

  /** Total bytes stored. */
  totalBytes(): number {
    let n = 0;
    const seen = new Set<string>();
    for (const e of this.entries.values()) {
      if (seen.has(e.file)) continue;
      seen.add(e.file);
      n += e.size;
    }
    return n;
  }

  /** The module file for a serving path, or undefined (→ 404). Touches the entry. */
  lookupPath(path: string): { file: string; size: number; sha256: string } | undefined {
    const url = this.paths.get(path);
    const e = url === undefined ? undefined : this.entries.get(url);
    if (e === undefined) return undefined;
    e.lastUsed = this.now();
    return { file: e.file, size: e.size, sha256: e.sha256 };
  }

  async resolve(request: WasmModuleRequest): Promise<WasmResolution> {
    await this.load();
    // Concurrent requests for the same source and credentials share one pull.
    const key = `${request.source.url}|${this.secretHash(request) ?? ''}|${request.pullPolicy}|${request.policy.resourceVersion ?? ''}`;
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const p = this.resolveOnce(request).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private secretHash(request: WasmModuleRequest): string | undefined {
    return request.source.type === 'Image' && request.source.dockerConfigJson !== undefined
      ? hex(request.source.dockerConfigJson)
      : undefined;
  }

  private served(e: Entry): WasmResolution {
    e.lastUsed = this.now();
    this.paths.set(this.servingPath(e.url), e.url);
    return {
      ok: true,
      servingUrl: concat(this.options.servingBaseUrl.replace(/\/$/, ''), this.servingPath(e.url)),
      sha256: e.sha256,
    };
  }

  private async resolveOnce(request: WasmModuleRequest): Promise<WasmResolution> {
    const { source } = request;
    const url = source.url;
    const entry = this.entries.get(url);
    const policyKey = `${request.policy.namespace}/${request.policy.name}#${request.policy.index}|${url}`;
    const version = request.policy.resourceVersion ?? String(request.policy.generation ?? '');
    const versionChanged = this.checkedVersions.get(policyKey) !== version;

    const failure = this.failures.get(url);
    if (failure !== undefined && this.now() - failure.first > (this.options.failureTtlMs ?? 3_600_000))
      this.failures.delete(url);

    // Cache hit?
    if (entry !== undefined) {
      const pinned = source.sha256;
      const pinMatches =
        pinned === undefined ||
        (source.type === 'HTTP'
          ? entry.sha256 === pinned.toLowerCase()
          : entry.manifestDigest === `sha256:${pinned.replace(/^sha256:/, '')}`);
      const wantsRepull = request.pullPolicy === 'Always' && versionChanged && pinned === undefined;
      if (pinMatches && !wantsRepull) {
        const denied = await this.checkPermission(request, entry);
        if (denied !== undefined) return { ok: false, message: denied };
        this.checkedVersions.set(policyKey, version);
        return this.served(entry);
      }
    }

    const fastFail = this.fastFail(url, entry);
    if (fastFail !== undefined) return fastFail;

    try {
      const fetched = source.type === 'HTTP' ? await this.fetchHttp(request) : await this.fetchImage(request, entry);
      this.failures.delete(url);
      this.checkedVersions.set(policyKey, version);
      if (fetched === 'unchanged' && entry !== undefined) return this.served(entry);
      if (fetched === 'unchanged') throw new Error('internal: unchanged without an entry');
      const stored = await this.store(url, fetched.bytes, fetched.manifestDigest, this.secretHash(request));
      if (typeof stored === 'string') return { ok: false, message: stored };
      return this.served(stored);
    } catch (e: unknown) {
      const message = errorMessage(e);
      this.recordFailure(url, message);
      if (entry !== undefined && request.pullPolicy === 'Always' && source.sha256 === undefined) {
        // A failed re-pull keeps the last good module serving.
        this.log.warn('re-pull failed; serving the last good module', { url, error: message, sha256: entry.sha256 });
        return this.served(entry);
      }
      this.log.warn('module fetch failed', {
        url,
        policy: `${request.policy.namespace}/${request.policy.name}`,
        error: message,
      });
      return { ok: false, message };
    }
  }

  private fastFail(url: string, entry: Entry | undefined): WasmResolution | undefined {
    const f = this.failures.get(url);
    if (f === undefined) return undefined;
    if (f.count >= (this.options.failureLimit ?? 10)) {
      return { ok: false, message: `failed to get Wasm module ${url} after ${f.count} attempts` };
    }
    if (this.now() < f.next) {
      if (entry !== undefined) return this.served(entry);
      return { ok: false, message: f.message };
    }
    return undefined;
  }

  private recordFailure(url: string, message: string): void {
    const now = this.now();
    const f = this.failures.get(url) ?? { count: 0, first: now, next: now, message };
    f.count++;
    f.message = message;
    const base = this.options.failureBackoffMs ?? 1000;
    f.next = now + Math.min(base * 2 ** (f.count - 1), 300_000);
    this.failures.set(url, f);
  }

  private async fetchHttp(request: WasmModuleRequest): Promise<{ bytes: Buffer; manifestDigest?: string }> {
    const { source } = request;
    const bytes = await httpFetch(source.url, {
      maxBytes: this.options.maxModuleBytes ?? DEFAULT_MODULE_MAX_BYTES,
      ...(this.options.httpTimeoutMs === undefined ? {} : { timeoutMs: this.options.httpTimeoutMs }),
      ...(this.options.httpRetries === undefined ? {} : { retries: this.options.httpRetries }),
      ...(this.options.httpBackoffMs === undefined ? {} : { backoffMs: this.options.httpBackoffMs }),
      ...(source.caCertificate === undefined ? {} : { ca: source.caCertificate }),
    });
    if (!bytes.subarray(0, 4).equals(WASM_MAGIC)) throw new Error(`fetched Wasm binary from ${source.url} is invalid`);
    const sum = hex(bytes);
    if (source.sha256 !== undefined && source.sha256.toLowerCase() !== sum) {
      throw new Error(
        `module downloaded from ${source.url} has checksum ${sum}, which does not match: ${source.sha256}`,
      );
    }
    return { bytes };
  }

  private client(request: WasmModuleRequest): RegistryClient {
    const oci = this.options.oci ?? {};
    const source = request.source;
    const caCerts = [...(oci.caCerts ?? []), ...(source.caCertificate === undefined ? [] : [source.caCertificate])];
    const credentials: CredentialProvider | undefined =
      source.type === 'Image' && source.dockerConfigJson !== undefined
        ? dockerConfigJsonCredentials(source.dockerConfigJson, `secret ${source.pullSecret ?? '(pull secret)'}`)
        : undefined;
    return new RegistryClient({
      ...(credentials === undefined ? {} : { credentials }),
      ...(oci.plainHttp === undefined ? {} : { plainHttp: oci.plainHttp }),
      ...(oci.insecure === undefined ? {} : { insecure: oci.insecure }),
      ...(caCerts.length === 0 ? {} : { caCerts }),
    });
  }

  private async fetchImage(
    request: WasmModuleRequest,
    entry: Entry | undefined,
  ): Promise<{ bytes: Buffer; manifestDigest: string } | 'unchanged'> {
    const reference = request.source.url.replace(/^oci:\/\//, '');
    const client = this.client(request);
    try {
      if (entry?.manifestDigest !== undefined && request.source.sha256 === undefined) {
        // Always: one HEAD decides whether anything changed.
        const head = await client.headManifest(parseReference(reference));
        if (head?.digest === entry.manifestDigest) return 'unchanged';
      }
      const pulled = await pullWasmModule(reference, {
        client,
        pullPolicy: 'Always',
        maxBytes: this.options.maxModuleBytes ?? DEFAULT_MODULE_MAX_BYTES,
        ...(request.source.sha256 === undefined ? {} : { expectedManifestDigest: request.source.sha256 }),
      });
      if (!pulled.bytes.subarray(0, 4).equals(WASM_MAGIC))
        throw new Error(`fetched Wasm binary from ${request.source.url} is invalid`);
      return { bytes: pulled.bytes, manifestDigest: pulled.manifestDigest };
    } finally {
      await client.close();
    }
  }

  /**
   * Private images: a hit by a request whose credentials differ from the ones the module was
   * pulled with re-checks pull permission with the request's own credentials. Returns the
   * denial message, or undefined when allowed.
   */
  private async checkPermission(request: WasmModuleRequest, entry: Entry): Promise<string | undefined> {
    if (request.source.type !== 'Image' || entry.secretHash === undefined) return undefined;
    const mine = this.secretHash(request);
    if (mine === entry.secretHash) return undefined;
    const key = `${request.source.url}|${mine ?? 'anonymous'}`;
    const checked = this.permissions.get(key);
    if (checked !== undefined && this.now() - checked < (this.options.permissionTtlMs ?? 3_600_000)) return undefined;
    const client = this.client(request);
    try {
      await client.headManifest(parseReference(request.source.url.replace(/^oci:\/\//, '')));
      this.permissions.set(key, this.now());
      return undefined;
    } catch (e: unknown) {
      this.permissions.delete(key);
      const who =
        request.source.pullSecret === undefined ? 'without a pull secret' : `with secret ${request.source.pullSecret}`;
      return `not allowed to pull ${request.source.url} ${who}: ${errorMessage(e)}`;
    } finally {
      await client.close();
    }
  }

  private async store(
    url: string,
    bytes: Buffer,
    manifestDigest: string | undefined,
    secretHash: string | undefined,
  ): Promise<Entry | string> {
    const sha256 = hex(bytes);
    const dir = join(this.options.dir, hex(url.startsWith('oci://') ? moduleNameOfImage(url) : url));
    const file = join(dir, `${sha256}.wasm`);
    const previous = this.entries.get(url);
    const alreadyStored = [...this.entries.values()].some((e) => e.file === file);
    const limit = this.options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    if (!alreadyStored) {
      const after =
        this.totalBytes() - (previous !== undefined && !this.shared(previous) ? previous.size : 0) + bytes.length;
      if (after > limit) return `wasm cache size exceeded the limit: ${limit}`;
      await mkdir(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
    }
    const entry: Entry = {
      url,
      sha256,
      size: bytes.length,
      file,
      lastUsed: this.now(),
      ...(manifestDigest === undefined ? {} : { manifestDigest }),
      ...(secretHash === undefined ? {} : { secretHash }),
    };
    this.entries.set(url, entry);
    // The old module of this URL is no longer served; remove its file unless another URL uses it.
    if (previous !== undefined && previous.file !== file && !this.shared(previous))
      await rm(previous.file, { force: true });
    await this.saveIndex();
    this.log.info('module cached', { url, sha256, size: bytes.length });
    return entry;
  }

  private shared(e: Entry): boolean {
    for (const other of this.entries.values()) if (other !== e && other.file === e.file) return true;
    return false;
  }

  /** Removes modules untouched for `maxIdleMs`; returns the URLs purged. */
  async purge(): Promise<string[]> {
    await this.load();
    const cutoff = this.now() - (this.options.maxIdleMs ?? 24 * 3_600_000);
    const purged: string[] = [];
    for (const [url, e] of [...this.entries]) {
      if (e.lastUsed >= cutoff) continue;
      this.entries.delete(url);
      this.paths.delete(this.servingPath(url));
      if (!this.shared(e)) await rm(e.file, { force: true });
      purged.push(url);
    }
    if (purged.length > 0) {
      await this.saveIndex();
      this.log.info('purged unused modules', { count: purged.length });
    }
    return purged;
  }

  private indexFile(): string {
    return join(this.options.dir, 'index.json');
  }

  /** Reads the index written by a previous run (modules survive restarts). */
  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    await mkdir(this.options.dir, { recursive: true });
    let text: string;
    try {
      text = await readFile(this.indexFile(), 'utf8');
    } catch {
      return;
    }
    try {
      const list = JSON.parse(text) as Entry[];
      for (const e of list) {
        const s = await stat(e.file).catch(() => undefined);
        if (s === undefined || s.size !== e.size) continue;
        this.entries.set(e.url, { ...e });
        this.paths.set(this.servingPath(e.url), e.url);
      }
    } catch (e: unknown) {
      this.log.warn('ignoring an unreadable cache index', { file: this.indexFile(), error: errorMessage(e) });
    }
  }

  private async saveIndex(): Promise<void> {
    const tmp = `${this.indexFile()}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify([...this.entries.values()], null, 1));
    await rename(tmp, this.indexFile());
  }
}

function moduleNameOfImage(url: string): string {
  const ref = parseReference(url.replace(/^oci:\/\//, ''));
  return `oci://${ref.registry}/${ref.repository}`;
}
