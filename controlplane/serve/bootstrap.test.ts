import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../../bin/dispatch.js';
import { program } from '../../bin/commands.js';
import { encode } from '../../proto/index.js';
import { bootstrapObject, renderBootstrap } from './bootstrap.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (f: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        f(chunk.toString());
        cb();
      },
    });
  const code = await runCli(program, argv, {
    stdout: sink((s) => (out += s)),
    stderr: sink((s) => (err += s)),
    signal: new AbortController().signal,
  });
  return { code, out, err };
}

describe('envext bootstrap', () => {
  it('prints a delta-ADS bootstrap for the Gateway, valid for Envoy', async () => {
    const { code, out } = await cli('bootstrap', '--gateway', 'default/eg', '--xds-address', '10.0.0.5:18000');
    expect(code).toBe(0);
    const b = parse(out) as Record<string, Record<string, unknown>>;
    expect(b.node).toEqual({ id: 'envoy-default-eg', cluster: 'default/eg' });
    expect(b.dynamic_resources).toMatchObject({
      ads_config: { api_type: 'DELTA_GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true },
      lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' },
      cds_config: { ads: {}, initial_fetch_timeout: '0s' },
    });
    expect(JSON.stringify(b.static_resources)).toContain('"address":"10.0.0.5","port_value":18000');
    expect(JSON.stringify(b.static_resources)).toContain('"type":"STATIC"');
    // Every field exists in Envoy's bootstrap proto (encode is strict).
    expect(() =>
      encode('envoy.config.bootstrap.v3.Bootstrap', bootstrapObject({ gateway: 'default/eg' })),
    ).not.toThrow();
  });

  it.each([
    {
      name: 'sotw, JSON, DNS name, mTLS',
      args: [
        '--api',
        'sotw',
        '-o',
        'json',
        '--xds-address',
        'envext.envext-system.svc:18000',
        '--tls-ca',
        '/c/ca.crt',
        '--tls-cert',
        '/c/tls.crt',
        '--tls-key',
        '/c/tls.key',
      ],
      want: ['"api_type": "GRPC"', '"type": "STRICT_DNS"', 'UpstreamTlsContext', '/c/tls.key'],
    },
    {
      name: 'node id and admin',
      args: ['--node-id', 'envoy-7', '--admin-address', '0.0.0.0:9901'],
      want: ['id: envoy-7', 'port_value: 9901'],
    },
  ])('$name', async ({ args, want }) => {
    const { code, out } = await cli('bootstrap', '--gateway', 'default/eg', ...args);
    expect(code).toBe(0);
    for (const w of want) expect(out).toContain(w);
  });

  it.each([
    { args: [], error: /--gateway NAMESPACE\/NAME is required/ },
    { args: ['--gateway', 'eg'], error: /--gateway "eg" is not NAMESPACE\/NAME \(e\.g\. --gateway default\/eg/ },
    {
      args: ['--gateway', 'default/eg', '--xds-address', 'localhost'],
      error: /--xds-address "localhost" is not host:port/,
    },
    { args: ['--gateway', 'default/eg', '--xds-address', 'h:0'], error: /is not host:port/ },
    { args: ['--gateway', 'default/eg', '--api', 'rest'], error: /--api must be delta or sotw/ },
    { args: ['--gateway', 'default/eg', '--tls-cert', 'a'], error: /--tls-cert and --tls-key go together/ },
    { args: ['--gateway', 'default/eg', '-o', 'xml'], error: /-o must be yaml or json/ },
  ])('rejects $args', async ({ args, error }) => {
    const { code, err } = await cli('bootstrap', ...args);
    expect(code).not.toBe(0);
    expect(err).toMatch(error);
  });

  it('renders the same bytes Envoy would decode (round trip)', () => {
    const yaml = renderBootstrap({ gateway: 'team-a/web', api: 'delta' });
    expect(parse(yaml)).toMatchObject({ node: { cluster: 'team-a/web' } });
  });
});

describe('envext serve (bad input)', () => {
  it.each([
    { args: ['--provider', 'consul'], error: /--provider must be file or kubernetes, not "consul"/ },
    { args: [], error: /--provider file needs --config DIR/ },
    {
      args: ['--config', '/nonexistent/dir'],
      error: /--config \/nonexistent\/dir: no such file or directory \(pass a directory of YAML resources\)/,
    },
    { args: ['--config', '.', '--xds-address', 'nope'], error: /--xds-address "nope" is not host:port/ },
    { args: ['--config', '.', '--xds-tls-cert', 'a.pem'], error: /--xds-tls-cert and --xds-tls-key go together/ },
    {
      args: ['--config', '.', '--xds-tls-cert', '/nonexistent.pem', '--xds-tls-key', '/nonexistent.key'],
      error: /--xds-tls-cert \/nonexistent\.pem: ENOENT/,
    },
    {
      args: ['--provider', 'kubernetes', '--kubeconfig', '/nonexistent/kubeconfig'],
      error: /cannot load the kubeconfig/,
    },
  ])('rejects $args', async ({ args, error }) => {
    const { code, err } = await cli('serve', '--wasm-cache-dir', '/tmp/envext-serve-cli-test', ...args);
    expect(code).not.toBe(0);
    expect(err).toMatch(error);
  });
});
