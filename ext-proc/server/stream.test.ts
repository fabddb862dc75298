// Write back-pressure of one stream, against grpc-js's call interface. A real grpc-js client cannot
// hold answers back: its HTTP/2 layer keeps acknowledging data while the application is paused, so
// Envoy's behaviour (a full flow-control window: HTTP/2 stops taking answers) is played here by a
// call whose sendMessage callbacks are held until released. Everything else is the real stream.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { encode, type ProtoObject } from '../../proto/index.js';
import { encodeResponse, REQUEST, requestMessageType, responseMessageType, type WireRequest } from './codec.js';
import { ExtProcStream, type DirectCall, type StreamSettings } from './stream.js';
import { DEFAULT_PROCESSING_MODE, type ExtProcHandler } from './types.js';

/**
 * A grpc-js call that delivers Envoy's messages the way grpc-js does (one per `startRead`, at once
 * when one is already decoded) and whose written answers are taken (callback) only on `release`.
 */
class HeldCall extends grpc.ServerInterceptingCall {
  readonly sent: (Buffer | object)[] = [];
  readonly held: (() => void)[] = [];
  readonly inbox: (WireRequest | 'half-close')[] = [];
  status: grpc.StatusObject | undefined;
  private listener: Parameters<DirectCall['start']>[0] | undefined;
  private readPending = false;

  /** With `takeAtOnce`, HTTP/2 takes every answer as it is written. */
  constructor(private readonly takeAtOnce = false) {
    super(undefined as unknown as DirectCall);
  }
  override start(listener: Parameters<DirectCall['start']>[0]): void {
    this.listener = listener;
    listener.onReceiveMetadata(new grpc.Metadata());
  }
  override startRead(): void {
    this.readPending = true;
    this.deliver();
  }
  override sendMessage(message: unknown, callback: () => void): void {
    this.sent.push(message as Buffer | object);
    if (this.takeAtOnce) callback();
    else this.held.push(callback);
  }
  override sendStatus(status: grpc.StatusObject): void {
    this.status = status;
  }
  /** Envoy sends (the message is decoded and waits for a read). */
  receive(m: WireRequest | 'half-close'): void {
    this.inbox.push(m);
    this.deliver();
  }
  /** HTTP/2 takes every answer handed over so far. */
  release(): void {
    for (const cb of this.held.splice(0)) cb();
  }
  private deliver(): void {
    const l = this.listener;
    if (l === undefined || !this.readPending) return;
    const next = this.inbox.shift();
    if (next === undefined) return;
    this.readPending = false;
    if (next === 'half-close') l.onReceiveHalfClose();
    else l.onReceiveMessage(next);
  }
}

function settings(handler: ExtProcHandler<unknown>): StreamSettings {
  return {
    handler,
    log: createLogger({ level: 'silent' }),
    metrics: undefined,
    deadlines: undefined,
    onTimeout: 504,
    onError: 'error',
    rules: {},
    disableImmediateResponse: false,
    allowModeOverride: true,
    mode: DEFAULT_PROCESSING_MODE,
    modeConfigured: false,
    maxPendingMessages: 8,
    maxMessageBytes: 1 << 20,
    onClosed: () => undefined,
    stats: { maxQueued: 0 },
  };
}

/** A ProcessingRequest as grpc-js hands it to the stream (decoded by the server's deserializer). */
const msg = (m: ProtoObject): WireRequest => requestMessageType().decode(encode(REQUEST, m)) as unknown as WireRequest;

describe('ExtProcStream write back-pressure', () => {
  it('stops processing past 16 answers HTTP/2 has not taken, stops reading at maxPendingMessages, then resumes in order', () => {
    let calls = 0;
    const s = settings({
      onRequestBody: (_c, { body }) => {
        calls++;
        return { chunks: [Buffer.concat([body, Buffer.from('!')])] };
      },
    });
    const call = new HeldCall();
    new ExtProcStream(call, s).start();
    const N = 200;
    // Envoy pipelines every message; grpc-js has them all decoded, waiting for reads.
    call.receive(
      msg({
        request_headers: { headers: { headers: [] } },
        protocol_config: { request_body_mode: 'FULL_DUPLEX_STREAMED' },
      }),
    );
    for (let i = 0; i < N; i++) call.receive(msg({ request_body: { body: Buffer.from(String(i)) } }));
    call.receive('half-close');
    // 17 answers handed over (headers + 16 chunks); the 17th blocks processing; reading stops once
    // 8 messages wait; the rest stays with grpc-js (and, in reality, HTTP/2 flow control).
    expect(call.sent).toHaveLength(17);
    expect(calls).toBe(16);
    expect(s.stats.maxQueued).toBe(8);
    expect(call.inbox.length).toBe(N + 2 - 1 - 16 - 8); // N chunks + headers + half-close, minus those taken
    expect(call.status).toBeUndefined();
    // HTTP/2 takes everything handed over, round after round, until the stream is through.
    for (let round = 0; round < 100 && call.status === undefined; round++) call.release();
    expect(calls).toBe(N);
    expect(call.inbox).toHaveLength(0);
    expect(s.stats.maxQueued).toBe(8);
    expect(call.status?.code).toBe(grpc.status.OK);
    const t = responseMessageType();
    const bodies = call.sent.slice(1).map((frame) => {
      // What grpc-js would serialize with the server's codec.
      const b = Buffer.isBuffer(frame) ? frame : encodeResponse(frame);
      const o = t.toObject(t.decode(b)) as {
        request_body: { response: { body_mutation: { streamed_response: { body: Uint8Array } } } };
      };
      return Buffer.from(o.request_body.response.body_mutation.streamed_response.body).toString();
    });
    expect(bodies).toEqual(Array.from({ length: N }, (_, i) => `${i}!`));
  });

  it('reads thousands of messages grpc-js has already decoded without recursing once per message', () => {
    const call = new HeldCall(true);
    const s = settings({});
    const N = 50_000;
    // All decoded before the stream asks for the first one (one big HTTP/2 read).
    call.receive(
      msg({ request_headers: { headers: { headers: [] } }, protocol_config: { request_body_mode: 'STREAMED' } }),
    );
    for (let i = 0; i < N; i++) call.receive(msg({ request_body: { body: Buffer.from('x') } }));
    call.receive('half-close');
    new ExtProcStream(call, s).start();
    expect(call.sent).toHaveLength(N + 1);
    expect(call.status?.code).toBe(grpc.status.OK);
  });
});
