import { beforeAll, describe, expect, it } from 'vitest';
import { HeadersStatus, HostEmulator, type HeaderPair } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await exampleModule('auth');
}, 180_000);

const request = (key?: string): HeaderPair[] => [
  [':method', 'GET'],
  [':path', '/orders'],
  [':authority', 'shop.example'],
  ...(key === undefined ? [] : ([['x-api-key', key]] as HeaderPair[])),
];

function json(body: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(body));
}

describe('auth example: keys from configuration', () => {
  const cases: ReadonlyArray<{ name: string; key?: string; status?: number; error?: string }> = [
    { name: 'accepted key continues', key: 'k-123' },
    { name: 'missing key is 401', status: 401, error: 'missing API key in header x-api-key' },
    { name: 'empty key is 401', key: '', status: 401, error: 'missing API key in header x-api-key' },
    { name: 'unknown key is 403', key: 'k-999', status: 403, error: 'API key not accepted' },
  ];
  it.each(cases)('$name', async ({ key, status, error }) => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify({ keys: ['k-123', 'k-456'] }) });
    host.startPlugin();
    const id = host.initializeHttpContext();
    const result = host.callOnRequestHeaders(id, request(key), true);
    const reply = host.sentLocalResponse(id);
    if (status === undefined) {
      expect(result).toBe(HeadersStatus.Continue);
      expect(reply).toBeUndefined();
      expect(host.counter('envext_auth_allowed')).toBe(1n);
    } else {
      expect(result).toBe(HeadersStatus.StopAllIterationAndWatermark);
      expect(reply?.statusCode).toBe(status);
      expect(reply?.details).toBe('envext_auth_denied');
      expect(reply?.headers).toContainEqual(['content-type', 'application/json']);
      if (status === 401) expect(reply?.headers).toContainEqual(['www-authenticate', 'ApiKey header="x-api-key"']);
      expect(json(reply!.body)).toEqual({ error, status });
      expect(host.counter('envext_auth_denied')).toBe(1n);
    }
    host.completeHttpContext(id);
  });
});

describe('auth example: auth service callout', () => {
  const cfg = { cluster: 'auth', authority: 'auth.internal', path: '/check', timeout_ms: 250 };

  async function started(): Promise<{ host: HostEmulator; id: number; token: number }> {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(cfg), clusters: ['auth'] });
    host.startPlugin();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, request('k-1'), true)).toBe(HeadersStatus.StopAllIterationAndWatermark);
    const [call, ...more] = host.pendingCallouts();
    expect(more).toEqual([]);
    expect(call?.upstream).toBe('auth');
    expect(call?.timeoutMs).toBe(250);
    expect(call?.originContextId).toBe(id);
    expect(call?.headers).toEqual([
      [':method', 'GET'],
      [':path', '/check'],
      [':authority', 'auth.internal'],
      ['x-api-key', 'k-1'],
    ]);
    return { host, id, token: call!.token };
  }

  it('2xx from the service resumes the request on the right stream', async () => {
    const { host, id, token } = await started();
    // A second stream in flight must not be the one resumed.
    const other = host.initializeHttpContext();
    host.callOnRequestHeaders(other, request('k-2'), true);
    host.callOnHttpCallResponse(token, { headers: [[':status', '200']] });
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
    expect(host.currentHttpStreamAction(other)?.name).toBe('StopAllIterationAndWatermark');
    expect(host.sentLocalResponse(id)).toBeUndefined();
    expect(host.counter('envext_auth_allowed')).toBe(1n);
  });

  it.each([
    { name: '403 from the service', answer: '403', status: 403, error: 'API key not accepted' },
    { name: '500 from the service', answer: '500', status: 503, error: 'auth service answered 500' },
  ])('$name denies', async ({ answer, status, error }) => {
    const { host, id, token } = await started();
    host.callOnHttpCallResponse(token, { headers: [[':status', answer]], body: 'no' });
    expect(host.sentLocalResponse(id)?.statusCode).toBe(status);
    expect(json(host.sentLocalResponse(id)!.body)).toEqual({ error, status });
    expect(host.counter('envext_auth_denied')).toBe(1n);
  });

  it('a failed call (reset) answers 503', async () => {
    const { host, id, token } = await started();
    host.failHttpCall(token);
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
  });

  it('a timeout answers 503 (Envoy delivers a local 504 to the callout)', async () => {
    const { host, id } = await started();
    host.advanceTime(300);
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
    expect(json(host.sentLocalResponse(id)!.body)).toEqual({ error: 'auth service answered 504', status: 503 });
  });

  it('an unknown cluster answers 503 at once', async () => {
    const host = await HostEmulator.create(wasm, {
      pluginConfiguration: JSON.stringify({ ...cfg, cluster: 'missing' }),
      clusters: ['auth'],
    });
    host.startPlugin();
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, request('k-1'), true);
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
    expect(host.logs('warn')).toContain('auth: could not call cluster missing');
  });

  it('a stream deleted before the answer is left alone', async () => {
    const { host, id, token } = await started();
    host.completeHttpContext(id);
    host.callOnHttpCallResponse(token, { headers: [[':status', '200']] });
    expect(host.vmFailed()).toBe(false);
  });
});

describe('auth example: configuration', () => {
  it.each([
    { name: 'neither keys nor cluster', config: '{}', log: /configure "keys".*or "cluster"/ },
    { name: 'not JSON', config: 'keys=a', log: /must be a JSON object/ },
  ])('rejects $name', async ({ config, log }) => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: config });
    expect(() => host.startPlugin()).toThrow(/proxy_on_configure returned false/);
    expect(host.logs('error').join('\n')).toMatch(log);
  });
});
