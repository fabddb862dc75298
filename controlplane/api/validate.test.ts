import { describe, expect, it } from 'vitest';
import { parseResource } from './validate.js';

const eep = (spec: Record<string, unknown>): unknown => ({
  apiVersion: 'gateway.envoyproxy.io/v1alpha1',
  kind: 'EnvoyExtensionPolicy',
  metadata: { name: 'p', namespace: 'default' },
  spec,
});
const gwTarget = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' };
const svcRef = { name: 'proc', port: 9000 };

/** Each Envoy Gateway CEL rule, with the exact message it produces. */
const cases: ReadonlyArray<{ name: string; input: unknown; error?: string }> = [
  { name: 'minimal valid policy', input: eep({ targetRefs: [gwTarget] }) },
  { name: 'no target', input: eep({}), error: 'spec: either targetRef or targetRefs must be used' },
  {
    name: 'both targetRef and targetRefs',
    input: eep({ targetRef: gwTarget, targetRefs: [gwTarget] }),
    error: 'spec: either targetRef or targetRefs must be used',
  },
  {
    name: 'both, with selectors (accepted quirk)',
    input: eep({
      targetRef: gwTarget,
      targetRefs: [gwTarget],
      targetSelectors: [{ kind: 'HTTPRoute', matchLabels: { a: 'b' } }],
    }),
  },
  {
    name: 'targetRef group',
    input: eep({ targetRef: { ...gwTarget, group: 'x.io' } }),
    error: 'spec: this policy can only have a targetRef.group of gateway.networking.k8s.io',
  },
  {
    name: 'targetRefs kind',
    input: eep({ targetRefs: [{ ...gwTarget, kind: 'Service' }] }),
    error:
      'spec: this policy can only have a targetRefs[*].kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute',
  },
  {
    name: 'mergeType on a Gateway',
    input: eep({ targetRefs: [gwTarget], mergeType: 'JSONMerge' }),
    error: 'spec: mergeType can only be used with xRoute targets',
  },
  {
    name: 'mergeType Replace',
    input: eep({ targetRefs: [{ ...gwTarget, kind: 'HTTPRoute' }], mergeType: 'Replace' }),
    error: 'spec.mergeType: Replace is not a valid MergeType for EnvoyExtensionPolicy',
  },
  {
    name: 'selector group',
    input: eep({ targetSelectors: [{ group: 'x.io', kind: 'HTTPRoute' }] }),
    error: 'spec.targetSelectors[0]: group must be gateway.networking.k8s.io',
  },
  {
    name: 'selector from Selector',
    input: eep({ targetSelectors: [{ kind: 'HTTPRoute', namespaces: { from: 'Selector' } }] }),
    error: 'spec.targetSelectors[0].namespaces: selector must be specified when from is Selector',
  },
  {
    name: 'wasm HTTP without http',
    input: eep({ targetRefs: [gwTarget], wasm: [{ code: { type: 'HTTP' } }] }),
    error: 'spec.wasm[0].code: If type is HTTP, http field needs to be set.',
  },
  {
    name: 'wasm Image with http',
    input: eep({ targetRefs: [gwTarget], wasm: [{ code: { type: 'Image', http: { url: 'https://x/y.wasm' } } }] }),
    error:
      'spec.wasm[0].code: If type is HTTP, http field needs to be set.\nspec.wasm[0].code: If type is Image, image field needs to be set.',
  },
  {
    name: 'wasm type enum',
    input: eep({ targetRefs: [gwTarget], wasm: [{ code: { type: 'ConfigMap' } }] }),
    error: 'spec.wasm[0].code.type: Unsupported value: "ConfigMap": supported values: "HTTP", "Image"',
  },
  {
    name: 'pull secret kind',
    input: eep({
      targetRefs: [gwTarget],
      wasm: [{ code: { type: 'Image', image: { url: 'r/i:v', pullSecretRef: { name: 's', kind: 'ConfigMap' } } } }],
    }),
    error: 'spec.wasm[0].code.image.pullSecretRef: only support Secret kind.',
  },
  {
    name: 'more than 16 wasm',
    input: eep({
      targetRefs: [gwTarget],
      wasm: Array.from({ length: 17 }, () => ({ code: { type: 'HTTP', http: { url: 'https://x/y.wasm' } } })),
    }),
    error: 'spec.wasm: must have at most 16 items',
  },
  {
    name: 'extProc backendRef',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRef: svcRef }] }),
    error: 'spec.extProc[0]: BackendRefs must be used, backendRef is not supported.',
  },
  {
    name: 'extProc Service without port',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [{ name: 'proc' }] }] }),
    error: 'spec.extProc[0].backendRefs[0]: Must have port for Service reference',
  },
  {
    name: 'extProc kind',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [{ ...svcRef, kind: 'Pod' }] }] }),
    error: 'spec.extProc[0]: BackendRefs only supports Service, ServiceImport, and Backend kind.',
  },
  {
    name: 'extProc group',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [{ ...svcRef, group: 'x.io', kind: 'Backend' }] }] }),
    error: 'spec.extProc[0]: BackendRefs only supports Core, multicluster.x-k8s.io, and gateway.envoyproxy.io groups.',
  },
  {
    name: 'full duplex with failOpen',
    input: eep({
      targetRefs: [gwTarget],
      extProc: [
        { backendRefs: [svcRef], failOpen: true, processingMode: { response: { body: 'FullDuplexStreamed' } } },
      ],
    }),
    error: 'spec.extProc[0]: If FullDuplexStreamed body processing mode is used, FailOpen must be false.',
  },
  {
    name: 'shadow mode with buffered body',
    input: eep({
      targetRefs: [gwTarget],
      extProc: [{ backendRefs: [svcRef], shadowMode: true, processingMode: { request: { body: 'Buffered' } } }],
    }),
    error: 'spec.extProc[0]: If shadowMode is enabled, body processing mode must be Streamed or unset.',
  },
  {
    name: 'writable namespaces',
    input: eep({
      targetRefs: [gwTarget],
      extProc: [{ backendRefs: [svcRef], metadata: { writableNamespaces: ['envoy.filters.http.ext_authz'] } }],
    }),
    error:
      'spec.extProc[0].metadata.writableNamespaces: writableNamespaces cannot contain well-known Envoy HTTP filter namespaces',
  },
  {
    name: 'message timeout',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [svcRef], messageTimeout: '2x' }] }),
    error: "spec.extProc[0].messageTimeout: should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'",
  },
  {
    name: 'status on error',
    input: eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [svcRef], statusOnError: 418 }] }),
    error: 'spec.extProc[0].statusOnError: Unsupported value: 418',
  },
  {
    name: 'attribute pattern',
    input: eep({
      targetRefs: [gwTarget],
      extProc: [{ backendRefs: [svcRef], processingMode: { request: { attributes: ['secret.thing'] } } }],
    }),
    error: 'spec.extProc[0].processingMode.request.attributes[0]: should match',
  },
  {
    name: 'backend: ip and unix together',
    input: {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'b' },
      spec: { endpoints: [{ ip: { address: '10.0.0.1', port: 1 }, unix: { path: '/x' } }] },
    },
    error: 'spec.endpoints[0]: only one of fqdn, ip or unix can be specified',
  },
  {
    name: 'backend: long socket path',
    input: {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'b' },
      spec: { endpoints: [{ unix: { path: `/${'x'.repeat(120)}` } }] },
    },
    error: 'spec.endpoints[0].unix.path: unix domain socket path must not exceed 108 characters',
  },
  {
    name: 'envoyproxy: before and after',
    input: {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyProxy',
      metadata: { name: 'e' },
      spec: {
        filterOrder: [
          { name: 'envoy.filters.http.wasm', before: 'envoy.filters.http.cors', after: 'envoy.filters.http.rbac' },
        ],
      },
    },
    error: 'spec.filterOrder[0]: only one of before or after can be specified',
  },
  {
    name: 'wrong API group',
    input: { apiVersion: 'v1', kind: 'Backend', metadata: { name: 'b' }, spec: {} },
    error: 'apiVersion: Backend belongs to API group "gateway.envoyproxy.io", not ""',
  },
  {
    name: 'unknown kind',
    input: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } },
    error: 'kind: unknown kind "Pod"',
  },
  { name: 'not an object', input: 'text', error: ': a resource must be a YAML/JSON object' },
];

describe('parseResource', () => {
  it.each(cases)('$name', ({ input, error }) => {
    const r = parseResource(input, 'test.yaml:1');
    if (error === undefined) {
      expect(r.ok ? [] : r.problems).toEqual([]);
      return;
    }
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => `${p.field}: ${p.message}`).join('\n')).toContain(error);
  });

  it('matches keys case-insensitively and applies defaults', () => {
    const r = parseResource(
      eep({ targetRefs: [gwTarget], extProc: [{ BackendRefs: [{ Name: 'proc', Port: 9000 }] }] }),
      'x',
    );
    expect(r.ok).toBe(true);
    if (r.ok)
      expect((r.resource as unknown as { spec: { extProc: unknown[] } }).spec.extProc[0]).toMatchObject({
        backendRefs: [{ name: 'proc', port: 9000, group: '', kind: 'Service', weight: 1 }],
        failOpen: false,
      });
  });

  it('shares every part of the input that validation left as it was', () => {
    const input = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'r', namespace: 'default', labels: { app: 'x' } },
      spec: {
        parentRefs: [{ name: 'gw' }],
        hostnames: ['a.example.com'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 's', port: 80 }] }],
      },
    };
    const r = parseResource(input, 'x');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const out = r.resource as unknown as typeof input;
    expect(out.metadata).toBe(input.metadata);
    expect(out.spec.parentRefs).toBe(input.spec.parentRefs);
    expect(out.spec.hostnames).toBe(input.spec.hostnames);
    expect(out.spec.rules[0]?.matches).toBe(input.spec.rules[0]?.matches);
    // backendRef defaults (group, kind, weight): that path is copied, the input left as it was.
    expect(out.spec.rules[0]?.backendRefs).not.toBe(input.spec.rules[0]?.backendRefs);
    expect(input.spec.rules[0]?.backendRefs).toEqual([{ name: 's', port: 80 }]);
    // Defaults (ext_proc backendRef group/kind/weight, failOpen) copy only the path to what they touch.
    const policy = eep({ targetRefs: [gwTarget], extProc: [{ backendRefs: [{ name: 'proc', port: 9000 }] }] });
    const p = parseResource(policy, 'y');
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    const spec = (p.resource as unknown as { spec: Record<string, unknown> }).spec;
    const given = (policy as { spec: Record<string, unknown> }).spec;
    expect(spec['targetRefs']).toBe(given['targetRefs']);
    expect(spec['extProc']).not.toBe(given['extProc']);
    expect(given['extProc']).toEqual([{ backendRefs: [{ name: 'proc', port: 9000 }] }]); // the input is never changed
  });

  it('names the resource and source in every problem', () => {
    const r = parseResource(eep({}), 'policies.yaml:7');
    expect(r.ok ? '' : r.problems[0]?.resource).toBe('EnvoyExtensionPolicy default/p (policies.yaml:7)');
  });
});
