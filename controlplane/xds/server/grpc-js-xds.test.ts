/**
 * @grpc/grpc-js-xds as a real xDS client (SotW ADS) against our server: it subscribes to
 * Listener → RouteConfiguration → Cluster → ClusterLoadAssignment by name, validates every
 * resource with its own decoders, ACKs or NACKs, and routes real gRPC calls by what it got.
 */
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack } from '../../../proto/index.js';
import { AdsServer } from './ads-server.js';
import { SnapshotCache } from './cache.js';
import { exampleResources } from './example-resources.js';

const ECHO: grpc.ServiceDefinition = {
  Call: {
    path: '/envext.test.Echo/Call',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

async function echoServer(name: string): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.from(`${name}:${call.request.toString()}`)),
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

type EchoClient = grpc.Client & {
  Call(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
};

function call(client: EchoClient, body: string): Promise<string> {
  return new Promise((res, rej) =>
    client.Call(Buffer.from(body), { deadline: Date.now() + 2_000 }, (e, r) => (e ? rej(e) : res(r!.toString()))),
  );
}

/** Retries a call until it returns `want` (a client applies config changes asynchronously). */
async function eventually(client: EchoClient, want: RegExp): Promise<string> {
  let last = '';
  for (let i = 0; i < 50; i++) {
    try {
      last = await call(client, 'hi');
      if (want.test(last)) return last;
    } catch (e: unknown) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never got ${want}: last ${last}`);
}

describe('grpc-js-xds against the ADS server', () => {
  const cache = new SnapshotCache();
  const ads = new AdsServer({ cache });
  let echoA: { server: grpc.Server; address: string };
  let echoB: { server: grpc.Server; address: string };
  let client: EchoClient;

  beforeAll(async () => {
    xds.register();
    echoA = await echoServer('a');
    echoB = await echoServer('b');
    const port = await ads.listen('127.0.0.1:0');
    const bootstrap = {
      xds_servers: [
        { server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
      ],
      node: { id: 'grpc-client-1', cluster: 'default/eg', locality: {} },
    };
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
    client = new Client('xds:///echo.test', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    }) as unknown as EchoClient;
  });

  afterAll(async () => {
    client.close();
    await ads.close(200);
    echoA.server.forceShutdown();
    echoB.server.forceShutdown();
  });

  const snapshot = (endpoint: string, extraFilters?: object[]) =>
    exampleResources({
      listener: 'echo.test',
      routeConfig: 'echo-routes',
      routes: [{ prefix: '', cluster: 'echo' }],
      clusters: new Map([['echo', [endpoint]]]),
      ...(extraFilters === undefined ? {} : { extraFilters: extraFilters as never }),
    });

  it('receives LDS/RDS/CDS/EDS and routes a call, then follows an EDS change', async () => {
    cache.set('default/eg', snapshot(echoA.address));
    expect(await eventually(client, /^a:hi$/)).toBe('a:hi');
    const [c] = ads.clients();
    expect(c).toMatchObject({ nodeId: 'grpc-client-1', group: 'default/eg', mode: 'sotw' });
    expect(c!.acked).toEqual({ Listener: '1', RouteConfiguration: '1', Cluster: '1', ClusterLoadAssignment: '1' });

    cache.set('default/eg', snapshot(echoB.address));
    expect(await eventually(client, /^b:hi$/)).toBe('b:hi');
  });

  it('gets a NACK for a wasm filter, keeps routing on the last good config, recovers', async () => {
    const before = ads.clients()[0]!.acked;
    const wasm = {
      name: 'envoy.filters.http.wasm/default/headers',
      typed_config: pack('envoy.extensions.filters.http.wasm.v3.Wasm', { config: { name: 'headers' } }),
    };
    const { version } = cache.set('default/eg', snapshot(echoA.address, [wasm]));
    // The listener with wasm is NACKed; the route/cluster/endpoint changes are separate types.
    const deadline = Date.now() + 10_000;
    while (!/envext_xds_nacks_total\{type="Listener"/.test(await ads.registry.metrics()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await ads.registry.metrics()).toMatch(/envext_xds_nacks_total\{type="Listener",group="default\/eg"\} 1/);
    expect(ads.clients()[0]!.acked.Listener).toBe(before.Listener);
    // Endpoints moved to "a" in the same version and were accepted; calls keep working.
    expect(await eventually(client, /^a:hi$/)).toBe('a:hi');
    const pushes = await ads.registry.getSingleMetricAsString('envext_xds_pushes_total');
    await new Promise((r) => setTimeout(r, 300));
    // Never resent in a loop.
    expect(await ads.registry.getSingleMetricAsString('envext_xds_pushes_total')).toBe(pushes);

    // Marked optional (is_optional), the same filter is accepted by the client and skipped.
    const fixed = cache.set('default/eg', snapshot(echoA.address, [{ ...wasm, is_optional: true }]));
    expect(Number(fixed.version)).toBeGreaterThan(Number(version));
    const until = Date.now() + 10_000;
    while (ads.clients()[0]!.acked.Listener !== fixed.version && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    expect(ads.clients()[0]!.acked.Listener).toBe(fixed.version);
    expect(await eventually(client, /^a:hi$/)).toBe('a:hi');
  });
});
