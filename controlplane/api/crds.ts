/**
 * CustomResourceDefinition manifests for the three `gateway.envoyproxy.io/v1alpha1` kinds envext
 * reads, generated from the same schema declarations the validator runs (schemas.ts), so the
 * API server enforces exactly what `envext translate` and the file provider enforce. The files
 * under `crds/` are these manifests; the test regenerates them with `npm run testdata:update`.
 *
 * Names, short names, categories and scope follow Envoy Gateway's generated CRDs, so these can
 * be applied to a cluster that does not run Envoy Gateway, and Envoy Gateway's own CRDs can be
 * used with envext.
 */
import { toOpenApi, type Schema } from './schema.js';
import { SCHEMAS } from './schemas.js';

export interface CrdSpec {
  readonly kind: 'EnvoyExtensionPolicy' | 'Backend' | 'EnvoyProxy';
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
}

export const CRDS: readonly CrdSpec[] = [
  {
    kind: 'EnvoyExtensionPolicy',
    plural: 'envoyextensionpolicies',
    singular: 'envoyextensionpolicy',
    shortNames: ['eep'],
    categories: ['envoy-gateway'],
  },
  { kind: 'Backend', plural: 'backends', singular: 'backend', shortNames: ['be'], categories: ['envoy-gateway'] },
  {
    kind: 'EnvoyProxy',
    plural: 'envoyproxies',
    singular: 'envoyproxy',
    shortNames: ['eproxy'],
    categories: ['envoy-gateway'],
  },
];

const GROUP = 'gateway.envoyproxy.io';

function specSchema(kind: CrdSpec['kind']): Schema {
  const root = SCHEMAS[kind];
  if (root.type !== 'object' || root.properties === undefined) throw new Error(`schema of ${kind} has no properties`);
  const spec = root.properties['spec'];
  if (spec === undefined) throw new Error(`schema of ${kind} has no spec`);
  return spec;
}

/** The CRD manifest of one kind, as a plain object ready for YAML. */
export function crdManifest(crd: CrdSpec): Record<string, unknown> {
  const statusSchema =
    crd.kind === 'EnvoyExtensionPolicy'
      ? {
          type: 'object',
          description:
            'Gateway API PolicyStatus: one entry per ancestor (Gateway, listener) the policy attaches through.',
          'x-kubernetes-preserve-unknown-fields': true,
        }
      : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${crd.plural}.${GROUP}`,
      annotations: { 'envext.dev/generated-from': 'controlplane/api/schemas.ts' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: crd.kind,
        listKind: `${crd.kind}List`,
        plural: crd.plural,
        singular: crd.singular,
        shortNames: [...crd.shortNames],
        categories: [...crd.categories],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: toOpenApi(specSchema(crd.kind)),
                status: statusSchema,
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}
