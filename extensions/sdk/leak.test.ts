/**
 * Leak test: 1,000,000 HTTP request lifecycles through the host emulator against the built
 * `headers` example (JSON config, header edits on both directions), with the SDK's default
 * minimal runtime collecting at quiet points. Guest memory must stop growing: the linear memory
 * reached after a warm-up must not grow over the remaining lifecycles.
 */
import { describe, expect, it } from 'vitest';
import { HostEmulator, type HeaderPair } from '../host/index.js';
import { exampleModule, sdkTestModule } from './build-cache.js';

const LIFECYCLES = 1_000_000;
const WARMUP = 50_000;

const request: HeaderPair[] = [
  [':method', 'GET'],
  [':path', '/items?page=2'],
  [':authority', 'shop.example'],
  ['user-agent', 'leak-test'],
  ['x-debug', '1'],
];
const response: HeaderPair[] = [
  [':status', '200'],
  ['content-type', 'application/json'],
  ['server', 'upstream'],
];

function run(host: HostEmulator, n: number): void {
  for (let i = 0; i < n; i++) {
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, request, true);
    host.callOnResponseHeaders(id, response, true);
    host.completeHttpContext(id);
  }
}

describe('guest memory over many lifecycles', () => {
  it(`stops growing over ${LIFECYCLES.toLocaleString('en')} lifecycles (headers example, minimal runtime)`, async () => {
    const wasm = await exampleModule('headers');
    const host = await HostEmulator.create(wasm, {
      pluginConfiguration: JSON.stringify({
        request: { add: { 'x-via': 'envext' }, set: { 'x-env': 'prod' }, remove: ['x-debug'] },
        response: { add: { 'x-served-by': 'envext' }, remove: ['server'] },
      }),
    });
    host.startPlugin();
    run(host, WARMUP);
    const afterWarmup = host.memoryBytes();
    run(host, LIFECYCLES - WARMUP);
    expect(host.vmFailed()).toBe(false);
    expect(host.memoryBytes()).toBe(afterWarmup);
    // And it stays small: a leak of even 16 bytes per lifecycle would need 16 MB.
    expect(afterWarmup).toBeLessThanOrEqual(4 * 65536);
  }, 600_000);

  it('stops growing with the incremental runtime too (200,000 lifecycles, minimal filter)', async () => {
    const wasm = await sdkTestModule('minimal', {
      runtime: 'incremental',
      outFile: `${import.meta.dirname}/testdata/minimal/build/minimal-incremental.wasm`,
    });
    const host = await HostEmulator.create(wasm, { recordCalls: false, keepCompletedStreams: 0 });
    host.startPlugin();
    run(host, WARMUP);
    const afterWarmup = host.memoryBytes();
    run(host, 150_000);
    expect(host.vmFailed()).toBe(false);
    expect(host.memoryBytes()).toBe(afterWarmup);
  }, 300_000);

  it('stops growing with an HTTP callout per request (200,000 lifecycles, auth example): tokens are released', async () => {
    const wasm = await exampleModule('auth');
    const host = await HostEmulator.create(wasm, {
      recordCalls: false,
      keepCompletedStreams: 0,
      pluginConfiguration: JSON.stringify({ cluster: 'auth' }),
    });
    host.startPlugin();
    const withKey: HeaderPair[] = [...request, ['x-api-key', 'k-1']];
    const one = (i: number): void => {
      const id = host.initializeHttpContext();
      host.callOnRequestHeaders(id, withKey, true);
      const [call] = host.pendingCallouts();
      // Alternate allowed and denied answers: both paths must release their memory.
      host.callOnHttpCallResponse(call!.token, { headers: [[':status', i % 2 === 0 ? '200' : '403']] });
      if (i % 2 === 0) host.callOnResponseHeaders(id, response, true);
      host.completeHttpContext(id);
    };
    for (let i = 0; i < WARMUP; i++) one(i);
    const afterWarmup = host.memoryBytes();
    for (let i = WARMUP; i < 200_000; i++) one(i);
    expect(host.vmFailed()).toBe(false);
    expect(host.pendingCallouts()).toEqual([]);
    expect(host.memoryBytes()).toBe(afterWarmup);
    expect(host.counter('envext_auth_allowed')).toBe(100_000n);
  }, 300_000);

  it('control: with collections switched off the same check sees memory grow', async () => {
    const wasm = await sdkTestModule('no-collect');
    const host = await HostEmulator.create(wasm, { recordCalls: false, keepCompletedStreams: 0 });
    host.startPlugin();
    run(host, WARMUP);
    const afterWarmup = host.memoryBytes();
    run(host, 150_000);
    expect(host.memoryBytes()).toBeGreaterThan(afterWarmup);
  }, 300_000);
});
