import { beforeAll, describe, expect, it } from 'vitest';
import { HeadersStatus, HostEmulator, SharedState, type HeaderPair } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await exampleModule('ratelimit');
}, 180_000);

const cfg = { requests_per_second: 1, burst: 2, key_header: 'x-client-id', tick_ms: 100 };

function request(host: HostEmulator, client: string): { status: HeadersStatus; id: number } {
  const id = host.initializeHttpContext();
  const headers: HeaderPair[] = [
    [':method', 'GET'],
    [':path', '/'],
    ['x-client-id', client],
  ];
  const status = host.callOnRequestHeaders(id, headers, true);
  return { status, id };
}

describe('ratelimit example', () => {
  it('allows the burst, then answers 429 with retry-after, and refills on tick', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(cfg) });
    host.startPlugin();
    expect(host.tickPeriod()).toBe(100);
    expect(request(host, 'a').status).toBe(HeadersStatus.Continue);
    expect(request(host, 'a').status).toBe(HeadersStatus.Continue);
    const limited = request(host, 'a');
    expect(limited.status).toBe(HeadersStatus.StopAllIterationAndWatermark);
    const reply = host.sentLocalResponse(limited.id);
    expect(reply?.statusCode).toBe(429);
    expect(reply?.headers).toContainEqual(['retry-after', '1']);
    expect(JSON.parse(new TextDecoder().decode(reply!.body))).toEqual({
      error: 'rate limit exceeded',
      retry_after_seconds: 1,
    });
    expect(host.counter('envext_ratelimit_limited')).toBe(1n);
    // Another client has its own bucket.
    expect(request(host, 'b').status).toBe(HeadersStatus.Continue);
    // Half a second earns half a token: still limited. A full second earns one.
    host.advanceTime(500);
    expect(request(host, 'a').status).toBe(HeadersStatus.StopAllIterationAndWatermark);
    host.advanceTime(600);
    expect(request(host, 'a').status).toBe(HeadersStatus.Continue);
    expect(request(host, 'a').status).toBe(HeadersStatus.StopAllIterationAndWatermark);
  });

  it('keeps the bucket in shared data: two workers (VMs) share one limit', async () => {
    const shared = new SharedState();
    const workers = await Promise.all(
      [0, 1].map(() => HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(cfg), shared })),
    );
    for (const w of workers) w.startPlugin();
    expect(request(workers[0]!, 'c').status).toBe(HeadersStatus.Continue);
    expect(request(workers[1]!, 'c').status).toBe(HeadersStatus.Continue);
    expect(request(workers[0]!, 'c').status).toBe(HeadersStatus.StopAllIterationAndWatermark);
    expect(request(workers[1]!, 'c').status).toBe(HeadersStatus.StopAllIterationAndWatermark);
    const bucket = workers[0]!.sharedData('envext.ratelimit:c');
    expect(bucket?.length).toBe(16);
    expect(new DataView(bucket!.buffer, bucket!.byteOffset).getFloat64(0, true)).toBe(0);
  });

  it.each([
    { name: 'a zero rate', config: { requests_per_second: 0 } },
    { name: 'a burst below 1', config: { requests_per_second: 5, burst: 0.5 } },
    { name: 'not JSON', config: 'fast' },
  ])('rejects $name', async ({ config }) => {
    const host = await HostEmulator.create(wasm, {
      pluginConfiguration: typeof config === 'string' ? config : JSON.stringify(config),
    });
    expect(() => host.startPlugin()).toThrow(/proxy_on_configure returned false/);
    expect(host.logs('error').join('\n')).toMatch(/ratelimit: /);
  });
});
