/**
 * A translation that throws publishes nothing: connected Envoys keep the last good config
 * (Envoy Gateway's behaviour), the error is counted, and the next good snapshot goes out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { snapshotOf, type ResourceSnapshot } from '../provider/snapshot.js';
import { WasmModuleCache } from '../wasm-cache/module-cache.js';
import { ModuleServer } from '../wasm-cache/server.js';
import { ControlPlane, type ResourceSource } from './control-plane.js';

const quiet = createLogger({ level: 'silent' });

function objects(path: string): unknown[] {
  return [
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'eg' },
      spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'eg', namespace: 'default' },
      spec: { gatewayClassName: 'eg', listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
    },
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'app', namespace: 'default' },
      spec: { endpoints: [{ ip: { address: '10.0.0.1', port: 8080 } }] },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'default' },
      spec: {
        parentRefs: [{ name: 'eg' }],
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: path } }],
            backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'app', port: 8080 }],
          },
        ],
      },
    },
  ];
}

/** A source the test drives by hand. */
class ManualSource implements ResourceSource {
  private fn: ((s: ResourceSnapshot) => void) | undefined;
  constructor(private readonly first: ResourceSnapshot) {}
  start(): Promise<ResourceSnapshot> {
    return Promise.resolve(this.first);
  }
  subscribe(fn: (s: ResourceSnapshot) => void): () => void {
    this.fn = fn;
    return () => (this.fn = undefined);
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  push(s: ResourceSnapshot): void {
    this.fn?.(s);
  }
}

describe('envext serve when a translation fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'envext-serve-fail-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the last published snapshot and recovers with the next good one', async () => {
    const source = new ManualSource(snapshotOf(objects('/a')));
    const wasmCache = new WasmModuleCache({ dir, servingBaseUrl: 'http://127.0.0.1:1', log: quiet });
    const cp = new ControlPlane({
      source,
      wasmCache,
      moduleServer: new ModuleServer({ cache: wasmCache, port: 0, log: quiet }),
      xdsAddress: '127.0.0.1:0',
      adminAddress: '127.0.0.1:0',
      log: quiet,
    });
    await cp.start();
    try {
      const good = cp.cache.get('default/eg')!.version;
      // A snapshot the translators cannot handle (a provider bug): no kind maps at all.
      source.push({ resources: {}, rejected: [], revision: 99 } as unknown as ResourceSnapshot);
      await cp.idle();
      expect(cp.cache.get('default/eg')!.version).toBe(good);
      expect(await cp.registry.getSingleMetricAsString('envext_translations_total')).toMatch(/result="error"} 1/);
      source.push(snapshotOf(objects('/b')));
      await cp.idle();
      expect(Number(cp.cache.get('default/eg')!.version)).toBeGreaterThan(Number(good));
    } finally {
      await cp.stop();
    }
  });
});
