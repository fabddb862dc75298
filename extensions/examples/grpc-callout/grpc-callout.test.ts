import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GrpcStatus, HeadersStatus, HostEmulator } from '../../host/index.js';
import { exampleModule } from '../../sdk/build-cache.js';

let wasm: Uint8Array;
let CheckRequest: protobuf.Type;
let CheckResponse: protobuf.Type;
beforeAll(async () => {
  wasm = await exampleModule('grpc-callout');
  const root = await protobuf.load(fileURLToPath(new URL('./decision.proto', import.meta.url)));
  CheckRequest = root.lookupType('envext.examples.decision.v1.CheckRequest');
  CheckResponse = root.lookupType('envext.examples.decision.v1.CheckResponse');
}, 180_000);

const answer = (allow: boolean, reason = ''): Uint8Array =>
  CheckResponse.encode(CheckResponse.create({ allow, reason })).finish();

async function started(
  config: object = { cluster: 'decision', timeout_ms: 150 },
): Promise<{ host: HostEmulator; id: number; token: number }> {
  const host = await HostEmulator.create(wasm, { pluginConfiguration: JSON.stringify(config) });
  host.startPlugin();
  const id = host.initializeHttpContext();
  const status = host.callOnRequestHeaders(
    id,
    [
      [':method', 'POST'],
      [':path', '/orders/7'],
      [':authority', 'shop.example'],
    ],
    false,
  );
  expect(status).toBe(HeadersStatus.StopAllIterationAndWatermark);
  const [call] = host.pendingCallouts();
  expect(call?.kind).toBe('grpc_call');
  expect(call?.upstream).toBe('decision');
  expect(call?.serviceName).toBe('envext.examples.decision.v1.Decision');
  expect(call?.method).toBe('Check');
  expect(call?.timeoutMs).toBe(150);
  expect(CheckRequest.toObject(CheckRequest.decode(call!.body))).toEqual({
    method: 'POST',
    path: '/orders/7',
    authority: 'shop.example',
  });
  return { host, id, token: call!.token };
}

describe('grpc-callout example', () => {
  it('continues the request when the service allows it', async () => {
    const { host, id, token } = await started();
    host.callOnGrpcReceive(token, answer(true));
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
    expect(host.sentLocalResponse(id)).toBeUndefined();
  });

  it('answers 403 with the reason when the service denies', async () => {
    const { host, id, token } = await started();
    host.callOnGrpcReceive(token, answer(false, 'orders are read-only today'));
    const reply = host.sentLocalResponse(id);
    expect(reply?.statusCode).toBe(403);
    expect(reply?.details).toBe('envext_decision_denied');
    expect(JSON.parse(new TextDecoder().decode(reply!.body))).toEqual({
      error: 'orders are read-only today',
      status: 403,
    });
  });

  it('answers 503 when the call fails (fail closed)', async () => {
    const { host, id, token } = await started();
    host.callOnGrpcClose(token, GrpcStatus.Unavailable, 'no healthy upstream');
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
    expect(host.logs('warn')).toContain('grpc-callout: decision call failed: grpc-status 14 no healthy upstream');
  });

  it('answers 503 when the answer is not a CheckResponse', async () => {
    const { host, id, token } = await started();
    host.callOnGrpcReceive(token, new Uint8Array([0xff, 0xff]));
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
    expect(host.logs('warn')).toContain('grpc-callout: decision call failed: an answer that is not a CheckResponse');
  });

  it('times out into 503 (DEADLINE_EXCEEDED from the host)', async () => {
    const { host, id } = await started();
    host.advanceTime(200);
    expect(host.sentLocalResponse(id)?.statusCode).toBe(503);
  });

  it('continues on failure with fail_open', async () => {
    const { host, id, token } = await started({ cluster: 'decision', timeout_ms: 150, fail_open: true });
    host.callOnGrpcClose(token, GrpcStatus.Unavailable);
    expect(host.currentHttpStreamAction(id)?.name).toBe('Continue (proxy_continue_stream)');
  });

  it('rejects a configuration without a cluster', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: '{}' });
    expect(() => host.startPlugin()).toThrow(/proxy_on_configure returned false/);
  });
});
