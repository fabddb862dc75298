import { describe, expect, it } from 'vitest';
import { parseCallouts, parseRequestSpec, parseResponseSpec } from './request-spec.js';

describe('parseRequestSpec', () => {
  it('builds pseudo-headers, headers, body chunks and connection attributes', () => {
    const r = parseRequestSpec(
      {
        method: 'POST',
        path: '/x',
        authority: 'h',
        headers: { 'x-a': ['1', '2'] },
        body: ['ab', { base64: 'Y2Q=' }],
        trailers: [['t', '1']],
        connection: { sourceAddress: '10.0.0.1', sourcePort: 5000, mtls: true },
        id: 'r1',
      },
      'req.json',
    );
    expect(r.headers).toEqual([
      [':authority', 'h'],
      [':path', '/x'],
      [':method', 'POST'],
      [':scheme', 'http'],
      ['x-a', '1'],
      ['x-a', '2'],
      ['x-request-id', 'r1'],
    ]);
    expect(r.body.map((b) => Buffer.from(b).toString())).toEqual(['ab', 'cd']);
    expect(r.trailers).toEqual([['t', '1']]);
    expect(r.attributes['source']).toEqual({ address: '10.0.0.1:5000', port: 5000n });
    expect(r.attributes['connection']).toEqual({ mtls: true });
  });

  const bad = [
    { name: 'not an object', input: [], error: /req.json: expected a JSON object/ },
    { name: 'path', input: { path: 'x' }, error: /path: must start with "\/"/ },
    { name: 'unknown field', input: { header: {} }, error: /header: unknown field/ },
    { name: 'header value', input: { headers: { a: {} } }, error: /headers\.a: expected a string/ },
    { name: 'pseudo-header in headers', input: { headers: { ':path': '/' } }, error: /pseudo-header :path/ },
    { name: 'body', input: { body: 3 }, error: /body: expected a string/ },
    { name: 'base64', input: { body: { base64: '%%' } }, error: /body\.base64: not valid base64/ },
    { name: 'port', input: { connection: { sourcePort: 70000 } }, error: /connection\.sourcePort: expected a port/ },
    {
      name: 'every problem at once',
      input: { path: 'x', body: 3 },
      error: /path: must start with "\/"; body: expected/,
    },
  ];
  it.each(bad)('names the field: $name', ({ input, error }) => {
    expect(() => parseRequestSpec(input, 'req.json')).toThrow(error);
    expect(() => parseRequestSpec(input, 'req.json')).toThrow(
      expect.objectContaining({ code: 'WASM_BAD_SPEC' }) as Error,
    );
  });
});

describe('parseResponseSpec and parseCallouts', () => {
  it('parses a response', () => {
    expect(parseResponseSpec({ status: 404, headers: { a: 'b' } }, 'r.json')).toEqual({
      headers: [
        [':status', '404'],
        ['a', 'b'],
      ],
      body: [],
      trailers: undefined,
    });
    expect(() => parseResponseSpec({ status: 'ok' }, 'r.json')).toThrow(/r.json: status: expected an HTTP status code/);
  });

  it('parses callouts by cluster', () => {
    const m = parseCallouts({ auth: { status: 200, body: 'yes' }, down: { fail: true } }, 'c.json');
    expect(m.get('auth')).toMatchObject({ fail: false, headers: [[':status', '200']] });
    expect(m.get('down')?.fail).toBe(true);
    expect(() => parseCallouts({ auth: 'x' }, 'c.json')).toThrow(/c.json: auth: expected/);
  });
});
