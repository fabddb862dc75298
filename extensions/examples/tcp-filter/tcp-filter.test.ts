import { beforeAll, describe, expect, it } from 'vitest';
import { HostEmulator, NetworkStatus, PeerType } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await exampleModule('tcp-filter');
}, 180_000);

describe('tcp-filter example', () => {
  it('counts bytes each way and logs the totals at close', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: '{"close_on":"QUIT"}' });
    host.startPlugin();
    const id = host.initializeConnection();
    expect(host.callOnDownstreamData(id, 'hello ')).toBe(NetworkStatus.Continue);
    expect(host.callOnUpstreamData(id, 'welcome!')).toBe(NetworkStatus.Continue);
    expect(host.callOnDownstreamData(id, 'world')).toBe(NetworkStatus.Continue);
    expect(host.counter('envext_tcp_downstream_bytes')).toBe(11n);
    expect(host.counter('envext_tcp_upstream_bytes')).toBe(8n);
    expect(new TextDecoder().decode(host.downstreamData(id))).toBe('hello world');
    host.closeDownstreamConnection(id, PeerType.Remote);
    host.completeConnection(id);
    expect(host.logs('info')).toContain(
      'tcp-filter: connection closed by client; downstream 11 bytes, upstream 8 bytes',
    );
  });

  it('closes the connection on the pattern, even when split across reads', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: '{"close_on":"QUIT"}' });
    host.startPlugin();
    const id = host.initializeConnection();
    expect(host.callOnDownstreamData(id, 'data QU')).toBe(NetworkStatus.Continue);
    expect(host.callOnDownstreamData(id, 'IT\r\n')).toBe(NetworkStatus.StopIteration);
    expect(host.streamClosed(id)).toBeDefined();
    expect(host.counter('envext_tcp_closed_on_pattern')).toBe(1n);
    expect(host.logs('info')).toContain('tcp-filter: closing connection on pattern after 11 bytes');
  });

  it('without a pattern never closes', async () => {
    const host = await HostEmulator.create(wasm);
    host.startPlugin();
    const id = host.initializeConnection();
    expect(host.callOnDownstreamData(id, 'QUIT')).toBe(NetworkStatus.Continue);
    expect(host.streamClosed(id)).toBeUndefined();
  });
});
