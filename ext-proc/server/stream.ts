/**
 * One `Process` stream = one HTTP request. This object is the stream's whole state and also the
 * handler's `ExtProcContext` (STYLE §7: one object per stream, listeners attached once).
 *
 * The stream drives grpc-js's call layer directly (`ServerInterceptingCallInterface`, reached
 * through the server interceptor in server.ts), not the object-mode `Duplex` grpc-js wraps around it
 * for a handler: messages come in through `onReceiveMessage` when this object asks for the next one
 * (`startRead`), answers go out with `sendMessage`, the stream ends with `sendStatus`. The Duplex
 * layer (buffering, events, nextTicks per message) was the largest per-message cost left that was
 * not HTTP/2 itself; grpc-js's own bidi handler adds exactly that layer to every call.
 *
 * Messages are handled strictly one at a time, in arrival order: a message that arrives while a
 * handler promise is pending waits in `queue`. That gives the matching rule for free (one answer
 * per message, in order, which is what STREAMED pipelining needs), keeps `ctx.state` free of
 * races, and is where back-pressure comes from: past `maxPendingMessages` queued messages no more
 * reads are requested, so HTTP/2 flow control pushes back on Envoy; more than `MAX_PENDING_WRITES`
 * answers not yet taken by HTTP/2 pause processing until they are.
 *
 *   startRead ─► onReceiveMessage ─► queue ─► process ─► handler (sync: decide now │ async: token + deadline)
 *                                                          ─► decide ─► sendMessage
 *                                                          └─ timeout/throw/invalid ─► fail(policy)
 *
 * A synchronous handler that returns nothing costs: one decode, one call, one pre-encoded write.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/log.js';
import {
  bodyAnswer,
  headersAnswer,
  immediateAnswer,
  InvalidDecisionError,
  isFullDuplex,
  streamedBodyAnswer,
  trailersAnswer,
  type AnswerContext,
  type BuiltAnswer,
} from './answers.js';
import {
  bodyModeName,
  continueAnswers,
  fromWireStruct,
  type TooLarge,
  type WireRequest,
  type WireStruct,
} from './codec.js';
import { DeadlineQueue, type DeadlineEntry, type DeadlineOwner } from './deadlines.js';
import { Headers, type MutationRules } from './headers.js';
import type { ErrorKind, ExtProcMetrics } from './metrics.js';
import type {
  BodySendMode,
  CommonDecision,
  ExtProcContext,
  ExtProcHandler,
  FailurePolicy,
  Phase,
  ProcessingMode,
  ProtocolConfig,
  StructObject,
  StructValue,
} from './types.js';

/** Settings shared by every stream of one server. */
export interface StreamSettings {
  readonly handler: ExtProcHandler<unknown>;
  readonly log: Logger;
  readonly metrics: ExtProcMetrics | undefined;
  /** Handler deadlines; undefined disables them. */
  readonly deadlines: DeadlineQueue | undefined;
  readonly onTimeout: FailurePolicy;
  readonly onError: FailurePolicy;
  readonly rules: MutationRules;
  readonly disableImmediateResponse: boolean;
  readonly allowModeOverride: boolean;
  /** The filter's processing mode, used until Envoy's protocol_config says otherwise. */
  readonly mode: Required<ProcessingMode>;
  /** Whether `mode` came from the user (else Envoy's defaults, which may be wrong). */
  readonly modeConfigured: boolean;
  readonly maxPendingMessages: number;
  readonly maxMessageBytes: number;
  readonly onClosed: (stream: ExtProcStream) => void;
  /** Server-wide counters kept by the streams. */
  readonly stats: { maxQueued: number };
}

/** grpc-js's call layer under the Duplex a handler usually gets. */
export type DirectCall = grpc.ServerInterceptingCallInterface;
/** What `DirectCall.start` reports to (grpc-js's `InterceptingServerListener`). */
type CallListener = Parameters<DirectCall['start']>[0];

/**
 * Answers handed to grpc-js but not yet written to the HTTP/2 stream before processing pauses:
 * the high-water mark of the object-mode Duplex this replaces.
 */
const MAX_PENDING_WRITES = 16;

/** Placeholder until the call's metadata arrives (before any message, so before any handler runs). */
const NO_METADATA = new grpc.Metadata();

const CALLBACK: Readonly<Record<Phase, keyof ExtProcHandler<unknown>>> = {
  request_headers: 'onRequestHeaders',
  response_headers: 'onResponseHeaders',
  request_body: 'onRequestBody',
  response_body: 'onResponseBody',
  request_trailers: 'onRequestTrailers',
  response_trailers: 'onResponseTrailers',
};

const EMPTY = Buffer.alloc(0);

/** Why a message could not be answered as the handler wanted. */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';
  readonly code = 'EXT_PROC_MESSAGE_TIMEOUT';
}

export class ExtProcStream implements ExtProcContext<unknown>, DeadlineOwner, AnswerContext, CallListener {
  state: unknown;
  requestHeaders: Headers | undefined;
  responseHeaders: Headers | undefined;
  protocolConfig: ProtocolConfig | undefined;
  observabilityMode = false;
  callMetadata: grpc.Metadata = NO_METADATA;
  readonly log: Logger;

  // AnswerContext
  readonly rules: MutationRules;
  readonly disableImmediateResponse: boolean;
  readonly allowModeOverride: boolean;

  private mode: Required<ProcessingMode>;
  private modeKnown: boolean;
  private attrs: Record<string, WireStruct> | undefined;
  private attrsFlat: Record<string, StructValue> | undefined;
  private meta: Readonly<Record<string, WireStruct>> | undefined;
  private abort: AbortController | undefined;
  private readonly queue: (WireRequest | TooLarge)[] = [];
  private first = true;
  private busy = false;
  private token = 0;
  private pendingPhase: Phase = 'request_headers';
  private pendingMsg: WireRequest | undefined;
  /** The armed deadline of the pending async decision, dropped as soon as it is settled. */
  private deadline: DeadlineEntry | undefined;
  private started = 0;
  private done = false;
  private ended = false;
  private halfClosed = false;
  private paused = false;
  private reading = false;
  private readAgain = false;
  private writeBlocked = false;
  private pendingWrites = 0;
  private requestReplaced = false;
  private responseReplaced = false;
  // The sendMessage callback, one per stream. A bound method rather than an arrow function: under
  // tsx (esbuild keepNames) each arrow function created also costs an Object.defineProperty of its
  // name (seen in the profile).
  private readonly written = this.onWritten.bind(this);

  /** Call `start` next: it connects this stream to the call. */
  constructor(
    private readonly call: DirectCall,
    private readonly s: StreamSettings,
  ) {
    this.log = s.log;
    this.rules = s.rules;
    this.disableImmediateResponse = s.disableImmediateResponse;
    this.allowModeOverride = s.allowModeOverride;
    this.mode = s.mode;
    this.modeKnown = s.modeConfigured;
    this.state = s.handler.createState !== undefined ? s.handler.createState() : {};
    if (s.metrics !== undefined) {
      s.metrics.streamsStarted++;
      s.metrics.activeStreams++;
    }
  }

  /** Starts the call with this stream as its listener (grpc-js then delivers the metadata). */
  start(): void {
    this.call.start(this);
  }

  // ------------------------------------------------------------------ ExtProcContext

  get attributesByFilter(): Readonly<Record<string, StructObject>> {
    const out: Record<string, StructObject> = {};
    if (this.attrs !== undefined) for (const k of Object.keys(this.attrs)) out[k] = fromWireStruct(this.attrs[k]);
    return out;
  }

  get attributes(): Readonly<Record<string, StructValue>> {
    if (this.attrsFlat === undefined) {
      const flat: Record<string, StructValue> = {};
      const byFilter = this.attributesByFilter;
      for (const k of Object.keys(byFilter)) Object.assign(flat, byFilter[k]);
      this.attrsFlat = flat;
    }
    return this.attrsFlat;
  }

  get metadataContext(): Readonly<Record<string, StructObject>> {
    const out: Record<string, StructObject> = {};
    if (this.meta !== undefined) for (const k of Object.keys(this.meta)) out[k] = fromWireStruct(this.meta[k]);
    return out;
  }

  get signal(): AbortSignal {
    this.abort ??= new AbortController();
    if (this.done && !this.abort.signal.aborted) this.abort.abort(new Error('the ext_proc stream is closed'));
    return this.abort.signal;
  }

  bodyMode(direction: 'request' | 'response'): BodySendMode {
    return direction === 'request' ? this.mode.request_body_mode : this.mode.response_body_mode;
  }

  // ------------------------------------------------------------------ AnswerContext

  get requestBodyMode(): BodySendMode {
    return this.modeKnown ? this.mode.request_body_mode : 'NONE';
  }
  get responseBodyMode(): BodySendMode {
    return this.modeKnown ? this.mode.response_body_mode : 'NONE';
  }
  get sendBodyWithoutWaitingForHeaderResponse(): boolean {
    return this.protocolConfig?.sendBodyWithoutWaitingForHeaderResponse === true;
  }
  get bodyModeKnown(): boolean {
    return this.modeKnown;
  }
  hadContentLength(direction: 'request' | 'response'): boolean {
    // Only asked when a BUFFERED body is replaced, so looked up then rather than on every message.
    const h = direction === 'request' ? this.requestHeaders : this.responseHeaders;
    return h !== undefined && h.has('content-length');
  }

  // ------------------------------------------------------------------ call events (InterceptingServerListener)

  onReceiveMetadata(metadata: grpc.Metadata): void {
    this.callMetadata = metadata;
    this.read();
  }

  onReceiveMessage(msg: WireRequest | TooLarge): void {
    if (this.done) return; // after an immediate response or a close, Envoy ignores us and we ignore it
    if (this.busy || this.writeBlocked || this.queue.length > 0) {
      this.queue.push(msg);
      if (this.queue.length > this.s.stats.maxQueued) this.s.stats.maxQueued = this.queue.length;
    } else {
      this.safeProcess(msg);
    }
    this.read(); // read ahead, as a flowing stream would
  }

  /**
   * Asks grpc-js for the next message unless `maxPendingMessages` are queued (then `pump` asks
   * again once the queue is half empty). grpc-js delivers a message it has already decoded from
   * within `startRead`, so several messages from one HTTP/2 data frame would recurse; a nested
   * call only flags that another read is wanted, and this loop makes it.
   */
  private read(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    do {
      this.readAgain = false;
      if (this.done) break;
      if (this.queue.length >= this.s.maxPendingMessages) {
        this.paused = true;
        break;
      }
      this.call.startRead();
    } while (this.readAgain);
    this.reading = false;
  }

  onReceiveHalfClose(): void {
    if (this.done) return;
    this.halfClosed = true;
    if (!this.busy && this.queue.length === 0) this.finish();
  }

  /** The client cancelled (or the call is over: grpc-js also calls this after the status is sent). */
  onCancel(): void {
    this.onCancelled();
  }

  /** grpc-js took one answer (written to the HTTP/2 stream). */
  private onWritten(): void {
    this.pendingWrites--;
    if (this.writeBlocked && this.pendingWrites === 0) {
      this.writeBlocked = false;
      this.pump();
    }
  }

  /**
   * A bug in the framework itself must cost one stream (closed with INTERNAL, which Envoy turns
   * into its status_on_error), never the process and every other request with it.
   */
  private safeProcess(msg: WireRequest | TooLarge): void {
    try {
      this.process(msg);
    } catch (e: unknown) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    if (this.s.metrics !== undefined) this.s.metrics.errors.internal++;
    this.log.error('internal error while processing an ext_proc message; closing the stream', {
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
    this.busy = false;
    try {
      this.closeWithError(grpc.status.INTERNAL, `envext internal error: ${e instanceof Error ? e.message : String(e)}`);
    } catch {
      // The call is already gone; nothing more to tell Envoy.
    }
  }

  private pump(): void {
    while (!this.busy && !this.done && !this.writeBlocked) {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.safeProcess(next);
    }
    if (this.paused && this.queue.length <= this.s.maxPendingMessages >> 1 && !this.done) {
      this.paused = false;
      this.read();
    }
    if (this.halfClosed && !this.busy && this.queue.length === 0 && !this.done) this.finish();
  }

  private onCancelled(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.abort?.abort(new Error('Envoy cancelled the ext_proc stream'));
    if (this.log.isEnabled('debug')) this.log.debug('stream cancelled by the client', { phase: this.pendingPhase });
    this.end('cancelled');
  }

  /** Deadline for the pending async decision (token) has passed. */
  onDeadline(token: number): void {
    if (token !== this.token || !this.busy || this.done) return;
    this.deadline = undefined; // the queue has already let go of it
    this.busy = false;
    this.token++;
    const msg = this.pendingMsg;
    this.pendingMsg = undefined;
    try {
      this.timedOut(msg);
    } catch (e: unknown) {
      this.internalError(e);
    }
  }

  private timedOut(msg: WireRequest | undefined): void {
    this.abort?.abort(new HandlerTimeoutError('handler deadline passed'));
    if (msg !== undefined) {
      this.fail(
        this.pendingPhase,
        msg,
        'handler_timeout',
        new HandlerTimeoutError(
          `handler did not answer ${this.pendingPhase} within ${this.s.deadlines?.timeoutMs ?? 0} ms`,
        ),
      );
    }
    this.pump();
  }

  // ------------------------------------------------------------------ processing

  private process(raw: WireRequest | TooLarge): void {
    if ('tooLarge' in raw) {
      if (this.s.metrics !== undefined) this.s.metrics.errors.message_too_large++;
      const message = `ext_proc message of ${raw.tooLarge} bytes exceeds the limit of ${this.s.maxMessageBytes} bytes`;
      this.log.error(message, { hint: "raise --max-message-bytes (maxMessageBytes) to at least Envoy's buffer limit" });
      this.closeWithError(grpc.status.RESOURCE_EXHAUSTED, message);
      return;
    }
    const msg = raw;
    const phase = msg.request;
    if (phase === undefined) {
      if (this.s.metrics !== undefined) this.s.metrics.errors.protocol++;
      this.closeWithError(grpc.status.INVALID_ARGUMENT, 'ProcessingRequest has no request member set');
      return;
    }
    if (this.first) {
      this.first = false;
      const pc = msg.protocol_config;
      if (pc !== undefined && pc !== null) {
        this.protocolConfig = {
          requestBodyMode: bodyModeName(pc.request_body_mode),
          responseBodyMode: bodyModeName(pc.response_body_mode),
          sendBodyWithoutWaitingForHeaderResponse: pc.send_body_without_waiting_for_header_response === true,
        };
        this.mode = {
          ...this.mode,
          request_body_mode: this.protocolConfig.requestBodyMode,
          response_body_mode: this.protocolConfig.responseBodyMode,
        };
        this.modeKnown = true;
      }
    }
    const attrs = msg.attributes;
    if (attrs !== undefined && attrs !== null) {
      // Decoded messages always carry a map object, almost always empty: no Object.keys array here.
      for (const k in attrs) {
        this.attrs ??= {};
        const prev = this.attrs[k];
        const next = attrs[k] as WireStruct;
        this.attrs[k] = prev === undefined ? next : { fields: { ...prev.fields, ...next.fields } };
        this.attrsFlat = undefined;
      }
    }
    const meta = msg.metadata_context?.filter_metadata;
    if (meta !== undefined && meta !== null) this.meta = meta;
    this.observabilityMode = msg.observability_mode === true;
    if (this.s.metrics !== undefined) this.s.metrics.messages[phase]++;

    const isReq = phase.startsWith('request_');
    if (isReq ? this.requestReplaced : this.responseReplaced) {
      // After CONTINUE_AND_REPLACE Envoy sends nothing more for the direction; a message now is
      // Envoy's protocol error, not ours to answer.
      if (this.s.metrics !== undefined) this.s.metrics.errors.protocol++;
      this.log.warn(`unexpected ${phase} after continue_and_replace; ignored`);
      return;
    }

    let payload: object;
    switch (phase) {
      case 'request_headers':
      case 'response_headers': {
        const hm = msg[phase];
        const headers = new Headers(hm?.headers?.headers);
        if (phase === 'request_headers') this.requestHeaders = headers;
        else this.responseHeaders = headers;
        payload = { headers, endOfStream: hm?.end_of_stream === true };
        break;
      }
      case 'request_body':
      case 'response_body': {
        const b = msg[phase];
        const body = b?.body;
        payload = {
          // An absent bytes field decodes to protobufjs's shared default (an empty array, not a
          // Buffer): an end_of_stream-only chunk looks like that.
          body: body === undefined || body.length === 0 ? EMPTY : Buffer.isBuffer(body) ? body : Buffer.from(body),
          endOfStream: b?.end_of_stream === true,
          endOfStreamWithoutMessage: b?.end_of_stream_without_message === true,
          grpcMessageCompressed: b?.grpc_message_compressed === true,
        };
        break;
      }
      default:
        payload = { trailers: new Headers(msg[phase]?.trailers?.headers) };
    }

    const handler = this.s.handler;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(handler) below
    const fn = handler[CALLBACK[phase]] as ((ctx: unknown, m: object) => unknown) | undefined;
    if (fn === undefined) {
      this.decide(phase, msg, payload, undefined);
      return;
    }
    const metrics = this.s.metrics;
    if (metrics !== undefined) this.started = performance.now();
    let r: unknown;
    try {
      r = fn.call(handler, this, payload);
    } catch (e: unknown) {
      this.fail(phase, msg, 'handler_exception', e);
      return;
    }
    if (r === undefined || typeof (r as { then?: unknown }).then !== 'function') {
      this.decide(phase, msg, payload, r);
      return;
    }
    const token = ++this.token;
    this.busy = true;
    this.pendingPhase = phase;
    this.pendingMsg = msg;
    const fullDuplex = isFullDuplex(isReq ? this.mode.request_body_mode : this.mode.response_body_mode);
    // Envoy's message_timeout does not apply in observability mode nor to FULL_DUPLEX_STREAMED
    // bodies and trailers, so neither does the handler deadline.
    if (this.s.deadlines !== undefined && !this.observabilityMode && !(fullDuplex && !phase.endsWith('_headers'))) {
      this.deadline = this.s.deadlines.add(this, token);
    }
    (r as Promise<unknown>).then(
      (d) => {
        if (token !== this.token || !this.busy || this.done) return this.late(phase);
        this.busy = false;
        this.pendingMsg = undefined;
        this.dropDeadline();
        try {
          this.decide(phase, msg, payload, d);
          this.pump();
        } catch (e: unknown) {
          this.internalError(e);
        }
      },
      (e: unknown) => {
        if (token !== this.token || !this.busy || this.done) return this.late(phase);
        this.busy = false;
        this.pendingMsg = undefined;
        this.dropDeadline();
        try {
          this.fail(phase, msg, 'handler_exception', e);
          this.pump();
        } catch (e2: unknown) {
          this.internalError(e2);
        }
      },
    );
  }

  private dropDeadline(): void {
    if (this.deadline !== undefined) {
      DeadlineQueue.cancel(this.deadline);
      this.deadline = undefined;
    }
  }

  private late(phase: Phase): void {
    if (this.log.isEnabled('debug')) this.log.debug(`late ${phase} decision discarded (timed out or stream closed)`);
  }

  private decide(phase: Phase, msg: WireRequest, payload: object, d: unknown): void {
    const metrics = this.s.metrics;
    if (metrics !== undefined && this.started !== 0) {
      metrics.handlerSeconds.observe(phase, (performance.now() - this.started) / 1000);
      this.started = 0;
    }
    if (this.observabilityMode) return; // Envoy ignores answers; sending one would only cost.
    const isReq = phase.startsWith('request_');
    const fullDuplexBody =
      (phase === 'request_body' || phase === 'response_body') &&
      isFullDuplex(this.bodyMode(isReq ? 'request' : 'response'));
    if ((d === undefined || d === null) && !fullDuplexBody) {
      this.write(continueAnswers()[phase]);
      return;
    }
    let built: BuiltAnswer;
    try {
      built = this.build(phase, payload, d, fullDuplexBody);
    } catch (e: unknown) {
      this.fail(phase, msg, e instanceof InvalidDecisionError ? 'invalid_decision' : 'handler_exception', e);
      return;
    }
    if (built.dropped.length > 0) {
      if (metrics !== undefined) metrics.droppedMutations += built.dropped.length;
      for (const x of built.dropped) this.log.warn(`${phase} answer: left out ${x.op} ${x.name}: ${x.reason}`);
    }
    for (const f of built.frames) this.write(f);
    if (built.replaced) {
      if (isReq) this.requestReplaced = true;
      else this.responseReplaced = true;
    }
    if (built.modeOverride !== undefined) this.mode = built.modeOverride;
    if (built.immediate) {
      const status = (d as { immediate: { status: number } }).immediate.status;
      metrics?.immediate(status);
      this.finish();
    }
  }

  private build(phase: Phase, payload: object, d: unknown, fullDuplexBody: boolean): BuiltAnswer {
    if (fullDuplexBody) {
      const p = payload as { body: Buffer; endOfStream: boolean };
      if (d !== undefined && d !== null && typeof d === 'object' && 'immediate' in d) {
        const imm = d as { immediate: Parameters<typeof immediateAnswer>[1] };
        return immediateAnswer(phase, imm.immediate, d as CommonDecision, this);
      }
      return streamedBodyAnswer(phase, d === null ? undefined : d, p.body, p.endOfStream);
    }
    if (typeof d !== 'object' || d === null || Array.isArray(d)) {
      throw new InvalidDecisionError(
        phase,
        '(decision)',
        `a handler must return an object or nothing, got ${Array.isArray(d) ? 'a list' : typeof d}`,
      );
    }
    if ('immediate' in d) {
      const imm = d as { immediate: Parameters<typeof immediateAnswer>[1] };
      return immediateAnswer(phase, imm.immediate, d as CommonDecision, this);
    }
    switch (phase) {
      case 'request_headers':
      case 'response_headers':
        return headersAnswer(phase, d, this, this.mode);
      case 'request_body':
      case 'response_body':
        return bodyAnswer(phase, d, this);
      default:
        return trailersAnswer(
          phase,
          d,
          this,
          isFullDuplex(this.bodyMode(phase.startsWith('request_') ? 'request' : 'response')),
        );
    }
  }

  /** Applies the failure policy to a message the handler could not answer. */
  private fail(phase: Phase, msg: WireRequest, kind: ErrorKind, e: unknown): void {
    if (this.s.metrics !== undefined) this.s.metrics.errors[kind]++;
    const message = e instanceof Error ? e.message : String(e);
    const policy = kind === 'handler_timeout' ? this.s.onTimeout : this.s.onError;
    this.log.warn(`${phase}: ${kind.replace('_', ' ')}: ${message}`, {
      phase,
      outcome: typeof policy === 'number' ? `immediate ${policy}` : policy,
      ...(kind === 'handler_exception' && e instanceof Error && e.stack !== undefined && this.log.isEnabled('debug')
        ? { stack: e.stack }
        : {}),
    });
    if (this.observabilityMode || this.done) return;
    if (policy === 'continue') {
      const isReq = phase.startsWith('request_');
      if (
        (phase === 'request_body' || phase === 'response_body') &&
        isFullDuplex(this.bodyMode(isReq ? 'request' : 'response'))
      ) {
        const b = msg[phase];
        const body = b?.body === undefined || b.body.length === 0 ? EMPTY : Buffer.from(b.body);
        for (const f of streamedBodyAnswer(phase, undefined, body, b?.end_of_stream === true).frames) this.write(f);
      } else {
        this.write(continueAnswers()[phase]);
      }
      return;
    }
    if (typeof policy === 'number' && !phase.endsWith('_trailers')) {
      const details = `ext_proc_${kind}`;
      // The policy status was validated when the server was created.
      this.write({ immediate_response: { status: { code: policy }, details } });
      this.s.metrics?.immediate(policy);
      this.finish();
      return;
    }
    this.closeWithError(
      kind === 'handler_timeout' ? grpc.status.DEADLINE_EXCEEDED : grpc.status.INTERNAL,
      `${phase}: ${message}`,
    );
  }

  private write(frame: Buffer | object): void {
    // grpc-js serializes (codec.ts passes pre-encoded answers through) and writes in call order;
    // the callback does not come if the call is cancelled first, which ends this stream anyway.
    this.pendingWrites++;
    if (this.pendingWrites > MAX_PENDING_WRITES) this.writeBlocked = true;
    this.call.sendMessage(frame, this.written);
  }

  /** Ends the stream with OK: Envoy continues without the server for anything left. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    // After the answers already handed over (HTTP/2 keeps the order), then the trailers.
    this.call.sendStatus({ code: grpc.status.OK, details: 'OK' });
    this.end('ok');
  }

  private closeWithError(code: grpc.status, details: string): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.end('error');
    this.call.sendStatus({ code, details });
  }

  private end(how: 'ok' | 'cancelled' | 'error'): void {
    if (this.ended) return;
    this.ended = true;
    this.busy = false;
    this.token++;
    this.dropDeadline();
    if (how !== 'ok') this.abort?.abort(new Error(`ext_proc stream ended: ${how}`));
    if (this.s.metrics !== undefined) {
      this.s.metrics.activeStreams--;
      this.s.metrics.streamsEnded[how]++;
    }
    const h = this.s.handler;
    if (h.onStreamEnd !== undefined) {
      try {
        h.onStreamEnd(this, how);
      } catch (e: unknown) {
        this.log.warn('onStreamEnd threw', { error: e instanceof Error ? e.message : String(e) });
      }
    }
    this.s.onClosed(this);
    // grpc-js keeps the call (and, as its listener, this object) alive for a while after the
    // stream ends. Decoded messages hold views into the socket's receive buffers; dropping them now
    // keeps that memory from being promoted and collected by full GCs (measured: most of the
    // framework's CPU overhead over a bare server came from those GCs).
    this.requestHeaders = undefined;
    this.responseHeaders = undefined;
    this.attrs = undefined;
    this.attrsFlat = undefined;
    this.meta = undefined;
    this.pendingMsg = undefined;
    this.queue.length = 0;
  }
}
