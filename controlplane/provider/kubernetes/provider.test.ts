/**
 * The Kubernetes provider, status writer and leader election driven by the real
 * @kubernetes/client-node against the stand-in apiserver (test/fixtures/apiserver), which
 * speaks the real HTTP API (list/watch with resourceVersions, 410, status subresource, 409).
 */
import * as k8s from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/log.js';
import { StandInApiServer, type KubeObject } from '../../../test/fixtures/apiserver/apiserver.js';
import { TranslationCache, translateGatewayApi } from '../../gatewayapi/translate.js';
import { ResolvedWasmModules } from '../../gatewayapi/wasm-modules.js';
import type { ResourceSnapshot } from '../snapshot.js';
import { LeaderElector } from './leader-election.js';
import { DEFAULT_CONTROLLER_NAME, KubernetesProvider } from './provider.js';
import { StatusWriter, mergeStatus } from './status-writer.js';

const quiet = createLogger({ level: 'silent' });

const gatewayClass = (name: string, controllerName = DEFAULT_CONTROLLER_NAME): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GatewayClass',
  metadata: { name },
  spec: { controllerName },
});
const gateway = (name: string, className: string, ns = 'default'): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns },
  spec: { gatewayClassName: className, listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
});
const route = (name: string, ns = 'default', path = '/'): KubeObject => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: ns },
  spec: {
    parentRefs: [{ name: 'eg' }],
    rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: 'svc', port: 80 }] }],
  },
});
const service = (name: string, ns = 'default'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { ports: [{ port: 80, protocol: 'TCP' }] },
});

let api: StandInApiServer;
let kc: k8s.KubeConfig;

/**
 * A Gateway with three routes and a Service, and an invalid route: rejected, with the same
 * rejected value in every snapshot until it changes.
 */
function applyRoutesAndAnInvalidOne(): void {
  api.apply(gatewayClass('eg'));
  api.apply(gateway('eg', 'eg'));
  for (const r of ['r1', 'r2', 'r3']) api.apply(route(r));
  api.apply(service('svc'));
  api.apply({ ...route('bad'), spec: { parentRefs: 'not a list' } });
}
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  api = new StandInApiServer({ token: 'secret-token' });
  await api.start();
  kc = new k8s.KubeConfig();
  kc.loadFromString(api.kubeconfig());
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await api.close();
});

async function until(test: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function names(s: ResourceSnapshot | undefined, kind: keyof ResourceSnapshot['resources']): string[] {
  return [...(s?.resources[kind].keys() ?? [])].sort();
}

async function startProvider(
  opts: Partial<ConstructorParameters<typeof KubernetesProvider>[0]> = {},
): Promise<{ provider: KubernetesProvider; snapshots: ResourceSnapshot[] }> {
  const provider = new KubernetesProvider({ kubeConfig: kc, debounceMs: 20, restartDelayMs: 50, log: quiet, ...opts });
  const snapshots: ResourceSnapshot[] = [];
  provider.subscribe((s) => snapshots.push(s));
  cleanups.push(() => provider.stop());
  await provider.start();
  return { provider, snapshots };
}

describe('KubernetesProvider', () => {
  it('syncs, follows updates and deletes, and keeps only our GatewayClasses', async () => {
    api.apply(gatewayClass('eg'));
    api.apply(gatewayClass('other', 'example.com/another-controller'));
    api.apply(gateway('eg', 'eg'));
    api.apply(gateway('foreign', 'other'));
    api.apply(route('r1'));
    api.apply(service('svc'));
    const { provider } = await startProvider();
    const first = provider.current();
    expect(names(first, 'GatewayClass')).toEqual(['eg']);
    expect(names(first, 'Gateway')).toEqual(['default/eg']);
    expect(names(first, 'HTTPRoute')).toEqual(['default/r1']);
    expect(names(first, 'Service')).toEqual(['default/svc']);
    expect(first?.rejected).toEqual([]);
    // The informers used list then watch with the list's resourceVersion, authenticated.
    expect(
      api.requests.some(
        (r) =>
          r.path === '/apis/gateway.networking.k8s.io/v1/httproutes' &&
          /watch=true/.test(r.query) &&
          /resourceVersion=\d+/.test(r.query),
      ),
    ).toBe(true);

    api.apply(route('r2'));
    await until(() => names(provider.current(), 'HTTPRoute').length === 2, 'added route');
    api.apply(route('r1', 'default', '/changed'));
    await until(
      () => JSON.stringify(provider.current()?.resources.HTTPRoute.get('default/r1')).includes('/changed'),
      'updated route',
    );
    api.remove('HTTPRoute', 'default', 'r2');
    await until(() => names(provider.current(), 'HTTPRoute').join() === 'default/r1', 'deleted route');
  });

  it('relists after 410 Gone and sees what changed meanwhile', async () => {
    api.apply(gatewayClass('eg'));
    api.apply(route('r1'));
    const { provider } = await startProvider();
    const lists = (): number =>
      api.requests.filter((r) => r.path === '/apis/gateway.networking.k8s.io/v1/httproutes' && !/watch=/.test(r.query))
        .length;
    const before = lists();
    // Watches are cut, objects change while no watch is open, and the history is compacted
    // (all synchronously, so no client request is served in between): the reconnecting watch
    // gets 410 Expired, and the informer relists.
    api.closeWatches();
    api.remove('HTTPRoute', 'default', 'r1');
    api.apply(route('r3'));
    api.compact();
    await until(() => lists() > before, 'a relist');
    await until(() => names(provider.current(), 'HTTPRoute').join() === 'default/r3', 'state after relist');
  });

  it('restarts an informer that stopped on an error', async () => {
    api.apply(gatewayClass('eg'));
    const { provider } = await startProvider();
    // The next watch and the next list of routes fail with 500: ListWatch stops and reports.
    api.failNext('GET', /\/httproutes$/, 500, 2);
    api.closeWatches();
    await until(() => provider.restarts > 0, 'an informer restart');
    api.apply(route('late'));
    await until(() => names(provider.current(), 'HTTPRoute').join() === 'default/late', 'events after the restart');
  });

  it('keeps the resource object of every unchanged object across events, and replaces changed ones', async () => {
    applyRoutesAndAnInvalidOne();
    const { provider } = await startProvider();
    const snap = (): ResourceSnapshot => provider.current()!;
    const rejected = snap().rejected.map((r) => r.value);
    expect(snap().rejected.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual(['HTTPRoute default/bad']);
    const resources = (s: ResourceSnapshot): Map<string, unknown> =>
      new Map(
        (['GatewayClass', 'Gateway', 'HTTPRoute', 'Service'] as const).flatMap((k) =>
          [...s.resources[k]].map(([key, v]): [string, unknown] => [`${k} ${key}`, v]),
        ),
      );
    expect(provider.validations).toBe(7);
    const routeLists = (): number =>
      api.requests.filter((r) => r.path === '/apis/gateway.networking.k8s.io/v1/httproutes' && !/watch=/.test(r.query))
        .length;
    let listsBefore = 0;
    // [what happens, until which state, resources whose object is new, resources gone]
    const steps: [string, () => void, (s: ResourceSnapshot) => boolean, string[], string[]][] = [
      [
        'a route changes',
        () => api.apply(route('r1', 'default', '/changed')),
        (s) => JSON.stringify(s.resources.HTTPRoute.get('default/r1')).includes('/changed'),
        ['HTTPRoute default/r1'],
        [],
      ],
      [
        'a route is added',
        () => api.apply(route('r4')),
        (s) => s.resources.HTTPRoute.has('default/r4'),
        ['HTTPRoute default/r4'],
        [],
      ],
      [
        'a route is deleted',
        () => api.remove('HTTPRoute', 'default', 'r2'),
        (s) => !s.resources.HTTPRoute.has('default/r2'),
        [],
        ['HTTPRoute default/r2'],
      ],
      [
        'a Service (typed list object) changes',
        () => api.apply({ ...service('svc'), spec: { ports: [{ port: 81, protocol: 'TCP' }] } }),
        (s) => s.resources.Service.get('default/svc')?.spec.ports?.[0]?.port === 81,
        ['Service default/svc'],
        [],
      ],
      [
        // The watch is cut, r3 changes while none is open and the history is compacted: the
        // informer relists (410) and keeps the objects whose resourceVersion did not change.
        'a relist after 410 Gone',
        () => {
          listsBefore = routeLists();
          api.closeWatches();
          api.apply(route('r3', 'default', '/relisted'));
          api.compact();
        },
        (s) =>
          routeLists() > listsBefore && JSON.stringify(s.resources.HTTPRoute.get('default/r3')).includes('/relisted'),
        ['HTTPRoute default/r3'],
        [],
      ],
    ];
    for (const [what, act, reached, replaced, gone] of steps) {
      const before = resources(snap());
      const validations = provider.validations;
      act();
      await until(() => reached(snap()), what);
      const after = resources(snap());
      for (const key of gone) expect(after.has(key), `${what}: ${key} gone`).toBe(false);
      for (const [key, value] of after) {
        if (replaced.includes(key)) expect(value, `${what}: ${key} replaced`).not.toBe(before.get(key));
        else expect(value, `${what}: ${key} kept`).toBe(before.get(key));
      }
      expect(provider.validations - validations, what).toBe(replaced.length);
      expect(snap().rejected.map((r) => r.value)).toEqual(rejected);
      expect(snap().rejected[0]?.value, what).toBe(rejected[0]);
    }
  });

  it("lets the translator's TranslationCache translate a one-route change incrementally, with an invalid object around", async () => {
    applyRoutesAndAnInvalidOne();
    const { provider } = await startProvider();
    const cache = new TranslationCache();
    const translate = (): void =>
      void translateGatewayApi(provider.current()!, { wasmModules: new ResolvedWasmModules(), cache });
    translate();
    api.apply(route('r2', 'default', '/changed'));
    await until(
      () => JSON.stringify(provider.current()?.resources.HTTPRoute.get('default/r2')).includes('/changed'),
      'updated route',
    );
    translate();
    expect(cache.stats).toEqual({ full: 1, incremental: 1 });
  });

  it('watches only the given namespaces', async () => {
    api.apply(gatewayClass('eg'));
    api.apply(route('a', 'team-a'));
    api.apply(route('b', 'team-b'));
    const { provider } = await startProvider({ namespaces: ['team-a'] });
    expect(names(provider.current(), 'HTTPRoute')).toEqual(['team-a/a']);
    expect(names(provider.current(), 'GatewayClass')).toEqual(['eg']);
  });
});

describe('StatusWriter', () => {
  const accepted = (gen = 1) => ({
    conditions: [
      {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: 'Policy has been accepted.',
        observedGeneration: gen,
      },
    ],
  });
  const policy: KubeObject = {
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'EnvoyExtensionPolicy',
    metadata: { name: 'p', namespace: 'default' },
    spec: { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'eg' }] },
  };
  const ancestors = (message: string) => ({
    ancestors: [
      {
        ancestorRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'eg', namespace: 'default' },
        controllerName: DEFAULT_CONTROLLER_NAME,
        conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message, observedGeneration: 1 }],
      },
    ],
  });
  const puts = (): number => api.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/status')).length;

  it('writes the status subresource once, not again for the same status, keeping other controllers', async () => {
    api.apply(gatewayClass('eg'));
    api.apply({
      ...policy,
      status: { ancestors: [{ ancestorRef: { name: 'x' }, controllerName: 'example.com/other', conditions: [] }] },
    });
    // `apply` ignores status for kinds with a status subresource, like a real apiserver; set it
    // through the subresource as the other controller would.
    const live = api.get('EnvoyExtensionPolicy', 'default', 'p')!;
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.replaceNamespacedCustomObjectStatus({
      group: 'gateway.envoyproxy.io',
      version: 'v1alpha1',
      plural: 'envoyextensionpolicies',
      namespace: 'default',
      name: 'p',
      body: {
        ...live,
        status: { ancestors: [{ ancestorRef: { name: 'x' }, controllerName: 'example.com/other', conditions: [] }] },
      },
    });
    const writer = new StatusWriter({ kubeConfig: kc, controllerName: DEFAULT_CONTROLLER_NAME, log: quiet });
    await writer.setLeader(true);
    const base = puts();
    await writer.update([
      { kind: 'GatewayClass', name: 'eg', status: accepted() },
      { kind: 'EnvoyExtensionPolicy', namespace: 'default', name: 'p', status: ancestors('Policy has been accepted.') },
    ]);
    expect(puts() - base).toBe(2);
    const written = api.get('EnvoyExtensionPolicy', 'default', 'p')!;
    const entries = (written.status as { ancestors: { controllerName: string }[] }).ancestors;
    expect(entries.map((a) => a.controllerName)).toEqual(['example.com/other', DEFAULT_CONTROLLER_NAME]);
    expect(written.metadata.generation).toBe(1);
    const stamp = JSON.stringify(written.status).match(/"lastTransitionTime":"([^"]+)"/)?.[1];
    expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Same statuses again (a re-translation): no write at all.
    await writer.update([
      { kind: 'GatewayClass', name: 'eg', status: accepted() },
      { kind: 'EnvoyExtensionPolicy', namespace: 'default', name: 'p', status: ancestors('Policy has been accepted.') },
    ]);
    // A fresh writer (another replica) compares with the live object: still no write.
    const other = new StatusWriter({ kubeConfig: kc, controllerName: DEFAULT_CONTROLLER_NAME, log: quiet });
    await other.setLeader(true);
    await other.update([
      { kind: 'EnvoyExtensionPolicy', namespace: 'default', name: 'p', status: ancestors('Policy has been accepted.') },
    ]);
    expect(puts() - base).toBe(2);
    expect(other.stats.unchanged).toBe(1);
  });

  it('retries on 409 Conflict with a fresh read', async () => {
    api.apply(policy);
    const writer = new StatusWriter({
      kubeConfig: kc,
      controllerName: DEFAULT_CONTROLLER_NAME,
      log: quiet,
      backoffMs: 5,
    });
    await writer.setLeader(true);
    // Another writer changes the object between our GET and PUT: the first PUT gets 409.
    api.failNext('PUT', /envoyextensionpolicies\/p\/status$/, 409);
    await writer.update([{ kind: 'EnvoyExtensionPolicy', namespace: 'default', name: 'p', status: ancestors('ok') }]);
    expect(writer.stats).toMatchObject({ conflicts: 1, written: 1, failed: 0 });
    expect(JSON.stringify(api.get('EnvoyExtensionPolicy', 'default', 'p')!.status)).toContain('"ok"');
  });

  it('gets a real 409 from a stale resourceVersion', async () => {
    api.apply(policy);
    const stale = api.get('EnvoyExtensionPolicy', 'default', 'p')!;
    api.apply({
      ...policy,
      spec: { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'other' }] },
    });
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const err: unknown = await custom
      .replaceNamespacedCustomObjectStatus({
        group: 'gateway.envoyproxy.io',
        version: 'v1alpha1',
        plural: 'envoyextensionpolicies',
        namespace: 'default',
        name: 'p',
        body: { ...stale, status: {} },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect((err as k8s.ApiException<unknown>).code).toBe(409);
  });

  it('writes nothing while not leader, everything pending on becoming leader', async () => {
    api.apply(gatewayClass('eg'));
    const writer = new StatusWriter({ kubeConfig: kc, controllerName: DEFAULT_CONTROLLER_NAME, log: quiet });
    const base = puts();
    await writer.update([{ kind: 'GatewayClass', name: 'eg', status: accepted() }]);
    expect(puts()).toBe(base);
    await writer.setLeader(true);
    expect(puts()).toBe(base + 1);
  });

  it('keeps lastTransitionTime of unchanged conditions', () => {
    const t0 = '2026-01-01T00:00:00Z';
    const live = { conditions: [{ ...accepted().conditions[0]!, lastTransitionTime: t0 }] };
    const now = new Date('2026-02-02T00:00:00Z');
    expect(mergeStatus('GatewayClass', live, accepted(), DEFAULT_CONTROLLER_NAME, now)).toEqual(live);
    expect(mergeStatus('GatewayClass', live, accepted(2), DEFAULT_CONTROLLER_NAME, now)).toEqual({
      conditions: [{ ...accepted(2).conditions[0]!, lastTransitionTime: '2026-02-02T00:00:00Z' }],
    });
  });
});

describe('LeaderElector', () => {
  it('elects one leader and hands over when it stops', async () => {
    const events: string[] = [];
    const make = (id: string): LeaderElector => {
      const e = new LeaderElector({
        kubeConfig: kc,
        namespace: 'envext-system',
        identity: id,
        leaseDurationMs: 1000,
        renewDeadlineMs: 800,
        retryPeriodMs: 100,
        log: quiet,
        onStartedLeading: () => events.push(`${id}+`),
        onStoppedLeading: () => events.push(`${id}-`),
      });
      cleanups.push(() => e.stop());
      return e;
    };
    const a = make('a');
    a.start();
    await until(() => a.isLeader(), 'a leads');
    const b = make('b');
    b.start();
    await new Promise((r) => setTimeout(r, 400));
    expect(b.isLeader()).toBe(false);
    expect(api.get('Lease', 'envext-system', 'envext-serve')?.spec).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 1,
    });

    await a.stop(); // releases the lease
    await until(() => b.isLeader(), 'b takes over');
    expect(events).toEqual(['a+', 'a-', 'b+']);
    expect(api.get('Lease', 'envext-system', 'envext-serve')?.spec).toMatchObject({
      holderIdentity: 'b',
      leaseTransitions: 1,
    });
  });

  it('takes over an expired lease of a replica that vanished', async () => {
    api.apply({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'envext-serve', namespace: 'envext-system' },
      spec: {
        holderIdentity: 'crashed',
        leaseDurationSeconds: 1,
        renewTime: '2026-01-01T00:00:00.000000Z',
        leaseTransitions: 3,
      },
    });
    const e = new LeaderElector({
      kubeConfig: kc,
      namespace: 'envext-system',
      identity: 'c',
      leaseDurationMs: 1000,
      retryPeriodMs: 100,
      log: quiet,
    });
    cleanups.push(() => e.stop());
    e.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(e.isLeader()).toBe(false); // not before the lease duration has passed on our clock
    await until(() => e.isLeader(), 'take-over after expiry');
    expect(api.get('Lease', 'envext-system', 'envext-serve')?.spec).toMatchObject({
      holderIdentity: 'c',
      leaseTransitions: 4,
    });
  });
});
