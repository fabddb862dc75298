/**
 * Where registry credentials come from: docker's `config.json` (with `credsStore` and
 * `credHelpers` through the `docker-credential-*` helper protocol), a Kubernetes
 * `kubernetes.io/dockerconfigjson` secret, or flags. Reference oci.md §3.3.
 *
 * Precedence inside one config file is docker's and oras-go's: `credHelpers[host]`, then
 * `credsStore`, then the plain `auths` entry.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { OciError } from './errors.js';

/** One credential for one registry. Exactly one of the three forms is set. */
export interface Credential {
  readonly username?: string;
  readonly password?: string;
  /** OAuth2 refresh token (`identitytoken`): exchanged at the token realm with `grant_type=refresh_token`. */
  readonly identityToken?: string;
  /** A bearer token sent as it is (`registrytoken`). */
  readonly registryToken?: string;
  /** Where it came from, for error messages: `docker config /root/.docker/config.json (auths["host"])`. */
  readonly source: string;
}

/** Looks up the credential for a registry host (`host:port`); `undefined` means anonymous. */
export interface CredentialProvider {
  get(registry: string): Promise<Credential | undefined>;
  /** What this provider reads, named in 401/403 errors when it found nothing. */
  readonly description: string;
}

/** Docker Hub's key in `auths` and the server address its helpers expect. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** `config.json` as docker writes it (only the fields we read or write). */
export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** One `auths` entry of a docker config. */
export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  [key: string]: unknown;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['DOCKER_CONFIG'];
  return join(dir !== undefined && dir !== '' ? dir : join(homedir(), '.docker'), 'config.json');
}

/** Normalises an `auths` key: strips scheme and path, maps Docker Hub's aliases to `docker.io`. */
export function normaliseRegistryKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  k = k.toLowerCase();
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return 'docker.io';
  return k;
}

/** The key docker uses for `registry` in `auths` and for helpers. */
export function dockerConfigKey(registry: string): string {
  return normaliseRegistryKey(registry) === 'docker.io' ? DOCKER_HUB_KEY : registry;
}

function entryToCredential(entry: DockerAuthEntry, source: string): Credential | undefined {
  if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') {
    return { registryToken: entry.registrytoken, source };
  }
  let username = typeof entry.username === 'string' ? entry.username : undefined;
  let password = typeof entry.password === 'string' ? entry.password : undefined;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new OciError('OCI_CREDENTIALS', `${source}: "auth" is not base64 of "user:password"`, {
        hint: 'run envext oci login again, or fix the entry by hand',
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return { ...(username === undefined ? {} : { username }), identityToken: entry.identitytoken, source };
  }
  if (username === undefined && password === undefined) return undefined;
  return { username: username ?? '', password: password ?? '', source };
}

/** Finds `registry` in an `auths` map, accepting legacy keys (`https://host/v1/`). */
function findAuthEntry(
  auths: Record<string, DockerAuthEntry>,
  registry: string,
): [string, DockerAuthEntry] | undefined {
  const want = normaliseRegistryKey(registry);
  const exact = auths[registry];
  if (exact !== undefined) return [registry, exact];
  for (const [key, entry] of Object.entries(auths)) if (normaliseRegistryKey(key) === want) return [key, entry];
  return undefined;
}

function parseConfigJson(text: string, what: string): DockerConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new OciError('OCI_CREDENTIALS', `${what} is not valid JSON`, { cause: e, hint: 'fix or remove the file' });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OciError('OCI_CREDENTIALS', `${what} must hold a JSON object`, { hint: 'fix or remove the file' });
  }
  return value as DockerConfig;
}

/** Reads a docker config file; a missing file is an empty config. */
export async function readDockerConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new OciError('OCI_CREDENTIALS', `cannot read docker config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseConfigJson(text, `docker config ${path}`);
}

/** Writes a docker config file the way docker does: mode 0600, atomically (temp file + rename). */
export async function writeDockerConfig(path: string, config: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin; resolves stdout, rejects on failure. */
export function runCredentialHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  timeoutMs = 10_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) =>
      reject(
        new OciError('OCI_CREDENTIALS', `credential helper ${program} could not be run: ${e.message}`, {
          cause: e,
          hint: `install ${program} on PATH, or remove it from credsStore/credHelpers in the docker config`,
        }),
      ),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** `get` through a credential helper; `undefined` when the helper has nothing for this server. */
export async function helperGet(helper: string, registry: string): Promise<Credential | undefined> {
  const server = dockerConfigKey(registry);
  const source = `credential helper docker-credential-${helper} (${server})`;
  const r = await runCredentialHelper(helper, 'get', server);
  if (r.code !== 0) {
    if (/credentials not found/i.test(r.stdout + r.stderr)) return undefined;
    throw new OciError('OCI_CREDENTIALS', `${source} failed: ${(r.stdout + r.stderr).trim() || `exit ${r.code}`}`);
  }
  let reply: unknown;
  try {
    reply = JSON.parse(r.stdout);
  } catch (e) {
    throw new OciError('OCI_CREDENTIALS', `${source} printed something that is not JSON`, { cause: e });
  }
  const { Username, Secret } = (reply ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof Secret !== 'string' || Secret === '') return undefined;
  // The helper protocol marks identity tokens with the user name "<token>".
  if (Username === '<token>') return { identityToken: Secret, source };
  return { username: typeof Username === 'string' ? Username : '', password: Secret, source };
}

/** Looks a registry up in an already parsed config (helpers, then `auths`). */
export async function credentialFromConfig(
  config: DockerConfig,
  registry: string,
  what: string,
): Promise<Credential | undefined> {
  const helpers = config.credHelpers ?? {};
  const helper = Object.entries(helpers).find(([k]) => normaliseRegistryKey(k) === normaliseRegistryKey(registry))?.[1];
  if (typeof helper === 'string' && helper !== '') return helperGet(helper, registry);
  if (typeof config.credsStore === 'string' && config.credsStore !== '') return helperGet(config.credsStore, registry);
  const found = config.auths === undefined ? undefined : findAuthEntry(config.auths, registry);
  if (found === undefined) return undefined;
  return entryToCredential(found[1], `${what} (auths["${found[0]}"])`);
}

/**
 * Credentials from a docker `config.json`, read on every lookup (so a `login` in the same process
 * is seen). `path` defaults to `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
 */
export function dockerConfigCredentials(path: string = defaultDockerConfigPath()): CredentialProvider {
  const what = `docker config ${path}`;
  return {
    description: what,
    async get(registry) {
      return credentialFromConfig(await readDockerConfig(path), registry, what);
    },
  };
}

/**
 * Credentials from the `.dockerconfigjson` key of a Kubernetes `kubernetes.io/dockerconfigjson`
 * secret (the control plane's `pullSecretRef`). Accepts the JSON text, its bytes, or the parsed
 * object; also the legacy `.dockercfg` shape (the `auths` map at the top level). Helpers are never
 * run for a secret. `source` names the secret in errors, e.g. `secret default/regcred`.
 */
export function dockerConfigJsonCredentials(
  secret: string | Uint8Array | DockerConfig,
  source = 'Kubernetes dockerconfigjson secret',
): CredentialProvider {
  const config =
    typeof secret === 'string' || secret instanceof Uint8Array
      ? parseConfigJson(typeof secret === 'string' ? secret : Buffer.from(secret).toString('utf8'), source)
      : secret;
  const auths: Record<string, DockerAuthEntry> = config.auths ?? (config as Record<string, DockerAuthEntry>);
  return {
    description: source,
    get(registry) {
      const found = findAuthEntry(auths, registry);
      // Settle as a rejected promise (not a synchronous throw) when the entry is malformed.
      return new Promise((resolve) =>
        resolve(found === undefined ? undefined : entryToCredential(found[1], `${source} (auths["${found[0]}"])`)),
      );
    },
  };
}

/** One credential for one registry (or every registry when `registry` is omitted), e.g. from flags. */
export function staticCredentials(
  credential: Omit<Credential, 'source'> & { source?: string },
  registry?: string,
): CredentialProvider {
  const source = credential.source ?? 'command-line credentials';
  return {
    description: source,
    get(host) {
      if (registry !== undefined && normaliseRegistryKey(host) !== normaliseRegistryKey(registry)) {
        return Promise.resolve(undefined);
      }
      return Promise.resolve({ ...credential, source });
    },
  };
}

/** The first provider that has a credential wins. */
export function chainCredentials(...providers: readonly CredentialProvider[]): CredentialProvider {
  return {
    description: providers.map((p) => p.description).join(', then ') || 'no credentials',
    async get(registry) {
      for (const p of providers) {
        const c = await p.get(registry);
        if (c !== undefined) return c;
      }
      return undefined;
    },
  };
}

/**
 * Stores a login the way docker does: through the registry's helper (`credHelpers`, else
 * `credsStore`) when one is configured, otherwise as `auths[host].auth` = base64(user:password).
 * Returns where it went.
 */
export async function storeLogin(path: string, registry: string, username: string, password: string): Promise<string> {
  const config = await readDockerConfig(path);
  const key = dockerConfigKey(registry);
  const helper =
    Object.entries(config.credHelpers ?? {}).find(
      ([k]) => normaliseRegistryKey(k) === normaliseRegistryKey(registry),
    )?.[1] ?? config.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    const r = await runCredentialHelper(
      helper,
      'store',
      JSON.stringify({ ServerURL: key, Username: username, Secret: password }),
    );
    if (r.code !== 0) {
      throw new OciError(
        'OCI_CREDENTIALS',
        `docker-credential-${helper} store failed: ${(r.stdout + r.stderr).trim()}`,
      );
    }
    // docker keeps an empty auths entry so `docker login` lists the registry.
    config.auths = { ...(config.auths ?? {}), [key]: {} };
    await writeDockerConfig(path, config);
    return `credential helper docker-credential-${helper}`;
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths))
    if (k !== key && normaliseRegistryKey(k) === normaliseRegistryKey(registry)) delete auths[k];
  auths[key] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  config.auths = auths;
  await writeDockerConfig(path, config);
  return path;
}

/** Removes a login (helper `erase` and the `auths` entry). Returns false when there was none. */
export async function removeLogin(path: string, registry: string): Promise<boolean> {
  const config = await readDockerConfig(path);
  const key = dockerConfigKey(registry);
  let removed = false;
  const helper =
    Object.entries(config.credHelpers ?? {}).find(
      ([k]) => normaliseRegistryKey(k) === normaliseRegistryKey(registry),
    )?.[1] ?? config.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    const r = await runCredentialHelper(helper, 'erase', key);
    if (r.code === 0) removed = true;
    else if (!/credentials not found/i.test(r.stdout + r.stderr)) {
      throw new OciError(
        'OCI_CREDENTIALS',
        `docker-credential-${helper} erase failed: ${(r.stdout + r.stderr).trim()}`,
      );
    }
  }
  if (config.auths !== undefined) {
    for (const k of Object.keys(config.auths)) {
      if (normaliseRegistryKey(k) === normaliseRegistryKey(registry)) {
        delete config.auths[k];
        removed = true;
      }
    }
  }
  if (removed) await writeDockerConfig(path, config);
  return removed;
}
