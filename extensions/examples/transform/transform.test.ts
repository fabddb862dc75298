import { beforeAll, describe, expect, it } from 'vitest';
import { DataStatus, HeadersStatus, HostEmulator } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await exampleModule('transform');
}, 180_000);

const cfg = { fields: ['password', 'ssn'], replacement: '***' };
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function respond(
  contentType: string,
  chunks: string[],
): Promise<{ host: HostEmulator; id: number; statuses: DataStatus[] }> {
  const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(cfg) });
  host.startPlugin();
  const id = host.initializeHttpContext();
  host.callOnRequestHeaders(id, [[':method', 'GET']], true);
  const length = chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
  expect(
    host.callOnResponseHeaders(
      id,
      [
        [':status', '200'],
        ['content-type', contentType],
        ['content-length', String(length)],
      ],
      false,
    ),
  ).toBe(HeadersStatus.Continue);
  const statuses = chunks.map((c, i) => host.callOnResponseBody(id, c, i === chunks.length - 1));
  return { host, id, statuses };
}

describe('transform example', () => {
  it('redacts configured fields at any depth, across chunks, and drops the stale content-length', async () => {
    const body =
      '{"user":{"name":"ann","password":"hunter2","cards":[{"ssn":"123","n":1.5e3}]},"note":"password stays in text"}';
    const { host, id, statuses } = await respond('application/json; charset=utf-8', [
      body.slice(0, 20),
      body.slice(20),
    ]);
    expect(statuses).toEqual([DataStatus.StopIterationAndBuffer, DataStatus.Continue]);
    expect(JSON.parse(text(host.forwardedResponseBody(id)))).toEqual({
      user: { name: 'ann', password: '***', cards: [{ ssn: '***', n: 1500 }] },
      note: 'password stays in text',
    });
    // Numbers keep their source text.
    expect(text(host.forwardedResponseBody(id))).toContain('"n":1.5e3');
    const headers = host.currentResponseHeaders(id);
    expect(headers.find(([k]) => k === 'content-length')).toBeUndefined();
    expect(headers).toContainEqual(['x-envext-redacted', 'pending']);
  });

  it.each([
    { name: 'a non-JSON content type', type: 'text/plain', body: '{"password":"x"}' },
    { name: 'invalid JSON', type: 'application/json', body: '{"password": nope' },
  ])('passes $name through unchanged', async ({ type, body }) => {
    const { host, id } = await respond(type, [body]);
    expect(text(host.forwardedResponseBody(id))).toBe(body);
  });

  it('rejects a configuration without fields', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: '{"fields":[]}' });
    expect(() => host.startPlugin()).toThrow(/proxy_on_configure returned false/);
    expect(host.logs('error')).toContain('transform: "fields" must list at least one key to redact');
  });
});
