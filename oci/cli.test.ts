/**
 * `envext oci …` end to end through the real dispatcher against the real registry: login then
 * push/pull with nothing but config.json, credential helpers (a `docker-credential-test` script
 * on PATH), inspect, logout, and the usage errors.
 */
import { runEnvext, type CliRun } from '../test/cli.js';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RegistryFixture } from '../test/fixtures/registry.js';
import { skopeo, skopeoFlags } from '../test/fixtures/skopeo.js';
import { makeWasmModule } from '../test/fixtures/wasm-module.js';
import { sha256Digest } from './digest.js';

const envext = (argv: string[]): Promise<CliRun> => runEnvext(argv);

const HELPER = `#!/bin/sh
# docker-credential-test: the docker credential helper protocol over files in ./store
dir="$(dirname "$0")/store"
mkdir -p "$dir"
key() { printf %s "$1" | tr -c 'a-zA-Z0-9' _; }
case "$1" in
  get)
    read -r server
    echo "get $server" >> "$dir/../helper.log"
    if [ -f "$dir/$(key "$server")" ]; then cat "$dir/$(key "$server")"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(cat)
    server=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    echo "store $server" >> "$dir/../helper.log"
    printf %s "$json" > "$dir/$(key "$server")" ;;
  erase)
    read -r server
    echo "erase $server" >> "$dir/../helper.log"
    rm -f "$dir/$(key "$server")" ;;
  *) exit 2 ;;
esac
`;

describe('envext oci CLI', () => {
  let reg: RegistryFixture;
  let work: string;
  let savedPath: string | undefined;
  const module = makeWasmModule(20_000, 'cli');

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'basic' });
    work = await mkdtemp(join(tmpdir(), 'envext-oci-cli-'));
    await writeFile(join(work, 'filter.wasm'), module);
    await writeFile(join(work, 'ca.pem'), reg.caPem ?? '');
    await mkdir(join(work, 'bin'));
    await writeFile(join(work, 'bin', 'docker-credential-test'), HELPER);
    await chmod(join(work, 'bin', 'docker-credential-test'), 0o755);
    savedPath = process.env['PATH'];
    process.env['PATH'] = `${join(work, 'bin')}:${savedPath ?? ''}`;
  });
  afterAll(async () => {
    process.env['PATH'] = savedPath;
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('login, then push, inspect and pull with only config.json; logout', async () => {
    const config = join(work, 'docker', 'config.json');
    const tls = ['--ca-file', join(work, 'ca.pem'), '--registry-config', config];

    const bad = await envext(['oci', 'login', reg.host, '-u', 'pusher', '-p', 'nope', ...tls]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/401 Unauthorized.*credentials given to envext oci login/);
    await expect(readFile(config)).rejects.toThrow();

    const login = await envext(['oci', 'login', reg.host, '-u', 'pusher', '-p', 'push-secret', ...tls]);
    expect(login).toMatchObject({ code: 0 });
    expect(login.out).toContain('Login Succeeded');
    const written = JSON.parse(await readFile(config, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(written.auths[reg.host]?.auth ?? '', 'base64').toString()).toBe('pusher:push-secret');

    const ref = `${reg.host}/cli/filter:v1`;
    const push = await envext([
      'oci',
      'push',
      ref,
      join(work, 'filter.wasm'),
      '--annotation',
      'org.example/team=edge',
      '--json',
      ...tls,
    ]);
    expect(push.code).toBe(0);
    const pushed = JSON.parse(push.out) as { manifestDigest: string; moduleSha256: string; layout: string };
    expect(pushed.layout).toBe('oci');
    expect(pushed.moduleSha256).toBe(sha256Digest(module).slice(7));
    const raw = await skopeo(['inspect', '--raw', ...skopeoFlags(reg, ''), `docker://${ref}`]);
    expect(sha256Digest(raw)).toBe(pushed.manifestDigest);
    expect(
      (JSON.parse(raw.toString()) as { annotations: Record<string, string> }).annotations['org.example/team'],
    ).toBe('edge');

    const mounted = await envext([
      'oci',
      'push',
      `${reg.host}/cli/copy:v1`,
      join(work, 'filter.wasm'),
      '--mount-from',
      'cli/filter',
      '--annotation',
      'org.example/team=edge',
      '--json',
      ...tls,
    ]);
    expect(
      (JSON.parse(mounted.out) as { blobs: { result: string }[]; manifestDigest: string }).blobs.map((b) => b.result),
    ).toEqual(['mounted', 'mounted']);

    const inspect = await envext(['oci', 'inspect', ref, ...tls]);
    expect(inspect.code).toBe(0);
    expect(inspect.out).toContain(`manifest digest:  ${pushed.manifestDigest}`);
    expect(inspect.out).toContain(`module sha256:    ${pushed.moduleSha256}`);
    expect(inspect.out).toMatch(/layout: +oci \(Envoy Gateway and Istio can pull it\)/);

    const out = join(work, 'pulled.wasm');
    const pull = await envext(['oci', 'pull', ref, '-o', out, '--sha256', pushed.manifestDigest.slice(7), ...tls]);
    expect(pull.code).toBe(0);
    expect(await readFile(out)).toEqual(module);
    expect(pull.out).toContain(`module sha256:   ${pushed.moduleSha256}`);

    const toStdout = await envext(['oci', 'pull', ref, '-o', '-', ...tls]);
    expect(toStdout.code).toBe(0);
    expect(Buffer.from(toStdout.out, 'latin1').length).toBeGreaterThan(0);

    const logout = await envext(['oci', 'logout', reg.host, '--registry-config', config]);
    expect(logout.out).toContain('Removing login credentials');
    const after = await envext(['oci', 'pull', ref, '-o', out, ...tls]);
    expect(after.code).toBe(1);
    expect(after.err).toMatch(/401 Unauthorized.*no credentials for 127\.0\.0\.1:\d+ in docker config/);
  });

  it('login --password-stdin reads the password from stdin', async () => {
    const config = join(work, 'stdin', 'config.json');
    // The command reads process.stdin; give it a real stream holding the password.
    const saved = Object.getOwnPropertyDescriptor(process, 'stdin');
    Object.defineProperty(process, 'stdin', {
      value: Readable.from([Buffer.from('push-secret\n')]),
      configurable: true,
    });
    try {
      const r = await envext([
        'oci',
        'login',
        reg.host,
        '-u',
        'pusher',
        '--password-stdin',
        '--ca-file',
        join(work, 'ca.pem'),
        '--registry-config',
        config,
      ]);
      expect(r).toMatchObject({ code: 0, out: expect.stringContaining('Login Succeeded') as unknown });
    } finally {
      if (saved !== undefined) Object.defineProperty(process, 'stdin', saved);
    }
    const written = JSON.parse(await readFile(config, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(written.auths[reg.host]?.auth ?? '', 'base64').toString()).toBe('pusher:push-secret');
  });

  it('uses credHelpers and credsStore through docker-credential-test', async () => {
    const tls = ['--ca-file', join(work, 'ca.pem')];
    // credsStore: login stores through the helper, config.json keeps only an empty entry.
    const storeConfig = join(work, 'store', 'config.json');
    await mkdir(join(work, 'store'));
    await writeFile(storeConfig, JSON.stringify({ credsStore: 'test' }));
    const login = await envext([
      'oci',
      'login',
      reg.host,
      '-u',
      'pusher',
      '-p',
      'push-secret',
      '--registry-config',
      storeConfig,
      ...tls,
    ]);
    expect(login.code).toBe(0);
    expect(login.out).toContain('docker-credential-test');
    const cfg = JSON.parse(await readFile(storeConfig, 'utf8')) as { auths: Record<string, object> };
    expect(cfg.auths[reg.host]).toEqual({});
    const ref = `${reg.host}/cli/helper:v1`;
    const push = await envext([
      'oci',
      'push',
      ref,
      join(work, 'filter.wasm'),
      '--format',
      'compat',
      '--registry-config',
      storeConfig,
      ...tls,
    ]);
    expect(push.code).toBe(0);

    // credHelpers beats a wrong auths entry for the same host (docker's precedence).
    const helperConfig = join(work, 'helpers.json');
    await writeFile(
      helperConfig,
      JSON.stringify({
        auths: { [reg.host]: { auth: Buffer.from('pusher:wrong').toString('base64') } },
        credHelpers: { [reg.host]: 'test' },
      }),
    );
    const pull = await envext([
      'oci',
      'pull',
      ref,
      '-o',
      join(work, 'helper.wasm'),
      '--json',
      '--registry-config',
      helperConfig,
      ...tls,
    ]);
    expect(pull.code).toBe(0);
    expect((JSON.parse(pull.out) as { layout: string }).layout).toBe('compat');
    expect(await readFile(join(work, 'helper.wasm'))).toEqual(module);
    const log = await readFile(join(work, 'bin', 'helper.log'), 'utf8');
    expect(log).toContain(`store ${reg.host}`);
    expect(log).toContain(`get ${reg.host}`);

    const logout = await envext(['oci', 'logout', reg.host, '--registry-config', storeConfig]);
    expect(logout.code).toBe(0);
    expect(await readFile(join(work, 'bin', 'helper.log'), 'utf8')).toContain(`erase ${reg.host}`);
  });

  it.each([
    {
      argv: ['oci', 'push', 'x/y:v1', 'f.wasm', '--format', 'zip'],
      err: /invalid --format "zip".*oci, compat, compat-docker, cncf, oras/,
    },
    { argv: ['oci', 'push', 'x/y:v1', 'f.wasm', '--annotation', 'novalue'], err: /invalid --annotation "novalue"/ },
    { argv: ['oci', 'pull', 'x/y:v1', '--pull-policy', 'Never'], err: /invalid --pull-policy/ },
    { argv: ['oci', 'pull', 'x/y:v1', '--max-size', '12 parsecs'], err: /invalid --max-size/ },
    { argv: ['oci', 'push', 'x/y:v1', '/nonexistent/f.wasm'], err: /cannot read module \/nonexistent\/f.wasm/ },
    { argv: ['oci', 'login', 'localhost:1', '-u', 'a'], err: /login needs --password/ },
  ])('usage error: $argv', async ({ argv, err }) => {
    const r = await envext(argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(err);
  });

  it('bad reference and refused non-wasm exit 1 with the OCI error', async () => {
    const r = await envext(['oci', 'inspect', 'Registry.example/Bad/Name']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid image reference.*lowercase/);
    await writeFile(join(work, 'not.wasm'), 'hello, not wasm');
    const p = await envext([
      'oci',
      'push',
      `${reg.host}/cli/bad:v1`,
      join(work, 'not.wasm'),
      '--ca-file',
      join(work, 'ca.pem'),
    ]);
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/not a WebAssembly module/);
  });
});
