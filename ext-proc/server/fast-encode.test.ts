import { describe, expect, it } from 'vitest';
import {
  bodyAnswer,
  headersAnswer,
  streamedBodyAnswer,
  trailersAnswer,
  type AnswerContext,
  type BuiltAnswer,
} from './answers.js';
import { continueAnswers, encodeResponse, encodeResponseGeneric, responseMessageType } from './codec.js';
import { encodeAnswerFast } from './fast-encode.js';
import { DEFAULT_PROCESSING_MODE, type BodySendMode, type Phase } from './types.js';

const fast = (answer: object): Buffer | undefined => encodeAnswerFast(answer, encodeResponseGeneric);
const raw = (s: string): Buffer => Buffer.from(s, 'latin1');
const opt = (key: string, value: string, append = false): object => ({
  header: { key, raw_value: raw(value) },
  append: { value: append },
});

// Shapes the direct encoder covers: each must give exactly protobufjs's bytes.
const COVERED: { name: string; answer: object }[] = [
  { name: 'empty request_headers answer', answer: { request_headers: {} } },
  { name: 'empty CommonResponse', answer: { response_headers: { response: {} } } },
  { name: 'empty trailers answer', answer: { response_trailers: {} } },
  {
    name: 'set, append and remove',
    answer: {
      request_headers: {
        response: {
          header_mutation: {
            set_headers: [opt('x-a', '1'), opt('x-b', 'two', true), opt('x-empty', '')],
            remove_headers: ['x-gone', 'x-also-gone'],
          },
        },
      },
    },
  },
  {
    name: 'CONTINUE_AND_REPLACE with a body and clear_route_cache',
    answer: {
      request_headers: {
        response: {
          status: 1,
          header_mutation: { set_headers: [opt(':method', 'POST')], remove_headers: [] },
          body_mutation: { body: raw('{"a":1}') },
          clear_route_cache: true,
        },
      },
    },
  },
  {
    name: 'members given out of field order',
    answer: {
      request_body: {
        response: {
          clear_route_cache: true,
          body_mutation: { streamed_response: { end_of_stream: true, body: raw('x') } },
          header_mutation: {
            remove_headers: ['x-r'],
            set_headers: [{ append: { value: true }, header: { raw_value: raw('v'), key: 'x-k' } }],
          },
          status: 0,
        },
      },
    },
  },
  { name: 'status CONTINUE written when present', answer: { request_headers: { response: { status: 0 } } } },
  { name: 'false booleans written when present', answer: { request_body: { response: { clear_route_cache: false } } } },
  { name: 'clear_body', answer: { response_body: { response: { body_mutation: { clear_body: true } } } } },
  {
    name: 'empty replacement body',
    answer: { response_body: { response: { body_mutation: { body: Buffer.alloc(0) } } } },
  },
  {
    name: 'a 300-byte body (two-byte lengths at every level)',
    answer: { request_body: { response: { body_mutation: { body: Buffer.alloc(300, 0x61) } } } },
  },
  {
    name: 'a 70 KiB body (three-byte lengths)',
    answer: { request_body: { response: { body_mutation: { body: Buffer.alloc(70 * 1024, 7) } } } },
  },
  {
    name: 'streamed_response chunk with end_of_stream',
    answer: {
      request_body: {
        response: { body_mutation: { streamed_response: { body: raw('chunk'), end_of_stream: true } } },
      },
    },
  },
  {
    name: 'empty streamed_response',
    answer: { response_body: { response: { body_mutation: { streamed_response: {} } } } },
  },
  {
    name: 'a plain Uint8Array as bytes',
    answer: { request_body: { response: { body_mutation: { body: new Uint8Array([0, 1, 2, 255]) } } } },
  },
  {
    name: 'trailers mutation',
    answer: {
      request_trailers: { header_mutation: { set_headers: [opt('x-t', 'v')], remove_headers: ['grpc-status'] } },
    },
  },
  {
    name: 'undefined and null members are absent',
    answer: {
      request_headers: { response: { header_mutation: undefined, body_mutation: null, status: undefined } },
      dynamic_metadata: undefined,
    },
  },
  {
    name: 'dynamic_metadata and mode_override appended after the phase member',
    answer: {
      response_headers: { response: { header_mutation: { set_headers: [opt('x-r', '1')], remove_headers: [] } } },
      dynamic_metadata: { fields: { ns: { struct_value: { fields: { user: { string_value: 'alice' } } } } } },
      mode_override: { response_body_mode: 1, request_body_mode: 0 },
    },
  },
  {
    name: '150 headers (a long HeaderMutation)',
    answer: {
      request_headers: {
        response: {
          header_mutation: {
            set_headers: Array.from({ length: 150 }, (_, i) => opt(`x-h${i}`, 'v'.repeat(i))),
            remove_headers: [],
          },
        },
      },
    },
  },
];

// Shapes left to protobufjs: the direct encoder must decline them rather than guess.
const DECLINED: { name: string; answer: object }[] = [
  { name: 'immediate response', answer: { immediate_response: { status: { code: 403 } } } },
  {
    name: 'CommonResponse trailers',
    answer: { request_headers: { response: { trailers: { headers: [{ key: 'a', raw_value: raw('b') }] } } } },
  },
  {
    name: 'a header value (not raw_value)',
    answer: {
      request_headers: {
        response: { header_mutation: { set_headers: [{ header: { key: 'a', value: 'b' } }], remove_headers: [] } },
      },
    },
  },
  {
    name: 'append_action',
    answer: {
      request_headers: {
        response: {
          header_mutation: {
            set_headers: [{ header: { key: 'a', raw_value: raw('b') }, append_action: 1 }],
            remove_headers: [],
          },
        },
      },
    },
  },
  {
    name: 'a non-ASCII header name',
    answer: {
      request_headers: { response: { header_mutation: { set_headers: [opt('x-é', 'v')], remove_headers: [] } } },
    },
  },
  {
    name: 'raw_value as a string (protobufjs reads it as base64)',
    answer: {
      request_headers: {
        response: {
          header_mutation: { set_headers: [{ header: { key: 'a', raw_value: 'YQ==' } }], remove_headers: [] },
        },
      },
    },
  },
  { name: 'an enum given by name', answer: { request_headers: { response: { status: 'CONTINUE_AND_REPLACE' } } } },
  { name: 'an unknown member', answer: { request_headers: {}, request_drain: true } },
  { name: 'two members of the oneof', answer: { request_headers: {}, response_headers: {} } },
  { name: 'no member', answer: {} },
];

describe('encodeAnswerFast', () => {
  it.each(COVERED)('$name: the same bytes as protobufjs', ({ answer }) => {
    const got = fast(answer);
    expect(got, 'the direct encoder should cover this shape').toBeDefined();
    expect(got?.toString('hex')).toBe(encodeResponseGeneric(answer).toString('hex'));
    // And it decodes to the same message.
    const t = responseMessageType();
    expect(t.toObject(t.decode(got as Buffer))).toEqual(t.toObject(t.decode(encodeResponseGeneric(answer))));
  });

  it.each(DECLINED)('$name: left to protobufjs', ({ answer }) => {
    expect(fast(answer)).toBeUndefined();
  });

  it('encodeResponse gives protobufjs bytes for declined shapes too', () => {
    const answer = { immediate_response: { status: { code: 403 }, details: 'no' } };
    expect(encodeResponse(answer).equals(encodeResponseGeneric(answer))).toBe(true);
  });

  it('the pre-encoded CONTINUE answers match protobufjs', () => {
    const c = continueAnswers();
    for (const phase of Object.keys(c) as Phase[]) {
      expect(c[phase].toString('hex')).toBe(encodeResponseGeneric({ [phase]: {} }).toString('hex'));
    }
  });
});

// What the answer builders produce, through both encoders.
function ctx(body: BodySendMode, contentLength = false): AnswerContext {
  return {
    rules: {},
    disableImmediateResponse: false,
    allowModeOverride: true,
    requestBodyMode: body,
    responseBodyMode: body,
    sendBodyWithoutWaitingForHeaderResponse: false,
    bodyModeKnown: true,
    hadContentLength: () => contentLength,
  };
}
const MODE = DEFAULT_PROCESSING_MODE;

const BUILT: { name: string; build: () => BuiltAnswer }[] = [
  {
    name: 'headers: set with an array value, append, remove',
    build: () =>
      headersAnswer(
        'request_headers',
        { headers: { set: { 'X-A': ['1', '2'] }, append: [['x-b', 'v']], remove: ['x-c'] } },
        ctx('NONE'),
        MODE,
      ),
  },
  {
    name: 'headers: continue_and_replace with a body, route cache, metadata',
    build: () =>
      headersAnswer(
        'request_headers',
        {
          status: 'continue_and_replace',
          body: { replace: 'new' },
          clearRouteCache: true,
          dynamicMetadata: { 'envext.x': { a: 1, b: [true, null, 'x'] } },
        },
        ctx('NONE'),
        MODE,
      ),
  },
  {
    name: 'headers: mode override',
    build: () =>
      headersAnswer('response_headers', { modeOverride: { response_body_mode: 'BUFFERED' } }, ctx('NONE'), MODE),
  },
  {
    name: 'buffered body: replace with content-length fix-up',
    build: () => bodyAnswer('request_body', { body: { replace: 'abc' } }, ctx('BUFFERED', true)),
  },
  {
    name: 'streamed body: clear',
    build: () => bodyAnswer('response_body', { body: { clear: true } }, ctx('STREAMED')),
  },
  {
    name: 'full duplex: chunks',
    build: () => streamedBodyAnswer('request_body', { chunks: ['a', Buffer.alloc(70_000, 1)] }, Buffer.alloc(0), true),
  },
  {
    name: 'trailers: set and remove',
    build: () =>
      trailersAnswer('response_trailers', { trailers: { set: { 'x-t': '1' }, remove: ['x-u'] } }, ctx('NONE'), false),
  },
];

describe('answers built by the framework', () => {
  it.each(BUILT)('$name: encoded directly, to the bytes protobufjs writes', ({ build }) => {
    const frames = build().frames;
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) {
      expect(fast(f), JSON.stringify(f)).toBeDefined();
      expect(encodeResponse(f).toString('hex')).toBe(encodeResponseGeneric(f).toString('hex'));
    }
  });
});
