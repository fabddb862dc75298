// Protocol rules (reference/ext-proc.md §2–§8, §11) enforced by the framework, each exercised through
// a real grpc-js client over a real Unix socket and over TCP.
import { afterEach, describe, expect, it } from 'vitest';
import type { ProtoObject } from '../../proto/index.js';
import { startHarness, TRANSPORTS, type Harness } from '../testing/harness.js';
import type { ExtProcServerOptions } from './server.js';
import type { ExtProcContext, ExtProcHandler, Phase } from './types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const kindOf = (m: ProtoObject): string =>
  Object.keys(m).filter((k) => k !== 'dynamic_metadata' && k !== 'mode_override')[0] ?? '';
const header = (list: readonly [string, string][] | undefined, name: string): string | undefined =>
  list?.find(([k]) => k === name)?.[1];
const GET = { ':method': 'GET', ':path': '/', ':authority': 'example.com', ':scheme': 'http' };

describe.each(TRANSPORTS)('over %s', (transport) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async <S>(options: ExtProcServerOptions<S>): Promise<Harness> =>
    (h = await startHarness(transport, options));

  describe('matching rule', () => {
    it('answers each of the six message kinds once, with the same oneof member, in order', async () => {
      const seen: Phase[] = [];
      const record = (p: Phase) => (): undefined => {
        seen.push(p);
        return undefined;
      };
      const { client } = await start({
        handler: {
          onRequestHeaders: record('request_headers'),
          onRequestBody: record('request_body'),
          onRequestTrailers: record('request_trailers'),
          onResponseHeaders: record('response_headers'),
          onResponseBody: record('response_body'),
          onResponseTrailers: record('response_trailers'),
        },
      });
      const r = await client.exchange({
        mode: {
          request_body_mode: 'BUFFERED',
          response_body_mode: 'BUFFERED',
          request_trailer_mode: 'SEND',
          response_trailer_mode: 'SEND',
        },
        request: { headers: GET, body: 'req', trailers: { 'x-t': '1' } },
        response: { headers: { ':status': '200' }, body: 'resp', trailers: { 'x-u': '2' } },
      });
      expect(r.outcome).toBe('completed');
      const order: Phase[] = [
        'request_headers',
        'request_body',
        'request_trailers',
        'response_headers',
        'response_body',
        'response_trailers',
      ];
      expect(seen).toEqual(order);
      expect(r.sent.map(kindOf).filter((k) => k !== 'protocol_config')).toEqual(order);
      expect(r.received.map(kindOf)).toEqual(order);
      expect(r.grpcStatus?.code).toBe(0);
    });

    it('mixes sync and async callbacks without reordering answers', async () => {
      const { client } = await start({
        handler: {
          async onRequestHeaders() {
            await sleep(20);
            return { headers: { set: { 'x-a': '1' } } };
          },
          onResponseHeaders: () => ({ headers: { set: { 'x-b': '2' } } }),
        },
      });
      const r = await client.exchange({ request: { headers: GET } });
      expect(header(r.request?.headers, 'x-a')).toBe('1');
      expect(header(r.response?.headers, 'x-b')).toBe('2');
    });

    it('rejects a ProcessingRequest with no request member (INVALID_ARGUMENT)', async () => {
      const { raw } = await start({ handler: {} });
      const r = await raw.run([{ observability_mode: false }]);
      expect(r.status.code).toBe(3);
      expect(r.answers).toEqual([]);
    });
  });

  describe('body modes', () => {
    it('NONE: no body message is sent or answered', async () => {
      let bodies = 0;
      const { client } = await start({ handler: { onRequestBody: () => void bodies++ } });
      const r = await client.exchange({ request: { headers: { ...GET, ':method': 'POST' }, body: 'abc' } });
      expect(bodies).toBe(0);
      expect(r.request?.body.toString()).toBe('abc');
    });

    it('STREAMED: pipelined chunks are answered once each, in order, even when handlers finish out of order', async () => {
      let n = 0;
      const { client } = await start({
        handler: {
          async onRequestBody(_ctx, { body }) {
            const i = n++;
            await sleep(i % 2 === 0 ? 15 : 1); // even chunks slow, odd fast
            return { body: { replace: `[${i}:${body.toString()}]` } };
          },
        },
      });
      const chunks = ['a', 'b', 'c', 'd', 'e', 'f'];
      const r = await client.exchange({
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: chunks },
      });
      expect(r.outcome).toBe('completed');
      expect(r.request?.body.toString()).toBe('[0:a][1:b][2:c][3:d][4:e][5:f]');
      expect(r.received.filter((m) => m['request_body'] !== undefined)).toHaveLength(6);
    });

    it('STREAMED: header mutations in a body answer are left out and reported (Envoy ignores them)', async () => {
      const { client, logs } = await start({
        handler: { onRequestBody: () => ({ headers: { set: { 'x-late': '1' } } }) },
      });
      const r = await client.exchange({
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['x'] },
      });
      expect(r.received.find((m) => m['request_body'] !== undefined)).toEqual({ request_body: { response: {} } });
      expect(logs.join('')).toMatch(/header mutations on a body answer apply only in BUFFERED mode/);
    });

    it('BUFFERED: a header mutation in the body answer applies, and content-length is fixed for a replaced body', async () => {
      const { client } = await start({
        handler: {
          onRequestBody: () => ({ body: { replace: 'replaced body' }, headers: { set: { 'x-seen-body': 'yes' } } }),
        },
      });
      const r = await client.exchange({
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: { ...GET, ':method': 'POST', 'content-length': '3' }, body: 'abc' },
      });
      expect(r.outcome).toBe('completed');
      expect(r.request?.body.toString()).toBe('replaced body');
      expect(header(r.request?.headers, 'content-length')).toBe('13');
      expect(header(r.request?.headers, 'x-seen-body')).toBe('yes');
    });

    it('BUFFERED: a content-length that does not match the new body is a handler error, not a frame Envoy rejects', async () => {
      const { client, server } = await start({
        handler: { onRequestBody: () => ({ body: { replace: 'four' }, headers: { set: { 'content-length': '99' } } }) },
      });
      const r = await client.exchange({
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: { ...GET, ':method': 'POST', 'content-length': '3' }, body: 'abc' },
      });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.code).toBe(13);
      expect(r.grpcStatus?.details).toMatch(/content-length 99 does not match/);
      expect(await server.metricsText()).toMatch(/envext_ext_proc_errors_total\{kind="invalid_decision"\} 1/);
    });

    it('BUFFERED_PARTIAL: one message up to the buffer limit; the rest passes unprocessed', async () => {
      const got: number[] = [];
      const { client } = await start({ handler: { onRequestBody: (_c, { body }) => void got.push(body.length) } });
      const r = await client.exchange({
        mode: { request_body_mode: 'BUFFERED_PARTIAL' },
        bufferLimitBytes: 4,
        request: { headers: { ...GET, ':method': 'POST' }, body: '0123456789' },
      });
      expect(got).toEqual([4]);
      expect(r.request?.body.toString()).toBe('0123456789');
    });

    it('FULL_DUPLEX_STREAMED: no callback passes chunks through as streamed_response; big chunks are split at 64 KiB', async () => {
      const big = Buffer.alloc(200 * 1024, 0x61);
      const { client } = await start({ handler: { onResponseBody: (_c, { body }) => ({ chunks: [body] }) } });
      const r = await client.exchange({
        mode: {
          request_body_mode: 'FULL_DUPLEX_STREAMED',
          response_body_mode: 'FULL_DUPLEX_STREAMED',
          request_trailer_mode: 'SEND',
          response_trailer_mode: 'SEND',
        },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['one', 'two'] },
        response: { headers: { ':status': '200' }, body: [big] },
      });
      expect(r.outcome).toBe('completed');
      expect(r.request?.body.toString()).toBe('onetwo');
      expect(r.response?.body.equals(big)).toBe(true);
      const respFrames = r.received.filter((m) => m['response_body'] !== undefined);
      expect(respFrames).toHaveLength(4);
      const eos = respFrames.map(
        (m) =>
          (
            (((m['response_body'] as ProtoObject)['response'] as ProtoObject)['body_mutation'] as ProtoObject)[
              'streamed_response'
            ] as ProtoObject
          )['end_of_stream'] === true,
      );
      expect(eos).toEqual([false, false, false, true]);
    });

    it('STREAMED: an empty end_of_stream-only chunk reaches the handler as an empty body and is answered', async () => {
      const sizes: number[] = [];
      const { raw } = await start({
        handler: {
          onRequestBody: (_c, { body, endOfStream }) => void sizes.push(endOfStream ? -body.length : body.length),
        },
      });
      const r = await raw.run([
        { request_headers: { headers: { headers: [] } }, protocol_config: { request_body_mode: 'STREAMED' } },
        { request_body: { body: Buffer.from('abc') } },
        { request_body: { end_of_stream: true } },
      ]);
      expect(sizes).toEqual([3, -0]);
      expect(r.answers.map(kindOf)).toEqual(['request_headers', 'request_body', 'request_body']);
      expect(r.status.code).toBe(0);
    });

    it('GRPC: one body message per gRPC message with its flags, answered with streamed_response', async () => {
      const seen: string[] = [];
      const { raw } = await start({
        handler: {
          onRequestBody: (_c, m) => {
            seen.push(`${m.body.toString()}:${String(m.grpcMessageCompressed)}:${String(m.endOfStreamWithoutMessage)}`);
            return { chunks: [m.body] };
          },
        },
      });
      const r = await raw.run([
        { request_headers: { headers: { headers: [] } }, protocol_config: { request_body_mode: 'GRPC' } },
        { request_body: { body: Buffer.from('m1'), grpc_message_compressed: true } },
        { request_body: { end_of_stream: true, end_of_stream_without_message: true } },
      ]);
      expect(seen).toEqual(['m1:true:false', ':false:true']);
      expect(r.answers).toEqual([
        { request_headers: {} },
        { request_body: { response: { body_mutation: { streamed_response: { body: Buffer.from('m1') } } } } },
        { request_body: { response: { body_mutation: { streamed_response: { end_of_stream: true } } } } },
      ]);
    });

    it('FULL_DUPLEX_STREAMED: a body/header mutation instead of chunks is a handler error', async () => {
      const { client } = await start({ handler: { onRequestBody: () => ({ body: { replace: 'x' } }) } });
      const r = await client.exchange({
        mode: { request_body_mode: 'FULL_DUPLEX_STREAMED', request_trailer_mode: 'SEND' },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['a'] },
      });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.details).toMatch(/answer with \{ chunks/);
    });
  });

  describe('observability mode', () => {
    it('calls the handler for every message and never answers', async () => {
      const seen: string[] = [];
      const { client } = await start({
        handler: {
          onRequestHeaders: (ctx) => {
            seen.push(`rh:${String(ctx.observabilityMode)}`);
            return { headers: { set: { 'x-ignored': '1' } } };
          },
          onRequestBody: (_c, m) => void seen.push(`rb:${m.body.toString()}`),
          onResponseHeaders: () => ({ immediate: { status: 403 } }),
        },
      });
      const r = await client.exchange({
        observabilityMode: true,
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: ['a', 'b'] },
      });
      await sleep(20);
      expect(seen).toEqual(['rh:true', 'rb:a', 'rb:b']);
      expect(r.received).toEqual([]);
      expect(r.stats.unexpectedAnswers).toBe(0);
      expect(r.grpcStatus?.code).toBe(0);
      expect(r.sent.every((m) => m['observability_mode'] === true && m['protocol_config'] === undefined)).toBe(true);
    });
  });

  describe('mode_override', () => {
    it('is applied with body modes restated, and Envoy then sends the response body', async () => {
      const { client } = await start({
        handler: {
          onRequestHeaders: () => ({ modeOverride: { response_body_mode: 'BUFFERED' } }),
          onResponseBody: () => ({ body: { replace: 'rewritten' } }),
        },
      });
      const r = await client.exchange({
        allowModeOverride: true,
        mode: { request_body_mode: 'STREAMED' },
        request: { headers: GET },
        response: { headers: { ':status': '200' }, body: 'original' },
      });
      expect(r.stats.modeOverrides).toBe(1);
      expect(r.response?.body.toString()).toBe('rewritten');
      // The current request body mode (STREAMED, from protocol_config) is restated, not left to default to NONE.
      expect(r.received[0]?.['mode_override']).toMatchObject({
        request_body_mode: 'STREAMED',
        response_body_mode: 'BUFFERED',
      });
    });

    it.each([
      {
        name: 'send_body_without_waiting_for_header_response',
        extra: { sendBodyWithoutWaitingForHeaderResponse: true },
        mode: { request_body_mode: 'STREAMED' },
      },
      {
        name: 'FULL_DUPLEX_STREAMED',
        extra: {},
        mode: { request_body_mode: 'FULL_DUPLEX_STREAMED', request_trailer_mode: 'SEND' },
      },
    ] as const)('is left out (and reported) with $name, where Envoy ignores it', async ({ extra, mode }) => {
      const { client, logs } = await start({
        handler: { onRequestHeaders: () => ({ modeOverride: { response_body_mode: 'BUFFERED' } }) },
      });
      const r = await client.exchange({ allowModeOverride: true, mode, ...extra, request: { headers: GET } });
      expect(r.received.some((m) => m['mode_override'] !== undefined)).toBe(false);
      expect(logs.join('')).toMatch(/Envoy ignores mode_override/);
    });

    it('to FULL_DUPLEX_STREAMED is a handler error', async () => {
      const { client } = await start({
        handler: { onRequestHeaders: () => ({ modeOverride: { response_body_mode: 'FULL_DUPLEX_STREAMED' } }) },
      });
      const r = await client.exchange({ allowModeOverride: true, request: { headers: GET } });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.details).toMatch(/does not accept an override to FULL_DUPLEX_STREAMED/);
    });
  });

  describe('header mutations', () => {
    it('encode values in raw_value only, with append always explicit', async () => {
      const { client } = await start({
        handler: {
          onRequestHeaders: () => ({
            headers: { set: { 'X-Multi': ['1', '2'], 'x-one': 'v' }, append: [['x-add', 'a']] },
          }),
        },
      });
      const r = await client.exchange({ request: { headers: { ...GET, 'x-one': 'old', 'x-add': 'first' } } });
      const set = ((r.received[0]?.['request_headers'] as ProtoObject)['response'] as ProtoObject)[
        'header_mutation'
      ] as { set_headers: ProtoObject[] };
      expect(set.set_headers).toEqual([
        { header: { key: 'x-multi', raw_value: Buffer.from('1') }, append: { value: false } },
        { header: { key: 'x-multi', raw_value: Buffer.from('2') }, append: { value: true } },
        { header: { key: 'x-one', raw_value: Buffer.from('v') }, append: { value: false } },
        { header: { key: 'x-add', raw_value: Buffer.from('a') }, append: { value: true } },
      ]);
      expect(r.stats.valueWithoutRawValue).toBe(0);
      expect(r.request?.headers.filter(([k]) => k === 'x-multi').map(([, v]) => v)).toEqual(['1', '2']);
      expect(header(r.request?.headers, 'x-one')).toBe('v');
      expect(r.request?.headers.filter(([k]) => k === 'x-add').map(([, v]) => v)).toEqual(['first', 'a']);
    });

    it('decode received values from raw_value (and value from old Envoy)', async () => {
      let got: Record<string, string> = {};
      const { raw } = await start({
        handler: {
          onRequestHeaders: (_c, { headers }) => {
            got = headers.toObject();
          },
        },
      });
      await raw.run([
        {
          request_headers: {
            headers: {
              headers: [
                { key: 'a', raw_value: Buffer.from('raw') },
                { key: 'b', value: 'old' },
                { key: 'a', raw_value: Buffer.from('two') },
              ],
            },
            end_of_stream: true,
          },
        },
      ]);
      expect(got).toEqual({ a: 'raw, two', b: 'old' });
    });

    it('leave out and report changes Envoy ignores under default mutation rules', async () => {
      const { client, logs, server } = await start({
        handler: {
          onRequestHeaders: () => ({
            headers: {
              set: { host: 'evil', ':authority': 'evil', 'x-envoy-original-path': '/x', ':path': '/new', 'x-ok': '1' },
              remove: [':path', 'host'],
            },
          }),
        },
      });
      const r = await client.exchange({ request: { headers: GET } });
      const hm = ((r.received[0]?.['request_headers'] as ProtoObject)['response'] as ProtoObject)[
        'header_mutation'
      ] as ProtoObject;
      expect((hm['set_headers'] as ProtoObject[]).map((o) => (o['header'] as ProtoObject)['key'])).toEqual([
        ':path',
        'x-ok',
      ]);
      expect(hm['remove_headers']).toBeUndefined();
      expect(header(r.request?.headers, ':path')).toBe('/new');
      expect(header(r.request?.headers, ':authority')).toBe('example.com');
      expect(r.stats.rejectedHeaderMutations).toBe(0);
      expect(logs.filter((l) => l.includes('left out'))).toHaveLength(5);
      expect(await server.metricsText()).toMatch(/envext_ext_proc_dropped_mutations_total 5/);
    });

    it('with disallow_is_error, a disallowed change is a handler error (Envoy would fail the request)', async () => {
      const { client } = await start({
        mutationRules: { disallowIsError: true },
        handler: { onRequestHeaders: () => ({ headers: { set: { host: 'x' } } }) },
      });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.details).toMatch(/disallow_is_error/);
    });

    it('with allow_all_routing, host may change', async () => {
      const { client } = await start({
        mutationRules: { allowAllRouting: true },
        handler: { onRequestHeaders: () => ({ headers: { set: { host: 'other' } } }) },
      });
      const r = await client.exchange({
        mutationRules: { allowAllRouting: true },
        request: { headers: { ...GET, host: 'a' } },
      });
      expect(header(r.request?.headers, 'host')).toBe('other');
    });

    it.each([
      { name: 'bad name', m: { set: { 'bad name': 'x' } }, error: /invalid header name/ },
      { name: 'CRLF in value', m: { set: { 'x-a': 'a\r\nb' } }, error: /CR, LF or NUL/ },
      {
        name: 'too many headers',
        m: { set: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-${i}`, 'v'])) },
        error: /max_headers_count/,
      },
      { name: 'oversized value', m: { set: { 'x-a': 'v'.repeat(16385) } }, error: /longer than 16384/ },
    ])('$name is a handler error under the onError policy', async ({ m, error }) => {
      const { client } = await start({ handler: { onRequestHeaders: () => ({ headers: m }) } });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.details).toMatch(error);
    });

    it('trailers can be mutated', async () => {
      const { client } = await start({
        handler: {
          onResponseTrailers: () => ({ trailers: { set: { 'grpc-message': 'patched' }, remove: ['x-drop'] } }),
        },
      });
      const r = await client.exchange({
        mode: { response_trailer_mode: 'SEND' },
        request: { headers: GET },
        response: { headers: { ':status': '200' }, trailers: { 'grpc-status': '0', 'x-drop': '1' } },
      });
      expect(r.response?.trailers).toEqual([
        ['grpc-status', '0'],
        ['grpc-message', 'patched'],
      ]);
    });
  });

  describe('immediate responses', () => {
    it('on request headers: status, headers, body, grpc status, details; the stream ends OK and nothing more is asked', async () => {
      let later = 0;
      const { client } = await start({
        handler: {
          onRequestHeaders: () => ({
            immediate: {
              status: 429,
              headers: { set: { 'retry-after': '1' } },
              body: 'slow down',
              grpcStatus: 8,
              details: 'rate_limited',
            },
            dynamicMetadata: { 'envext.ratelimit': { hit: true } },
          }),
          onResponseHeaders: () => void later++,
        },
      });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.outcome).toBe('immediate');
      expect(r.immediateResponse).toMatchObject({ status: 429, grpcStatus: 8, details: 'rate_limited' });
      expect(r.immediateResponse?.body.toString()).toBe('slow down');
      expect(header(r.immediateResponse?.headers, 'retry-after')).toBe('1');
      expect(r.dynamicMetadata).toEqual({ 'envext.ratelimit': { hit: true } });
      expect(r.grpcStatus?.code).toBe(0);
      expect(later).toBe(0);
    });

    it('on a body chunk', async () => {
      const { client } = await start({
        handler: {
          onRequestBody: (_c, { body }) => (body.includes('bad') ? { immediate: { status: 400 } } : undefined),
        },
      });
      const r = await client.exchange({
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: { ...GET, ':method': 'POST' }, body: 'bad stuff' },
      });
      expect(r.immediateResponse?.status).toBe(400);
    });

    it('messages after an immediate response are ignored', async () => {
      const { raw } = await start({ handler: { onRequestHeaders: () => ({ immediate: { status: 403 } }) } });
      const r = await raw.run([
        { request_headers: { headers: { headers: [] } } },
        { request_body: { body: Buffer.from('x'), end_of_stream: true } },
      ]);
      expect(r.answers.map(kindOf)).toEqual(['immediate_response']);
      expect(r.status.code).toBe(0);
    });

    it.each([
      {
        name: 'on trailers',
        opts: {},
        phase: 'trailers',
        error: /trailers cannot be answered with an immediate response/,
      },
      {
        name: 'with a status Envoy does not know',
        opts: {},
        phase: 'headers',
        status: 99,
        error: /99 is not an HTTP status/,
      },
      {
        name: 'when disabled',
        opts: { disableImmediateResponse: true },
        phase: 'headers',
        error: /disable_immediate_response/,
      },
    ])('$name is a handler error', async ({ opts, phase, status, error }) => {
      const imm = (): { immediate: { status: number } } => ({ immediate: { status: status ?? 403 } });
      const handler: ExtProcHandler =
        phase === 'trailers' ? { onRequestTrailers: imm as never } : { onRequestHeaders: imm };
      const { client } = await start({ ...opts, handler });
      const r = await client.exchange({
        mode: { request_trailer_mode: 'SEND' },
        request: { headers: GET, trailers: { 'x-t': '1' } },
      });
      expect(r.outcome).toBe('local_reply');
      expect(r.grpcStatus?.details).toMatch(error);
    });
  });

  describe('CONTINUE_AND_REPLACE', () => {
    it('turns a GET into a POST with a new body, and Envoy sends nothing more for the request', async () => {
      let bodies = 0;
      const { client } = await start({
        mutationRules: { allowAllRouting: true },
        handler: {
          onRequestHeaders: () => ({
            status: 'continue_and_replace',
            headers: { set: { ':method': 'POST' } },
            body: { replace: '{"q":1}' },
          }),
          onRequestBody: () => void bodies++,
        },
      });
      const r = await client.exchange({
        mutationRules: { allowAllRouting: true },
        mode: { request_body_mode: 'BUFFERED' },
        request: { headers: GET, body: 'ignored' },
      });
      expect(r.outcome).toBe('completed');
      expect(header(r.request?.headers, ':method')).toBe('POST');
      expect(r.request?.body.toString()).toBe('{"q":1}');
      expect(bodies).toBe(0);
    });

    it('ignores a body message that arrives for a replaced direction', async () => {
      let bodies = 0;
      const { raw, logs } = await start({
        handler: { onRequestHeaders: () => ({ status: 'continue_and_replace' }), onRequestBody: () => void bodies++ },
      });
      const r = await raw.run([
        { request_headers: { headers: { headers: [] } } },
        { request_body: { body: Buffer.from('x'), end_of_stream: true } },
      ]);
      expect(r.answers.map(kindOf)).toEqual(['request_headers']);
      expect(bodies).toBe(0);
      expect(logs.join('')).toMatch(/unexpected request_body after continue_and_replace/);
    });

    it('a body on a plain CONTINUE headers answer is left out (Envoy ignores it)', async () => {
      const { client, logs } = await start({ handler: { onRequestHeaders: () => ({ body: { replace: 'x' } }) } });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.received[0]).toEqual({ request_headers: { response: {} } });
      expect(logs.join('')).toMatch(/continue_and_replace/);
    });
  });

  describe('route cache and metadata', () => {
    it('clear_route_cache is sent on the request path and left out on the response path', async () => {
      const { client, logs } = await start({
        handler: {
          onRequestHeaders: () => ({ clearRouteCache: true }),
          onResponseHeaders: () => ({ clearRouteCache: true }),
        },
      });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.clearRouteCache).toBe(true);
      expect(r.stats.clearRouteCacheIgnored).toBe(0);
      expect(logs.join('')).toMatch(/clear_route_cache is ignored on the response path/);
    });

    it('dynamic metadata keeps nested values; a namespace that is not an object is a handler error', async () => {
      const { client } = await start({
        handler: {
          onRequestHeaders: () => ({
            dynamicMetadata: { 'envoy.lb': { host: '10.0.0.1:80', weight: 2, tags: ['a', null, true], sub: { x: 1 } } },
          }),
          onResponseHeaders: () => ({ dynamicMetadata: { bad: 'nope' as never } }),
        },
      });
      const r = await client.exchange({ request: { headers: GET } });
      expect(r.dynamicMetadata['envoy.lb']).toEqual({
        host: '10.0.0.1:80',
        weight: 2,
        tags: ['a', null, true],
        sub: { x: 1 },
      });
      expect(r.outcome).toBe('local_reply');
    });

    it('gives the handler attributes (once per direction), metadata context, call metadata and protocol config', async () => {
      const seen: Record<string, unknown>[] = [];
      const snap = (ctx: ExtProcContext): undefined => {
        seen.push({
          attributes: { ...ctx.attributes },
          meta: ctx.metadataContext,
          tenant: ctx.callMetadata.get('x-tenant')[0],
          pc: ctx.protocolConfig,
          mode: ctx.bodyMode('response'),
        });
        return undefined;
      };
      const { client } = await start({ handler: { onRequestHeaders: snap, onResponseHeaders: snap } });
      await client.exchange({
        mode: { request_body_mode: 'STREAMED', response_body_mode: 'BUFFERED' },
        request: { headers: GET },
        attributes: { request: { 'request.path': '/' }, response: { 'response.code': 200 } },
        metadataContext: { 'envoy.filters.http.jwt_authn': { sub: 'alice' } },
        callMetadata: { 'x-tenant': 't1' },
      });
      expect(seen[0]).toEqual({
        attributes: { 'request.path': '/' },
        meta: { 'envoy.filters.http.jwt_authn': { sub: 'alice' } },
        tenant: 't1',
        pc: {
          requestBodyMode: 'STREAMED',
          responseBodyMode: 'BUFFERED',
          sendBodyWithoutWaitingForHeaderResponse: false,
        },
        mode: 'BUFFERED',
      });
      expect(seen[1]?.['attributes']).toEqual({ 'request.path': '/', 'response.code': 200 });
    });

    it('without protocol_config (older Envoy) the configured processing mode is used', async () => {
      let mode = '';
      const { client } = await start({
        processingMode: { request_body_mode: 'BUFFERED' },
        handler: {
          onRequestHeaders: (ctx) => {
            mode = ctx.bodyMode('request');
          },
        },
      });
      await client.exchange({ sendProtocolConfig: false, request: { headers: GET } });
      expect(mode).toBe('BUFFERED');
    });
  });
});
