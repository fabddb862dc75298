/**
 * `envext serve --provider kubernetes` as a command, against the stand-in apiserver with the
 * real client-node: it elects itself leader (Lease), translates what it watches, writes
 * statuses to the status subresources, and follows changes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { program } from '../../bin/commands.js';
import { runCli } from '../../bin/dispatch.js';
import { StandInApiServer } from '../../test/fixtures/apiserver/apiserver.js';

const sink = (): Writable & { text: string } => {
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
};

async function until(test: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('envext serve --provider kubernetes', () => {
  const api = new StandInApiServer();
  let dir: string;
  const abort = new AbortController();
  let run: Promise<number>;
  const out = sink();
  const err = sink();

  beforeAll(async () => {
    await api.start();
    dir = mkdtempSync(join(tmpdir(), 'envext-serve-k8s-'));
    writeFileSync(join(dir, 'kubeconfig'), api.kubeconfig());
    api.apply({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'GatewayClass',
      metadata: { name: 'eg' },
      spec: { controllerName: 'gateway.envoyproxy.io/gatewayclass-controller' },
    });
    api.apply({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'eg', namespace: 'default' },
      spec: { gatewayClassName: 'eg', listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
    });
    api.apply({
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'app', namespace: 'default' },
      spec: { endpoints: [{ ip: { address: '10.0.0.1', port: 8080 } }] },
    });
    api.apply({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        parentRefs: [{ name: 'eg' }],
        rules: [{ backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'app', port: 8080 }] }],
      },
    });
    run = runCli(
      program,
      [
        '--log-level',
        'warn',
        'serve',
        '--provider',
        'kubernetes',
        '--kubeconfig',
        join(dir, 'kubeconfig'),
        '--xds-address',
        '127.0.0.1:0',
        '--wasm-address',
        '127.0.0.1:0',
        '--admin-address',
        '127.0.0.1:0',
        '--wasm-cache-dir',
        join(dir, 'cache'),
      ],
      { stdout: out, stderr: err, signal: abort.signal },
    );
  });

  afterAll(async () => {
    abort.abort();
    await run;
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('leads, writes statuses once, and follows changes', async () => {
    await until(() => out.text.includes('envext serve is running (kubernetes provider)'), 'startup');
    expect(out.text).toContain('Gateways (node.cluster):     default/eg');
    await until(
      () => JSON.stringify(api.get('Gateway', 'default', 'eg')?.status ?? {}).includes('Programmed'),
      'Gateway status',
    );
    expect(api.get('Lease', 'envext-system', 'envext-serve')?.spec).toMatchObject({ leaseDurationSeconds: 15 });
    // Statuses are written one after another: wait for the route's rather than assume its order.
    await until(
      () => JSON.stringify(api.get('HTTPRoute', 'default', 'web')?.status ?? {}).includes('"reason":"Accepted"'),
      'HTTPRoute status',
    );
    const puts = (): number => api.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/status')).length;
    // Every status of the first translation is written (the Backend's comes last), then quiet.
    await until(() => api.get('Backend', 'default', 'app')?.status !== undefined, 'Backend status');
    await new Promise((r) => setTimeout(r, 300));
    const before = puts();

    // A route that references a missing Backend gets ResolvedRefs=False, written once.
    api.apply({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        parentRefs: [{ name: 'eg' }],
        rules: [{ backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'missing', port: 8080 }] }],
      },
    });
    await until(
      () => JSON.stringify(api.get('HTTPRoute', 'default', 'web')?.status).includes('"status":"False"'),
      'route status update',
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(puts() - before).toBe(1);
    expect(err.text).not.toMatch(/error/i);
  });
});
