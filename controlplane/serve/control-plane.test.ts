/**
 * `envext serve` end to end, in one process: the file source reads Gateway API YAML, the real
 * translators run, the ADS server serves the result, and
 * - @grpc/grpc-js-xds (a real xDS client) routes a gRPC call to a local echo server through
 *   a Gateway without extensions (it accepts only router and fault filters);
 * - a raw delta ADS client decodes the extension Gateway's Envoy resources: the wasm filter
 *   pointing at our module server (which serves the exact bytes), the ext_proc filter on a Unix
 *   socket Backend, enabled on the targeted route only;
 * - editing a file reaches connected clients as a new version; statuses are reported.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { decode, type ProtoObject } from '../../proto/index.js';
import { makeWasmModule } from '../../test/fixtures/wasm-module.js';
import type { ResourceStatus } from '../gatewayapi/status.js';
import { WasmModuleCache } from '../wasm-cache/module-cache.js';
import { ModuleServer } from '../wasm-cache/server.js';
import { AdsClient } from '../xds/server/ads-client.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../xds/server/types.js';
import { ControlPlane } from './control-plane.js';
import { FileSource } from './file-source.js';

const quiet = createLogger({ level: 'silent' });
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

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
type EchoClient = grpc.Client & {
  Call(req: Buffer, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
};

function gatewayYaml(echoPort: number, modulesUrl: string, sha256: string, prefix = '/'): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: envext}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: grpc, namespace: default}
spec:
  gatewayClassName: envext
  listeners: [{name: grpc, protocol: HTTP, port: 8080}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: echo, namespace: default}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: ${echoPort}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: grpc}]
  hostnames: [echo.test]
  rules:
    - matches: [{path: {type: PathPrefix, value: "${prefix}"}}]
      backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: echo, port: ${echoPort}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ext, namespace: default}
spec:
  gatewayClassName: envext
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: ext-proc, namespace: default}
spec:
  endpoints: [{unix: {path: /var/run/envext/ext-proc.sock}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: ext}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /shop}}]
      backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: echo, port: ${echoPort}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain, namespace: default}
spec:
  parentRefs: [{name: ext}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /plain}}]
      backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: echo, port: ${echoPort}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: shop-ext, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
  wasm:
    - name: headers
      code: {type: HTTP, http: {url: "${modulesUrl}/headers.wasm", sha256: ${sha256}}}
      config: {header: x-wasm, value: hello}
  extProc:
    - backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: ext-proc}]
      processingMode: {request: {}}
`;
}

describe('envext serve end to end', () => {
  let dir: string;
  let echo: grpc.Server;
  let echoPort: number;
  let origin: Server;
  let originUrl: string;
  let cp: ControlPlane;
  let xdsAddress: string;
  let adminUrl: string;
  const module = makeWasmModule(3000, 'headers');
  const moduleSha = createHash('sha256').update(module).digest('hex');
  const statuses: ResourceStatus[][] = [];
  const clients: AdsClient[] = [];
  let grpcClient: EchoClient | undefined;

  beforeAll(async () => {
    xds.register();
    dir = mkdtempSync(join(tmpdir(), 'envext-serve-'));
    echo = new grpc.Server();
    echo.addService(ECHO, {
      Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, Buffer.from(`echo:${call.request.toString()}`)),
    });
    echoPort = await new Promise<number>((res, rej) =>
      echo.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    // The module's origin: a local HTTP server (as the quickstart starts one).
    origin = createServer((req, res) =>
      req.url === '/headers.wasm' ? res.writeHead(200).end(module) : res.writeHead(404).end(),
    );
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    mkdtempSync(join(dir, 'x'));
    writeFileSync(join(dir, 'config.yaml'), gatewayYaml(echoPort, originUrl, moduleSha));

    let publicUrl = '';
    const wasmCache = new WasmModuleCache({
      dir: join(dir, 'cache'),
      get servingBaseUrl() {
        return publicUrl;
      },
      log: quiet,
    });
    cp = new ControlPlane({
      source: new FileSource({ paths: [join(dir, 'config.yaml')], debounceMs: 50, logger: quiet }),
      wasmCache,
      moduleServer: new ModuleServer({ cache: wasmCache, port: 0, log: quiet }),
      xdsAddress: '127.0.0.1:0',
      adminAddress: '127.0.0.1:0',
      proxylessGrpc: true,
      statusSink: (s) => {
        statuses.push([...s]);
      },
      onListening: (p) => {
        publicUrl = `http://127.0.0.1:${p.wasm}`;
      },
      log: quiet,
    });
    const ports = await cp.start();
    xdsAddress = `127.0.0.1:${ports.xds}`;
    adminUrl = `http://127.0.0.1:${ports.admin}`;
  });

  afterAll(async () => {
    grpcClient?.close();
    for (const c of clients) c.close();
    await cp.stop();
    echo.forceShutdown();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes a gRPC call from grpc-js-xds through the Gateway without extensions', async () => {
    expect(cp.cache.groupNames()).toEqual(['default/ext', 'default/grpc']);
    const bootstrap = {
      xds_servers: [{ server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'grpc-1', cluster: 'default/grpc', locality: {} },
    };
    const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
    const client = new Client('xds:///echo.test', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    }) as unknown as EchoClient;
    grpcClient = client;
    let answer = '';
    for (let i = 0; i < 60 && answer === ''; i++) {
      answer = await new Promise<string>((res) =>
        client.Call(Buffer.from('hi'), { deadline: Date.now() + 2000 }, (e, r) => res(e ? '' : r!.toString())),
      );
      if (answer === '') await new Promise((r) => setTimeout(r, 100));
    }
    expect(answer).toBe('echo:hi');
    const c = cp.ads.clients().find((x) => x.nodeId === 'grpc-1');
    expect(c?.acked).toMatchObject({
      Listener: '2',
      RouteConfiguration: '2',
      Cluster: '2',
      ClusterLoadAssignment: '2',
    });
    expect(await cp.registry.metrics()).not.toMatch(/envext_xds_nacks_total\{/);
  });

  it('serves the extension Gateway to a delta client: wasm from the module server, ext_proc on the socket', async () => {
    const c = new AdsClient({ address: xdsAddress, nodeId: 'envoy-1', cluster: 'default/ext', mode: 'delta' });
    clients.push(c);
    await c.until(
      () => (c.state.get(ROUTE_TYPE)?.size ?? 0) > 0 && (c.state.get(ENDPOINT_TYPE)?.size ?? 0) > 0,
      10_000,
      'routes and endpoints',
    );
    const [listener] = [...c.state.get(LISTENER_TYPE)!.values()];
    const chain = (listener!.default_filter_chain ?? (listener!.filter_chains as ProtoObject[])[0]) as ProtoObject;
    const hcmAny = ((chain.filters as ProtoObject[])[0]!.typed_config as { value: Uint8Array }).value;
    const hcm = decode(HCM, hcmAny);
    const filters = (hcm.http_filters as ProtoObject[]).map((f) => String(f.name));
    expect(filters).toEqual([
      'envoy.filters.http.ext_proc/envoyextensionpolicy/default/shop-ext/extproc/0',
      'envoy.filters.http.wasm/envoyextensionpolicy/default/shop-ext/wasm/0',
      'envoy.filters.http.router',
    ]);
    const wasm = (hcm.http_filters as ProtoObject[])[1]!.typed_config as { value: Uint8Array };
    const wasmConfig = decode('envoy.extensions.filters.http.wasm.v3.Wasm', wasm.value);
    const remote = (((wasmConfig.config as ProtoObject).vm_config as ProtoObject).code as ProtoObject)
      .remote as ProtoObject;
    expect(remote.sha256).toBe(moduleSha);
    const uri = (remote.http_uri as ProtoObject).uri as string;
    // Envoy would fetch exactly these bytes from the module server.
    expect(Buffer.from(await (await fetch(uri)).arrayBuffer()).equals(module)).toBe(true);
    // Only the targeted route enables the filters.
    const routes = [...c.state.get(ROUTE_TYPE)!.values()].flatMap((rc) =>
      (rc.virtual_hosts as ProtoObject[]).flatMap((vh) => vh.routes as ProtoObject[]),
    );
    const enabled = routes.map((r) => [
      String(r.name),
      Object.keys((r.typed_per_filter_config as object | undefined) ?? {}).length,
    ]);
    expect(enabled.find(([n]) => String(n).includes('/shop/'))?.[1]).toBe(2);
    expect(enabled.find(([n]) => String(n).includes('/plain/'))?.[1]).toBe(0);
    // The ext_proc cluster reaches the Unix socket Backend.
    const clusters = [...c.state.get(CLUSTER_TYPE)!.keys()];
    expect(clusters.some((n) => n.includes('extproc'))).toBe(true);
    expect(JSON.stringify([...c.state.get(ENDPOINT_TYPE)!.values()])).toContain('/var/run/envext/ext-proc.sock');
    // And the statuses say the policy was accepted.
    const policy = statuses.at(-1).find((s) => s.kind === 'EnvoyExtensionPolicy');
    expect(JSON.stringify(policy)).toContain('"reason":"Accepted"');
  });

  it('answers health, readiness, metrics and the client list', async () => {
    expect(await (await fetch(`${adminUrl}/healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`${adminUrl}/readyz`)).text()).toBe('ready\n');
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/envext_xds_connected_clients\{mode="(sotw|delta)"\} \d/);
    expect(metrics).toMatch(/envext_translations_total\{result="ok"\} \d/);
    const debug = (await (await fetch(`${adminUrl}/debug/clients`)).json()) as { groups: { group: string }[] };
    expect(debug.groups.map((g) => g.group)).toEqual(['default/ext', 'default/grpc']);
    expect((await fetch(`${adminUrl}/nope`)).status).toBe(404);
  });

  it('turns a file change into a new version on connected clients', async () => {
    const c = new AdsClient({ address: xdsAddress, nodeId: 'envoy-2', cluster: 'default/grpc', mode: 'sotw' });
    clients.push(c);
    await c.untilVersion(cp.cache.get('default/grpc')!.version, [ROUTE_TYPE]);
    const before = cp.cache.get('default/grpc')!.version;
    writeFileSync(join(dir, 'config.yaml'), gatewayYaml(echoPort, originUrl, moduleSha, '/v2'));
    await c.until(() => c.acked.get(ROUTE_TYPE) !== before, 10_000, 'a new route version');
    expect(Number(c.acked.get(ROUTE_TYPE))).toBeGreaterThan(Number(before));
    expect(JSON.stringify([...c.state.get(ROUTE_TYPE)!.values()])).toContain('/v2');
    // A route edit: the file provider kept every other object, so only the route was translated.
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/envext_translation_paths_total\{path="incremental"\} [1-9]/);
  });

  it('keeps serving the last good content of a file with a YAML error, then takes the fixed file', async () => {
    const c = new AdsClient({ address: xdsAddress, nodeId: 'envoy-3', cluster: 'default/grpc', mode: 'sotw' });
    clients.push(c);
    await c.untilVersion(cp.cache.get('default/grpc')!.version, [ROUTE_TYPE]);
    const good = gatewayYaml(echoPort, originUrl, moduleSha, '/v3');
    // A half-saved edit: the YAML breaks part way through.
    writeFileSync(join(dir, 'config.yaml'), `${good.slice(0, Math.floor(good.length / 2))}\n  bad: [unclosed\n`);
    await new Promise((r) => setTimeout(r, 400)); // debounce (50 ms) and a translation
    expect(cp.cache.groupNames()).toEqual(['default/ext', 'default/grpc']);
    expect(JSON.stringify([...c.state.get(ROUTE_TYPE)!.values()])).toContain('/v2');
    writeFileSync(join(dir, 'config.yaml'), good);
    await c.until(() => JSON.stringify([...c.state.get(ROUTE_TYPE)!.values()]).includes('/v3'), 10_000, '/v3');
    expect(cp.cache.groupNames()).toEqual(['default/ext', 'default/grpc']);
  });
});
