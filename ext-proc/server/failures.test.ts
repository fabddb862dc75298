// Failure behaviour (reference/ext-proc.md §9–§10): handler timeouts, exceptions, rejected promises
// and invalid decisions under each policy; client cancellation at every phase; the message size
// limit; back-pressure on streamed bodies. Real sockets, both transports.
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, TRANSPORTS, type Harness } from '../testing/harness.js';
import type { ExchangeOptions } from '../testing/test-client.js';
import type { ExtProcServerOptions } from './server.js';
import type { ExtProcHandler, FailurePolicy, Phase } from './types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const GET = { ':method': 'GET', ':path': '/' };
const header = (list: readonly [string, string][] | undefined, name: string): string | undefined =>
  list?.find(([k]) => k === name)?.[1];

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await sleep(5);
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async <S>(options: ExtProcServerOptions<S>): Promise<Harness> =>
    (h = await startHarness(transport, options));

  describe('handler timeout (below Envoy’s message_timeout)', () => {
    const slow: ExtProcHandler = {
      async onRequestHeaders(ctx) {
        await sleep(300);
        return ctx.signal.aborted
          ? { headers: { set: { 'x-late': 'aborted-but-returned' } } }
          : { headers: { set: { 'x-late': '1' } } };
      },
    };
    const cases: ReadonlyArray<{
      policy: FailurePolicy;
      outcome: string;
      check: (r: Awaited<ReturnType<Harness['client']['exchange']>>) => void;
    }> = [
      {
        policy: 504,
        outcome: 'immediate',
        check: (r) => expect(r.immediateResponse).toMatchObject({ status: 504, details: 'ext_proc_handler_timeout' }),
      },
      { policy: 500, outcome: 'immediate', check: (r) => expect(r.immediateResponse?.status).toBe(500) },
      {
        policy: 'continue',
        outcome: 'completed',
        check: (r) => expect(header(r.request?.headers, 'x-late')).toBeUndefined(),
      },
      { policy: 'error', outcome: 'local_reply', check: (r) => expect(r.grpcStatus?.code).toBe(4) },
    ];
    it.each(cases)(
      'onTimeout $policy → $outcome, before Envoy times out, late decision discarded',
      async ({ policy, outcome, check }) => {
        const { client, server } = await start({
          handler: slow,
          messageTimeoutMs: 150,
          handlerTimeoutMs: 60,
          onTimeout: policy,
        });
        const t0 = Date.now();
        const r = await client.exchange({ messageTimeoutMs: 150, request: { headers: GET } });
        expect(r.outcome).toBe(outcome);
        expect(r.localReply?.status === 504).toBe(false); // never Envoy's own timeout
        check(r);
        expect(Date.now() - t0).toBeLessThan(1000);
        expect(await server.metricsText()).toMatch(/envext_ext_proc_errors_total\{kind="handler_timeout"\} 1/);
      },
    );

    it('aborts ctx.signal when the deadline passes', async () => {
      let aborted = false;
      const { client } = await start({
        handlerTimeoutMs: 30,
        onTimeout: 'continue',
        handler: {
          onRequestHeaders: (ctx) =>
            new Promise<undefined>((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                resolve(undefined);
              });
            }),
        },
      });
      await client.exchange({ request: { headers: GET } });
      expect(aborted).toBe(true);
    });

    it('does not apply to FULL_DUPLEX_STREAMED bodies (Envoy has no message timeout there)', async () => {
      const { client } = await start({
        handlerTimeoutMs: 20,
        handler: {
          async onRequestBody(_c, { body }) {
            await sleep(60);
            return { chunks: [body] };
          },
        },
      });
      const r = await client.exchange({
        messageTimeoutMs: 1000,
        mode: { request_body_mode: 'FULL_DUPLEX_STREAMED', request_trailer_mode: 'SEND' },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['a', 'b'] },
      });
      expect(r.outcome).toBe('completed');
      expect(r.request?.body.toString()).toBe('ab');
    });
  });

  describe('handler exceptions, rejections and invalid decisions', () => {
    const throwing: Record<string, ExtProcHandler> = {
      'sync throw': {
        onRequestHeaders: () => {
          throw new Error('boom');
        },
      },
      'rejected promise': { onRequestHeaders: () => Promise.reject(new Error('boom')) },
      'invalid decision': { onRequestHeaders: () => 'yes' as never },
    };
    const policies: ReadonlyArray<{ policy: FailurePolicy; outcome: string }> = [
      { policy: 'error', outcome: 'local_reply' },
      { policy: 'continue', outcome: 'completed' },
      { policy: 503, outcome: 'immediate' },
    ];
    const cases = Object.keys(throwing).flatMap((name) => policies.map((p) => ({ name, ...p })));
    it.each(cases)('$name with onError $policy → $outcome', async ({ name, policy, outcome }) => {
      const { client, server } = await start({ handler: throwing[name] as ExtProcHandler, onError: policy });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.outcome).toBe(outcome);
      if (policy === 'error') {
        expect(r.grpcStatus?.code).toBe(13);
        expect(r.localReply?.status).toBe(500);
      }
      if (typeof policy === 'number') expect(r.immediateResponse?.status).toBe(policy);
      const kind = name === 'invalid decision' ? 'invalid_decision' : 'handler_exception';
      expect(await server.metricsText()).toContain(`envext_ext_proc_errors_total{kind="${kind}"} 1`);
    });

    it('a failure on a STREAMED chunk with onError continue passes that chunk unchanged and keeps the order', async () => {
      const { client } = await start({
        onError: 'continue',
        handler: {
          onRequestBody: (_c, { body }) => {
            if (body.toString() === 'b') throw new Error('bad chunk');
            return { body: { replace: body.toString().toUpperCase() } };
          },
        },
      });
      const r = await client.exchange({
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['a', 'b', 'c'] },
      });
      expect(r.request?.body.toString()).toBe('AbC');
    });

    it('a trailers failure with an HTTP-status policy closes with an error (trailers take no immediate response)', async () => {
      const { client } = await start({
        onError: 500,
        handler: {
          onRequestTrailers: () => {
            throw new Error('boom');
          },
        },
      });
      const r = await client.exchange({
        mode: { request_trailer_mode: 'SEND' },
        request: { headers: GET, trailers: { a: '1' } },
      });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.code).toBe(13);
    });
  });

  describe('client cancellation', () => {
    const phases: Phase[] = [
      'request_headers',
      'request_body',
      'request_trailers',
      'response_headers',
      'response_body',
      'response_trailers',
    ];
    it.each(phases)('during %s: state is dropped, signal aborted, onStreamEnd("cancelled")', async (phase) => {
      const ends: string[] = [];
      let aborted = false;
      const block: ExtProcHandler['onRequestHeaders'] = (ctx) =>
        new Promise<undefined>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(undefined);
          });
        });
      const handler: ExtProcHandler = {
        onStreamEnd: (_c, how) => void ends.push(how),
        [(
          {
            request_headers: 'onRequestHeaders',
            request_body: 'onRequestBody',
            request_trailers: 'onRequestTrailers',
            response_headers: 'onResponseHeaders',
            response_body: 'onResponseBody',
            response_trailers: 'onResponseTrailers',
          } as const
        )[phase]]: block,
      };
      const { client, server } = await start({ handler, handlerTimeoutMs: 0 });
      const opts: ExchangeOptions = {
        messageTimeoutMs: 5000,
        mode: {
          request_body_mode: 'BUFFERED',
          response_body_mode: 'BUFFERED',
          request_trailer_mode: 'SEND',
          response_trailer_mode: 'SEND',
        },
        request: { headers: { ...GET, ':method': 'POST' }, body: 'x', trailers: { t: '1' } },
        response: { headers: { ':status': '200' }, body: 'y', trailers: { t: '2' } },
        cancelAfter: phase,
      };
      const r = await client.exchange(opts);
      expect(r.outcome).toBe('cancelled');
      await waitUntil(() => ends.length > 0 && server.activeStreams === 0);
      expect(ends).toEqual(['cancelled']);
      expect(aborted).toBe(true);
      expect(server.activeStreams).toBe(0);
      expect(await server.metricsText()).toMatch(/envext_ext_proc_streams_ended_total\{how="cancelled"\} 1/);
    });
  });

  describe('message size limit', () => {
    it('a buffered body above maxMessageBytes fails with RESOURCE_EXHAUSTED and a log naming the option', async () => {
      const { client, server, logs } = await start({ maxMessageBytes: 2048, handler: {} });
      const r = await client.exchange({
        // The test client's message timeout (Envoy's, 200 ms by default) must not win the race
        // against the server's RESOURCE_EXHAUSTED on a loaded machine.
        messageTimeoutMs: 30_000,
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: Buffer.alloc(8192, 1) },
      });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.code).toBe(8);
      expect(r.grpcStatus?.details).toMatch(/8\d{3} bytes exceeds the limit of 2048/);
      expect(logs.join('')).toMatch(/max-message-bytes/);
      expect(await server.metricsText()).toMatch(/envext_ext_proc_errors_total\{kind="message_too_large"\} 1/);
    });

    it('accepts bodies above grpc-js’s 4 MiB default when configured', async () => {
      let size = 0;
      const { client } = await start({ handler: { onRequestBody: (_c, { body }) => void (size = body.length) } });
      const big = Buffer.alloc(6 * 1024 * 1024, 2);
      const r = await client.exchange({
        // Sending and decoding 6 MiB can take longer than Envoy's default 200 ms message timeout on
        // a loaded machine; Envoy deployments that buffer such bodies raise message_timeout too.
        messageTimeoutMs: 30_000,
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: big },
      });
      expect(r.outcome).toBe('completed');
      expect(size).toBe(big.length);
    });
  });

  describe('back-pressure', () => {
    it('a slow handler on many pipelined STREAMED chunks pauses reading at maxPendingMessages', async () => {
      const { client, server } = await start({
        maxPendingMessages: 8,
        handler: {
          async onRequestBody(_c, { body }) {
            await sleep(1);
            return { body: { replace: body } };
          },
        },
      });
      const chunks = Array.from({ length: 300 }, (_, i) => `${i},`);
      const r = await client.exchange({
        messageTimeoutMs: 10_000,
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: chunks },
      });
      expect(r.outcome).toBe('completed');
      expect(r.request?.body.toString()).toBe(chunks.join(''));
      expect(server.maxQueuedMessages).toBeGreaterThan(1);
      expect(server.maxQueuedMessages).toBeLessThanOrEqual(8);
    });
  });
});
