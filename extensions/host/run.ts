/**
 * One request lifecycle through the emulator, as Envoy's HTTP filter chain would run it: what
 * `envext wasm run` prints and `envext wasm bench` repeats.
 *
 * Order: context create → request headers → body chunks → trailers → (callouts answered from the
 * callouts file whenever the guest is waiting) → response headers/body/trailers (the upstream's
 * RESP, or the local reply the filter sent) → on_log, on_done, on_delete.
 */
import { HeadersStatus } from './abi.js';
import type { LocalResponse } from './context.js';
import type { HostEmulator, StreamAction } from './emulator.js';
import type { HeaderPair } from './pairs.js';
import type { CalloutAnswer, RequestSpec, ResponseSpec } from './request-spec.js';
import type { LogEntry } from './state.js';

/** A body in the JSON output: text when it is valid UTF-8, else base64. */
export type BodyOutput = string | { readonly base64: string };

export interface RunResult {
  /** The request as it left the filter towards the upstream (after the guest's edits). */
  readonly request: {
    readonly headers: HeaderPair[];
    readonly body: BodyOutput;
    readonly trailers: HeaderPair[];
    /** False when the filter never let the request through (local reply, stop, reset, failure). */
    readonly forwarded: boolean;
  };
  /** The response as it left the filter towards the client; undefined when none was produced. */
  readonly response:
    { readonly headers: HeaderPair[]; readonly body: BodyOutput; readonly trailers: HeaderPair[] } | undefined;
  readonly localReply: (Omit<LocalResponse, 'body'> & { readonly body: BodyOutput }) | undefined;
  readonly actions: readonly StreamAction[];
  readonly logs: readonly LogEntry[];
  readonly metrics: readonly { readonly name: string; readonly kind: string; readonly value: string | string[] }[];
  readonly callouts: readonly {
    readonly token: number;
    readonly kind: string;
    readonly cluster: string;
    readonly headers: readonly HeaderPair[];
    readonly body: BodyOutput;
    readonly answer: string;
  }[];
  readonly streamClosed: string | undefined;
  readonly vmFailure: { readonly callback: string; readonly message: string } | undefined;
}

export function bodyOutput(b: Uint8Array): BodyOutput {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : { base64: Buffer.from(b).toString('base64') };
}

type CalloutLog = RunResult['callouts'][number];

/** Answers every pending HTTP callout (bounded: a guest that keeps calling stops after 100 rounds). */
function answerCallouts(host: HostEmulator, answers: ReadonlyMap<string, CalloutAnswer>, log: CalloutLog[]): void {
  for (let round = 0; round < 100; round++) {
    const pending = host.pendingCallouts();
    if (pending.length === 0) return;
    for (const c of pending) {
      const a = c.kind === 'http' ? answers.get(c.upstream) : undefined;
      const entry = { token: c.token, kind: c.kind, cluster: c.upstream, headers: c.headers, body: bodyOutput(c.body) };
      if (c.kind !== 'http') {
        const g = answers.get(c.upstream)?.grpc;
        if (g === undefined) {
          log.push({ ...entry, answer: 'closed UNAVAILABLE: cluster has no "grpc" answer in --callouts' });
          host.callOnGrpcClose(c.token, 14, 'unavailable');
          continue;
        }
        log.push({ ...entry, answer: `answered grpc-status ${g.status}` });
        // The guest may cancel or close the callout from any of these callbacks.
        const alive = (): boolean => host.calloutAttributes(c.token) !== undefined;
        if (g.initialMetadata.length > 0) host.callOnGrpcReceiveInitialMetadata(c.token, g.initialMetadata);
        if (g.status === 0 && alive()) {
          // A unary call ends with its one message; a stream also gets trailers and a close.
          host.callOnGrpcReceive(c.token, g.message);
          if (c.kind === 'grpc_call') continue;
        }
        if (g.trailingMetadata.length > 0 && alive()) {
          host.callOnGrpcReceiveTrailingMetadata(c.token, g.trailingMetadata);
        }
        if (alive()) host.callOnGrpcClose(c.token, g.status, g.statusMessage);
      } else if (a === undefined || a.fail) {
        log.push({
          ...entry,
          answer: a === undefined ? 'failed: cluster not in --callouts (reset)' : 'failed (reset)',
        });
        host.failHttpCall(c.token);
      } else {
        log.push({ ...entry, answer: `answered ${a.headers[0]?.[1] ?? ''}` });
        host.callOnHttpCallResponse(c.token, { headers: a.headers, body: a.body, trailers: a.trailers });
      }
    }
  }
}

/** Runs one lifecycle; `collect` false skips building the report (benchmarks). */
export function runLifecycle(
  host: HostEmulator,
  req: RequestSpec,
  resp: ResponseSpec | undefined,
  answers: ReadonlyMap<string, CalloutAnswer>,
  collect = true,
): RunResult | undefined {
  const callouts: CalloutLog[] = [];
  const id = host.initializeHttpContext({ attributes: req.attributes });
  const noBody = req.body.length === 0 && req.trailers === undefined;
  host.callOnRequestHeaders(id, req.headers, noBody);
  answerCallouts(host, answers, callouts);
  req.body.forEach((chunk, i) => {
    host.callOnRequestBody(id, chunk, i === req.body.length - 1 && req.trailers === undefined);
    answerCallouts(host, answers, callouts);
  });
  if (req.trailers !== undefined) {
    host.callOnRequestTrailers(id, req.trailers);
    answerCallouts(host, answers, callouts);
  }
  const local = host.sentLocalResponse(id);
  const reqActions = host.httpStreamActions(id);
  const lastReq = [...reqActions].reverse().find((a) => a.phase.startsWith('request'));
  const forwarded =
    local === undefined &&
    host.streamClosed(id) === undefined &&
    (lastReq === undefined ||
      lastReq.status === HeadersStatus.Continue ||
      lastReq.status === HeadersStatus.ContinueAndEndStream);
  // The upstream answers only a request that went through; a local reply already ran the
  // response callbacks (Envoy sends it through the encoder chain).
  if (forwarded && resp !== undefined) {
    const noRespBody = resp.body.length === 0 && resp.trailers === undefined;
    host.callOnResponseHeaders(id, resp.headers, noRespBody);
    answerCallouts(host, answers, callouts);
    resp.body.forEach((chunk, i) => {
      host.callOnResponseBody(id, chunk, i === resp.body.length - 1 && resp.trailers === undefined);
      answerCallouts(host, answers, callouts);
    });
    if (resp.trailers !== undefined) {
      host.callOnResponseTrailers(id, resp.trailers);
      answerCallouts(host, answers, callouts);
    }
  }
  if (!collect) {
    host.completeHttpContext(id);
    return undefined;
  }
  const respHeaders = host.currentResponseHeaders(id);
  const result: RunResult = {
    request: {
      headers: host.currentRequestHeaders(id),
      body: bodyOutput(host.forwardedRequestBody(id)),
      trailers: host.currentRequestTrailers(id),
      forwarded,
    },
    response:
      respHeaders.length === 0
        ? undefined
        : {
            headers: respHeaders,
            body: bodyOutput(host.forwardedResponseBody(id)),
            trailers: host.currentResponseTrailers(id),
          },
    localReply: undefined,
    actions: [...host.httpStreamActions(id)],
    logs: [],
    metrics: [],
    callouts,
    streamClosed: host.streamClosed(id),
    vmFailure: undefined,
  };
  const lr = host.sentLocalResponse(id);
  host.completeHttpContext(id);
  return {
    ...result,
    localReply: lr === undefined ? undefined : { ...lr, body: bodyOutput(lr.body) },
    logs: [...host.logEntries()],
    metrics: host.metrics().map((m) => ({
      name: m.name,
      kind: m.kind,
      value: m.kind === 'histogram' ? m.samples.map(String) : String(m.value),
    })),
    vmFailure: host.vmFailure(),
  };
}
