/**
 * `envext oci …`: push, pull, inspect, login, logout.
 *
 * Credentials: `--username` with `--password` or `--password-stdin` win; otherwise the docker
 * config (`--registry-config`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
 * with its credential helpers. `login` checks the credentials against the registry before it
 * writes them, the way `docker login` and `oras login` do.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import {
  booleanOption,
  stringOption,
  stringsOption,
  type Command,
  type CommandContext,
  type CommandGroup,
  type OptionSpec,
} from '../common/cli.js';
import { UsageError } from '../common/errors.js';
import { ModuleCache } from './cache.js';
import {
  defaultDockerConfigPath,
  dockerConfigCredentials,
  normaliseRegistryKey,
  removeLogin,
  staticCredentials,
  storeLogin,
  type CredentialProvider,
} from './credentials.js';
import { inspectWasmImage } from './inspect.js';
import { DEFAULT_LAYOUT, isWasmLayout, WASM_LAYOUTS } from './layouts.js';
import { progressBar } from './progress.js';
import { PULL_POLICIES, pullWasmModule, type PullPolicy, type RegistryConnectionOptions } from './pull.js';
import { openModuleFile, pushWasmModule, type ModuleFile } from './push.js';
import { parseReference } from './reference.js';
import { RegistryClient } from './registry-client.js';
import { DEFAULT_MAX_MODULE_BYTES } from './wasm.js';

const CONNECTION_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  username: { type: 'string', short: 'u', description: 'registry user name (with --password or --password-stdin)' },
  password: {
    type: 'string',
    short: 'p',
    description: 'registry password or token (visible in ps; prefer --password-stdin)',
  },
  'password-stdin': { type: 'boolean', description: 'read the password from stdin' },
  'registry-config': {
    type: 'string',
    valueName: 'FILE',
    description: 'docker config.json with credentials',
    defaultText: '$DOCKER_CONFIG/config.json or ~/.docker/config.json',
  },
  'plain-http': { type: 'boolean', description: 'use plain HTTP (automatic for localhost and 127.0.0.0/8)' },
  insecure: { type: 'boolean', description: 'do not verify the registry TLS certificate' },
  'ca-file': { type: 'string', valueName: 'FILE', description: 'PEM file with extra CA certificates for the registry' },
};

const JSON_OPTION: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print JSON for scripts' },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function password(ctx: CommandContext): Promise<string | undefined> {
  const flag = stringOption(ctx, 'password');
  if (booleanOption(ctx, 'password-stdin')) {
    if (flag !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive');
    return readStdin();
  }
  return flag;
}

/** Credentials from flags, else the docker config. */
async function credentialsFor(ctx: CommandContext, registry: string): Promise<CredentialProvider> {
  const username = stringOption(ctx, 'username');
  const pass = await password(ctx);
  if (username !== undefined || pass !== undefined) {
    if (username === undefined || pass === undefined)
      throw new UsageError('--username needs --password or --password-stdin (and the other way round)');
    return staticCredentials({ username, password: pass, source: '--username/--password flags' }, registry);
  }
  return dockerConfigCredentials(stringOption(ctx, 'registry-config') ?? defaultDockerConfigPath());
}

async function connection(ctx: CommandContext, registry: string): Promise<RegistryConnectionOptions> {
  return { credentials: await credentialsFor(ctx, registry), ...(await transportOptions(ctx)) };
}

/** `--plain-http`, `--insecure`, `--ca-file`: how to reach the registry, without credentials. */
async function transportOptions(
  ctx: CommandContext,
): Promise<{ plainHttp?: boolean; insecure?: boolean; caCerts?: string[]; signal: AbortSignal }> {
  const caFile = stringOption(ctx, 'ca-file');
  let caCerts: string[] | undefined;
  if (caFile !== undefined) {
    try {
      caCerts = [await readFile(caFile, 'utf8')];
    } catch (e) {
      throw new UsageError(`cannot read --ca-file ${caFile}: ${(e as Error).message}`);
    }
  }
  return {
    ...(booleanOption(ctx, 'plain-http') ? { plainHttp: true } : {}),
    ...(booleanOption(ctx, 'insecure') ? { insecure: true } : {}),
    ...(caCerts === undefined ? {} : { caCerts }),
    signal: ctx.signal,
  };
}

function parseSize(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\s*(|k|ki|kib|m|mi|mib|g|gi|gib)$/i.exec(value.trim());
  if (m === null) throw new UsageError(`invalid ${flag} "${value}"`, 'give bytes, or a number with KiB, MiB or GiB');
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

function writeJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

const pushCommand: Command = {
  name: 'push',
  summary: 'push a Wasm module to an OCI registry',
  description:
    'Builds the image layout chosen by --format and pushes it as one image manifest (never an index).\n' +
    'Formats: oci (default; solo "oci" variant with the vnd.module.wasm media types, pullable by Envoy Gateway and Istio),\n' +
    'compat (ordinary OCI image, plugin.wasm in a tar+gzip layer; pullable by Envoy Gateway and Istio, readable by image tools),\n' +
    'compat-docker (the same as a Docker schema 2 image), cncf (CNCF TAG-Runtime Wasm artifact; not pullable by Envoy Gateway/Istio),\n' +
    'oras (image-spec 1.1 artifact with one application/wasm layer; not pullable by Envoy Gateway/Istio).\n' +
    'Prints the manifest digest (what Envoy Gateway code.image.sha256 pins) and the module sha256 (what Envoy verifies).',
  positionals: [
    { name: 'REF', description: 'image reference, e.g. localhost:5000/filters/auth:v1', required: true },
    { name: 'FILE', description: 'the .wasm module', required: true },
  ],
  options: {
    format: {
      type: 'string',
      short: 'f',
      description: `image layout: ${WASM_LAYOUTS.join(', ')}`,
      defaultText: DEFAULT_LAYOUT,
    },
    'mount-from': {
      type: 'string',
      valueName: 'REPOSITORY',
      description: 'another repository on the same registry to mount existing blobs from',
    },
    annotation: {
      type: 'string',
      short: 'a',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: 'manifest annotation (repeatable)',
    },
    ...JSON_OPTION,
    ...CONNECTION_OPTIONS,
  },
  examples: [
    'envext oci push localhost:5000/filters/auth:v1 build/filter.wasm',
    'envext oci push --format compat --annotation org.opencontainers.image.source=https://example.com ghcr.io/me/f:v1 f.wasm',
  ],
  async run(ctx) {
    const [refText = '', file = ''] = ctx.positionals;
    const ref = parseReference(refText);
    const format = stringOption(ctx, 'format') ?? DEFAULT_LAYOUT;
    if (!isWasmLayout(format))
      throw new UsageError(`invalid --format "${format}"`, `use one of ${WASM_LAYOUTS.join(', ')}`);
    const annotations: Record<string, string> = {};
    for (const a of stringsOption(ctx, 'annotation')) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new UsageError(`invalid --annotation "${a}"`, 'write KEY=VALUE');
      annotations[a.slice(0, eq)] = a.slice(eq + 1);
    }
    let module: ModuleFile;
    try {
      // Read and hashed while the upload runs (see pushWasmModule).
      module = await openModuleFile(file);
    } catch (e) {
      throw new UsageError(`cannot read module ${file}: ${(e as Error).message}`);
    }
    const mountFrom = stringOption(ctx, 'mount-from');
    const json = booleanOption(ctx, 'json');
    const bar = progressBar(ctx.stderr, 'pushing', !json);
    const r = await pushWasmModule(refText, module, {
      format,
      annotations,
      ...(mountFrom === undefined ? {} : { mountFrom }),
      ...(await connection(ctx, ref.registry)),
      onProgress: (d, t) => bar.update(d, t),
    }).finally(() => bar.finish());
    if (json) return writeJson(ctx, r);
    ctx.stdout.write(
      `pushed ${refText} (format ${r.layout}; Envoy Gateway and Istio can ${r.envoyGatewayCompatible ? '' : 'NOT '}pull it)\n` +
        `manifest digest: ${r.manifestDigest}   (Envoy Gateway code.image.sha256: ${r.manifestDigest.slice(7)})\n` +
        `module sha256:   ${r.moduleSha256}   (Envoy RemoteDataSource.sha256)\n` +
        `pinned:          ${r.reference}\n`,
    );
  },
};

const pullCommand: Command = {
  name: 'pull',
  summary: 'pull a Wasm module from an OCI registry',
  description:
    'Detects the layout (solo oci/compat variants, Docker compat, CNCF Wasm artifact, single-layer ORAS artifact),\n' +
    'verifies every digest, checks the \\0asm magic and the size cap, and writes the module.',
  positionals: [
    { name: 'REF', description: 'image reference (tag or @sha256: digest; oci:// accepted)', required: true },
  ],
  options: {
    output: {
      type: 'string',
      short: 'o',
      valueName: 'FILE',
      description: 'where to write the module ("-" for stdout)',
      defaultText: '<last repository component>.wasm',
    },
    sha256: {
      type: 'string',
      valueName: 'DIGEST',
      description: 'manifest digest the image must have (Envoy Gateway code.image.sha256)',
    },
    'cache-dir': {
      type: 'string',
      valueName: 'DIR',
      description: 'use this module cache (content-addressed, safe to share)',
    },
    'pull-policy': {
      type: 'string',
      valueName: 'POLICY',
      description: `with --cache-dir: ${PULL_POLICIES.join(' or ')}`,
      defaultText: 'IfNotPresent; Always for :latest',
    },
    'max-size': {
      type: 'string',
      valueName: 'BYTES',
      description: 'module size cap (e.g. 64MiB)',
      defaultText: '256MiB',
    },
    ...JSON_OPTION,
    ...CONNECTION_OPTIONS,
  },
  examples: [
    'envext oci pull localhost:5000/filters/auth:v1 -o auth.wasm',
    'envext oci pull --json --cache-dir ~/.cache/envext/wasm oci://ghcr.io/me/f@sha256:…',
  ],
  async run(ctx) {
    const refText = ctx.positionals[0] ?? '';
    const ref = parseReference(refText);
    const policy = stringOption(ctx, 'pull-policy');
    if (policy !== undefined && !(PULL_POLICIES as readonly string[]).includes(policy)) {
      throw new UsageError(`invalid --pull-policy "${policy}"`, `use one of ${PULL_POLICIES.join(', ')}`);
    }
    const cacheDir = stringOption(ctx, 'cache-dir');
    const maxBytes = parseSize(stringOption(ctx, 'max-size'), '--max-size') ?? DEFAULT_MAX_MODULE_BYTES;
    const sha = stringOption(ctx, 'sha256');
    const output = stringOption(ctx, 'output') ?? `${ref.repository.slice(ref.repository.lastIndexOf('/') + 1)}.wasm`;
    const json = booleanOption(ctx, 'json');
    const bar = progressBar(ctx.stderr, 'pulling', !json && output !== '-');
    const r = await pullWasmModule(refText, {
      ...(await connection(ctx, ref.registry)),
      ...(cacheDir === undefined ? {} : { cache: new ModuleCache(cacheDir) }),
      ...(policy === undefined ? {} : { pullPolicy: policy as PullPolicy }),
      ...(sha === undefined ? {} : { expectedManifestDigest: sha }),
      maxBytes,
      // Written while it downloads and renamed into place once verified.
      ...(output === '-' ? {} : { outputFile: output }),
      onProgress: (d, t) => bar.update(d, t),
    }).finally(() => bar.finish());
    if (output === '-') {
      ctx.stdout.write(r.bytes);
      return;
    }
    const { bytes: _bytes, ...meta } = r;
    if (json) return writeJson(ctx, { ...meta, output });
    ctx.stdout.write(
      `pulled ${r.reference} → ${output} (${r.size} bytes, layout ${r.layout}${r.fromCache ? ', from cache' : ''})\n` +
        `manifest digest: ${r.manifestDigest}\n` +
        `module sha256:   ${r.moduleSha256}\n`,
    );
  },
};

const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show layout, digests, sizes and media types of a Wasm image',
  positionals: [{ name: 'REF', description: 'image reference', required: true }],
  options: { ...JSON_OPTION, ...CONNECTION_OPTIONS },
  examples: ['envext oci inspect localhost:5000/filters/auth:v1', 'envext oci inspect --json ghcr.io/me/f:v1'],
  async run(ctx) {
    const refText = ctx.positionals[0] ?? '';
    const ref = parseReference(refText);
    const r = await inspectWasmImage(refText, await connection(ctx, ref.registry));
    if (booleanOption(ctx, 'json')) return writeJson(ctx, r);
    const lines = [
      `reference:        ${r.reference}`,
      `layout:           ${r.layout} (Envoy Gateway and Istio can ${r.envoyGatewayCompatible ? '' : 'NOT '}pull it)`,
      `manifest:         ${r.manifestMediaType}, ${r.manifestSize} bytes`,
      `manifest digest:  ${r.manifestDigest}`,
      `module sha256:    ${r.moduleSha256} (${r.moduleSize} bytes)`,
      ...(r.artifactType === undefined ? [] : [`artifactType:     ${r.artifactType}`]),
      `config:           ${r.config.mediaType} ${r.config.digest} (${r.config.size} bytes)`,
      ...r.layers.map(
        (l, i) =>
          `layer ${i}:          ${l.mediaType} ${l.digest} (${l.size} bytes)${l.annotations?.['org.opencontainers.image.title'] === undefined ? '' : ` ${l.annotations['org.opencontainers.image.title']}`}`,
      ),
      ...Object.entries(r.annotations).map(([k, v]) => `annotation:       ${k}=${v}`),
    ];
    ctx.stdout.write(lines.join('\n') + '\n');
  },
};

function prompt(question: string, muted: boolean): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (muted) {
      const out = rl as unknown as { _writeToOutput: (s: string) => void };
      out._writeToOutput = (s: string) => {
        if (s.includes(question)) process.stderr.write(s);
      };
    }
    rl.question(question, (answer) => {
      rl.close();
      if (muted) process.stderr.write('\n');
      resolve(answer);
    });
  });
}

const loginCommand: Command = {
  name: 'login',
  summary: 'log in to a registry and store the credentials in the docker config',
  description:
    'Checks the credentials against the registry (GET /v2/, through the token server when it uses Bearer tokens),\n' +
    'then stores them like docker: through the credential helper named by credHelpers/credsStore, or as auths[HOST].auth.',
  positionals: [{ name: 'HOST', description: 'registry host[:port]', required: true }],
  options: CONNECTION_OPTIONS,
  examples: ['envext oci login localhost:5000 -u alice --password-stdin < pass.txt'],
  async run(ctx) {
    const host = normaliseHost(ctx.positionals[0] ?? '');
    let username = stringOption(ctx, 'username');
    let pass = await password(ctx);
    const interactive = (process.stdin as { isTTY?: boolean }).isTTY === true;
    if (username === undefined) {
      if (!interactive) throw new UsageError('login needs --username (stdin is not a terminal)');
      username = await prompt('Username: ', false);
    }
    if (pass === undefined) {
      if (!interactive) throw new UsageError('login needs --password or --password-stdin (stdin is not a terminal)');
      pass = await prompt('Password: ', true);
    }
    // The password was read once above (stdin cannot be read twice): only transport options here.
    const conn = await transportOptions(ctx);
    const client = new RegistryClient({
      credentials: staticCredentials(
        { username, password: pass, source: `the credentials given to envext oci login` },
        host,
      ),
      ...(conn.plainHttp === true ? { plainHttp: true } : {}),
      ...(conn.insecure === true ? { insecure: true } : {}),
      ...(conn.caCerts === undefined ? {} : { caCerts: conn.caCerts }),
      signal: ctx.signal,
    });
    try {
      await client.ping(host);
    } finally {
      await client.close();
    }
    const where = await storeLogin(
      stringOption(ctx, 'registry-config') ?? defaultDockerConfigPath(),
      host,
      username,
      pass,
    );
    ctx.stdout.write(`Login Succeeded (stored in ${where})\n`);
  },
};

const logoutCommand: Command = {
  name: 'logout',
  summary: 'remove stored credentials for a registry',
  positionals: [{ name: 'HOST', description: 'registry host[:port]', required: true }],
  options: { 'registry-config': CONNECTION_OPTIONS['registry-config'] as OptionSpec },
  examples: ['envext oci logout localhost:5000'],
  async run(ctx) {
    const host = normaliseHost(ctx.positionals[0] ?? '');
    const path = stringOption(ctx, 'registry-config') ?? defaultDockerConfigPath();
    const removed = await removeLogin(path, host);
    ctx.stdout.write(removed ? `Removing login credentials for ${host}\n` : `Not logged in to ${host}\n`);
  },
};

function normaliseHost(value: string): string {
  const host = value.includes('://') || value.includes('/') ? normaliseRegistryKey(value) : value;
  if (host === '' || /\s/.test(host))
    throw new UsageError(`invalid registry host "${value}"`, 'write host or host:port');
  return host;
}

/** `envext oci`. */
export const ociCommand: CommandGroup = {
  name: 'oci',
  summary: 'push, pull and inspect Wasm modules in OCI registries',
  description:
    'OCI registry client for Wasm modules: every layout Envoy Gateway, Istio, ORAS and CNCF tools use, with docker-compatible credentials.',
  subcommands: [pushCommand, pullCommand, inspectCommand, loginCommand, logoutCommand],
};
