import { describe, expect, it } from 'vitest';
import { exampleModule, localNeeds } from './quickstart.js';

const policy = (wasmUrl: string, backend = 'ext-proc') => ({
  kind: 'EnvoyExtensionPolicy',
  metadata: { name: 'p', namespace: 'default' },
  spec: {
    wasm: [{ code: { type: 'HTTP', http: { url: wasmUrl } } }],
    extProc: [{ backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: backend }] }],
  },
});
const backend = {
  kind: 'Backend',
  metadata: { name: 'ext-proc', namespace: 'default' },
  spec: { endpoints: [{ unix: { path: '/tmp/envext/ext-proc.sock' } }] },
};

describe('quickstart launcher', () => {
  it.each([
    {
      name: 'local origin and socket',
      objs: [policy('http://127.0.0.1:18081/headers.wasm'), backend],
      origins: [[18081, ['headers.wasm']]],
      sockets: ['/tmp/envext/ext-proc.sock'],
    },
    {
      name: 'remote URL is left alone',
      objs: [policy('https://example.com/headers.wasm'), backend],
      origins: [],
      sockets: ['/tmp/envext/ext-proc.sock'],
    },
    {
      name: 'localhost default port',
      objs: [policy('http://localhost/headers.wasm', 'missing')],
      origins: [[80, ['headers.wasm']]],
      sockets: [],
    },
  ])('$name', ({ objs, origins, sockets }) => {
    const needs = localNeeds(objs);
    expect([...needs.origins].map(([p, n]) => [p, [...n]])).toEqual(origins);
    expect([...needs.sockets]).toEqual(sockets);
  });

  it('finds the SDK-built example module, and nothing for unknown names', () => {
    expect(exampleModule('no-such-filter.wasm')).toBeUndefined();
    const headers = exampleModule('headers.wasm');
    if (headers !== undefined) expect(headers).toMatch(/extensions\/examples\/headers\/build\/headers\.wasm$/);
  });
});
