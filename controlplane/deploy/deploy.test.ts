/**
 * The deploy manifests agree with the code: RBAC grants what the provider, status writer and
 * leader election use (and no write verbs beyond that), the Deployment passes flags `envext
 * serve` declares, and the Envoy bootstrap is what `envext bootstrap` prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KINDS } from '../provider/kubernetes/kinds.js';
import { renderBootstrap } from '../serve/bootstrap.js';
import { serveCommand } from '../serve/cli.js';

type Obj = Record<string, unknown> & { kind: string; metadata: { name: string } };
const dir = import.meta.dirname;
const load = (f: string): Obj[] => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as Obj);

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function allowed(rules: Rule[], group: string, resource: string, verb: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

describe('deploy manifests', () => {
  const rbac = load('rbac.yaml');
  const clusterRole = rbac.find((o) => o.kind === 'ClusterRole')!;
  const role = rbac.find((o) => o.kind === 'Role')!;
  const rules = clusterRole.rules as Rule[];

  it.each(KINDS.map((k) => [k.kind, k] as const))('RBAC lets the provider list and watch %s', (_kind, k) => {
    for (const verb of ['get', 'list', 'watch']) expect(allowed(rules, k.group, k.plural, verb)).toBe(true);
    expect(allowed(rules, k.group, `${k.plural}/status`, 'update')).toBe(k.status);
  });

  it('grants no write verb on a spec, and leases only in its namespace', () => {
    for (const r of rules) {
      const writes = r.verbs.filter((v) => !['get', 'list', 'watch'].includes(v));
      if (writes.length > 0) expect(r.resources.every((x) => x.endsWith('/status'))).toBe(true);
    }
    expect(role.metadata).toMatchObject({ namespace: 'envext-system' });
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);
  });

  it('runs envext serve with flags it declares', () => {
    const deployment = load('controlplane.yaml').find((o) => o.kind === 'Deployment')!;
    const container = ((deployment.spec as Obj).template as { spec: { containers: { args: string[] }[] } }).spec
      .containers[0]!;
    expect(container.args[0]).toBe('serve');
    const global = ['log-format', 'log-level'];
    for (const a of container.args.slice(1)) {
      const name = /^--([a-z-]+)/.exec(a)?.[1];
      expect(name !== undefined && (name in (serveCommand.options ?? {}) || global.includes(name)), a).toBe(true);
    }
  });

  it('gives Envoy the bootstrap envext bootstrap prints', () => {
    const cm = load('envoy.yaml').find((o) => o.kind === 'ConfigMap')!;
    const want = renderBootstrap({ gateway: 'default/eg', xdsAddress: 'envext.envext-system.svc.cluster.local:18000' });
    expect((cm.data as Record<string, string>)['envoy.yaml']).toBe(want);
  });

  it('shares the ext_proc socket between Envoy and the sidecar', () => {
    const deployment = load('envoy.yaml').find((o) => o.kind === 'Deployment')!;
    const pod = (
      (deployment.spec as Obj).template as {
        spec: {
          containers: { name: string; args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
          volumes: { name: string; emptyDir?: object }[];
        };
      }
    ).spec;
    const mounts = pod.containers.map((c) => c.volumeMounts.find((m) => m.name === 'ext-proc-socket')?.mountPath);
    expect(mounts).toEqual(['/var/run/envext', '/var/run/envext']);
    expect(pod.volumes.find((v) => v.name === 'ext-proc-socket')?.emptyDir).toEqual({});
    expect(pod.containers[1]!.args).toContain('--uds=/var/run/envext/ext-proc.sock');
  });
});
