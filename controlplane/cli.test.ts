/**
 * `envext translate` end to end through the real CLI dispatcher: the quickstart prints statuses
 * and xDS; bad input gives conditions or a clear error, never a crash; the real resolver fetches
 * a module from a local HTTP server and verifies its sha256.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../bin/dispatch.js';
import { translateCommand } from './cli.js';

// Only this command, so the test does not depend on which other commands bin/commands.ts lists.
const program = { root: { name: 'envext', summary: 'test', subcommands: [translateCommand] }, version: '0.0.0-test' };

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(program, ['--log-level', 'error', ...argv], {
    stdout,
    stderr,
    signal: new AbortController().signal,
  });
  return { code, stdout: out, stderr: err };
}

type Doc = Record<
  string,
  {
    metadata: { name: string };
    status?: { ancestors?: { conditions: { type: string; status: string; message: string }[] }[] };
  }[]
> & {
  xds?: Record<string, Record<string, unknown[]>>;
  problems?: { resource: string; messages: string[] }[];
};

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'envext-translate-'));
  dirs.push(d);
  return d;
}

describe('envext translate', () => {
  it('prints statuses and xDS for the quickstart (--offline says so)', async () => {
    const r = await run(['translate', '-f', 'examples/quickstart/', '--type', 'all', '--offline']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--offline: Wasm modules are not fetched/);
    const doc = parse(r.stdout) as Doc;
    const policies = doc['envoyExtensionPolicies'] ?? [];
    expect(policies.map((p) => p.metadata.name)).toEqual(['gateway-defaults', 'shop-extensions']);
    for (const p of policies)
      expect(p.status?.ancestors?.[0]?.conditions[0]).toMatchObject({ type: 'Accepted', status: 'True' });
    const xds = doc.xds?.['default/eg'];
    expect(Object.keys(xds ?? {})).toEqual(['clusters', 'endpoints', 'listeners', 'routes']);
    const text = JSON.stringify(xds?.['listeners']);
    // filterOrder in the quickstart's EnvoyProxy puts wasm before ext_proc.
    expect(text.indexOf('envoy.filters.http.wasm/envoyextensionpolicy/default/shop-extensions/wasm/0')).toBeLessThan(
      text.indexOf('envoy.filters.http.ext_proc/envoyextensionpolicy/default/shop-extensions/extproc/0'),
    );
    expect(JSON.stringify(xds?.['endpoints'])).toContain('{"pipe":{"path":"/var/run/envext/ext-proc.sock"}}');
  });

  it('prints JSON', async () => {
    const r = await run([
      'translate',
      '-f',
      'examples/quickstart/gateway.yaml',
      '-t',
      'status',
      '-o',
      'json',
      '--offline',
    ]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Doc)['gateways']?.[0]?.metadata.name).toBe('eg');
  });

  it.each([
    [['translate'], 2, /no input/],
    [['translate', '-f', 'examples/quickstart', '--type', 'clusters'], 2, /--type must be status, xds or all/],
    [
      ['translate', '-f', 'does/not/exist.yaml'],
      1,
      /cannot read does\/not\/exist\.yaml: no such file or directory \(pass existing YAML files/,
    ],
  ])('%j exits %i with a clear error', async (argv, code, message) => {
    const r = await run(argv);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
  });

  it('reports YAML syntax errors with file:line:column', async () => {
    const d = temp();
    writeFileSync(join(d, 'bad.yaml'), 'kind: Gateway\nmetadata: {name: [x\n');
    const r = await run(['translate', '-f', d, '--offline']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('gives invalid resources a problem entry and a condition, and keeps going', async () => {
    const d = temp();
    writeFileSync(
      join(d, 'in.yaml'),
      [
        'apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}',
        'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: default}\nspec: {gatewayClassName: c, listeners: [{name: http, protocol: HTTP, port: 80}]}',
        'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec: {parentRefs: [{name: g}], rules: [{backendRefs: [{name: nope, port: 80}]}]}',
        'apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: p, namespace: default}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]\n  extProc: [{backendRefs: [{name: missing, port: 9}]}]',
        'apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: bad, namespace: default}\nspec: {wasm: [{code: {type: HTTP}}]}',
      ].join('\n---\n'),
    );
    const r = await run(['translate', '-f', d, '--offline']);
    expect(r.code).toBe(0);
    const doc = parse(r.stdout) as Doc;
    const p = doc['envoyExtensionPolicies']?.find((x) => x.metadata.name === 'p');
    expect(p?.status?.ancestors?.[0]?.conditions[0]).toMatchObject({
      type: 'Accepted',
      status: 'False',
      message: 'ExtProc: service default/missing not found.',
    });
    expect(doc.problems?.[0]?.resource).toBe('EnvoyExtensionPolicy default/bad');
    expect(doc.problems?.[0]?.messages.join('\n')).toContain('either targetRef or targetRefs must be used');
    const routes = JSON.stringify(doc.xds?.['default/g']?.['routes']);
    expect(routes).toContain('"direct_response":{"status":500}');
  });
});

describe('envext translate: fetching modules for real', () => {
  const wasm = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const sum = createHash('sha256').update(wasm).digest('hex');
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/filter.wasm') res.end(wasm);
      else if (req.url === '/not-wasm.wasm') res.end('<html>');
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    base = typeof a === 'object' && a !== null ? `http://127.0.0.1:${a.port}` : '';
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('verifies the module and puts its sha256 in the wasm filter; bad modules become conditions', async () => {
    const d = temp();
    const policy = (name: string, url: string, sha?: string): string =>
      `apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyExtensionPolicy\nmetadata: {name: ${name}, namespace: default}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${name}}]\n  wasm: [{code: {type: HTTP, http: {url: "${url}"${sha === undefined ? '' : `, sha256: "${sha}"`}}}}]`;
    const route = (name: string): string =>
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${name}, namespace: default}\nspec: {parentRefs: [{name: g}], rules: [{matches: [{path: {value: /${name}}}]}]}`;
    writeFileSync(
      join(d, 'in.yaml'),
      [
        'apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: c}\nspec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}',
        'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: default}\nspec: {gatewayClassName: c, listeners: [{name: http, protocol: HTTP, port: 80}]}',
        route('good'),
        route('pinned'),
        route('html'),
        route('gone'),
        policy('good', `${base}/filter.wasm`),
        policy('pinned', `${base}/filter.wasm`, 'f'.repeat(64)),
        policy('html', `${base}/not-wasm.wasm`),
        policy('gone', `${base}/missing.wasm`),
      ].join('\n---\n'),
    );
    const r = await run(['translate', '-f', d, '--wasm-serving-base', 'http://cache.local:18002']);
    expect(r.code).toBe(0);
    const doc = parse(r.stdout) as Doc;
    const cond = (name: string): { status: string; message: string } | undefined =>
      doc['envoyExtensionPolicies']?.find((p) => p.metadata.name === name)?.status?.ancestors?.[0]?.conditions[0];
    expect(cond('good')).toMatchObject({ status: 'True' });
    expect(cond('pinned')?.message).toBe(
      `Wasm: module downloaded from ${base}/filter.wasm has checksum ${sum}, which does not match: ${'f'.repeat(64)}.`,
    );
    expect(cond('html')?.message).toBe(`Wasm: fetched Wasm binary from ${base}/not-wasm.wasm is invalid.`);
    expect(cond('gone')?.message).toBe(`Wasm: failed to fetch Wasm module ${base}/missing.wasm: HTTP 404.`);
    const listeners = JSON.stringify(doc.xds?.['default/g']?.['listeners']);
    expect(listeners).toContain(`"sha256":"${sum}"`);
    expect(listeners).toContain('http://cache.local:18002/');
  });
});
