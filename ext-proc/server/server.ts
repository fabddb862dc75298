/**
 * `createExtProcServer`: a grpc-js server with the ext_proc service, `grpc.health.v1`, Prometheus
 * metrics, TCP (plain, TLS, mTLS) and Unix-socket listeners, and graceful drain.
 *
 *   ExtProcServer
 *     ├─ grpc.Server ── ExternalProcessor/Process ──► one ExtProcStream per stream (= HTTP request)
 *     │               └ grpc.health.v1.Health     ──► HealthService (SERVING → NOT_SERVING on drain)
 *     ├─ DeadlineQueue (one shared timer for handler deadlines)
 *     └─ ExtProcMetrics (prom-client registry) ── optional HTTP /metrics, /healthz
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import client from 'prom-client';
import { EnvextError, errorMessage } from '../../common/errors.js';
import { rootLogger, type Logger } from '../../common/log.js';
import { continueAnswers, SERVICE, serverDefinition, type TooLarge, type WireRequest } from './codec.js';
import { DeadlineQueue } from './deadlines.js';
import { HealthService } from './health.js';
import type { MutationRules } from './headers.js';
import { ExtProcMetrics } from './metrics.js';
import { ExtProcStream, type StreamSettings } from './stream.js';
import {
  DEFAULT_PROCESSING_MODE,
  HANDLER_KEYS,
  type ExtProcHandler,
  type FailurePolicy,
  type ProcessingMode,
} from './types.js';

/** Errors of the ext_proc server, with stable codes (`EXT_PROC_*`). */
export class ExtProcError extends EnvextError {
  override readonly name = 'ExtProcError';
}

export interface ExtProcServerOptions<S = Record<string, unknown>> {
  /** The handler: any subset of the six phase callbacks. */
  readonly handler: ExtProcHandler<S>;
  /** Envoy's `message_timeout` for this filter (default 200 ms). */
  readonly messageTimeoutMs?: number;
  /**
   * How long a handler may take per message before the timeout policy applies; must be below
   * `messageTimeoutMs` so the framework answers before Envoy gives up. Default 80 % of it.
   * 0 disables handler deadlines.
   */
  readonly handlerTimeoutMs?: number;
  /** What a handler timeout becomes (default 504, Envoy's own answer to a message timeout). */
  readonly onTimeout?: FailurePolicy;
  /** What a handler exception, rejection or invalid decision becomes (default `error` → Envoy's 500). */
  readonly onError?: FailurePolicy;
  /**
   * The filter's `processing_mode`, used for streams whose first message has no `protocol_config`
   * (Envoy before 1.33). Default Envoy's: headers SEND, bodies NONE, trailers SKIP.
   */
  readonly processingMode?: ProcessingMode;
  /** Mirrors the filter's `allow_mode_override` (default true: overrides are sent). */
  readonly allowModeOverride?: boolean;
  /** Mirrors the filter's `disable_immediate_response`. */
  readonly disableImmediateResponse?: boolean;
  /** Mirrors the filter's `mutation_rules`. */
  readonly mutationRules?: MutationRules;
  /** Largest ProcessingRequest accepted, e.g. a BUFFERED body (default 16 MiB). */
  readonly maxMessageBytes?: number;
  /** Messages queued per stream before reading pauses (back-pressure; default 64). */
  readonly maxPendingMessages?: number;
  readonly logger?: Logger;
  /** Collect Prometheus metrics (default true). */
  readonly metrics?: boolean;
  /**
   * Extra grpc-js server options, applied over envext's (`grpc.enable_channelz` is 0 unless set
   * here: envext serves no channelz service).
   */
  readonly grpcOptions?: grpc.ServerOptions;
}

export interface TlsFiles {
  /** PEM certificate chain file. */
  readonly cert: string;
  /** PEM private key file. */
  readonly key: string;
  /** PEM CA bundle; when given, clients must present a certificate it signed (mTLS). */
  readonly ca?: string;
}

export interface ListenOptions {
  /** TCP only. */
  readonly tls?: TlsFiles;
  /** Unix sockets only: file mode after bind (default 0o660). */
  readonly socketMode?: number;
}

/** A parsed listen address. */
export type ListenAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
export const MAX_UNIX_PATH_BYTES = 107;

/** Parses `unix:///abs/path`, `unix:/abs/path`, `unix:rel`, a bare `/abs/path`, `host:port` or `[v6]:port`. */
export function parseListenAddress(text: string): ListenAddress {
  if (text.startsWith('unix:')) {
    const rest = text.startsWith('unix://') ? text.slice('unix://'.length) : text.slice('unix:'.length);
    if (rest === '')
      throw new ExtProcError('EXT_PROC_BAD_ADDRESS', `"${text}" has no socket path`, {
        hint: 'use unix:///absolute/path.sock',
      });
    return { kind: 'unix', path: rest };
  }
  if (text.startsWith('/') || text.startsWith('./')) return { kind: 'unix', path: text };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ExtProcError('EXT_PROC_BAD_ADDRESS', `cannot parse listen address "${text}"`, {
      hint: 'use HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051, 0.0.0.0:0) or unix:///path.sock',
    });
  }
  return { kind: 'tcp', host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string)), port };
}

function checkPolicy(name: string, p: FailurePolicy): FailurePolicy {
  if (p === 'continue' || p === 'error') return p;
  if (typeof p === 'number' && Number.isInteger(p) && p >= 200 && p <= 599) return p;
  throw new ExtProcError('EXT_PROC_BAD_OPTION', `${name}: ${JSON.stringify(p)} is not a failure policy`, {
    hint: "use 'continue', 'error' or an HTTP status such as 500 or 504",
  });
}

const PROCESS_PATH = `/${SERVICE}/Process`;

/**
 * What grpc-js's bidi handler gets for a Process call: starting it starts our stream on the
 * underlying call instead of the handler's Duplex. The handler calls nothing else on it; the
 * stream uses the underlying call directly.
 */
class ProcessCall extends grpc.ServerInterceptingCall {
  constructor(
    private readonly call: grpc.ServerInterceptingCallInterface,
    private readonly settings: StreamSettings,
    private readonly onStart: () => void,
  ) {
    super(call);
  }

  override start(): void {
    try {
      this.onStart();
      new ExtProcStream(this.call, this.settings).start();
    } catch (e: unknown) {
      this.call.sendStatus({
        code: grpc.status.INTERNAL,
        details: `envext: cannot start the stream: ${errorMessage(e)}`,
      });
    }
  }
}

/** A running (or ready to run) ext_proc server. */
export class ExtProcServer {
  readonly grpc: grpc.Server;
  readonly health: HealthService;
  /** Undefined when metrics are off. */
  readonly metrics: ExtProcMetrics | undefined;
  readonly log: Logger;
  /**
   * Streams in flight: a count, not a Set of the stream objects. Holding every stream in a
   * long-lived Set made V8 promote each request's whole object graph (call, decoded messages) out
   * of the young generation: measured 5 KB promoted per request and 3× the scavenge time of a bare
   * server, the framework's main CPU overhead. Each stream is reachable from its call only (as
   * the call's listener), as a bare grpc-js handler's state is.
   */
  private active = 0;
  private readonly stats = { maxQueued: 0 };
  private readonly deadlines: DeadlineQueue | undefined;
  private readonly sockets: string[] = [];
  private draining = false;
  private httpServer: HttpServer | undefined;

  constructor(options: ExtProcServerOptions<never>) {
    const handler = options.handler as ExtProcHandler<unknown>;
    if (typeof handler !== 'object' || handler === null) {
      throw new ExtProcError(
        'EXT_PROC_BAD_HANDLER',
        'the handler must be an object with onRequestHeaders … onResponseTrailers callbacks',
      );
    }
    const unknownKeys = Object.keys(handler).filter((k) => !HANDLER_KEYS.includes(k));
    if (unknownKeys.length > 0) {
      throw new ExtProcError('EXT_PROC_BAD_HANDLER', `the handler has unknown members: ${unknownKeys.join(', ')}`, {
        hint: 'callbacks are createState, onRequestHeaders, onRequestBody, onRequestTrailers, onResponseHeaders, onResponseBody, onResponseTrailers, onStreamEnd',
      });
    }
    const messageTimeoutMs = options.messageTimeoutMs ?? 200;
    if (!Number.isFinite(messageTimeoutMs) || messageTimeoutMs < 0) {
      throw new ExtProcError('EXT_PROC_BAD_OPTION', `messageTimeoutMs: ${messageTimeoutMs} is not a duration in ms`);
    }
    const handlerTimeoutMs = options.handlerTimeoutMs ?? Math.max(1, Math.floor(messageTimeoutMs * 0.8));
    if (!Number.isFinite(handlerTimeoutMs) || handlerTimeoutMs < 0) {
      throw new ExtProcError('EXT_PROC_BAD_OPTION', `handlerTimeoutMs: ${handlerTimeoutMs} is not a duration in ms`);
    }
    const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.log = options.logger ?? rootLogger.child({ component: 'ext-proc' });
    this.metrics = options.metrics === false ? undefined : new ExtProcMetrics();
    this.deadlines = handlerTimeoutMs > 0 ? new DeadlineQueue(handlerTimeoutMs) : undefined;
    const settings: StreamSettings = {
      handler,
      log: this.log,
      metrics: this.metrics,
      deadlines: this.deadlines,
      onTimeout: checkPolicy('onTimeout', options.onTimeout ?? 504),
      onError: checkPolicy('onError', options.onError ?? 'error'),
      rules: options.mutationRules ?? {},
      disableImmediateResponse: options.disableImmediateResponse === true,
      allowModeOverride: options.allowModeOverride !== false,
      mode: { ...DEFAULT_PROCESSING_MODE, ...stripDefaults(options.processingMode) },
      modeConfigured: options.processingMode !== undefined,
      maxPendingMessages: Math.max(2, options.maxPendingMessages ?? 64),
      maxMessageBytes,
      onClosed: () => {
        this.active--;
      },
      stats: this.stats,
    };
    continueAnswers(); // encode the constant answers (and load the protos) now, not on the first request
    // Each Process call is taken over by this interceptor (the last one, so that it sees the call
    // as every other interceptor left it): the stream drives grpc-js's call layer itself, without
    // the object-mode Duplex grpc-js builds for a handler (see stream.ts). The call is held only by
    // grpc-js, as a bare handler's state is (see `active`).
    const started = (): void => {
      this.active++;
    };
    const direct: grpc.ServerInterceptor = (method, call) => {
      // Health checks and other services: passed through untouched.
      if (method.path !== PROCESS_PATH) return new grpc.ServerInterceptingCall(call);
      return new ProcessCall(call, settings, started);
    };
    this.grpc = new grpc.Server({
      // grpc-js enforces a hard cap well above ours; below it, the stream reports the clear error.
      'grpc.max_receive_message_length': maxMessageBytes * 2 + 64 * 1024,
      // Channelz is grpc-js's bookkeeping for the channelz admin service, which envext does not
      // serve: a tracker object with five closures per call and a Date.now() per message sent and
      // received, readable by nobody. Off unless grpcOptions turns it on ('grpc.enable_channelz': 1).
      // Measured (ext-proc bench server, UDS, N = 16, 8 interleaved pairs): 3-8 % less server CPU
      // per request, in every pair.
      'grpc.enable_channelz': 0,
      ...options.grpcOptions,
      interceptors: [...(options.grpcOptions?.interceptors ?? []), direct],
    });
    this.grpc.addService(serverDefinition(maxMessageBytes), {
      // Only reached if a call got past the interceptor, which does not happen; fail it clearly.
      process: (call: grpc.ServerDuplexStream<WireRequest | TooLarge, Buffer | object>) => {
        call.emit('error', { code: grpc.status.INTERNAL, details: 'ext_proc call not taken over by envext' });
      },
    });
    this.health = new HealthService([SERVICE]);
    this.health.addTo(this.grpc);
  }

  /** The most messages any stream has held unanswered (bounded by `maxPendingMessages`: back-pressure). */
  get maxQueuedMessages(): number {
    return this.stats.maxQueued;
  }

  /** Streams (HTTP requests) in flight. */
  get activeStreams(): number {
    return this.active;
  }

  /**
   * Binds one address; call it several times for several listeners (UDS and TCP at once). Returns
   * the bound address (`127.0.0.1:41234` with the real port, or `unix:///path`).
   */
  async listen(address: string, options: ListenOptions = {}): Promise<string> {
    const a = parseListenAddress(address);
    if (a.kind === 'unix') {
      if (options.tls !== undefined) {
        throw new ExtProcError('EXT_PROC_BAD_OPTION', `TLS is for TCP listeners; ${address} is a Unix socket`, {
          hint: 'protect the socket with its file mode (--socket-mode) instead',
        });
      }
      await prepareSocketPath(a.path);
      await this.bind(`unix://${a.path}`, grpc.ServerCredentials.createInsecure(), address);
      const mode = options.socketMode ?? 0o660;
      try {
        await chmod(a.path, mode);
      } catch (e: unknown) {
        throw new ExtProcError(
          'EXT_PROC_SOCKET_PERMISSION',
          `cannot set mode ${mode.toString(8)} on ${a.path}: ${errorMessage(e)}`,
          { cause: e },
        );
      }
      this.sockets.push(a.path);
      this.log.info('listening', { address: `unix://${a.path}`, mode: mode.toString(8) });
      return `unix://${a.path}`;
    }
    const creds = options.tls === undefined ? grpc.ServerCredentials.createInsecure() : tlsCredentials(options.tls);
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    const port = await this.bind(`${host}:${a.port}`, creds, address);
    const bound = `${host}:${port}`;
    this.log.info('listening', {
      address: bound,
      tls: options.tls === undefined ? 'off' : options.tls.ca === undefined ? 'tls' : 'mtls',
    });
    return bound;
  }

  private bind(target: string, creds: grpc.ServerCredentials, original: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.grpc.bindAsync(target, creds, (e, port) => {
        if (e === null) return resolve(port);
        const msg = e.message;
        const code = /EACCES|EPERM/.test(msg)
          ? 'EXT_PROC_SOCKET_PERMISSION'
          : /EADDRINUSE/.test(msg)
            ? 'EXT_PROC_ADDRESS_IN_USE'
            : 'EXT_PROC_LISTEN_FAILED';
        reject(
          new ExtProcError(code, `cannot listen on ${original}: ${msg}`, {
            hint:
              code === 'EXT_PROC_SOCKET_PERMISSION'
                ? 'the process cannot create the socket or port there; check the directory permissions or use a port above 1023'
                : code === 'EXT_PROC_ADDRESS_IN_USE'
                  ? 'another process holds that address; pick another port or stop it'
                  : 'check the address',
            cause: e,
          }),
        );
      });
    });
  }

  /**
   * Graceful drain: health goes NOT_SERVING, no new streams are accepted (GOAWAY), in-flight
   * streams get `graceMs` to finish, then whatever is left is cancelled. Resolves when the server
   * is closed, with how many streams had to be cut.
   */
  async drain(graceMs: number): Promise<{ readonly inFlightAtStart: number; readonly forced: number }> {
    const inFlightAtStart = this.active;
    if (!this.draining) {
      this.draining = true;
      this.health.setAll('NOT_SERVING');
      this.health.closeWatchers();
      this.log.info('draining', { inFlight: inFlightAtStart, graceMs });
    }
    let forced = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        forced = this.active;
        if (forced > 0) this.log.warn('grace period over; cancelling streams still open', { streams: forced });
        this.grpc.forceShutdown();
        resolve();
      }, graceMs);
      this.grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.afterClose();
    return { inFlightAtStart, forced };
  }

  /** Closes at once, cancelling open streams. */
  async close(): Promise<void> {
    this.health.setAll('NOT_SERVING');
    this.health.closeWatchers();
    this.grpc.forceShutdown();
    await this.afterClose();
  }

  private async afterClose(): Promise<void> {
    this.deadlines?.clear();
    await new Promise<void>((r) => (this.httpServer === undefined ? r() : this.httpServer.close(() => r())));
    this.httpServer = undefined;
    for (const p of this.sockets.splice(0)) await unlink(p).catch(() => undefined);
  }

  /** The Prometheus exposition text. */
  async metricsText(): Promise<string> {
    return this.metrics === undefined ? '' : this.metrics.registry.metrics();
  }

  /**
   * Serves `GET /metrics` (Prometheus) and `GET /healthz` (200 SERVING / 503 NOT_SERVING) over
   * plain HTTP. Returns the bound port.
   */
  async serveMetrics(port: number, host = '127.0.0.1', withProcessMetrics = false): Promise<number> {
    const registry = this.metrics?.registry ?? new client.Registry();
    if (withProcessMetrics) client.collectDefaultMetrics({ register: registry });
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500).end(errorMessage(e)),
        );
        return;
      }
      if (req.method === 'GET' && path === '/healthz') {
        const s = this.health.status() ?? 'NOT_SERVING';
        res.writeHead(s === 'SERVING' ? 200 : 503, { 'content-type': 'text/plain' }).end(`${s}\n`);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(
          new ExtProcError('EXT_PROC_LISTEN_FAILED', `cannot serve metrics on ${host}:${port}: ${e.message}`, {
            cause: e,
          }),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    this.httpServer = server;
    const addr = server.address();
    const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
    this.log.info('metrics', { url: `http://${host}:${bound}/metrics` });
    return bound;
  }
}

/** Creates an ext_proc server; call `listen` to bind it. */
export function createExtProcServer<S>(options: ExtProcServerOptions<S>): ExtProcServer {
  return new ExtProcServer(options as unknown as ExtProcServerOptions<never>);
}

function stripDefaults(m: ProcessingMode | undefined): ProcessingMode {
  const out: Record<string, string> = {};
  if (m !== undefined) {
    for (const [k, v] of Object.entries(m) as [string, string | undefined][])
      if (v !== undefined && v !== 'DEFAULT') out[k] = v;
  }
  return out;
}

function tlsCredentials(t: TlsFiles): grpc.ServerCredentials {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e: unknown) {
      throw new ExtProcError('EXT_PROC_TLS_FILE', `cannot read the TLS ${what} ${path}: ${errorMessage(e)}`, {
        hint: `check the --tls-${what} path`,
        cause: e,
      });
    }
  };
  const cert = read('cert', t.cert);
  const key = read('key', t.key);
  const ca = t.ca === undefined ? null : read('ca', t.ca);
  try {
    return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
  } catch (e: unknown) {
    throw new ExtProcError('EXT_PROC_TLS_FILE', `invalid TLS material: ${errorMessage(e)}`, {
      hint: 'the cert and key must be PEM and belong together',
      cause: e,
    });
  }
}

/**
 * Makes `path` bindable: checks its length and directory, and removes a stale socket left by a
 * previous run. A regular file, or a socket someone still listens on, is an error, never deleted.
 */
async function prepareSocketPath(path: string): Promise<void> {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw new ExtProcError(
      'EXT_PROC_SOCKET_PATH_TOO_LONG',
      `Unix socket path is ${bytes} bytes, the limit is ${MAX_UNIX_PATH_BYTES}: ${path}`,
      {
        hint: 'use a shorter path, e.g. under /run or /tmp',
      },
    );
  }
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e: unknown) {
    throw new ExtProcError(
      'EXT_PROC_SOCKET_DIR',
      `the directory of the socket ${path} does not exist: ${errorMessage(e)}`,
      {
        hint: `create ${dir} first (in Kubernetes, an emptyDir shared with Envoy)`,
        cause: e,
      },
    );
  }
  let st: Stats;
  try {
    st = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) {
    throw new ExtProcError('EXT_PROC_SOCKET_PATH_IN_USE', `${path} exists and is not a socket; refusing to delete it`, {
      hint: 'choose another socket path or remove the file yourself',
    });
  }
  if (await socketAnswers(path)) {
    throw new ExtProcError('EXT_PROC_ADDRESS_IN_USE', `another process is listening on ${path}`, {
      hint: 'stop the other server or choose another socket path',
    });
  }
  try {
    await unlink(path);
  } catch (e: unknown) {
    throw new ExtProcError('EXT_PROC_SOCKET_PERMISSION', `cannot remove the stale socket ${path}: ${errorMessage(e)}`, {
      hint: 'remove it as its owner, or choose another path',
      cause: e,
    });
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
