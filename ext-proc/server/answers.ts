/**
 * Decisions → ProcessingResponse, one phase at a time, applying every rule Envoy applies to an
 * answer (reference/ext-proc.md §2–§7):
 *
 * - the `oneof response` member always equals the request member (the matching rule);
 * - header values in `raw_value`, `append` always explicit; invalid names/values and too many
 *   changes are errors (Envoy would fail the request); changes Envoy silently ignores are dropped
 *   and reported;
 * - a body mutation on a headers answer only with CONTINUE_AND_REPLACE; header mutations on a
 *   body answer only in BUFFERED mode; `clear_route_cache` only on the request path;
 * - `content-length` kept consistent with a replaced BUFFERED body;
 * - `mode_override` only on headers answers, never to or from FULL_DUPLEX_STREAMED, with body modes
 *   restated; immediate responses not on trailers and not when disabled;
 * - FULL_DUPLEX_STREAMED bodies answered with `streamed_response` chunks of at most 64 KiB.
 */
import { messageType } from '../../proto/index.js';
import {
  encodeHeaderMutation,
  InvalidMutationError,
  type DroppedMutation,
  type MutationRules,
  type WireHeaderMutation,
} from './headers.js';
import { StructError, toWireStruct } from './codec.js';
import {
  BODY_SEND_MODES,
  HEADER_SEND_MODES,
  type BodyDecision,
  type BodyMutation,
  type BodySendMode,
  type CommonDecision,
  type HeadersDecision,
  type ImmediateResponse,
  type Phase,
  type ProcessingMode,
  type StreamedBodyDecision,
  type TrailersDecision,
} from './types.js';

/** A decision the framework cannot turn into a valid answer: a handler bug. */
export class InvalidDecisionError extends Error {
  override readonly name = 'InvalidDecisionError';
  constructor(
    readonly phase: Phase,
    readonly field: string,
    message: string,
  ) {
    super(`${phase} answer: ${field}: ${message}`);
  }
}

/** Recommended maximum size of one streamed_response chunk (reference §4). */
export const MAX_STREAMED_CHUNK = 64 * 1024;

/** What the stream knows when it builds an answer. */
export interface AnswerContext {
  readonly rules: MutationRules;
  readonly disableImmediateResponse: boolean;
  readonly allowModeOverride: boolean;
  /** Body modes in force now. */
  readonly requestBodyMode: BodySendMode;
  readonly responseBodyMode: BodySendMode;
  readonly sendBodyWithoutWaitingForHeaderResponse: boolean;
  /** False when neither Envoy's protocol_config nor the server options said which body modes are in force. */
  readonly bodyModeKnown: boolean;
  /** Whether the headers of the direction carried `content-length` (BUFFERED fix-up). */
  hadContentLength(direction: 'request' | 'response'): boolean;
}

export interface BuiltAnswer {
  /** Wire objects to write, in order (empty in FULL_DUPLEX_STREAMED when nothing is ready). */
  readonly frames: object[];
  readonly immediate: boolean;
  /** CONTINUE_AND_REPLACE: Envoy sends nothing more for this direction. */
  readonly replaced: boolean;
  /** The merged override, when one was sent. */
  readonly modeOverride: Required<ProcessingMode> | undefined;
  readonly dropped: DroppedMutation[];
}

const isRequest = (phase: Phase): boolean => phase.startsWith('request_');

/**
 * `{ [phase]: inner }`, written with literal keys: an object built with a computed key does not
 * get the fast, shared shape V8 gives a literal, and every answer is one of these.
 */
function phaseAnswer(phase: Phase, inner: object): Record<string, unknown> {
  switch (phase) {
    case 'request_headers':
      return { request_headers: inner };
    case 'response_headers':
      return { response_headers: inner };
    case 'request_body':
      return { request_body: inner };
    case 'response_body':
      return { response_body: inner };
    case 'request_trailers':
      return { request_trailers: inner };
    case 'response_trailers':
      return { response_trailers: inner };
  }
}

function direction(phase: Phase): 'request' | 'response' {
  return isRequest(phase) ? 'request' : 'response';
}

/** Builds the answer to a headers message. */
export function headersAnswer(
  phase: Phase,
  d: HeadersDecision,
  ctx: AnswerContext,
  current: Required<ProcessingMode>,
): BuiltAnswer {
  const dropped: DroppedMutation[] = [];
  const common: Record<string, unknown> = {};
  let replaced = false;
  if (d.status !== undefined && d.status !== 'continue') {
    if (d.status !== 'continue_and_replace') {
      throw new InvalidDecisionError(
        phase,
        'status',
        `must be 'continue' or 'continue_and_replace', got ${JSON.stringify(d.status)}`,
      );
    }
    if (bodyModeOf(phase, ctx) === 'GRPC') {
      throw new InvalidDecisionError(phase, 'status', 'continue_and_replace is not supported in GRPC body mode');
    }
    common['status'] = 1;
    replaced = true;
  }
  const hm = mutation(phase, 'headers', d.headers, ctx, dropped);
  if (hm !== undefined) common['header_mutation'] = hm;
  if (d.body !== undefined) {
    if (!replaced) {
      dropped.push({
        op: 'set',
        name: '(body)',
        reason: "a body on a headers answer needs status 'continue_and_replace'",
      });
    } else {
      common['body_mutation'] = bodyMutation(phase, d.body);
    }
  }
  routeCache(phase, d.clearRouteCache, common, dropped);
  const answer = phaseAnswer(phase, { response: common });
  common_(phase, d, answer);
  let merged: Required<ProcessingMode> | undefined;
  if (d.modeOverride !== undefined) {
    merged = modeOverride(phase, d.modeOverride, ctx, current, dropped);
    if (merged !== undefined) answer['mode_override'] = wireMode(merged);
  }
  return { frames: [answer], immediate: false, replaced, modeOverride: merged, dropped };
}

/** Builds the answer to a body message outside FULL_DUPLEX_STREAMED. */
export function bodyAnswer(phase: Phase, d: BodyDecision | StreamedBodyDecision, ctx: AnswerContext): BuiltAnswer {
  if ('chunks' in d) {
    throw new InvalidDecisionError(
      phase,
      'chunks',
      `streamed chunks are only for FULL_DUPLEX_STREAMED; the body mode is ${bodyModeOf(phase, ctx)}`,
    );
  }
  const dropped: DroppedMutation[] = [];
  const common: Record<string, unknown> = {};
  const mode = bodyModeOf(phase, ctx);
  let newLength: number | undefined;
  if (d.body !== undefined) {
    const bm = bodyMutation(phase, d.body);
    common['body_mutation'] = bm;
    newLength = 'body' in bm ? bm.body.length : 0;
  }
  if (d.headers !== undefined || (newLength !== undefined && mode === 'BUFFERED')) {
    if (mode === 'BUFFERED' || !ctx.bodyModeKnown) {
      const hm = mutation(phase, 'headers', d.headers ?? {}, ctx, dropped);
      const fixed = mode === 'BUFFERED' ? fixContentLength(phase, hm, newLength, ctx) : hm;
      if (fixed !== undefined) common['header_mutation'] = fixed;
    } else if (d.headers !== undefined) {
      dropped.push({
        op: 'set',
        name: '(headers)',
        reason: `header mutations on a body answer apply only in BUFFERED mode (mode is ${mode})`,
      });
    }
  }
  routeCache(phase, d.clearRouteCache, common, dropped);
  const answer = phaseAnswer(phase, { response: common });
  common_(phase, d, answer);
  return { frames: [answer], immediate: false, replaced: false, modeOverride: undefined, dropped };
}

/**
 * Builds the answers to a FULL_DUPLEX_STREAMED body chunk: `chunk` itself when the handler returned
 * nothing, else its chunks; the last one carries `end_of_stream` when the input did.
 */
export function streamedBodyAnswer(
  phase: Phase,
  d: StreamedBodyDecision | BodyDecision | undefined,
  chunk: Uint8Array,
  endOfStream: boolean,
): BuiltAnswer {
  let chunks: readonly (Uint8Array | string)[];
  if (d === undefined) chunks = [chunk];
  else if ('chunks' in d) {
    if (!Array.isArray(d.chunks))
      throw new InvalidDecisionError(phase, 'chunks', 'must be a list of byte arrays or strings');
    chunks = d.chunks;
  } else if (d.body !== undefined || d.headers !== undefined) {
    throw new InvalidDecisionError(
      phase,
      'body',
      'in FULL_DUPLEX_STREAMED mode answer with { chunks: [...] }, not a body or header mutation',
    );
  } else chunks = [chunk];
  const pieces: Buffer[] = [];
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i];
    const buf =
      typeof c === 'string'
        ? Buffer.from(c)
        : c instanceof Uint8Array
          ? Buffer.from(c.buffer, c.byteOffset, c.length)
          : undefined;
    if (buf === undefined) throw new InvalidDecisionError(phase, `chunks[${i}]`, 'must be a byte array or a string');
    for (let off = 0; off < buf.length; off += MAX_STREAMED_CHUNK)
      pieces.push(buf.subarray(off, off + MAX_STREAMED_CHUNK));
  }
  if (endOfStream && pieces.length === 0) pieces.push(Buffer.alloc(0));
  // Default values (false, empty bytes) are left out, as protoc-generated encoders would.
  const frames: object[] = pieces.map((body, i) => {
    const sr: { body?: Buffer; end_of_stream?: true } = {};
    if (body.length > 0) sr.body = body;
    if (endOfStream && i === pieces.length - 1) sr.end_of_stream = true;
    return phaseAnswer(phase, { response: { body_mutation: { streamed_response: sr } } });
  });
  if (d !== undefined && frames.length > 0) common_(phase, d, frames[frames.length - 1] as Record<string, unknown>);
  return { frames, immediate: false, replaced: false, modeOverride: undefined, dropped: [] };
}

/** Builds the answer to a trailers message. */
export function trailersAnswer(
  phase: Phase,
  d: TrailersDecision,
  ctx: AnswerContext,
  fullDuplex: boolean,
): BuiltAnswer {
  const dropped: DroppedMutation[] = [];
  const frames: object[] = [];
  if (d.chunks !== undefined) {
    if (!fullDuplex)
      throw new InvalidDecisionError(phase, 'chunks', 'body chunks with trailers are only for FULL_DUPLEX_STREAMED');
    const bodyPhase: Phase = isRequest(phase) ? 'request_body' : 'response_body';
    const flushed = streamedBodyAnswer(bodyPhase, { chunks: d.chunks }, Buffer.alloc(0), false).frames;
    frames.push(...flushed);
  }
  const inner: Record<string, unknown> = {};
  const hm = mutation(phase, 'trailers', d.trailers, ctx, dropped);
  if (hm !== undefined) inner['header_mutation'] = hm;
  const answer = phaseAnswer(phase, inner);
  common_(phase, d, answer);
  frames.push(answer);
  return { frames, immediate: false, replaced: false, modeOverride: undefined, dropped };
}

let statusCodes: ReadonlySet<number> | undefined;

/** The codes of `envoy.type.v3.StatusCode` from 200 up (Envoy replaces codes below 200). */
function httpStatusCodes(): ReadonlySet<number> {
  const field = messageType('envoy.type.v3.HttpStatus').fields['code'];
  const e = field?.resolve().resolvedType;
  const values = e !== null && e !== undefined && 'values' in e ? (e.values as Record<string, number>) : {};
  return new Set(Object.values(values).filter((n) => n >= 200));
}

/** Builds an immediate response. */
export function immediateAnswer(
  phase: Phase,
  r: ImmediateResponse,
  d: CommonDecision,
  ctx: AnswerContext,
): BuiltAnswer {
  if (ctx.disableImmediateResponse) {
    throw new InvalidDecisionError(
      phase,
      'immediate',
      'immediate responses are disabled (disable_immediate_response); Envoy would treat it as spurious',
    );
  }
  if (phase.endsWith('_trailers')) {
    throw new InvalidDecisionError(phase, 'immediate', 'trailers cannot be answered with an immediate response');
  }
  if (typeof r !== 'object' || r === null) throw new InvalidDecisionError(phase, 'immediate', 'must be an object');
  const codes = (statusCodes ??= httpStatusCodes());
  if (!Number.isInteger(r.status) || !codes.has(r.status)) {
    throw new InvalidDecisionError(
      phase,
      'immediate.status',
      `${String(r.status)} is not an HTTP status Envoy accepts (200–599, as in envoy.type.v3.StatusCode)`,
    );
  }
  const dropped: DroppedMutation[] = [];
  const ir: Record<string, unknown> = { status: { code: r.status } };
  const hm = mutation(phase, 'immediate.headers', r.headers, ctx, dropped);
  if (hm !== undefined) ir['headers'] = hm;
  if (r.body !== undefined) ir['body'] = toBuffer(phase, 'immediate.body', r.body);
  if (r.grpcStatus !== undefined) {
    if (!Number.isInteger(r.grpcStatus) || r.grpcStatus < 0 || r.grpcStatus > 16) {
      throw new InvalidDecisionError(
        phase,
        'immediate.grpcStatus',
        `${String(r.grpcStatus)} is not a gRPC status code (0–16)`,
      );
    }
    ir['grpc_status'] = { status: r.grpcStatus };
  }
  if (r.details !== undefined) ir['details'] = String(r.details);
  const answer: Record<string, unknown> = { immediate_response: ir };
  common_(phase, d, answer);
  return { frames: [answer], immediate: true, replaced: false, modeOverride: undefined, dropped };
}

/** The current mode with a handler's override merged the way Envoy merges it, or undefined when Envoy would ignore it. */
function modeOverride(
  phase: Phase,
  o: ProcessingMode,
  ctx: AnswerContext,
  current: Required<ProcessingMode>,
  dropped: DroppedMutation[],
): Required<ProcessingMode> | undefined {
  const ignore = (reason: string): undefined => {
    dropped.push({ op: 'set', name: '(mode_override)', reason });
    return undefined;
  };
  if (typeof o !== 'object' || o === null) throw new InvalidDecisionError(phase, 'modeOverride', 'must be an object');
  for (const key of [
    'request_header_mode',
    'response_header_mode',
    'request_trailer_mode',
    'response_trailer_mode',
  ] as const) {
    const v = o[key];
    if (v !== undefined && !HEADER_SEND_MODES.includes(v)) {
      throw new InvalidDecisionError(
        phase,
        `modeOverride.${key}`,
        `${JSON.stringify(v)} is not one of ${HEADER_SEND_MODES.join(', ')}`,
      );
    }
  }
  for (const key of ['request_body_mode', 'response_body_mode'] as const) {
    const v = o[key];
    if (v !== undefined && !BODY_SEND_MODES.includes(v)) {
      throw new InvalidDecisionError(
        phase,
        `modeOverride.${key}`,
        `${JSON.stringify(v)} is not one of ${BODY_SEND_MODES.join(', ')}`,
      );
    }
    if (v === 'FULL_DUPLEX_STREAMED' || v === 'GRPC') {
      throw new InvalidDecisionError(phase, `modeOverride.${key}`, `Envoy does not accept an override to ${v}`);
    }
  }
  if (!ctx.allowModeOverride) return ignore('the filter does not set allow_mode_override');
  if (ctx.sendBodyWithoutWaitingForHeaderResponse) {
    return ignore('Envoy ignores mode_override with send_body_without_waiting_for_header_response');
  }
  if (isFullDuplex(ctx.requestBodyMode) || isFullDuplex(ctx.responseBodyMode)) {
    return ignore('Envoy ignores mode_override when a body mode is FULL_DUPLEX_STREAMED or GRPC');
  }
  // DEFAULT header/trailer modes keep the current setting; body modes are taken verbatim by Envoy,
  // so restate the current ones rather than let a missing field turn bodies off.
  const keep = <T extends string>(v: T | undefined, cur: T): T => (v === undefined || v === 'DEFAULT' ? cur : v);
  return {
    request_header_mode: current.request_header_mode,
    response_header_mode: keep(o.response_header_mode, current.response_header_mode),
    request_trailer_mode: keep(o.request_trailer_mode, current.request_trailer_mode),
    response_trailer_mode: keep(o.response_trailer_mode, current.response_trailer_mode),
    request_body_mode: o.request_body_mode ?? current.request_body_mode,
    response_body_mode: o.response_body_mode ?? current.response_body_mode,
  };
}

export function isFullDuplex(mode: BodySendMode): boolean {
  return mode === 'FULL_DUPLEX_STREAMED' || mode === 'GRPC';
}

function wireMode(m: Required<ProcessingMode>): object {
  return {
    request_header_mode: HEADER_SEND_MODES.indexOf(m.request_header_mode),
    response_header_mode: HEADER_SEND_MODES.indexOf(m.response_header_mode),
    request_body_mode: BODY_SEND_MODES.indexOf(m.request_body_mode),
    response_body_mode: BODY_SEND_MODES.indexOf(m.response_body_mode),
    request_trailer_mode: HEADER_SEND_MODES.indexOf(m.request_trailer_mode),
    response_trailer_mode: HEADER_SEND_MODES.indexOf(m.response_trailer_mode),
  };
}

function bodyModeOf(phase: Phase, ctx: AnswerContext): BodySendMode {
  return isRequest(phase) ? ctx.requestBodyMode : ctx.responseBodyMode;
}

function mutation(
  phase: Phase,
  field: string,
  m: HeadersDecision['headers'],
  ctx: AnswerContext,
  dropped: DroppedMutation[],
): WireHeaderMutation | undefined {
  if (m === undefined) return undefined;
  if (typeof m !== 'object' || m === null)
    throw new InvalidDecisionError(phase, field, 'must be an object with set/append/remove');
  try {
    return encodeHeaderMutation(m, ctx.rules, field, dropped);
  } catch (e: unknown) {
    if (e instanceof InvalidMutationError) throw new InvalidDecisionError(phase, e.field, e.message);
    throw e;
  }
}

function fixContentLength(
  phase: Phase,
  hm: WireHeaderMutation | undefined,
  newLength: number | undefined,
  ctx: AnswerContext,
): WireHeaderMutation | undefined {
  if (newLength === undefined) return hm;
  const set = hm?.set_headers.find((o) => o.header.key === 'content-length');
  if (set !== undefined) {
    const declared = set.header.raw_value.toString('latin1');
    if (declared !== String(newLength)) {
      throw new InvalidDecisionError(
        phase,
        'headers.set.content-length',
        `content-length ${declared} does not match the replaced body (${newLength} bytes); Envoy would reject the mutation`,
      );
    }
    return hm;
  }
  if (!ctx.hadContentLength(direction(phase))) return hm;
  // The headers carried content-length and the body changed: Envoy keeps the old value in BUFFERED
  // mode with headers SEND and then rejects the mismatch, so set the new length for the handler.
  const out = hm ?? { set_headers: [], remove_headers: [] };
  out.set_headers.push({
    header: { key: 'content-length', raw_value: Buffer.from(String(newLength)) },
    append: { value: false },
  });
  return out;
}

function bodyMutation(phase: Phase, b: BodyMutation): { body: Buffer } | { clear_body: true } {
  if (typeof b !== 'object' || b === null)
    throw new InvalidDecisionError(phase, 'body', 'must be { replace } or { clear: true }');
  if ('replace' in b) return { body: toBuffer(phase, 'body.replace', b.replace) };
  if ('clear' in b && b.clear === true) return { clear_body: true };
  throw new InvalidDecisionError(phase, 'body', 'must be { replace } or { clear: true }');
}

function toBuffer(phase: Phase, field: string, v: Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.length);
  throw new InvalidDecisionError(phase, field, `must be a string or a byte array, got ${typeof v}`);
}

function routeCache(
  phase: Phase,
  clear: boolean | undefined,
  common: Record<string, unknown>,
  dropped: DroppedMutation[],
): void {
  if (clear !== true) return;
  if (!isRequest(phase)) {
    dropped.push({
      op: 'set',
      name: '(clear_route_cache)',
      reason: 'clear_route_cache is ignored on the response path',
    });
    return;
  }
  common['clear_route_cache'] = true;
}

function common_(phase: Phase, d: CommonDecision, answer: Record<string, unknown>): void {
  if (d.dynamicMetadata === undefined) return;
  if (typeof d.dynamicMetadata !== 'object' || d.dynamicMetadata === null) {
    throw new InvalidDecisionError(phase, 'dynamicMetadata', 'must be an object: namespace → object');
  }
  const fields: Record<string, object> = {};
  try {
    for (const ns of Object.keys(d.dynamicMetadata)) {
      const v = d.dynamicMetadata[ns];
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new StructError(`dynamicMetadata.${ns}: each namespace must map to an object`);
      }
      fields[ns] = { struct_value: toWireStruct(v, `dynamicMetadata.${ns}`) };
    }
  } catch (e: unknown) {
    if (e instanceof StructError) throw new InvalidDecisionError(phase, 'dynamicMetadata', e.message);
    throw e;
  }
  answer['dynamic_metadata'] = { fields };
}
