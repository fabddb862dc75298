import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chainCredentials,
  defaultDockerConfigPath,
  dockerConfigCredentials,
  dockerConfigJsonCredentials,
  normaliseRegistryKey,
  removeLogin,
  staticCredentials,
  storeLogin,
} from './credentials.js';
import { isOciError } from './errors.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('docker config credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'envext-creds-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['http://Reg.Example:5000/v2/', 'reg.example:5000'],
    ['localhost:5000', 'localhost:5000'],
  ])('normalises %s → %s', (key, want) => {
    expect(normaliseRegistryKey(key)).toBe(want);
  });

  const entries: ReadonlyArray<{ name: string; config: object; registry: string; want: object | undefined }> = [
    {
      name: 'auth field',
      config: { auths: { 'r.example': { auth: b64('u:p:with:colons') } } },
      registry: 'r.example',
      want: { username: 'u', password: 'p:with:colons' },
    },
    {
      name: 'username/password fields',
      config: { auths: { 'r.example': { username: 'u', password: 'p' } } },
      registry: 'r.example',
      want: { username: 'u', password: 'p' },
    },
    {
      name: 'legacy key with scheme and path',
      config: { auths: { 'https://r.example/v1/': { auth: b64('u:p') } } },
      registry: 'r.example',
      want: { username: 'u', password: 'p' },
    },
    {
      name: 'Docker Hub key',
      config: { auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } },
      registry: 'docker.io',
      want: { username: 'hub', password: 'pw' },
    },
    {
      name: 'identity token',
      config: { auths: { 'r.example': { auth: b64('<token>:'), identitytoken: 'refresh' } } },
      registry: 'r.example',
      want: { username: '<token>', identityToken: 'refresh' },
    },
    {
      name: 'registry token',
      config: { auths: { 'r.example': { registrytoken: 'bearer' } } },
      registry: 'r.example',
      want: { registryToken: 'bearer' },
    },
    {
      name: 'other host',
      config: { auths: { 'r.example': { auth: b64('u:p') } } },
      registry: 'other.example',
      want: undefined,
    },
  ];
  it.each(entries)('$name', async ({ config, registry, want }) => {
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify(config));
    const got = await dockerConfigCredentials(file).get(registry);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want);
    // The same JSON as a Kubernetes .dockerconfigjson secret.
    const fromSecret = await dockerConfigJsonCredentials(JSON.stringify(config), 'secret default/regcred').get(
      registry,
    );
    if (want === undefined) expect(fromSecret).toBeUndefined();
    else
      expect(fromSecret).toMatchObject({
        ...want,
        source: expect.stringContaining('secret default/regcred') as unknown,
      });
  });

  it('reads a missing file as empty and rejects broken JSON and broken auth', async () => {
    expect(await dockerConfigCredentials(join(dir, 'nope.json')).get('r.example')).toBeUndefined();
    await writeFile(join(dir, 'broken.json'), '{"auths":');
    const e1 = await dockerConfigCredentials(join(dir, 'broken.json'))
      .get('r')
      .catch((e: unknown) => e);
    expect(isOciError(e1, 'OCI_CREDENTIALS')).toBe(true);
    expect((e1 as Error).message).toContain('broken.json is not valid JSON');
    const e2 = await dockerConfigJsonCredentials({ auths: { r: { auth: b64('nocolon') } } })
      .get('r')
      .catch((e: unknown) => e);
    expect(isOciError(e2, 'OCI_CREDENTIALS')).toBe(true);
    expect(() => dockerConfigJsonCredentials('not json', 'secret ns/x')).toThrow(/secret ns\/x is not valid JSON/);
  });

  it('reports a missing credential helper', async () => {
    await writeFile(join(dir, 'helper.json'), JSON.stringify({ credsStore: 'envext-does-not-exist' }));
    const e = await dockerConfigCredentials(join(dir, 'helper.json'))
      .get('r')
      .catch((x: unknown) => x);
    expect(isOciError(e, 'OCI_CREDENTIALS')).toBe(true);
    expect((e as Error & { hint: string }).hint).toContain('docker-credential-envext-does-not-exist');
  });

  it('login writes auths with mode 0600 and keeps other keys; logout removes it', async () => {
    const file = join(dir, 'login', 'config.json');
    await storeLogin(file, 'r.example:5000', 'u', 'p');
    await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), psFormat: 'table' }));
    await storeLogin(file, 'other.example', 'x', 'y');
    const cfg = JSON.parse(await readFile(file, 'utf8')) as {
      auths: Record<string, { auth: string }>;
      psFormat: string;
    };
    expect(cfg.psFormat).toBe('table');
    expect(cfg.auths['r.example:5000']?.auth).toBe(b64('u:p'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await removeLogin(file, 'r.example:5000')).toBe(true);
    expect(await removeLogin(file, 'r.example:5000')).toBe(false);
    expect(Object.keys((JSON.parse(await readFile(file, 'utf8')) as { auths: object }).auths)).toEqual([
      'other.example',
    ]);
  });

  it('static and chained providers', async () => {
    const chain = chainCredentials(
      staticCredentials({ username: 'a', password: 'b' }, 'one.example'),
      dockerConfigJsonCredentials({ auths: { 'two.example': { auth: b64('c:d') } } }),
    );
    expect(await chain.get('one.example')).toMatchObject({ username: 'a' });
    expect(await chain.get('two.example')).toMatchObject({ username: 'c' });
    expect(await chain.get('three.example')).toBeUndefined();
  });

  it('finds config.json through DOCKER_CONFIG', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/x/y' })).toBe('/x/y/config.json');
    expect(defaultDockerConfigPath({})).toMatch(/\.docker\/config\.json$/);
  });
});
