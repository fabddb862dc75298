import { beforeAll, describe, expect, it } from 'vitest';
import { HeadersStatus, HostEmulator, type HeaderPair } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await exampleModule('headers');
}, 180_000);

const config = {
  request: { add: { 'X-Via': 'envext' }, set: { 'x-env': 'prod' }, remove: ['x-debug'] },
  response: { add: { 'x-served-by': 'envext' }, set: { server: 'envext' }, remove: ['x-powered-by'] },
};

const cases: ReadonlyArray<{
  name: string;
  config: unknown;
  request: HeaderPair[];
  wantRequest: HeaderPair[];
  response: HeaderPair[];
  wantResponse: HeaderPair[];
}> = [
  {
    name: 'adds, sets and removes on both directions',
    config,
    request: [
      [':method', 'GET'],
      [':path', '/'],
      ['x-env', 'dev'],
      ['x-env', 'staging'],
      ['x-debug', '1'],
      ['x-via', 'edge'],
    ],
    wantRequest: [
      [':method', 'GET'],
      [':path', '/'],
      ['x-via', 'edge'],
      ['x-env', 'prod'],
      ['x-via', 'envext'],
    ],
    response: [
      [':status', '200'],
      ['server', 'nginx'],
      ['x-powered-by', 'php'],
    ],
    wantResponse: [
      [':status', '200'],
      ['server', 'envext'],
      ['x-served-by', 'envext'],
    ],
  },
  {
    name: 'empty configuration passes everything through',
    config: '',
    request: [
      [':method', 'GET'],
      ['x-debug', '1'],
    ],
    wantRequest: [
      [':method', 'GET'],
      ['x-debug', '1'],
    ],
    response: [[':status', '204']],
    wantResponse: [[':status', '204']],
  },
];

describe('headers example', () => {
  it.each(cases)('$name', async ({ config, request, wantRequest, response, wantResponse }) => {
    const host = await HostEmulator.create(wasm, {
      pluginConfiguration: typeof config === 'string' ? config : JSON.stringify(config),
    });
    host.startPlugin();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, request, false)).toBe(HeadersStatus.Continue);
    expect(sorted(host.currentRequestHeaders(id))).toEqual(sorted(wantRequest));
    expect(host.callOnResponseHeaders(id, response, true)).toBe(HeadersStatus.Continue);
    expect(sorted(host.currentResponseHeaders(id))).toEqual(sorted(wantResponse));
    host.completeHttpContext(id);
    expect(host.vmFailed()).toBe(false);
  });

  it.each([
    { name: 'not JSON', config: '{request:', log: /configuration must be a JSON object: .*offset 1/ },
    { name: 'a JSON array', config: '[1]', log: /expected a JSON object/ },
    { name: 'a non-string value', config: '{"request":{"add":{"x-a":1}}}', log: /request\.add\.x-a must be a string/ },
  ])('rejects a configuration that is $name', async ({ config, log }) => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: config });
    expect(() => host.startPlugin()).toThrow(/proxy_on_configure returned false/);
    expect(host.logs('error').join('\n')).toMatch(log);
  });

  it('applies a new configuration on reconfigure', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(config) });
    host.startPlugin();
    expect(host.configure(JSON.stringify({ response: { set: { server: 'v2' } } }))).toBe(true);
    const id = host.initializeHttpContext();
    host.callOnRequestHeaders(id, [[':method', 'GET']], true);
    host.callOnResponseHeaders(id, [[':status', '200']], true);
    expect(host.currentResponseHeaders(id)).toEqual([
      [':status', '200'],
      ['server', 'v2'],
    ]);
    expect(host.configure('nope')).toBe(false);
  });
});

function sorted(h: readonly HeaderPair[]): string[] {
  return h.map(([k, v]) => `${k}: ${v}`).sort();
}
