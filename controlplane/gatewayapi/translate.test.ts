/**
 * Golden files for the Gateway API translator (STYLE.md §6): every `testdata/<case>.in.yaml`
 * (and the quickstart example) is loaded the way the file provider loads it, Wasm sources go
 * through Envoy Gateway's deterministic mock, and the statuses plus the IR are compared with
 * `testdata/<case>.out.yaml`. `npm run testdata:update` rewrites the outputs.
 */
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { toYaml } from '../xds/translator/render.js';
import { translateInput } from './golden.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const testdata = join(here, 'testdata');

const cases: { name: string; input: string }[] = [
  ...globSync('*.in.yaml', { cwd: testdata })
    .sort()
    .map((f) => ({ name: basename(f, '.in.yaml'), input: join(testdata, f) })),
  { name: 'quickstart', input: join(root, 'examples', 'quickstart') },
];

describe('translateGatewayApi golden files', () => {
  it.each(cases)('$name', async ({ name, input }) => {
    const doc = await translateInput(input, root);
    await expect(toYaml(doc)).toMatchFileSnapshot(join(testdata, `${name}.out.yaml`));
  });

  it('has no output without an input', () => {
    const names = new Set(cases.map((c) => c.name));
    const orphans = globSync('*.out.yaml', { cwd: testdata }).filter((f) => !names.has(basename(f, '.out.yaml')));
    expect(orphans).toEqual([]);
  });
});

describe('TranslationCache', () => {
  it.each(cases)('$name: translating with a warm cache gives the same result as without', async ({ input }) => {
    const { loadFiles, snapshotFromObjects, yamlFiles } = await import('../provider/file/load.js');
    const { builderFrom } = await import('../provider/snapshot.js');
    const { DeterministicWasmResolver } = await import('./wasm-modules.js');
    const { TranslationCache, translateGatewayApi } = await import('./translate.js');
    const { snapshot } = snapshotFromObjects(loadFiles(await yamlFiles([input]), root).objects);
    const wasmModules = new DeterministicWasmResolver();
    const cache = new TranslationCache();
    const first = translateGatewayApi(snapshot, { wasmModules, cache });
    expect(first).toEqual(translateGatewayApi(snapshot, { wasmModules }));
    // Change one route (drop its last rule) and one backend-like object; cached and fresh results agree.
    const b = builderFrom(snapshot);
    const route = [...snapshot.resources.HTTPRoute.values()][0];
    if (route !== undefined)
      b.put('HTTPRoute', { ...route, spec: { ...route.spec, rules: (route.spec.rules ?? []).slice(0, -1) } });
    const changed = b.build(1);
    expect(translateGatewayApi(changed, { wasmModules, cache })).toEqual(translateGatewayApi(changed, { wasmModules }));
    const b2 = builderFrom(changed);
    const backend = [...changed.resources.Backend.values()][0];
    if (backend !== undefined) b2.delete('Backend', backend.metadata.namespace, backend.metadata.name);
    const changed2 = b2.build(2);
    expect(translateGatewayApi(changed2, { wasmModules, cache })).toEqual(
      translateGatewayApi(changed2, { wasmModules }),
    );
  });
});

describe('TranslationCache with a new resolution object per change', () => {
  it('keeps the memo for equal resolutions and drops it when one changes', async () => {
    const { loadFiles, snapshotFromObjects, yamlFiles } = await import('../provider/file/load.js');
    const { wasmModuleRequests } = await import('./envoy-extension-policy.js');
    const { DeterministicWasmResolver, resolveWasmModules } = await import('./wasm-modules.js');
    const { TranslationCache, translateGatewayApi } = await import('./translate.js');
    const { snapshot } = snapshotFromObjects(
      loadFiles(await yamlFiles([join(root, 'examples', 'quickstart')]), root).objects,
    );
    const requests = wasmModuleRequests(snapshot);
    const a = await resolveWasmModules(requests, new DeterministicWasmResolver());
    const b = await resolveWasmModules(requests, new DeterministicWasmResolver());
    expect(a).not.toBe(b);
    expect(a.fingerprint()).toBe(b.fingerprint());
    const cache = new TranslationCache();
    translateGatewayApi(snapshot, { wasmModules: a, cache });
    expect(cache.prepare(snapshot, b, 'gateway.envoyproxy.io/gatewayclass-controller|envoy-gateway-system|true')).toBe(
      true,
    );
    // A different serving URL for one module: the memo is dropped and the new URL is used.
    const changed = await resolveWasmModules(requests, {
      resolve: (r) =>
        Promise.resolve({ ok: true, servingUrl: `http://other/${r.policy.name}.wasm`, sha256: 'a'.repeat(64) }),
    });
    const result = translateGatewayApi(snapshot, { wasmModules: changed, cache });
    expect(result).toEqual(translateGatewayApi(snapshot, { wasmModules: changed }));
    expect(JSON.stringify(Object.fromEntries(result.ir))).toContain('http://other/shop-extensions.wasm');
  });
});
