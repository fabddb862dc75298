import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../../common/log.js';
import { pack } from '../../../proto/index.js';
import { AdsClient } from './ads-client.js';
import { AdsServer } from './ads-server.js';
import { SnapshotCache } from './cache.js';
import { exampleResources } from './example-resources.js';
import { buildSnapshot, checkReferences } from './snapshot.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './types.js';

const ALL = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

function resources(clusters: Record<string, string[]>, routes: Array<[string, string]>, extraFilters?: object[]) {
  return exampleResources({
    listener: 'echo.test',
    routeConfig: 'echo-routes',
    routes: routes.map(([prefix, cluster]) => ({ prefix, cluster })),
    clusters: new Map(Object.entries(clusters)),
    ...(extraFilters === undefined ? {} : { extraFilters: extraFilters as never }),
  });
}

const WASM_FILTER = {
  name: 'envoy.filters.http.wasm/default/bad',
  typed_config: pack('envoy.extensions.filters.http.wasm.v3.Wasm', { config: { name: 'bad' } }),
};

/** Envoy-like validation: a wasm filter is rejected (as grpc-js-xds does). */
function rejectWasm(typeUrl: string, res: ReadonlyMap<string, Record<string, unknown>>): void {
  if (typeUrl !== LISTENER_TYPE) return;
  for (const l of res.values()) {
    const api = (l.api_listener as { api_listener: { value: Uint8Array } }).api_listener;
    if (Buffer.from(api.value).includes('envoy.filters.http.wasm'))
      throw new Error(`listener ${String(l.name)}: wasm filter not supported`);
  }
}

interface Ctx {
  cache: SnapshotCache;
  server: AdsServer;
  address: string;
  logs: string[];
  clients: AdsClient[];
}

let ctx: Ctx;

beforeEach(async () => {
  const logs: string[] = [];
  const log: Logger = createLogger({ level: 'debug', sink: { write: (l: string) => logs.push(l) } }).child({
    component: 'xds',
  });
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, log });
  const port = await server.listen('127.0.0.1:0');
  ctx = { cache, server, address: `127.0.0.1:${port}`, logs, clients: [] };
});

afterEach(async () => {
  for (const c of ctx.clients) c.close();
  await ctx.server.close(500);
});

function client(opts: Partial<ConstructorParameters<typeof AdsClient>[0]> & { mode: 'sotw' | 'delta' }): AdsClient {
  const c = new AdsClient({ address: ctx.address, nodeId: 'envoy-1', cluster: 'default/eg', ...opts });
  ctx.clients.push(c);
  return c;
}

describe('snapshot', () => {
  it('finds dangling references', () => {
    const r = resources({ a: ['127.0.0.1:1'] }, [
      ['', 'a'],
      ['/b', 'missing'],
    ]);
    r.set(ENDPOINT_TYPE, []);
    expect(checkReferences(buildSnapshot('1', r))).toEqual([
      'RouteConfiguration "echo-routes" routes to Cluster "missing", which is missing',
      'Cluster "a" uses EDS "a", which is missing',
    ]);
    expect(checkReferences(buildSnapshot('1', resources({ a: ['127.0.0.1:1'] }, [['', 'a']])))).toEqual([]);
  });

  it('rejects duplicate names and unnamed resources', () => {
    const r = resources({ a: ['127.0.0.1:1'] }, [['', 'a']]);
    r.set(CLUSTER_TYPE, [...r.get(CLUSTER_TYPE)!, ...r.get(CLUSTER_TYPE)!]);
    expect(() => buildSnapshot('1', r)).toThrow(/two envoy.config.cluster.v3.Cluster resources are named "a"/);
    expect(() => buildSnapshot('1', new Map([[CLUSTER_TYPE, [{ type: 'EDS' }]]]))).toThrow(/has no name/);
  });

  it('does not publish equal content twice', () => {
    const cache = new SnapshotCache();
    const seen: string[] = [];
    cache.subscribe((g, s) => seen.push(`${g}@${s?.version}`));
    expect(cache.set('g', resources({ a: ['127.0.0.1:1'] }, [['', 'a']]))).toEqual({ version: '1', changed: true });
    expect(cache.set('g', resources({ a: ['127.0.0.1:1'] }, [['', 'a']]))).toEqual({ version: '1', changed: false });
    expect(cache.set('g', resources({ a: ['127.0.0.1:2'] }, [['', 'a']]))).toEqual({ version: '2', changed: true });
    expect(seen).toEqual(['g@1', 'g@2']);
  });
});

describe.each(['sotw', 'delta'] as const)('ADS %s', (mode) => {
  it('serves the group snapshot in CDS → EDS → LDS → RDS order with one version', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    ctx.cache.set('other/gw', resources({ z: ['127.0.0.1:9'] }, [['', 'z']]));
    const c = client({ mode });
    await c.untilVersion('1', ALL);
    expect(c.responses.map((r) => r.typeUrl)).toEqual([CLUSTER_TYPE, LISTENER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE]);
    expect([...c.state.get(CLUSTER_TYPE)!.keys()]).toEqual(['a']);
    expect(ctx.server.clients()).toEqual([
      { nodeId: 'envoy-1', group: 'default/eg', mode, acked: expect.any(Object) as object },
    ]);

    // An update pushes in make-before-break order.
    const before = c.responses.length;
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'], b: ['127.0.0.1:1002'] }, [['', 'b']]));
    // Only changed types are pushed again; the listener did not change.
    await c.untilVersion('3', [CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE]);
    expect(c.acked.get(LISTENER_TYPE)).toBe('1');
    const order = c.responses.slice(before).map((r) => r.typeUrl);
    expect(order.indexOf(CLUSTER_TYPE)).toBeLessThan(order.indexOf(ENDPOINT_TYPE));
    expect(order.indexOf(ENDPOINT_TYPE)).toBeLessThan(order.indexOf(ROUTE_TYPE));
    if (mode === 'delta') {
      // Only what changed is sent: the new cluster and its endpoints, and the route config.
      expect(c.responses.slice(before).map((r) => [...r.resources.keys()].join())).toEqual(['b', 'b', 'echo-routes']);
    }
  });

  it('keeps a removed cluster until the routes moved, then prunes it', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    const c = client({ mode });
    await c.untilVersion('1', ALL);
    const before = c.responses.length;
    ctx.cache.set('default/eg', resources({ b: ['127.0.0.1:1002'] }, [['', 'b']]));
    await c.until(
      () =>
        c.state.get(CLUSTER_TYPE)!.size === 1 && c.state.get(CLUSTER_TYPE)!.has('b') && c.acked.get(ROUTE_TYPE) === '2',
    );
    const steps = c.responses
      .slice(before)
      .map(
        (r) =>
          `${r.typeUrl.split('.').pop()}:${[...r.resources.keys()].sort().join('+')}${r.removed.length ? `-${r.removed.join('+')}` : ''}`,
      );
    const routeAt = steps.findIndex((s) => s.startsWith('RouteConfiguration'));
    const pruneAt = steps.findIndex((s) =>
      mode === 'sotw' ? s === 'Cluster:b' : s.startsWith('Cluster:') && s.includes('-a'),
    );
    // The first cluster response still holds "a" (sotw: union; delta: no removal yet) …
    expect(steps[0]).toBe(mode === 'sotw' ? 'Cluster:a+b' : 'Cluster:b');
    // … and "a" goes only after the routes were answered.
    expect(routeAt).toBeGreaterThan(0);
    expect(pruneAt).toBeGreaterThan(routeAt);
  });

  it('logs and counts a NACK, keeps the last good version and never resends the bad one', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    const c = client({ mode, validate: rejectWasm });
    await c.untilVersion('1', ALL);
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']], [WASM_FILTER]));
    await c.until(() => c.responses.some((r) => r.nacked));
    // Give the server time to (wrongly) resend; count listener responses afterwards.
    const nacked = c.responses.filter((r) => r.typeUrl === LISTENER_TYPE).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(c.responses.filter((r) => r.typeUrl === LISTENER_TYPE)).toHaveLength(nacked);
    expect(c.acked.get(LISTENER_TYPE)).toBe('1');
    const metrics = await ctx.server.registry.metrics();
    expect(metrics).toMatch(/envext_xds_nacks_total\{type="Listener",group="default\/eg"\} 1/);
    expect(ctx.logs.join('')).toMatch(/NACK.*node=envoy-1.*type=Listener.*wasm filter not supported/);

    // The same node reconnecting gets its last accepted listener, not the rejected one.
    c.close();
    const again = client({ mode, validate: rejectWasm });
    await again.until(() => again.acked.get(LISTENER_TYPE) !== undefined && again.acked.get(ROUTE_TYPE) !== undefined);
    expect(again.responses.some((r) => r.nacked)).toBe(false);

    // A fixed snapshot is accepted; the listener is back to what the client holds, so only
    // the changed route configuration is pushed.
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['/x', 'a']]));
    await again.untilVersion('3', [ROUTE_TYPE]);
    expect(() => rejectWasm(LISTENER_TYPE, again.state.get(LISTENER_TYPE)!)).not.toThrow();
    if (mode === 'sotw') expect(again.acked.get(LISTENER_TYPE)).toBe('1');
    expect(again.responses.some((r) => r.nacked)).toBe(false);
  });

  it('ends a stream without node.cluster with a clear error', async () => {
    const c = client({ mode, cluster: '' });
    await c.until(() => c.ended);
    expect(c.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(c.error?.details).toMatch(/node "envoy-1" has no node.cluster: set it to the Gateway's namespace\/name/);
  });

  it('waits for a late snapshot and serves many clients', async () => {
    const clients = Array.from({ length: 20 }, (_, i) => client({ mode, nodeId: `envoy-${i}` }));
    await new Promise((r) => setTimeout(r, 50));
    expect(clients.every((c) => c.responses.length === 0)).toBe(true);
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    await Promise.all(clients.map((c) => c.untilVersion('1', ALL)));
    expect(await ctx.server.registry.getSingleMetricAsString('envext_xds_connected_clients')).toMatch(
      new RegExp(`mode="${mode}"} 20`),
    );
  });
});

describe('ADS delta specifics', () => {
  it('does not resend what the client has on reconnect (initial_resource_versions)', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    const c = client({ mode: 'delta' });
    await c.untilVersion('1', ALL);
    c.close();
    const versions = new Map([...c.versions].map(([t, m]) => [t, Object.fromEntries(m)]));
    const again = client({ mode: 'delta', initialVersions: versions, nodeId: 'envoy-2' });
    await new Promise((r) => setTimeout(r, 200));
    expect(again.responses).toEqual([]);
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1003'] }, [['', 'a']]));
    await again.until(() => again.responses.length === 1);
    expect(again.responses[0]!.typeUrl).toBe(ENDPOINT_TYPE);
  });

  it('sends in-sync wildcard clients one shared diff, and keeps per-client state correct', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'], b: ['127.0.0.1:1002'] }, [['', 'a']]));
    const cs = Array.from({ length: 5 }, (_, i) => client({ mode: 'delta', nodeId: `n${i}` }));
    await Promise.all(cs.map((c) => c.untilVersion('1', ALL)));
    // One client also subscribes to a name explicitly: it leaves the shared path.
    const seen = cs[0]!.responses.length;
    cs[0]!.subscribe(CLUSTER_TYPE, ['b']);
    await cs[0]!.until(() => cs[0]!.responses.length > seen);
    // (No removal: removals take the make-before-break path, per client.)
    ctx.cache.set(
      'default/eg',
      resources({ a: ['127.0.0.1:1001'], b: ['127.0.0.1:1002'], c: ['127.0.0.1:1003'] }, [['', 'c']]),
    );
    await Promise.all(
      cs.map((c) => c.until(() => c.state.get(CLUSTER_TYPE)!.has('c') && c.acked.get(ROUTE_TYPE) === '2')),
    );
    const clusterNonces = cs.map((c) => c.responses.filter((r) => r.typeUrl === CLUSTER_TYPE).at(-1).nonce);
    expect(new Set(clusterNonces.slice(1)).size).toBe(1);
    expect(clusterNonces[1]).toMatch(/^d1>2$/);
    for (const c of cs) expect([...c.state.get(CLUSTER_TYPE)!.keys()].sort()).toEqual(['a', 'b', 'c']);
    // Removals still work after shared diffs.
    ctx.cache.set('default/eg', resources({ c: ['127.0.0.1:1003'] }, [['', 'c']]));
    await Promise.all(
      cs.map((c) => c.until(() => c.state.get(CLUSTER_TYPE)!.size === 1 && c.state.get(ENDPOINT_TYPE)!.size === 1)),
    );
  });

  it('sends clients that subscribe to every endpoint by name one shared response', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'], b: ['127.0.0.1:1002'] }, [['', 'a']]));
    // followReferences: EDS by name for every cluster, as Envoy does.
    const cs = Array.from({ length: 4 }, (_, i) => client({ mode: 'delta', nodeId: `eds${i}` }));
    await Promise.all(cs.map((c) => c.untilVersion('1', ALL)));
    const eds = cs.map((c) => c.responses.filter((r) => r.typeUrl === ENDPOINT_TYPE));
    for (const list of eds) expect(list.map((r) => r.nonce)).toEqual(['d>1']);
    for (const c of cs) expect([...c.state.get(ENDPOINT_TYPE)!.keys()].sort()).toEqual(['a', 'b']);
    // A client subscribing to some of them gets its own response, and later changes still arrive.
    const partial = client({ mode: 'delta', nodeId: 'partial', followReferences: false, wildcardTypes: [] });
    partial.subscribe(ENDPOINT_TYPE, ['a']);
    await partial.until(() => partial.responses.length === 1);
    expect(partial.responses[0]!.nonce).not.toMatch(/^d/);
    expect([...partial.state.get(ENDPOINT_TYPE)!.keys()]).toEqual(['a']);
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1003'], b: ['127.0.0.1:1002'] }, [['', 'a']]));
    await Promise.all(
      [...cs, partial].map((c) =>
        c.until(() => JSON.stringify(c.state.get(ENDPOINT_TYPE)?.get('a') ?? {}).includes('1003')),
      ),
    );
    // In sync with everything they named, the full clients now get the shared diff too.
    for (const c of cs) expect(c.responses.filter((r) => r.typeUrl === ENDPOINT_TYPE).at(-1).nonce).toBe('d1>2');
    // A new cluster: its endpoints only after the client subscribes to them (it does on CDS).
    ctx.cache.set(
      'default/eg',
      resources({ a: ['127.0.0.1:1003'], b: ['127.0.0.1:1002'], c: ['127.0.0.1:1004'] }, [['', 'a']]),
    );
    await Promise.all(cs.map((c) => c.until(() => c.state.get(ENDPOINT_TYPE)?.has('c') === true)));
    for (const c of cs) expect([...c.state.get(ENDPOINT_TYPE)!.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect([...partial.state.get(ENDPOINT_TYPE)!.keys()]).toEqual(['a']);
  });

  it('answers a subscription to a missing resource with its removal', async () => {
    ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
    const c = client({ mode: 'delta', followReferences: false, wildcardTypes: [] });
    c.subscribe(ROUTE_TYPE, ['nope']);
    await c.until(() => c.responses.length === 1);
    expect(c.responses[0]).toMatchObject({ typeUrl: ROUTE_TYPE, removed: ['nope'] });
  });
});

describe('ADS over TLS', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'envext-xds-tls-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serves mTLS clients and refuses clients without a certificate', async () => {
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=envext-ca',
    );
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
      execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > ${who}.ext`], { cwd: dir });
      ssl(
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${who}.crt`,
        '-days',
        '1',
        '-extfile',
        `${who}.ext`,
      );
    }
    const read = (f: string): Buffer => readFileSync(join(dir, f));
    const server = new AdsServer({ cache: ctx.cache });
    const port = await server.listen('127.0.0.1:0', {
      cert: read('server.crt'),
      key: read('server.key'),
      ca: read('ca.crt'),
    });
    try {
      ctx.cache.set('default/eg', resources({ a: ['127.0.0.1:1001'] }, [['', 'a']]));
      const c = new AdsClient({
        address: `127.0.0.1:${port}`,
        nodeId: 'tls',
        cluster: 'default/eg',
        mode: 'delta',
        credentials: grpc.credentials.createSsl(read('ca.crt'), read('client.key'), read('client.crt')),
      });
      ctx.clients.push(c);
      await c.untilVersion('1', ALL);
      const anon = new AdsClient({
        address: `127.0.0.1:${port}`,
        nodeId: 'anon',
        cluster: 'default/eg',
        mode: 'delta',
        credentials: grpc.credentials.createSsl(read('ca.crt')),
      });
      ctx.clients.push(anon);
      await anon.until(() => anon.ended);
      expect(anon.error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      await server.close(200);
    }
  });
});
