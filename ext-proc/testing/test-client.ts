/**
 * A test client that plays Envoy's ext_proc filter against a running server (or a handler, which it
 * serves on a temporary Unix socket): it sends the messages Envoy would send for a processing mode,
 * in Envoy's order and pacing, checks every answer against the matching rule, applies the mutations
 * the way Envoy applies them (raw_value only, the `append` BoolValue, default mutation rules,
 * content-length rules), and returns the request and response as Envoy would forward them.
 *
 * It speaks the real protocol over a real grpc-js channel and encodes/decodes with the strict
 * generic codec (`proto/codec.ts`), not the server's hot-path codec, so each checks the other.
 *
 * Envoy behaviour modelled (reference/ext-proc.md):
 * - one stream per exchange; `protocol_config` on the first message; attributes on the first
 *   message of each direction; `metadata_context` on every message;
 * - headers → body → trailers per direction, request then response;
 * - NONE / STREAMED (all chunks pipelined, one answer per chunk in order) / BUFFERED /
 *   BUFFERED_PARTIAL (up to `bufferLimitBytes`) / FULL_DUPLEX_STREAMED (M:N streamed_response);
 * - observability mode: everything sent, nothing awaited, any answer counted as unexpected;
 * - CONTINUE_AND_REPLACE ends the direction; immediate_response ends the exchange;
 * - mode_override honoured only on headers answers, with allow_mode_override, not with
 *   send_body_without_waiting_for_header_response or FULL_DUPLEX_STREAMED; DEFAULT header modes keep
 *   the current setting, body modes are verbatim;
 * - spurious answers, invalid mutations, a gRPC error → local reply `statusOnError` (500), a
 *   message timeout → 504; with `failureModeAllow` the exchange continues without the server
 *   (except invalid mutations, and FULL_DUPLEX_STREAMED once body data was sent);
 * - a clean close by the server → the rest passes through unprocessed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decode, encode, protoRoot, type ProtoObject } from '../../proto/index.js';
import { REQUEST, RESPONSE, SERVICE } from '../server/codec.js';
import { disallowedReason, pairs, type MutationRules } from '../server/headers.js';
import { createExtProcServer, type ExtProcServer, type ExtProcServerOptions } from '../server/server.js';
import type {
  BodySendMode,
  HeaderInput,
  HeaderSendMode,
  ProcessingMode,
  StructObject,
  StructValue,
} from '../server/types.js';

/** One HTTP message (request or response) as Envoy receives it. */
export interface HttpMessageSpec {
  readonly headers: HeaderInput;
  /** The body; an array is sent as separate chunks (STREAMED, FULL_DUPLEX_STREAMED). */
  readonly body?: string | Uint8Array | readonly (string | Uint8Array)[];
  readonly trailers?: HeaderInput;
}

export interface ExchangeOptions {
  /** The filter's `processing_mode` (Envoy defaults: headers SEND, bodies NONE, trailers SKIP). */
  readonly mode?: ProcessingMode;
  readonly request: HttpMessageSpec;
  /** The upstream response; default `:status: 200`, no body. */
  readonly response?: HttpMessageSpec;
  /** `request_attributes` / `response_attributes` values, sent under `envoy.filters.http.ext_proc`. */
  readonly attributes?: {
    readonly request?: Record<string, StructValue>;
    readonly response?: Record<string, StructValue>;
  };
  /** `metadata_context.filter_metadata`, attached to every message. */
  readonly metadataContext?: Record<string, StructObject>;
  readonly observabilityMode?: boolean;
  /** Send `protocol_config` on the first message, as Envoy ≥ 1.33 does (default true). */
  readonly sendProtocolConfig?: boolean;
  readonly sendBodyWithoutWaitingForHeaderResponse?: boolean;
  /** Envoy's `allow_mode_override` (default false, as in Envoy). */
  readonly allowModeOverride?: boolean;
  readonly disableImmediateResponse?: boolean;
  /** Envoy's `message_timeout` (default 200 ms). */
  readonly messageTimeoutMs?: number;
  readonly failureModeAllow?: boolean;
  /** Envoy's `status_on_error` (default 500). */
  readonly statusOnError?: number;
  readonly mutationRules?: MutationRules;
  /** Buffer limit for BUFFERED_PARTIAL (default 1 MiB). */
  readonly bufferLimitBytes?: number;
  /** gRPC initial metadata on the stream (`grpc_initial_metadata`). */
  readonly callMetadata?: Record<string, string>;
  /**
   * Cancel the stream (as Envoy does on a downstream reset) `cancelDelayMs` (default 50) after
   * sending this message kind, without waiting for its answer.
   */
  readonly cancelAfter?:
    | 'request_headers'
    | 'request_body'
    | 'request_trailers'
    | 'response_headers'
    | 'response_body'
    | 'response_trailers';
  readonly cancelDelayMs?: number;
}

export type HeaderList = [name: string, value: string][];

export interface ForwardedMessage {
  readonly headers: HeaderList;
  readonly body: Buffer;
  readonly trailers: HeaderList | undefined;
}

export interface ExchangeResult {
  /**
   * `completed`: request forwarded upstream and response downstream; `immediate`: the server sent
   * an immediate response; `local_reply`: Envoy failed the request (`localReply` says why);
   * `cancelled`: the exchange was cancelled by `cancelAfter`.
   */
  readonly outcome: 'completed' | 'immediate' | 'local_reply' | 'cancelled';
  /** The request as forwarded upstream (undefined when it never was). */
  readonly request: ForwardedMessage | undefined;
  /** The response as sent downstream (undefined for immediate/local replies). */
  readonly response: ForwardedMessage | undefined;
  readonly immediateResponse:
    | {
        readonly status: number;
        readonly headers: HeaderList;
        readonly body: Buffer;
        readonly grpcStatus: number | undefined;
        readonly details: string;
      }
    | undefined;
  readonly localReply: { readonly status: number; readonly reason: string } | undefined;
  /** Dynamic metadata received, merged by namespace (before Envoy's receiving_namespaces filter). */
  readonly dynamicMetadata: Record<string, StructObject>;
  readonly clearRouteCache: boolean;
  /** How the gRPC stream ended. */
  readonly grpcStatus: { readonly code: number; readonly details: string } | undefined;
  readonly stats: {
    messagesSent: number;
    messagesReceived: number;
    /** Answers received in observability mode (must be 0). */
    unexpectedAnswers: number;
    /** Mutations Envoy ignores under its mutation rules. */
    rejectedHeaderMutations: number;
    /** Header values set with `value` only (Envoy makes them empty). */
    valueWithoutRawValue: number;
    modeOverrides: number;
    clearRouteCacheIgnored: number;
  };
  /** Every message, decoded, in order: what was sent and what came back. */
  readonly sent: ProtoObject[];
  readonly received: ProtoObject[];
}

const FILTER = 'envoy.filters.http.ext_proc';
const HEADER_TOKEN = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;

class LocalReply extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    /** failure_mode_allow may turn this into "continue without the server". */
    readonly allowable: boolean,
  ) {
    super(reason);
  }
}
class Immediate extends Error {
  constructor(readonly answer: ProtoObject) {
    super('immediate response');
  }
}

type Received = { kind: 'msg'; msg: ProtoObject } | { kind: 'status'; code: number; details: string };

/** A client for one server address; runs any number of exchanges. */
export class ExtProcTestClient {
  private readonly client: grpc.Client;
  private ownedServer: ExtProcServer | undefined;
  private ownedDir: string | undefined;

  /**
   * @param target `unix:///path`, `host:port`, or anything grpc-js accepts.
   * @param credentials default insecure.
   */
  constructor(
    readonly target: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Process: {
          path: `/${SERVICE}/Process`,
          requestStream: true,
          responseStream: true,
          requestSerialize: (v: ProtoObject) => Buffer.from(encode(REQUEST, v)),
          requestDeserialize: (b: Buffer) => decode(REQUEST, b),
          responseSerialize: (v: ProtoObject) => Buffer.from(encode(RESPONSE, v)),
          responseDeserialize: (b: Buffer) => decode(RESPONSE, b),
        },
      },
      SERVICE,
    );
    this.client = new Ctor(target, credentials, {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      ...options,
    });
  }

  /** Serves `options.handler` on a temporary Unix socket and returns a client for it. */
  static async forHandler<S>(options: ExtProcServerOptions<S>): Promise<ExtProcTestClient> {
    const dir = mkdtempSync(join(tmpdir(), 'envext-xp-'));
    const server = createExtProcServer(options);
    const address = await server.listen(`unix://${join(dir, 'ext-proc.sock')}`);
    const c = new ExtProcTestClient(address);
    c.ownedServer = server;
    c.ownedDir = dir;
    return c;
  }

  /** The server started by `forHandler`, if any. */
  get server(): ExtProcServer | undefined {
    return this.ownedServer;
  }

  async close(): Promise<void> {
    this.client.close();
    if (this.ownedServer !== undefined) await this.ownedServer.close();
    if (this.ownedDir !== undefined) rmSync(this.ownedDir, { recursive: true, force: true });
  }

  /** Runs one HTTP request through the server the way Envoy would. */
  async exchange(o: ExchangeOptions): Promise<ExchangeResult> {
    return new Exchange(this.client, o).run();
  }
}

class Exchange {
  private readonly call: grpc.ClientDuplexStream<ProtoObject, ProtoObject>;
  private readonly inbox: Received[] = [];
  private wake: (() => void) | undefined;
  private status: { code: number; details: string } | undefined;
  private mode: Required<ProcessingMode>;
  private firstMessage = true;
  private readonly attrsSent = { request: false, response: false };
  private serverDone = false; // closed OK or failure-mode-allowed: rest passes unprocessed
  private readonly sent: ProtoObject[] = [];
  private readonly received: ProtoObject[] = [];
  private readonly dynamicMetadata: Record<string, StructObject> = {};
  private clearRouteCache = false;
  private readonly stats = {
    messagesSent: 0,
    messagesReceived: 0,
    unexpectedAnswers: 0,
    rejectedHeaderMutations: 0,
    valueWithoutRawValue: 0,
    modeOverrides: 0,
    clearRouteCacheIgnored: 0,
  };
  private readonly rules: MutationRules;
  private fullDuplexBodySent = false;

  constructor(
    client: grpc.Client,
    private readonly o: ExchangeOptions,
  ) {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(o.callMetadata ?? {})) md.set(k, v);
    const method = (
      client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<ProtoObject, ProtoObject>>
    )['Process'];
    if (method === undefined) throw new Error('no Process method');
    this.call = method.call(client, md);
    this.call.on('data', (msg: ProtoObject) => this.push({ kind: 'msg', msg }));
    this.call.on('status', (s: grpc.StatusObject) => this.push({ kind: 'status', code: s.code, details: s.details }));
    this.call.on('error', () => undefined); // the status event carries it
    const m = o.mode ?? {};
    const hdr = (v: HeaderSendMode | undefined, def: HeaderSendMode): HeaderSendMode =>
      v === undefined || v === 'DEFAULT' ? def : v;
    this.mode = {
      request_header_mode: hdr(m.request_header_mode, 'SEND'),
      response_header_mode: hdr(m.response_header_mode, 'SEND'),
      request_trailer_mode: hdr(m.request_trailer_mode, 'SKIP'),
      response_trailer_mode: hdr(m.response_trailer_mode, 'SKIP'),
      request_body_mode: m.request_body_mode ?? 'NONE',
      response_body_mode: m.response_body_mode ?? 'NONE',
    };
    this.rules = o.mutationRules ?? {};
  }

  private push(r: Received): void {
    if (r.kind === 'status') this.status = { code: r.code, details: r.details };
    else {
      this.received.push(r.msg);
      this.stats.messagesReceived++;
    }
    this.inbox.push(r);
    this.wake?.();
  }

  async run(): Promise<ExchangeResult> {
    let request: ForwardedMessage | undefined;
    let response: ForwardedMessage | undefined;
    let immediate: ExchangeResult['immediateResponse'];
    let localReply: ExchangeResult['localReply'];
    let outcome: ExchangeResult['outcome'] = 'completed';
    try {
      request = await this.direction('request', this.o.request);
      response = await this.direction('response', this.o.response ?? { headers: { ':status': '200' } });
    } catch (e: unknown) {
      if (e instanceof Immediate) {
        outcome = 'immediate';
        immediate = this.immediateOf(e.answer);
        request = undefined;
        response = undefined;
      } else if (e instanceof LocalReply) {
        outcome = 'local_reply';
        localReply = { status: e.status, reason: e.reason };
        request = undefined;
        response = undefined;
      } else if (e instanceof Cancelled) {
        outcome = 'cancelled';
      } else throw e;
    }
    if (outcome !== 'cancelled') {
      // Envoy half-closes when it needs nothing more, then waits for the server's status.
      this.call.end();
      if (outcome === 'local_reply' && this.status === undefined) this.call.cancel();
      await this.waitStatus(2000);
    } else {
      await new Promise((r) => setTimeout(r, this.o.cancelDelayMs ?? 50));
      this.call.cancel();
      await this.waitStatus(2000);
    }
    return {
      outcome,
      request,
      response,
      immediateResponse: immediate,
      localReply,
      dynamicMetadata: this.dynamicMetadata,
      clearRouteCache: this.clearRouteCache,
      grpcStatus: this.status,
      stats: this.stats,
      sent: this.sent,
      received: this.received,
    };
  }

  private async waitStatus(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.status === undefined && Date.now() < until) {
      await this.waitFor(until - Date.now());
    }
    this.inbox.length = 0;
  }

  private waitFor(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(
        () => {
          this.wake = undefined;
          resolve();
        },
        Math.max(0, ms),
      );
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** The next message or status, or undefined on timeout. */
  private async next(timeoutMs: number): Promise<Received | undefined> {
    const until = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      const left = until - Date.now();
      if (left <= 0) return undefined;
      await this.waitFor(left);
    }
    return this.inbox.shift();
  }

  private send(kind: string, payload: ProtoObject, direction: 'request' | 'response'): void {
    const msg: ProtoObject = { [kind]: payload };
    if (this.o.metadataContext !== undefined) {
      msg['metadata_context'] = {
        filter_metadata: Object.fromEntries(Object.entries(this.o.metadataContext).map(([k, v]) => [k, toStruct(v)])),
      };
    }
    const attrs = this.o.attributes?.[direction];
    if (attrs !== undefined && !this.attrsSent[direction]) {
      this.attrsSent[direction] = true;
      msg['attributes'] = { [FILTER]: toStruct(attrs) };
    }
    if (this.o.observabilityMode === true) msg['observability_mode'] = true;
    else if (this.firstMessage && this.o.sendProtocolConfig !== false) {
      msg['protocol_config'] = {
        request_body_mode: this.mode.request_body_mode,
        response_body_mode: this.mode.response_body_mode,
        send_body_without_waiting_for_header_response: this.o.sendBodyWithoutWaitingForHeaderResponse === true,
      };
    }
    this.firstMessage = false;
    this.sent.push(msg);
    this.stats.messagesSent++;
    this.call.write(msg);
    if (this.o.cancelAfter === kind) throw new Cancelled();
  }

  /**
   * The answer to `kind`: validated against the matching rule. Returns undefined when the server
   * is out of the picture (closed OK, or failure_mode_allow after an error).
   */
  private async expect(kind: string | readonly string[], allowImmediate: boolean): Promise<ProtoObject | undefined> {
    const kinds = typeof kind === 'string' ? [kind] : kind;
    if (this.serverDone) return undefined;
    let timeout = this.o.messageTimeoutMs ?? 200;
    for (;;) {
      const r = await this.next(timeout);
      if (r === undefined) return this.failure(504, `message timeout waiting for the ${kinds.join('/')} answer`, true);
      if (r.kind === 'status') {
        if (r.code === (grpc.status.OK as number)) {
          this.serverDone = true;
          return undefined;
        }
        return this.failure(
          this.o.statusOnError ?? 500,
          `ext_proc stream closed with gRPC status ${r.code}: ${r.details}`,
          true,
        );
      }
      const msg = r.msg;
      if (msg['override_message_timeout'] !== undefined) {
        // Envoy ignores every other field of this message and restarts the timer.
        const d = msg['override_message_timeout'] as { seconds?: string; nanos?: number };
        timeout = Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
        continue;
      }
      this.collectMetadata(msg);
      if (msg['immediate_response'] !== undefined) {
        if (!allowImmediate || this.o.disableImmediateResponse === true) {
          return this.failure(
            this.o.statusOnError ?? 500,
            `spurious immediate_response in answer to ${kinds.join('/')}`,
            true,
          );
        }
        throw new Immediate(msg);
      }
      if (!kinds.some((k) => msg[k] !== undefined)) {
        const got = Object.keys(msg).filter((k) => k !== 'dynamic_metadata' && k !== 'mode_override');
        return this.failure(
          this.o.statusOnError ?? 500,
          `spurious answer: expected ${kinds.join(' or ')}, got ${got.join(', ') || 'an empty response'}`,
          true,
        );
      }
      return msg;
    }
  }

  private failure(status: number, reason: string, allowable: boolean): undefined {
    if (this.o.failureModeAllow === true && allowable && !this.fullDuplexBodySent) {
      this.serverDone = true;
      this.call.cancel();
      return undefined;
    }
    throw new LocalReply(status, reason, allowable);
  }

  private collectMetadata(msg: ProtoObject): void {
    const dm = msg['dynamic_metadata'] as { fields?: Record<string, unknown> } | undefined;
    if (dm === undefined) return;
    const obj = fromStruct(dm);
    for (const [ns, v] of Object.entries(obj)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v))
        this.dynamicMetadata[ns] = { ...this.dynamicMetadata[ns], ...(v as StructObject) };
    }
  }

  private async direction(dir: 'request' | 'response', spec: HttpMessageSpec): Promise<ForwardedMessage> {
    const headers: HeaderList = pairs(spec.headers).map(([k, v]) => [k.toLowerCase(), v]);
    const chunks = chunksOf(spec.body);
    let body: Buffer = Buffer.concat(chunks);
    const trailers: HeaderList | undefined =
      spec.trailers === undefined ? undefined : pairs(spec.trailers).map(([k, v]) => [k.toLowerCase(), v]);
    const obs = this.o.observabilityMode === true;
    const hKind = `${dir}_headers`;
    const bKind = `${dir}_body`;
    const tKind = `${dir}_trailers`;
    let replaced = false;

    const headerMode = dir === 'request' ? this.mode.request_header_mode : this.mode.response_header_mode;
    let bodyMode = (): BodySendMode => (dir === 'request' ? this.mode.request_body_mode : this.mode.response_body_mode);
    const trailerMode = (): HeaderSendMode =>
      dir === 'request' ? this.mode.request_trailer_mode : this.mode.response_trailer_mode;
    const fullDuplex = (): boolean => bodyMode() === 'FULL_DUPLEX_STREAMED' || bodyMode() === 'GRPC';
    const headersSent = headerMode === 'SEND' && !this.serverDone;
    const noWaitForHeaders =
      fullDuplex() || (this.o.sendBodyWithoutWaitingForHeaderResponse === true && bodyMode() === 'STREAMED');

    if (headersSent) {
      this.send(
        hKind,
        { headers: headerMap(headers), end_of_stream: chunks.length === 0 && trailers === undefined },
        dir,
      );
      if (!obs && !noWaitForHeaders) {
        const ans = await this.expect(hKind, true);
        if (ans !== undefined) {
          const r = this.applyCommon(dir, ans[hKind] as ProtoObject, headers, true);
          if (r.replaced) {
            replaced = true;
            if (r.body !== undefined) body = r.body;
            else body = Buffer.alloc(0);
          }
          this.modeOverride(ans, hKind);
          bodyMode = (): BodySendMode =>
            dir === 'request' ? this.mode.request_body_mode : this.mode.response_body_mode;
        }
      }
    }

    // Envoy strips content-length whenever the body may change size without the headers being held.
    const stripLength = (m: BodySendMode): boolean =>
      m === 'STREAMED' ||
      m === 'BUFFERED_PARTIAL' ||
      m === 'FULL_DUPLEX_STREAMED' ||
      m === 'GRPC' ||
      (m === 'BUFFERED' && headerMode !== 'SEND');

    if (!replaced && !this.serverDone && chunks.length > 0 && bodyMode() !== 'NONE') {
      const m = bodyMode();
      if (stripLength(m)) removeHeader(headers, 'content-length');
      if (m === 'STREAMED' || m === 'FULL_DUPLEX_STREAMED' || m === 'GRPC') {
        for (let i = 0; i < chunks.length; i++) {
          this.send(bKind, { body: chunks[i], end_of_stream: i === chunks.length - 1 && trailers === undefined }, dir);
          if (m !== 'STREAMED') this.fullDuplexBodySent = true;
        }
        const sendTrailersNow = (m === 'FULL_DUPLEX_STREAMED' || m === 'GRPC') && trailers !== undefined;
        if (sendTrailersNow) this.send(tKind, { trailers: headerMap(trailers) }, dir);
        if (noWaitForHeaders && headersSent && !obs) {
          const ans = await this.expect(hKind, true);
          if (ans !== undefined) this.applyCommon(dir, ans[hKind] as ProtoObject, headers, true);
        }
        if (!obs && m === 'STREAMED') {
          const out: Buffer[] = [];
          for (let i = 0; i < chunks.length; i++) {
            const ans = await this.expect(bKind, dir === 'request');
            if (ans === undefined) {
              out.push(...chunks.slice(i));
              break;
            }
            const r = this.applyCommon(dir, ans[bKind] as ProtoObject, headers, false, 'STREAMED');
            out.push(r.body ?? (chunks[i] as Buffer));
          }
          body = Buffer.concat(out);
        } else if (!obs) {
          // FULL_DUPLEX_STREAMED: collect streamed_response chunks until end_of_stream (or the
          // trailers answer when trailers were sent).
          const out: Buffer[] = [];
          let trailersAnswered = false;
          for (;;) {
            const ans = await this.expect(sendTrailersNow ? [bKind, tKind] : [bKind], dir === 'request');
            if (ans === undefined) break;
            if (ans[tKind] !== undefined) {
              this.applyTrailers(ans[tKind] as ProtoObject, trailers as HeaderList);
              trailersAnswered = true;
              break;
            }
            const common = (ans[bKind] as ProtoObject)['response'] as ProtoObject | undefined;
            const sr = (common?.['body_mutation'] as ProtoObject | undefined)?.['streamed_response'] as
              ProtoObject | undefined;
            if (sr === undefined) {
              throw new LocalReply(
                this.o.statusOnError ?? 500,
                `FULL_DUPLEX_STREAMED body answer without streamed_response`,
                false,
              );
            }
            out.push(Buffer.from((sr['body'] as Uint8Array | undefined) ?? []));
            if (sr['end_of_stream'] === true && !sendTrailersNow) break;
          }
          body = Buffer.concat(out);
          if (sendTrailersNow && !trailersAnswered && !this.serverDone) {
            const ans = await this.expect(tKind, false);
            if (ans !== undefined) this.applyTrailers(ans[tKind] as ProtoObject, trailers);
          }
          return { headers, body, trailers };
        }
      } else {
        // BUFFERED / BUFFERED_PARTIAL: one message.
        const limit = this.o.bufferLimitBytes ?? 1024 * 1024;
        const sentBody = m === 'BUFFERED_PARTIAL' && body.length > limit ? body.subarray(0, limit) : body;
        const rest = body.subarray(sentBody.length);
        this.send(bKind, { body: sentBody, end_of_stream: trailers === undefined && rest.length === 0 }, dir);
        if (!obs) {
          const ans = await this.expect(bKind, dir === 'request');
          if (ans !== undefined) {
            const r = this.applyCommon(dir, ans[bKind] as ProtoObject, headers, false, m);
            body = Buffer.concat([r.body ?? sentBody, rest]);
            if (m === 'BUFFERED' && headerMode === 'SEND' && r.body !== undefined) {
              const cl = headers.find(([k]) => k === 'content-length');
              if (cl !== undefined && cl[1] !== String(body.length)) {
                throw new LocalReply(
                  this.o.statusOnError ?? 500,
                  `content-length ${cl[1]} does not match the mutated body (${body.length} bytes)`,
                  false,
                );
              }
            }
          }
        }
      }
    }

    if (trailers !== undefined && trailerMode() === 'SEND' && !replaced && !this.serverDone) {
      this.send(tKind, { trailers: headerMap(trailers) }, dir);
      if (!obs) {
        const ans = await this.expect(tKind, false);
        if (ans !== undefined) this.applyTrailers(ans[tKind] as ProtoObject, trailers);
      }
    }
    return { headers, body, trailers };
  }

  private modeOverride(ans: ProtoObject, kind: string): void {
    const o = ans['mode_override'] as Record<string, string> | undefined;
    if (o === undefined) return;
    if (this.o.allowModeOverride !== true || this.o.sendBodyWithoutWaitingForHeaderResponse === true) return;
    const fd = (m: BodySendMode): boolean => m === 'FULL_DUPLEX_STREAMED' || m === 'GRPC';
    if (fd(this.mode.request_body_mode) || fd(this.mode.response_body_mode)) return;
    if (!kind.endsWith('_headers')) return;
    this.stats.modeOverrides++;
    const keep = (v: string | undefined, cur: HeaderSendMode): HeaderSendMode =>
      v === undefined || v === 'DEFAULT' ? cur : (v as HeaderSendMode);
    this.mode = {
      request_header_mode: this.mode.request_header_mode,
      response_header_mode: keep(o['response_header_mode'], this.mode.response_header_mode),
      request_trailer_mode: keep(o['request_trailer_mode'], this.mode.request_trailer_mode),
      response_trailer_mode: keep(o['response_trailer_mode'], this.mode.response_trailer_mode),
      // Envoy takes body modes verbatim: absent means NONE.
      request_body_mode: (o['request_body_mode'] as BodySendMode | undefined) ?? 'NONE',
      response_body_mode: (o['response_body_mode'] as BodySendMode | undefined) ?? 'NONE',
    };
  }

  /** Applies a HeadersResponse/BodyResponse; returns the replaced body and whether CONTINUE_AND_REPLACE. */
  private applyCommon(
    dir: 'request' | 'response',
    answer: ProtoObject,
    headers: HeaderList,
    isHeaders: boolean,
    bodyMode?: BodySendMode,
  ): { body: Buffer | undefined; replaced: boolean } {
    const common = answer['response'] as ProtoObject | undefined;
    if (common === undefined) return { body: undefined, replaced: false };
    const replaced = common['status'] === 'CONTINUE_AND_REPLACE';
    const hm = common['header_mutation'] as ProtoObject | undefined;
    if (hm !== undefined) {
      if (isHeaders || bodyMode === 'BUFFERED') this.applyMutation(hm, headers);
    }
    let body: Buffer | undefined;
    const bm = common['body_mutation'] as ProtoObject | undefined;
    if (bm !== undefined && (!isHeaders || replaced)) {
      if (bm['body'] !== undefined) body = Buffer.from(bm['body'] as Uint8Array);
      else if (bm['clear_body'] === true) body = Buffer.alloc(0);
      else if (bm['streamed_response'] !== undefined) {
        throw new LocalReply(this.o.statusOnError ?? 500, 'streamed_response outside FULL_DUPLEX_STREAMED', false);
      }
    }
    if (common['clear_route_cache'] === true) {
      if (dir === 'request') this.clearRouteCache = true;
      else this.stats.clearRouteCacheIgnored++;
    }
    return { body, replaced };
  }

  private applyTrailers(answer: ProtoObject, trailers: HeaderList): void {
    const hm = answer['header_mutation'] as ProtoObject | undefined;
    if (hm !== undefined) this.applyMutation(hm, trailers);
  }

  private applyMutation(hm: ProtoObject, headers: HeaderList): void {
    const bad = (reason: string): never => {
      throw new LocalReply(this.o.statusOnError ?? 500, `invalid header mutation: ${reason}`, false);
    };
    const set = (hm['set_headers'] as ProtoObject[] | undefined) ?? [];
    const remove = (hm['remove_headers'] as string[] | undefined) ?? [];
    const max = this.rules.maxHeadersCount ?? 100;
    if (set.length > max || remove.length > max) bad(`more than ${max} changes`);
    for (const opt of set) {
      const h = (opt['header'] as ProtoObject | undefined) ?? {};
      const key = (typeof h['key'] === 'string' ? h['key'] : '').toLowerCase();
      if (!HEADER_TOKEN.test(key)) bad(`invalid header name ${JSON.stringify(key)}`);
      const raw = h['raw_value'] as Uint8Array | undefined;
      const value = h['value'] as string | undefined;
      if (raw !== undefined && raw.length > 0 && value !== undefined && value !== '')
        bad(`both value and raw_value set for ${key}`);
      if (raw === undefined && value !== undefined) this.stats.valueWithoutRawValue++;
      const v = raw === undefined ? '' : Buffer.from(raw).toString('latin1');
      if (/[\0\r\n]/.test(v)) bad(`value of ${key} contains CR, LF or NUL`);
      const append = (opt['append'] as { value?: boolean } | undefined)?.value === true;
      if (disallowedReason(append ? 'append' : 'set', key, this.rules) !== undefined) {
        if (this.rules.disallowIsError === true) bad(`${key} is not allowed by the mutation rules`);
        this.stats.rejectedHeaderMutations++;
        continue;
      }
      if (!append) removeHeader(headers, key);
      headers.push([key, v]);
    }
    for (const name of remove) {
      const key = name.toLowerCase();
      if (disallowedReason('remove', key, this.rules) !== undefined) {
        if (this.rules.disallowIsError === true && !(key.startsWith(':') || key === 'host'))
          bad(`${key} is not allowed by the mutation rules`);
        this.stats.rejectedHeaderMutations++;
        continue;
      }
      removeHeader(headers, key);
    }
    if (headers.length > max) bad(`more than ${max} headers after mutation`);
  }

  private immediateOf(msg: ProtoObject): NonNullable<ExchangeResult['immediateResponse']> {
    const ir = msg['immediate_response'] as ProtoObject;
    const headers: HeaderList = [];
    const hm = ir['headers'] as ProtoObject | undefined;
    if (hm !== undefined) this.applyMutation(hm, headers);
    const code = (ir['status'] as { code?: string | number } | undefined)?.code ?? 0;
    const codeNumber = typeof code === 'string' ? httpStatusNumber(code) : code;
    const gs = ir['grpc_status'] as { status?: number } | undefined;
    return {
      status: codeNumber,
      headers,
      body: Buffer.from((ir['body'] as Uint8Array | undefined) ?? []),
      grpcStatus: gs === undefined ? undefined : (gs.status ?? 0),
      details: (ir['details'] as string | undefined) ?? '',
    };
  }
}

class Cancelled extends Error {}

// DECODE_OPTIONS renders enums as names; the HTTP status enum names are like "Forbidden".
let statusByName: Readonly<Record<string, number>> | undefined;
function httpStatusNumber(name: string): number {
  statusByName ??= protoRoot().lookupEnum('envoy.type.v3.StatusCode').values;
  return statusByName[name] ?? Number(name);
}

function chunksOf(body: HttpMessageSpec['body']): Buffer[] {
  if (body === undefined) return [];
  const list = Array.isArray(body) ? body : [body];
  return (list as (string | Uint8Array)[])
    .map((c) => (typeof c === 'string' ? Buffer.from(c) : Buffer.from(c)))
    .filter((c) => c.length > 0);
}

function headerMap(list: HeaderList): ProtoObject {
  return { headers: list.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
}

function removeHeader(list: HeaderList, key: string): void {
  for (let i = list.length - 1; i >= 0; i--) if ((list[i] as [string, string])[0] === key) list.splice(i, 1);
}

function toStruct(obj: Record<string, StructValue>): ProtoObject {
  const fields: Record<string, ProtoObject> = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = toValue(v);
  return { fields };
}

function toValue(v: StructValue): ProtoObject {
  if (v === null) return { null_value: 'NULL_VALUE' };
  if (typeof v === 'string') return { string_value: v };
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'boolean') return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: (v as StructValue[]).map(toValue) } };
  return { struct_value: toStruct(v as Record<string, StructValue>) };
}

function fromStruct(s: { fields?: Record<string, unknown> }): Record<string, StructValue> {
  const out: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = fromValue(v as ProtoObject);
  return out;
}

function fromValue(v: ProtoObject): StructValue {
  if ('string_value' in v) return v['string_value'] as string;
  if ('number_value' in v) return v['number_value'] as number;
  if ('bool_value' in v) return v['bool_value'] as boolean;
  if ('struct_value' in v) return fromStruct(v['struct_value'] as { fields?: Record<string, unknown> });
  if ('list_value' in v)
    return (((v['list_value'] as ProtoObject)['values'] as ProtoObject[] | undefined) ?? []).map(fromValue);
  return null;
}
