// Every example handler, served on a real Unix socket and driven by the test client the way Envoy
// drives it for the processing mode its header comment names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtProcTestClient, type ExtProcHandler } from '../index.js';
import accessLog from './access-log-metadata.js';
import apiKeyAuth from './api-key-auth.js';
import fullDuplexUppercase from './full-duplex-uppercase.js';
import headerInjection from './header-injection.js';
import jsonRedaction from './json-redaction.js';
import streamedDigits from './streamed-digits.js';
import tenantRouting from './tenant-routing.js';

function serve(handler: ExtProcHandler<never>): { client: () => ExtProcTestClient } {
  let c: ExtProcTestClient | undefined;
  beforeAll(async () => {
    c = await ExtProcTestClient.forHandler({ handler });
  });
  afterAll(async () => {
    await c?.close();
  });
  return {
    client: () => {
      if (c === undefined) throw new Error('server not started');
      return c;
    },
  };
}

const header = (list: readonly [string, string][] | undefined, name: string): string | undefined =>
  list?.find(([k]) => k === name)?.[1];

describe('header-injection', () => {
  const s = serve(headerInjection as ExtProcHandler<never>);
  it('adds and removes request and response headers', async () => {
    const r = await s.client().exchange({
      request: { headers: { ':method': 'GET', ':path': '/', 'x-request-id': 'abc', 'x-internal-debug': '1' } },
      response: { headers: { ':status': '200', server: 'nginx', 'x-powered-by': 'php' } },
    });
    expect(r.outcome).toBe('completed');
    expect(header(r.request?.headers, 'x-envext-processed')).toBe('true');
    expect(header(r.request?.headers, 'x-envext-request-id')).toBe('abc');
    expect(header(r.request?.headers, 'x-internal-debug')).toBeUndefined();
    expect(header(r.response?.headers, 'server')).toBeUndefined();
    expect(header(r.response?.headers, 'x-powered-by')).toBeUndefined();
    expect(header(r.response?.headers, 'x-content-type-options')).toBe('nosniff');
  });
});

describe('api-key-auth', () => {
  const s = serve(apiKeyAuth as ExtProcHandler<never>);
  const cases = [
    { name: 'missing key → 401', headers: {}, status: 401, body: /missing/ },
    { name: 'unknown key → 403', headers: { 'x-api-key': 'nope' }, status: 403, body: /unknown/ },
  ];
  it.each(cases)('$name', async ({ headers, status, body }) => {
    const r = await s.client().exchange({ request: { headers: { ':method': 'GET', ':path': '/', ...headers } } });
    expect(r.outcome).toBe('immediate');
    expect(r.immediateResponse?.status).toBe(status);
    expect(r.immediateResponse?.body.toString()).toMatch(body);
    expect(r.request).toBeUndefined();
    if (status === 401) expect(header(r.immediateResponse?.headers, 'www-authenticate')).toContain('ApiKey');
  });
  it('known key → forwarded with x-user, key removed', async () => {
    const r = await s
      .client()
      .exchange({ request: { headers: { ':method': 'GET', ':path': '/', 'x-api-key': 'demo-key-2' } } });
    expect(r.outcome).toBe('completed');
    expect(header(r.request?.headers, 'x-user')).toBe('bob');
    expect(header(r.request?.headers, 'x-api-key')).toBeUndefined();
  });
});

describe('json-redaction (BUFFERED)', () => {
  const s = serve(jsonRedaction as ExtProcHandler<never>);
  it('redacts secrets and fixes content-length', async () => {
    const body = JSON.stringify({ user: 'a', password: 'hunter2', nested: [{ ssn: '123-45-6789', ok: 1 }] });
    const r = await s.client().exchange({
      mode: { request_body_mode: 'BUFFERED' },
      request: {
        headers: {
          ':method': 'POST',
          ':path': '/signup',
          'content-type': 'application/json',
          'content-length': String(body.length),
        },
        body,
      },
    });
    expect(r.outcome).toBe('completed');
    const out = JSON.parse(r.request?.body.toString() ?? '') as unknown;
    expect(out).toEqual({ user: 'a', password: '[REDACTED]', nested: [{ ssn: '[REDACTED]', ok: 1 }] });
    expect(header(r.request?.headers, 'content-length')).toBe(String(r.request?.body.length));
  });
  it('leaves non-JSON alone', async () => {
    const r = await s.client().exchange({
      mode: { request_body_mode: 'BUFFERED' },
      request: {
        headers: { ':method': 'POST', ':path': '/', 'content-type': 'text/plain', 'content-length': '8' },
        body: 'password',
      },
    });
    expect(r.request?.body.toString()).toBe('password');
  });
});

describe('streamed-digits (STREAMED)', () => {
  const s = serve(streamedDigits as ExtProcHandler<never>);
  it('masks digits chunk by chunk, in order', async () => {
    const chunks = ['card 4111 ', '1111 1111 ', '1111 ok'];
    const r = await s.client().exchange({
      mode: { response_body_mode: 'STREAMED' },
      request: { headers: { ':method': 'GET', ':path': '/' } },
      response: { headers: { ':status': '200', 'content-length': '27' }, body: chunks },
    });
    expect(r.outcome).toBe('completed');
    expect(r.response?.body.toString()).toBe('card #### #### #### #### ok');
    // Envoy drops content-length in STREAMED mode.
    expect(header(r.response?.headers, 'content-length')).toBeUndefined();
    expect(r.received.filter((m) => m['response_body'] !== undefined)).toHaveLength(3);
  });
});

describe('full-duplex-uppercase (FULL_DUPLEX_STREAMED)', () => {
  const s = serve(fullDuplexUppercase as ExtProcHandler<never>);
  const mode = { request_body_mode: 'FULL_DUPLEX_STREAMED', request_trailer_mode: 'SEND' } as const;
  it('upper-cases a body of many chunks with fewer answers (M:N)', async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => `chunk ${i} ${'x'.repeat(1000)};`);
    const r = await s
      .client()
      .exchange({ mode, request: { headers: { ':method': 'POST', ':path': '/' }, body: chunks } });
    expect(r.outcome).toBe('completed');
    expect(r.request?.body.toString()).toBe(chunks.join('').toUpperCase());
    const answers = r.received.filter((m) => m['request_body'] !== undefined).length;
    expect(answers).toBeGreaterThan(0);
    expect(answers).toBeLessThan(chunks.length);
  });
  it('flushes held data before the trailers answer', async () => {
    const r = await s.client().exchange({
      mode,
      request: { headers: { ':method': 'POST', ':path': '/' }, body: ['abc', 'def'], trailers: { 'x-checksum': '1' } },
    });
    expect(r.outcome).toBe('completed');
    expect(r.request?.body.toString()).toBe('ABCDEF');
    expect(header(r.request?.trailers, 'x-checksum')).toBe('1');
  });
});

describe('tenant-routing', () => {
  const s = serve(tenantRouting as ExtProcHandler<never>);
  it('routes canary tenants and rewrites v1 paths with clear_route_cache', async () => {
    const r = await s
      .client()
      .exchange({ request: { headers: { ':method': 'GET', ':path': '/api/v1/items', 'x-tenant': 'beta' } } });
    expect(header(r.request?.headers, 'x-route-to')).toBe('canary');
    expect(header(r.request?.headers, ':path')).toBe('/api/v2/items');
    expect(r.clearRouteCache).toBe(true);
  });
  it('leaves other requests alone', async () => {
    const r = await s
      .client()
      .exchange({ request: { headers: { ':method': 'GET', ':path': '/', 'x-tenant': 'stable' } } });
    expect(header(r.request?.headers, 'x-route-to')).toBeUndefined();
    expect(r.clearRouteCache).toBe(false);
  });
});

describe('access-log-metadata', () => {
  const s = serve(accessLog as ExtProcHandler<never>);
  it('emits dynamic metadata on both paths', async () => {
    const r = await s.client().exchange({
      request: { headers: { ':method': 'GET', ':path': '/api/x', 'x-client-id': 'c-42' } },
      response: { headers: { ':status': '404' } },
      attributes: { request: { 'source.address': '10.0.0.7:5555' } },
    });
    const m = r.dynamicMetadata['envext.access_log'];
    expect(m).toMatchObject({ client: 'c-42', route_class: 'api', source: '10.0.0.7:5555', status_class: '4xx' });
    expect(typeof m?.['upstream_ms']).toBe('number');
  });
});
