/**
 * A client for the OCI distribution API (reference oci.md §2), written on Node's `fetch`.
 *
 * - Manifests are kept as the exact bytes the registry sent; digests are computed over those
 *   bytes and never over re-serialised JSON.
 * - Blobs are verified while they stream (sha256 and size); an early close resumes with `Range`.
 *   Redirects are followed by hand so `Authorization` never reaches another host.
 * - Uploads: `HEAD` first (skip what exists), cross-repository mount when a source is known
 *   (falling back to an upload on 202), one `PUT` for small blobs, `PATCH` chunks with
 *   `Content-Range` above `chunkThreshold`. The newest `Location` is always used verbatim.
 *   `pushBlobFrom` uploads bytes still being read and hashed, with the `HEAD` in parallel.
 * - Blob bodies (uploads above 1 MiB, every download) go through undici's `request`; a download
 *   can also be written to a file as it arrives (`fetchBlob`'s `writeTo`).
 * - 408/429/5xx and network errors are retried with exponential backoff (`Retry-After` honoured).
 * - Hosts on loopback (`localhost`, 127.0.0.0/8, `::1`) fall back to plain HTTP when HTTPS does
 *   not answer, as go-containerregistry does; any other host needs `plainHttp`.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, getGlobalDispatcher, request } from 'undici';
import { rootLogger } from '../common/log.js';
import { Authenticator, readCapped, readCappedBytes } from './auth.js';
import { parseChallenges } from './challenge.js';
import type { CredentialProvider } from './credentials.js';
import { assertDigest, sha256Digest } from './digest.js';
import { OciError, type OciErrorCode } from './errors.js';
import { MANIFEST_ACCEPT, MediaType } from './media-types.js';
import { apiHost, isLoopbackRegistry, referenceTarget, type Reference } from './reference.js';

const log = rootLogger.child({ component: 'oci' });

/** A content descriptor (image-spec). */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly artifactType?: string;
  readonly platform?: { readonly architecture?: string; readonly os?: string };
}

/** A repository on a registry. */
export interface Repository {
  readonly registry: string;
  readonly repository: string;
}

/** A manifest exactly as the registry served it. */
export interface FetchedManifest {
  /** The bytes as received; hash and re-push these, never a re-serialisation. */
  readonly bytes: Buffer;
  /** `sha256:` of `bytes`: what `@sha256:` references and EG's `code.image.sha256` pin. */
  readonly digest: string;
  /** From `Content-Type` (parameters stripped), or the body's `mediaType` when the header is generic. */
  readonly mediaType: string;
}

/** Progress of one transfer: bytes done of `total`. */
export type ProgressFn = (done: number, total: number) => void;

/** Options of `RegistryClient`. */
export interface RegistryClientOptions {
  /** Where credentials come from; anonymous when absent. */
  readonly credentials?: CredentialProvider;
  /** Speak plain HTTP to every registry (`--plain-http`). Loopback hosts fall back to it anyway. */
  readonly plainHttp?: boolean;
  /** Skip TLS certificate verification (`--insecure`). */
  readonly insecure?: boolean;
  /** Extra trusted CA certificates (PEM), added to Node's defaults (`--ca-file`). */
  readonly caCerts?: readonly (string | Buffer)[];
  /** Retries after 408/429/5xx or a network error. Default 3. */
  readonly retries?: number;
  /** First backoff; doubles per retry up to `retryMaxMs`. Defaults 200 ms and 3 s. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Whole-request timeout, body included. Default 5 minutes. */
  readonly timeoutMs?: number;
  /** Blobs larger than this are uploaded in `PATCH` chunks. Default 16 MiB. */
  readonly chunkThreshold?: number;
  /** Largest `PATCH` body of a chunked upload. Default 32 MiB. */
  readonly chunkSize?: number;
  /** Manifests larger than this are refused (4 MiB, as oras-go and distribution 2.8). */
  readonly maxManifestBytes?: number;
  readonly userAgent?: string;
  readonly signal?: AbortSignal;
  /** Send large request bodies (blob uploads) with undici's `request`, without copies (default true); false hands them to fetch. */
  readonly streamBodies?: boolean;
}

const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_NOT_YET_VALID',
]);
const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_RANGE_RESUMES = 3;
/** Request bodies above this size are sent with undici's `request` instead of fetch. */
const STREAM_BODY_MIN = 1024 * 1024;
/** Statuses whose responses carry no body (a `Response` with a body refuses them). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/**
 * A request body produced while it is sent (bytes of a file still being read). `chunks` is
 * called again for each attempt, so a retried request sends the same bytes from the start.
 */
interface StreamBody {
  readonly length: number;
  readonly chunks: () => AsyncIterable<Uint8Array>;
}

interface SendInit {
  readonly method: Method;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | StreamBody;
  readonly redirect?: 'follow' | 'manual';
  /** Aborts this request (and is never retried after). */
  readonly signal?: AbortSignal;
  /**
   * Send through undici's `request` instead of fetch: no redirect is followed, and the response
   * body is a Node stream with `NODE_BODY_HWM` buffering. For blob downloads (fetch's web streams
   * cost ~20 ms per 32 MiB) and the upload session's requests, which sit on a push's critical
   * path (fetch needs several more event-loop turns per request, each one behind whatever else
   * the loop runs, such as the hashing of the module being uploaded).
   */
  readonly direct?: boolean;
}

/**
 * Blob bytes that arrive over time (a file still being read and hashed), for `pushBlobFrom`.
 * Bytes of `data` below what `ready` resolved to are final.
 */
export interface IncomingBlob {
  readonly size: number;
  readonly data: Uint8Array;
  /** Resolves with the count of final bytes (at least `n`); rejects when the producer fails. */
  ready(n: number): Promise<number>;
  /** `sha256:` of all `size` bytes, known once they are read; rejects when the producer fails. */
  readonly digest: Promise<string>;
}

/** The Node stream behind a `Response` made by `rawRequest`, for readers that want it directly. */
const nodeBodies = new WeakMap<Response, AsyncIterable<Buffer>>();
/** Smallest write of a download to its file (`fetchBlob`'s `writeTo`). */
const WRITE_BATCH = 4 * 1024 * 1024;
/** Buffering of downloaded bodies: 64 KiB (undici's default) pauses the socket every few reads. */
const NODE_BODY_HWM = 4 * 1024 * 1024;

/** What a failed response was about, for the error it becomes. */
interface What {
  readonly kind: 'manifest' | 'blob' | 'upload' | 'tags' | 'ping';
  readonly subject: string;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

function errorCause(e: unknown): { code?: string; message: string } {
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur instanceof Error; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET' && cur !== e) return { code, message: cur.message };
    if (cur.cause === undefined) return { message: cur.message, ...(typeof code === 'string' ? { code } : {}) };
    cur = cur.cause;
  }
  return { message: e instanceof Error ? e.message : String(e) };
}

function contentType(res: Response): string {
  return (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Appends a query parameter to a `Location`, keeping everything the registry put there. */
export function appendQuery(location: string, name: string, value: string): string {
  const hash = location.indexOf('#');
  const base = hash >= 0 ? location.slice(0, hash) : location;
  return `${base}${base.includes('?') ? '&' : '?'}${name}=${encodeURIComponent(value)}`;
}

/**
 * One client per credential set: it keeps a connection pool, the scheme chosen per host and the
 * token cache. Safe for concurrent use; `close()` when done.
 */
export class RegistryClient {
  private readonly auth: Authenticator;
  private readonly bases = new Map<string, Promise<string>>();
  private readonly dispatcher: Agent | undefined;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly timeoutMs: number;
  private readonly chunkThreshold: number;
  private readonly chunkSize: number;
  private readonly maxManifestBytes: number;
  private readonly userAgent: string;
  private warnedPlainBasic = new Set<string>();

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.retries = options.retries ?? 3;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.retryMaxMs = options.retryMaxMs ?? 3_000;
    this.timeoutMs = options.timeoutMs ?? 300_000;
    this.chunkThreshold = options.chunkThreshold ?? 16 * 1024 * 1024;
    // 32 MiB chunks: on distribution 2.8 each PATCH costs a round trip plus the registry's
    // hash-state bookkeeping. Streaming a 32 MiB module from its file (11 pushes each, CPU time
    // read from /proc): one 32 MiB PATCH cost the registry 130 ms of CPU, two 16 MiB ones 140 ms,
    // and the client 81 against 86 ms; wall times were within noise of each other.
    this.chunkSize = options.chunkSize ?? 32 * 1024 * 1024;
    this.maxManifestBytes = options.maxManifestBytes ?? 4 * 1024 * 1024;
    this.userAgent = options.userAgent ?? 'envext-oci';
    if (options.insecure === true || (options.caCerts !== undefined && options.caCerts.length > 0)) {
      const connect: { rejectUnauthorized?: boolean; ca?: (string | Buffer)[] } = {};
      if (options.insecure === true) connect.rejectUnauthorized = false;
      if (options.caCerts !== undefined && options.caCerts.length > 0) {
        // `ca` replaces Node's bundle: add the defaults back so public registries still verify.
        connect.ca = [...rootCertificates, ...options.caCerts];
      }
      this.dispatcher = new Agent({ connect });
    }
    this.auth = new Authenticator(options.credentials, (url, init) => this.rawFetch(url, init));
  }

  /** Closes pooled connections. The client cannot be used afterwards. */
  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** Where the credentials for `registry` come from, for messages (`credentials from …`). */
  describeCredentials(registry: string): Promise<string> {
    return this.auth.describeSource(registry);
  }

  private rawFetch(url: string, init: RequestInit): Promise<Response> {
    const signals = [AbortSignal.timeout(this.timeoutMs)];
    if (this.options.signal !== undefined) signals.push(this.options.signal);
    if (init.signal !== undefined && init.signal !== null) signals.push(init.signal);
    const full: Record<string, unknown> = { ...init, signal: AbortSignal.any(signals) };
    if (this.dispatcher !== undefined) full['dispatcher'] = this.dispatcher;
    // undici 7's Agent works as the dispatcher of Node 20's bundled fetch (checked with a
    // self-signed server).
    return fetch(url, full);
  }

  /**
   * One request through undici's `request` (same timeout, abort signal and TLS settings as
   * `rawFetch`), answered as a fetch `Response` so callers handle both alike. The Node body stays
   * reachable through `nodeBodies` for readers that want to skip web streams.
   */
  private async rawRequest(
    url: string,
    method: Method,
    headers: Record<string, string>,
    body: Uint8Array | AsyncIterable<Uint8Array> | undefined,
    signal?: AbortSignal,
  ): Promise<Response> {
    const signals = [AbortSignal.timeout(this.timeoutMs)];
    if (this.options.signal !== undefined) signals.push(this.options.signal);
    if (signal !== undefined) signals.push(signal);
    const res = await request(url, {
      method,
      headers,
      // undici documents (and writes) async iterable bodies; its types list only Readable.
      ...(body === undefined ? {} : { body: body as Uint8Array }),
      signal: AbortSignal.any(signals),
      dispatcher: this.dispatcher ?? getGlobalDispatcher(),
      highWaterMark: NODE_BODY_HWM,
    });
    const out = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) out.append(k, x);
      else if (v !== undefined) out.set(k, v);
    }
    if (NULL_BODY_STATUSES.has(res.statusCode) || method === 'HEAD') {
      await res.body.dump();
      return new Response(null, { status: res.statusCode, headers: out });
    }
    // Pull-driven and lazy (high-water mark 0: nothing is read until someone asks, so a reader
    // of the Node stream sees every byte). No Readable.toWeb: cancelling its stream while data
    // arrives throws ERR_INVALID_STATE from inside Node on 20.x.
    const reply = res.body;
    let chunks: AsyncIterator<Buffer> | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller): Promise<void> {
          chunks ??= reply[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
          const next = await chunks.next();
          if (next.done === true) controller.close();
          else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
        },
        cancel(): void {
          // Reads a small rest (the connection stays reusable), destroys a large one.
          reply.dump().catch(() => undefined);
        },
      },
      { highWaterMark: 0 },
    );
    const response = new Response(stream, { status: res.statusCode, headers: out });
    nodeBodies.set(response, reply);
    return response;
  }

  /** `https://host` or `http://host` for a registry, decided once per client. */
  baseUrl(registry: string): Promise<string> {
    let p = this.bases.get(registry);
    if (p === undefined) {
      p = this.resolveBase(registry);
      this.bases.set(registry, p);
      p.catch(() => this.bases.delete(registry));
    }
    return p;
  }

  private async resolveBase(registry: string): Promise<string> {
    const host = apiHost(registry);
    if (this.options.plainHttp === true) return `http://${host}`;
    if (!isLoopbackRegistry(registry)) return `https://${host}`;
    // Loopback: try HTTPS, fall back to HTTP when the server does not speak TLS. A certificate
    // error is never a reason to downgrade: the server does speak TLS.
    try {
      const res = await this.rawFetch(`https://${host}/v2/`, {
        method: 'GET',
        headers: { 'user-agent': this.userAgent },
      });
      this.learnFromPing(registry, res);
      return `https://${host}`;
    } catch (e) {
      const cause = errorCause(e);
      if (cause.code !== undefined && TLS_CERT_CODES.has(cause.code))
        throw this.connectionError(e, registry, `https://${host}/v2/`);
      try {
        const res = await this.rawFetch(`http://${host}/v2/`, {
          method: 'GET',
          headers: { 'user-agent': this.userAgent },
        });
        this.learnFromPing(registry, res);
        return `http://${host}`;
      } catch {
        throw this.connectionError(e, registry, `https://${host}/v2/`);
      }
    }
  }

  private learnFromPing(registry: string, res: Response): void {
    void res.body?.cancel();
    if (res.status === 401) this.auth.learn(registry, parseChallenges(res.headers.get('www-authenticate') ?? ''));
  }

  private connectionError(e: unknown, registry: string, url: string): OciError {
    if (e instanceof OciError) return e;
    const cause = errorCause(e);
    if (cause.code !== undefined && TLS_CERT_CODES.has(cause.code)) {
      return new OciError('OCI_TLS', `TLS certificate of ${registry} is not trusted (${cause.code}) at ${url}`, {
        cause: e,
        hint: 'pass the registry CA with --ca-file, or --insecure to skip verification',
      });
    }
    if (/wrong version number|EPROTO|packet length too long/i.test(`${cause.code ?? ''} ${cause.message}`)) {
      return new OciError('OCI_TLS', `${registry} does not speak TLS at ${url} (${cause.message})`, {
        cause: e,
        hint: 'if the registry serves plain HTTP, pass --plain-http',
      });
    }
    if ((e as Error).name === 'TimeoutError' || cause.code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new OciError('OCI_CONNECTION', `request to ${registry} timed out (${url})`, { cause: e });
    }
    return new OciError(
      'OCI_CONNECTION',
      `cannot reach registry ${registry} at ${url}: ${cause.code ?? cause.message}`,
      {
        cause: e,
        hint: 'check the registry host and port, and that the registry is running',
      },
    );
  }

  private backoff(attempt: number, res?: Response): number {
    const after = res?.headers.get('retry-after');
    if (after !== null && after !== undefined && /^\d+$/.test(after))
      return Math.min(Number(after) * 1000, this.retryMaxMs * 4);
    const base = Math.min(this.retryBaseMs * 2 ** attempt, this.retryMaxMs);
    return base / 2 + Math.random() * (base / 2);
  }

  /**
   * Sends one request with auth, retries and error mapping of 401/403. Other statuses are
   * returned to the caller. `scopes` are token scopes (`repository:a/b:pull`).
   */
  private async send(
    registry: string,
    pathOrUrl: string,
    init: SendInit,
    scopes: readonly string[],
    what: What,
  ): Promise<Response> {
    const base = await this.baseUrl(registry);
    const target = new URL(pathOrUrl, base + '/');
    const url = target.toString();
    // An upload Location may point at another host (a storage service): the registry's
    // credentials are never sent there.
    const sameHost = target.host === new URL(base).host;
    let authRetried = false;
    let forceToken = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...init.headers };
      const authorization: string | undefined = sameHost
        ? await this.auth.authorization(registry, scopes, forceToken)
        : undefined;
      forceToken = false;
      if (authorization !== undefined) {
        headers['authorization'] = authorization;
        if (authorization.startsWith('Basic ') && url.startsWith('http:') && !this.warnedPlainBasic.has(registry)) {
          this.warnedPlainBasic.add(registry);
          log.warn('sending Basic credentials over plain HTTP', { registry });
        }
      }
      let res: Response;
      try {
        const body = init.body;
        if (body !== undefined && !(body instanceof Uint8Array)) {
          // A body still being produced: always undici's `request`, with its length announced.
          headers['content-length'] = String(body.length);
          res = await this.rawRequest(url, init.method, headers, body.chunks(), init.signal);
        } else if (body !== undefined && body.length > STREAM_BODY_MIN && this.options.streamBodies !== false) {
          // Large bodies (blob uploads) go through undici's `request`, which writes the caller's
          // memory to the socket as it is: Node's fetch copies a Uint8Array body (twice in Node
          // 20's undici) and pushes a streamed one through web streams. Measured on 127.0.0.1
          // with 32 MiB: fetch(buffer) 62–115 ms, fetch(1 MiB views) 47–77 ms, request 26–37 ms.
          // Uploads never follow redirects (a body cannot be replayed to another URL anyway).
          res = await this.rawRequest(url, init.method, headers, body, init.signal);
        } else if (init.direct === true) {
          res = await this.rawRequest(url, init.method, headers, body, init.signal);
        } else {
          const reqInit: RequestInit = {
            method: init.method,
            headers,
            redirect: init.redirect ?? 'follow',
          };
          if (body !== undefined) reqInit.body = body;
          if (init.signal !== undefined) reqInit.signal = init.signal;
          res = await this.rawFetch(url, reqInit);
        }
      } catch (e) {
        if (this.options.signal?.aborted === true || init.signal?.aborted === true) throw e;
        if (attempt < this.retries) {
          log.debug('retrying after network error', { url, error: errorCause(e).message });
          await sleep(this.backoff(attempt), this.options.signal);
          continue;
        }
        throw this.connectionError(e, registry, url);
      }
      if (res.status === 401) {
        const challenges = parseChallenges(res.headers.get('www-authenticate') ?? '');
        await res.body?.cancel();
        const challenge = this.auth.learn(registry, challenges);
        const source = await this.auth.describeSource(registry);
        if (challenge?.params['error'] === 'insufficient_scope' && authorization !== undefined) {
          throw new OciError(
            'OCI_INSUFFICIENT_SCOPE',
            `${registry} refused ${init.method} on ${what.subject}: the token lacks ${challenge.params['scope'] ?? scopes.join(' ')} (${source})`,
            { status: 401, registryCode: 'UNAUTHORIZED', hint: 'use credentials that may access this repository' },
          );
        }
        const canRetry =
          !authRetried &&
          challenge !== undefined &&
          (challenge.scheme === 'bearer' ||
            (challenge.scheme === 'basic' && authorization === undefined && source.startsWith('credentials')));
        if (canRetry) {
          authRetried = true;
          forceToken = authorization !== undefined;
          attempt--;
          continue;
        }
        throw new OciError(
          'OCI_UNAUTHORIZED',
          `${registry} answered 401 Unauthorized for ${what.subject} (${source})`,
          {
            status: 401,
            registryCode: 'UNAUTHORIZED',
            hint: source.startsWith('credentials')
              ? `check those credentials, or run envext oci login ${registry}`
              : `run envext oci login ${registry}, or pass --username/--password`,
          },
        );
      }
      if (res.status === 403) {
        const detail = await this.errorText(res);
        throw new OciError(
          'OCI_DENIED',
          `${registry} denied ${init.method} on ${what.subject} (403${detail === '' ? '' : `: ${detail}`}; ${await this.auth.describeSource(registry)})`,
          { status: 403, registryCode: 'DENIED', hint: 'use credentials with access to this repository' },
        );
      }
      if (RETRY_STATUSES.has(res.status) && attempt < this.retries) {
        await res.body?.cancel();
        const wait = this.backoff(attempt, res);
        log.debug('retrying', { url, status: res.status, waitMs: Math.round(wait) });
        await sleep(wait, this.options.signal);
        continue;
      }
      return res;
    }
  }

  private async errorText(res: Response): Promise<string> {
    try {
      const text = await readCapped(res, MAX_ERROR_BODY, 'error body');
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
      const first = parsed.errors?.[0];
      if (first !== undefined) return `${first.code ?? ''} ${first.message ?? ''}`.trim();
      return text.trim().slice(0, 200);
    } catch {
      return '';
    }
  }

  /** Turns a non-success response into a typed error (registry error JSON → stable code). */
  private async responseError(res: Response, registry: string, what: What): Promise<OciError> {
    let registryCode: string | undefined;
    let message = '';
    let text = '';
    try {
      text = res.body === null ? '' : await readCapped(res, MAX_ERROR_BODY, 'error body');
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
      const first = parsed.errors?.[0];
      registryCode = first?.code;
      message = first?.message ?? '';
      if (first?.detail !== undefined) message += ` (${JSON.stringify(first.detail)})`;
    } catch {
      message = text.trim().slice(0, 200);
    }
    const status = res.status;
    let code: OciErrorCode = 'OCI_REGISTRY_ERROR';
    let hint: string | undefined;
    if (status >= 500 || status === 429 || status === 408) {
      code = 'OCI_REGISTRY_UNAVAILABLE';
      hint = `the registry kept failing after ${this.retries} retries; try again later`;
    } else if (registryCode === 'MANIFEST_UNKNOWN' || (status === 404 && what.kind === 'manifest')) {
      code = 'OCI_MANIFEST_NOT_FOUND';
      hint = 'check the repository and tag (envext oci inspect shows what a reference resolves to)';
    } else if (registryCode === 'BLOB_UNKNOWN' || (status === 404 && what.kind === 'blob')) {
      code = 'OCI_BLOB_NOT_FOUND';
      hint = 'the manifest names a blob the registry does not have; re-push the image';
    } else if (registryCode === 'NAME_UNKNOWN' || status === 404) {
      code = 'OCI_NAME_NOT_FOUND';
    } else if (registryCode === 'DIGEST_INVALID') {
      code = 'OCI_DIGEST_MISMATCH';
    } else if (
      registryCode === 'MANIFEST_INVALID' ||
      registryCode === 'MANIFEST_BLOB_UNKNOWN' ||
      registryCode === 'SIZE_INVALID'
    ) {
      code = 'OCI_MANIFEST_INVALID';
    } else if (registryCode === 'DENIED') {
      code = 'OCI_DENIED';
    } else if (registryCode === 'UNSUPPORTED' || status === 415) {
      code = 'OCI_UNSUPPORTED_MEDIA_TYPE';
    }
    return new OciError(
      code,
      `${registry}: ${what.kind === 'upload' ? 'upload of' : what.kind} ${what.subject} failed: HTTP ${status}${registryCode === undefined ? '' : ` ${registryCode}`}${message === '' ? '' : `: ${message}`}`,
      { status, ...(registryCode === undefined ? {} : { registryCode }), ...(hint === undefined ? {} : { hint }) },
    );
  }

  private static scope(repo: Repository, actions: string): string {
    return `repository:${repo.repository}:${actions}`;
  }

  /** Checks that the registry answers and that the credentials are accepted (what `login` does). */
  async ping(registry: string, repository?: string): Promise<void> {
    const scopes = repository === undefined ? [] : [`repository:${repository}:pull`];
    const res = await this.send(registry, '/v2/', { method: 'GET' }, scopes, { kind: 'ping', subject: '/v2/' });
    if (!res.ok) throw await this.responseError(res, registry, { kind: 'ping', subject: '/v2/' });
    await res.body?.cancel();
  }

  /** Fetches a manifest by tag or digest and verifies its digest. */
  async getManifest(ref: Reference): Promise<FetchedManifest> {
    const target = referenceTarget(ref);
    const subject = `${ref.repository}:${target}`.replace(':sha256:', '@sha256:');
    const what: What = { kind: 'manifest', subject };
    // A body cut short (early close, short Content-Length) is retried like a network error.
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(
        ref.registry,
        `/v2/${ref.repository}/manifests/${target}`,
        { method: 'GET', headers: { accept: MANIFEST_ACCEPT } },
        [RegistryClient.scope(ref, 'pull')],
        what,
      );
      if (!res.ok) throw await this.responseError(res, ref.registry, what);
      const declared = Number(res.headers.get('content-length') ?? '-1');
      let bytes: Buffer;
      try {
        bytes = await readCappedBytes(res, this.maxManifestBytes, `manifest ${subject}`);
        if (declared >= 0 && bytes.length !== declared) throw new Error(`got ${bytes.length} of ${declared} bytes`);
      } catch (e) {
        if (e instanceof OciError) throw e;
        if (attempt < this.retries) {
          await sleep(this.backoff(attempt), this.options.signal);
          continue;
        }
        throw new OciError(
          'OCI_TRUNCATED',
          `manifest ${subject} from ${ref.registry} was cut short (${errorCause(e).message}; ${this.retries} retries tried)`,
          {
            cause: e,
            hint: 'the connection keeps closing early; check proxies between here and the registry; nothing was cached',
          },
        );
      }
      return this.checkManifest(ref, res, bytes, subject);
    }
  }

  private checkManifest(ref: Reference, res: Response, bytes: Buffer, subject: string): FetchedManifest {
    const digest = sha256Digest(bytes);
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new OciError(
        'OCI_DIGEST_MISMATCH',
        `manifest ${subject} from ${ref.registry} hashes to ${digest}, not the requested ${ref.digest}`,
        {
          hint: 'the registry returned different content than the digest pins; nothing was cached',
        },
      );
    }
    const header = res.headers.get('docker-content-digest');
    if (header !== null && header.startsWith('sha256:') && header !== digest) {
      throw new OciError(
        'OCI_DIGEST_MISMATCH',
        `manifest ${subject} from ${ref.registry} hashes to ${digest}, but the registry says ${header}`,
        {
          hint: 'the manifest was corrupted in transit or by a proxy; nothing was cached',
        },
      );
    }
    let bodyType: string | undefined;
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
      if (typeof parsed.mediaType === 'string') bodyType = parsed.mediaType;
    } catch (e) {
      throw new OciError('OCI_MANIFEST_INVALID', `manifest ${subject} from ${ref.registry} is not JSON`, { cause: e });
    }
    let mediaType = contentType(res);
    if (
      mediaType === '' ||
      mediaType === 'application/json' ||
      mediaType === 'text/plain' ||
      mediaType === 'application/octet-stream'
    ) {
      mediaType = bodyType ?? MediaType.ociManifest;
    } else if (bodyType !== undefined && bodyType !== mediaType) {
      throw new OciError(
        'OCI_MANIFEST_INVALID',
        `manifest ${subject}: Content-Type ${mediaType} disagrees with its mediaType field ${bodyType}`,
      );
    }
    return { bytes, digest, mediaType };
  }

  /** Resolves a reference to its manifest digest with `HEAD`; undefined when it does not exist. */
  async headManifest(ref: Reference): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const target = referenceTarget(ref);
    const what: What = { kind: 'manifest', subject: `${ref.repository}:${target}` };
    const res = await this.send(
      ref.registry,
      `/v2/${ref.repository}/manifests/${target}`,
      { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } },
      [RegistryClient.scope(ref, 'pull')],
      what,
    );
    if (res.status === 404) return undefined;
    if (!res.ok) throw await this.responseError(res, ref.registry, what);
    const digest = res.headers.get('docker-content-digest');
    if (digest === null || !digest.startsWith('sha256:')) {
      // Some registries omit the header on HEAD: fall back to fetching the bytes.
      const m = await this.getManifest(ref);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    }
    return { digest, mediaType: contentType(res), size: Number(res.headers.get('content-length') ?? '0') };
  }

  /** Uploads a manifest under a tag or digest; returns its digest (checked against the registry's). */
  async putManifest(repo: Repository, target: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const digest = sha256Digest(bytes);
    const what: What = { kind: 'manifest', subject: `${repo.repository}:${target}` };
    const res = await this.send(
      repo.registry,
      `/v2/${repo.repository}/manifests/${target}`,
      { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes },
      [RegistryClient.scope(repo, 'pull,push')],
      what,
    );
    if (res.status !== 201 && res.status !== 200 && res.status !== 202)
      throw await this.responseError(res, repo.registry, what);
    await res.body?.cancel();
    const header = res.headers.get('docker-content-digest');
    if (header !== null && header !== digest) {
      throw new OciError(
        'OCI_DIGEST_MISMATCH',
        `${repo.registry} stored manifest ${what.subject} as ${header}, but its bytes hash to ${digest}`,
      );
    }
    return digest;
  }

  /** True when the repository has the blob (`HEAD`). */
  async blobExists(repo: Repository, digest: string): Promise<boolean> {
    assertDigest(digest, 'blob digest');
    const what: What = { kind: 'blob', subject: `${repo.repository}@${digest}` };
    const res = await this.send(
      repo.registry,
      `/v2/${repo.repository}/blobs/${digest}`,
      { method: 'HEAD' },
      [RegistryClient.scope(repo, 'pull')],
      what,
    );
    if (res.status === 404) return false;
    if (!res.ok) throw await this.responseError(res, repo.registry, what);
    return true;
  }

  /**
   * Downloads a blob into memory, verifying size and sha256 as it streams. An early close or a
   * short body is resumed with `Range` (up to 3 times); a server that ignores `Range` restarts the
   * download. Refuses blobs whose descriptor or body exceeds `maxBytes`.
   *
   * With `writeTo`, the bytes also go to that file as they arrive (positional writes of at least
   * `WRITE_BATCH` on the thread pool, overlapping the download), all written when this returns.
   * The file holds unverified bytes until then: give a temporary file, rename it only after this
   * returns, and delete it when this throws.
   */
  async fetchBlob(
    repo: Repository,
    desc: { digest: string; size: number },
    opts: { maxBytes?: number; onProgress?: ProgressFn; writeTo?: FileHandle } = {},
  ): Promise<Buffer> {
    assertDigest(desc.digest, 'blob digest');
    const subject = `${repo.repository}@${desc.digest}`;
    const max = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (desc.size > max) {
      throw new OciError('OCI_TOO_LARGE', `blob ${subject} is ${desc.size} bytes, more than the ${max} allowed`, {
        hint: 'raise the size limit (--max-size) if this module is really that big',
      });
    }
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
      throw new OciError('OCI_MANIFEST_INVALID', `blob ${subject} has an invalid size ${desc.size} in its descriptor`);
    }
    const buf = Buffer.allocUnsafe(desc.size);
    let got = 0;
    let hash = createHash('sha256');
    let resumes = 0;
    let lastError: unknown;
    // Writes to `writeTo`, one after the other; `flushed` is where the next one starts.
    const file = opts.writeTo;
    let flushed = 0;
    let writes: Promise<unknown> = Promise.resolve();
    const flush = (): void => {
      if (file === undefined || got === flushed) return;
      const from = flushed;
      const length = got - from;
      writes = writes.then(() => file.write(buf, from, length, from));
      // Handled here; a failed write is reported by the `await writes` at the end.
      writes.catch(() => undefined);
      flushed = got;
    };
    try {
      while (got < desc.size || got === 0) {
        const res = await this.getFollowingRedirects(
          repo,
          subject,
          `/v2/${repo.repository}/blobs/${desc.digest}`,
          got > 0 ? { range: `bytes=${got}-` } : {},
        );
        if (got > 0 && res.status === 200) {
          // The server ignored Range: start over (the file is rewritten from 0, same positions).
          got = 0;
          flushed = 0;
          hash = createHash('sha256');
        } else if (got > 0 && res.status !== 206) {
          throw await this.responseError(res, repo.registry, { kind: 'blob', subject });
        }
        const declared = Number(res.headers.get('content-length') ?? '-1');
        if (res.status === 200 && declared > desc.size) {
          await res.body?.cancel();
          throw new OciError(
            'OCI_DIGEST_MISMATCH',
            `blob ${subject} is ${declared} bytes, but its descriptor says ${desc.size}`,
            {
              hint: 'the registry serves different content than the manifest describes; nothing was cached',
            },
          );
        }
        try {
          // The Node stream when there is one: no web-stream promise per 64 KiB chunk.
          const body: AsyncIterable<Uint8Array> | null = nodeBodies.get(res) ?? res.body;
          if (body !== null) {
            for await (const chunk of body) {
              if (got + chunk.byteLength > desc.size) {
                throw new OciError(
                  'OCI_DIGEST_MISMATCH',
                  `blob ${subject} is longer than the ${desc.size} bytes its descriptor says`,
                  {
                    hint: 'the registry serves different content than the manifest describes; nothing was cached',
                  },
                );
              }
              buf.set(chunk, got);
              hash.update(chunk);
              got += chunk.byteLength;
              if (got - flushed >= WRITE_BATCH) flush();
              opts.onProgress?.(got, desc.size);
            }
          }
        } catch (e) {
          if (e instanceof OciError) throw e;
          lastError = e;
        }
        if (got === desc.size) break;
        if (resumes++ >= MAX_RANGE_RESUMES) {
          throw new OciError(
            'OCI_TRUNCATED',
            `blob ${subject} from ${repo.registry} ended after ${got} of ${desc.size} bytes (${MAX_RANGE_RESUMES} resumes tried)`,
            {
              cause: lastError,
              hint: 'the connection keeps closing early; check proxies between here and the registry; nothing was cached',
            },
          );
        }
        log.debug('resuming blob download', { subject, offset: got });
      }
      flush();
      // Every byte is in the file before the digest decides whether the caller may rename it.
      await writes;
      const digest = `sha256:${hash.digest('hex')}`;
      if (digest !== desc.digest) {
        throw new OciError('OCI_DIGEST_MISMATCH', `blob ${subject} from ${repo.registry} hashes to ${digest}`, {
          hint: 'the registry served corrupted content; nothing was cached',
        });
      }
    } finally {
      // Never leave a write running on a file the caller is about to close or delete.
      await writes.catch(() => undefined);
    }
    return buf;
  }

  /** GET that follows redirects itself, dropping `Authorization` when the host changes. */
  private async getFollowingRedirects(
    repo: Repository,
    subject: string,
    path: string,
    extra: Record<string, string>,
  ): Promise<Response> {
    const what: What = { kind: 'blob', subject };
    let res = await this.send(
      repo.registry,
      path,
      { method: 'GET', headers: extra, redirect: 'manual', direct: true },
      [RegistryClient.scope(repo, 'pull')],
      what,
    );
    let url = new URL(path, (await this.baseUrl(repo.registry)) + '/');
    for (let hops = 0; res.status >= 300 && res.status < 400 && res.status !== 304; hops++) {
      const location = res.headers.get('location');
      await res.body?.cancel();
      if (location === null || hops >= MAX_REDIRECTS) {
        throw new OciError(
          'OCI_REGISTRY_ERROR',
          `blob ${subject}: ${location === null ? 'redirect without Location' : 'too many redirects'}`,
        );
      }
      const next = new URL(location, url);
      if (next.origin === url.origin || next.host === url.host) {
        res = await this.send(
          repo.registry,
          next.toString(),
          { method: 'GET', headers: extra, redirect: 'manual', direct: true },
          [RegistryClient.scope(repo, 'pull')],
          what,
        );
      } else {
        // Another host (a storage bucket, a CDN): never forward the registry's credentials.
        try {
          res = await this.rawRequest(next.toString(), 'GET', { 'user-agent': this.userAgent, ...extra }, undefined);
        } catch (e) {
          throw this.connectionError(e, next.host, next.toString());
        }
      }
      url = next;
    }
    if (!res.ok) throw await this.responseError(res, repo.registry, what);
    return res;
  }

  /**
   * Uploads a blob unless the repository has it. With `mountFrom` (another repository on the same
   * registry) it first tries a cross-repository mount and falls back to an upload on 202.
   * Returns what happened. On failure the upload session is cancelled.
   */
  async pushBlob(
    repo: Repository,
    data: Uint8Array,
    opts: { digest?: string; mountFrom?: string; onProgress?: ProgressFn } = {},
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    const digest = opts.digest ?? sha256Digest(data);
    if (await this.blobExists(repo, digest)) {
      opts.onProgress?.(data.length, data.length);
      return 'exists';
    }
    const subject = `${repo.repository}@${digest}`;
    const what: What = { kind: 'upload', subject };
    const scopes = [RegistryClient.scope(repo, 'pull,push')];
    let startPath = `/v2/${repo.repository}/blobs/uploads/`;
    if (opts.mountFrom !== undefined && opts.mountFrom !== repo.repository) {
      startPath += `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(opts.mountFrom)}`;
      scopes.push(`repository:${opts.mountFrom}:pull`);
    }
    const started = await this.send(
      repo.registry,
      startPath,
      { method: 'POST', body: new Uint8Array(0), direct: true },
      scopes,
      what,
    );
    if (started.status === 201) {
      await started.body?.cancel();
      opts.onProgress?.(data.length, data.length);
      return 'mounted';
    }
    if (started.status !== 202) throw await this.responseError(started, repo.registry, what);
    await started.body?.cancel();
    let location = this.location(started, repo.registry, subject);
    try {
      if (data.length <= this.chunkThreshold) {
        location = await this.finishUpload(repo, location, data, digest, what, scopes);
      } else {
        for (let start = 0; start < data.length; start += this.chunkSize) {
          const end = Math.min(start + this.chunkSize, data.length);
          const res = await this.send(
            repo.registry,
            location,
            {
              method: 'PATCH',
              headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` },
              body: data.subarray(start, end),
            },
            scopes,
            what,
          );
          if (res.status !== 202) throw await this.responseError(res, repo.registry, what);
          await res.body?.cancel();
          // Every PATCH answers with a new Location; the previous one is dead.
          location = this.location(res, repo.registry, subject);
          opts.onProgress?.(end, data.length);
        }
        location = await this.finishUpload(repo, location, new Uint8Array(0), digest, what, scopes);
      }
    } catch (e) {
      await this.cancelUpload(repo.registry, location, scopes, what);
      throw e;
    }
    opts.onProgress?.(data.length, data.length);
    return 'uploaded';
  }

  /**
   * Uploads a blob whose bytes are still being read and hashed (`IncomingBlob`), without waiting
   * for its digest first, the way `skopeo copy` streams a layer. Above `chunkThreshold` the
   * `PATCH` chunks start as soon as their first bytes are read and the digest goes on the final
   * `PUT`; the `HEAD` that skips an existing blob runs as soon as the digest is known, in parallel
   * with the upload, and a hit cancels the upload (`exists`). Blobs up to `chunkThreshold`, and
   * mounts (whose `POST` names the digest), wait for the digest and go through `pushBlob`.
   *
   * The price of not hashing first: a blob the registry already has costs a few MiB of upload
   * (what is sent while the digest is computed) instead of nothing, and the cancelled session
   * may linger: distribution 2.8 answers the `DELETE` of a session whose `PATCH` was cut off
   * with `BLOB_UPLOAD_INVALID` and leaves it to its upload purger (default: after 7 days).
   * Callers that expect the blob to exist pass its bytes with a known digest to `pushBlob`.
   */
  async pushBlobFrom(
    repo: Repository,
    blob: IncomingBlob,
    opts: { mountFrom?: string; onProgress?: ProgressFn; signal?: AbortSignal } = {},
  ): Promise<'exists' | 'mounted' | 'uploaded'> {
    if (blob.size <= this.chunkThreshold || (opts.mountFrom !== undefined && opts.mountFrom !== repo.repository)) {
      const digest = await blob.digest;
      await blob.ready(blob.size);
      return this.pushBlob(repo, blob.data, {
        digest,
        ...(opts.mountFrom === undefined ? {} : { mountFrom: opts.mountFrom }),
        ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
      });
    }
    const stop = new AbortController();
    // What stopped the upload: the producer failed, or the HEAD failed or found the blob.
    let reason: { error: unknown } | 'exists' | undefined;
    const halt = (r: { error: unknown } | 'exists'): void => {
      reason ??= r;
      stop.abort();
    };
    // The skip check, once the session is open and the digest known (asking for it may start
    // the hashing: after the POST, so that first request does not wait behind it).
    let exists: Promise<boolean> = new Promise<boolean>(() => undefined);
    const checkExists = (): void => {
      exists = blob.digest.then(async (digest) => {
        const found = await this.blobExists(repo, digest);
        if (found) halt('exists');
        return found;
      });
      exists.catch((error: unknown) => halt({ error }));
    };
    opts.signal?.addEventListener('abort', () => halt({ error: opts.signal?.reason }), { once: true });
    const subject = `${repo.repository} (blob of ${blob.size} bytes)`;
    const what: What = { kind: 'upload', subject };
    const scopes = [RegistryClient.scope(repo, 'pull,push')];
    const ready = async (n: number): Promise<number> => {
      try {
        return await blob.ready(n);
      } catch (error) {
        halt({ error });
        throw error;
      }
    };
    let location: string | undefined;
    try {
      const started = await this.send(
        repo.registry,
        `/v2/${repo.repository}/blobs/uploads/`,
        { method: 'POST', body: new Uint8Array(0), signal: stop.signal, direct: true },
        scopes,
        what,
      );
      if (started.status !== 202) throw await this.responseError(started, repo.registry, what);
      await started.body?.cancel();
      location = this.location(started, repo.registry, subject);
      checkExists();
      for (let start = 0; start < blob.size; start += this.chunkSize) {
        const end = Math.min(start + this.chunkSize, blob.size);
        // Each chunk is sent as its bytes become final: no waiting for the whole file.
        const chunks = async function* (): AsyncGenerator<Uint8Array> {
          for (let pos = start; pos < end;) {
            const next = Math.min(await ready(pos + 1), end);
            yield blob.data.subarray(pos, next);
            pos = next;
            opts.onProgress?.(pos, blob.size);
          }
        };
        const res = await this.send(
          repo.registry,
          location,
          {
            method: 'PATCH',
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` },
            body: { length: end - start, chunks },
            signal: stop.signal,
          },
          scopes,
          what,
        );
        if (res.status !== 202) throw await this.responseError(res, repo.registry, what);
        await res.body?.cancel();
        // Every PATCH answers with a new Location; the previous one is dead.
        location = this.location(res, repo.registry, subject);
      }
      const digest = await blob.digest;
      if (await exists) {
        // Found only after every byte was sent: the registry has it anyway; drop the session.
        await this.cancelUpload(repo.registry, location, scopes, what);
      } else {
        const final: What = { kind: 'upload', subject: `${repo.repository}@${digest}` };
        await this.finishUpload(repo, location, new Uint8Array(0), digest, final, scopes);
        opts.onProgress?.(blob.size, blob.size);
        return 'uploaded';
      }
    } catch (e) {
      if (location !== undefined) await this.cancelUpload(repo.registry, location, scopes, what);
      if (reason === undefined) throw e;
      if (reason !== 'exists') throw reason.error;
      // The registry has the blob: what was sent of the upload is discarded.
    }
    opts.onProgress?.(blob.size, blob.size);
    return 'exists';
  }

  private async finishUpload(
    repo: Repository,
    location: string,
    body: Uint8Array,
    digest: string,
    what: What,
    scopes: readonly string[],
  ): Promise<string> {
    const res = await this.send(
      repo.registry,
      appendQuery(location, 'digest', digest),
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body, direct: true },
      scopes,
      what,
    );
    if (res.status !== 201 && res.status !== 204) throw await this.responseError(res, repo.registry, what);
    await res.body?.cancel();
    const header = res.headers.get('docker-content-digest');
    if (header !== null && header !== digest) {
      throw new OciError('OCI_DIGEST_MISMATCH', `${repo.registry} stored blob ${what.subject} as ${header}`);
    }
    return location;
  }

  private async cancelUpload(registry: string, location: string, scopes: readonly string[], what: What): Promise<void> {
    try {
      const res = await this.send(registry, location, { method: 'DELETE', direct: true }, scopes, what);
      await res.body?.cancel();
    } catch {
      // Best effort: the registry expires abandoned uploads on its own.
    }
  }

  private location(res: Response, registry: string, subject: string): string {
    const loc = res.headers.get('location');
    if (loc === null || loc === '')
      throw new OciError('OCI_REGISTRY_ERROR', `${registry}: upload of ${subject} got no Location header`);
    return loc;
  }

  /** All tags of a repository, following `Link` pagination (bounded to 1000 pages). */
  async listTags(repo: Repository, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${repo.repository}/tags/list?n=${pageSize}`;
    const what: What = { kind: 'tags', subject: repo.repository };
    for (let page = 0; path !== undefined && page < 1000; page++) {
      const res = await this.send(repo.registry, path, { method: 'GET' }, [RegistryClient.scope(repo, 'pull')], what);
      if (!res.ok) throw await this.responseError(res, repo.registry, what);
      const body = JSON.parse(await readCapped(res, this.maxManifestBytes, 'tag list')) as { tags?: unknown };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      const link = res.headers.get('link');
      const m = link === null ? null : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
      path = m?.[1];
    }
    return tags;
  }
}
