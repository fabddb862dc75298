/**
 * `envext translate`: the egctl `x translate` equivalent. Reads Gateway API + Envoy Gateway YAML
 * (files, directories, `-` for stdin; Kubernetes multi-document YAML or Envoy Gateway's test
 * bundles), runs both translation stages and prints statuses and/or Envoy xDS.
 *
 * Unlike egctl it translates Wasm: by default it fetches modules (HTTP(S) directly, OCI images
 * through `oci/`) and verifies them; `--offline` uses Envoy Gateway's deterministic mock instead.
 *
 * `translateCommand` is exported so `envext serve` (issue 8) can sit beside it in bin/commands.ts.
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { booleanOption, stringOption, stringsOption, type Command, type CommandContext } from '../common/cli.js';
import { EnvextError, UsageError } from '../common/errors.js';
import { EG_CONTROLLER_NAME } from './api/types.js';
import { wasmModuleRequests } from './gatewayapi/envoy-extension-policy.js';
import { FetchWasmResolver, type OciPull } from './gatewayapi/fetch-resolver.js';
import { statusDocument } from './gatewayapi/status-document.js';
import { translateGatewayApi, type TranslateResult } from './gatewayapi/translate.js';
import { DeterministicWasmResolver, resolveWasmModules, type WasmModuleResolver } from './gatewayapi/wasm-modules.js';
import { loadFiles, parseYaml, snapshotFromObjects, yamlFiles, type SourcedObject } from './provider/file/load.js';
import type { ResourceSnapshot } from './provider/snapshot.js';
import { renderXds } from './xds/translator/render.js';
import { XDS_TYPES, XDS_TYPE_NAMES, translateXds } from './xds/translator/translate.js';

export const DEFAULT_SERVING_BASE = 'https://envoy-gateway.envoy-gateway-system.svc.cluster.local:18002';

/** Envoy resources per Gateway, per type, in Envoy's JSON form. */
export function xdsDocument(result: TranslateResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, ir] of [...result.ir].sort(([a], [b]) => a.localeCompare(b))) {
    const rendered = renderXds(translateXds(ir));
    const perType: Record<string, unknown> = {};
    for (const type of XDS_TYPES) if (rendered[type].length > 0) perType[XDS_TYPE_NAMES[type]] = rendered[type];
    out[key] = perType;
  }
  return out;
}

async function readInputs(files: readonly string[], ctx: CommandContext): Promise<SourcedObject[]> {
  const objects: SourcedObject[] = [];
  const problems: string[] = [];
  const paths = files.filter((f) => f !== '-');
  if (files.includes('-')) {
    const text = readFileSync(0, 'utf8');
    const r = parseYaml(text, '<stdin>');
    objects.push(...r.objects);
    problems.push(...r.problems.map((p) => `${p.resource}: ${p.message}`));
  }
  if (paths.length > 0) {
    const list = await yamlFiles(paths);
    if (list.length === 0)
      throw new EnvextError('CONTROLPLANE_NO_INPUT', `no .yaml/.yml/.json files under ${paths.join(', ')}`, {
        hint: 'pass YAML files or a directory that contains them',
      });
    const r = loadFiles(list);
    objects.push(...r.objects);
    problems.push(...r.problems.map((p) => `${p.resource}${p.field === '' ? '' : ` ${p.field}`}: ${p.message}`));
  }
  if (problems.length > 0) {
    throw new EnvextError('CONTROLPLANE_INVALID_YAML', `cannot read the input: ${problems.join('; ')}`, {
      hint: 'fix the YAML at the given file:line:column',
    });
  }
  ctx.log.debug('read input', { objects: objects.length });
  return objects;
}

/** `oci/`'s pull API as an OciPull. */
async function ociPull(): Promise<OciPull> {
  const oci = await import('../oci/index.js');
  return async (reference, opts) => {
    const m = await oci.pullWasmModule(reference.replace(/^oci:\/\//u, ''), {
      pullPolicy: opts.pullPolicy,
      ...(opts.dockerConfigJson === undefined
        ? {}
        : { credentials: oci.dockerConfigJsonCredentials(opts.dockerConfigJson, 'pullSecretRef') }),
      ...(opts.expectedManifestDigest === undefined ? {} : { expectedManifestDigest: opts.expectedManifestDigest }),
      ...(opts.caCerts === undefined ? {} : { caCerts: opts.caCerts }),
    });
    return { bytes: m.bytes, moduleSha256: m.moduleSha256, manifestDigest: m.manifestDigest };
  };
}

/** Loads inputs, resolves Wasm modules, translates. Shared by the command and its tests. */
export async function runTranslate(
  objects: readonly SourcedObject[],
  resolver: WasmModuleResolver,
  options: { controllerNamespace?: string } = {},
): Promise<{ snapshot: ResourceSnapshot; result: TranslateResult }> {
  const { snapshot } = snapshotFromObjects(objects);
  const wasm = await resolveWasmModules(wasmModuleRequests(snapshot), resolver);
  const result = translateGatewayApi(snapshot, {
    wasmModules: wasm,
    ...(options.controllerNamespace === undefined ? {} : { controllerNamespace: options.controllerNamespace }),
  });
  return { snapshot, result };
}

export const translateCommand: Command = {
  name: 'translate',
  summary: 'translate Gateway API + EnvoyExtensionPolicy YAML to statuses and Envoy xDS',
  description:
    'Reads Gateway API, EnvoyExtensionPolicy, Backend and EnvoyProxy resources (Kubernetes YAML, or\n' +
    "Envoy Gateway's test-bundle format) and prints what envext's control plane would do with them:\n" +
    'the resources with their status filled in, and the Envoy resources (listeners, routes, clusters,\n' +
    "endpoints, secrets) per Gateway. Envoy Gateway's egctl `x translate` does the same, but cannot\n" +
    'translate Wasm; envext fetches and verifies the modules (HTTP(S), OCI) unless --offline.',
  options: {
    file: {
      type: 'string',
      short: 'f',
      multiple: true,
      valueName: 'PATH',
      description: 'input YAML file or directory (- for stdin)',
    },
    type: {
      type: 'string',
      short: 't',
      valueName: 'TYPE',
      description: 'what to print: status, xds or all',
      defaultText: 'all',
    },
    output: { type: 'string', short: 'o', valueName: 'FORMAT', description: 'yaml or json', defaultText: 'yaml' },
    offline: {
      type: 'boolean',
      description:
        "do not fetch Wasm modules: use Envoy Gateway's deterministic mock (serving URL and sha256 from the URL)",
    },
    'wasm-serving-base': {
      type: 'string',
      valueName: 'URL',
      description: 'base URL the module cache serves modules from',
      defaultText: DEFAULT_SERVING_BASE,
    },
  },
  examples: [
    'envext translate -f examples/quickstart/ --type all --offline',
    'envext translate -f gateway.yaml -f policy.yaml --type xds -o json',
  ],
  async run(ctx) {
    const files = stringsOption(ctx, 'file');
    if (files.length === 0)
      throw new UsageError(
        'no input: give at least one -f FILE or directory',
        "run 'envext translate --help' for usage",
      );
    const type = stringOption(ctx, 'type') ?? 'all';
    if (!['status', 'xds', 'all'].includes(type))
      throw new UsageError(`--type must be status, xds or all, not "${type}"`);
    const output = stringOption(ctx, 'output') ?? 'yaml';
    if (output !== 'yaml' && output !== 'json') throw new UsageError(`--output must be yaml or json, not "${output}"`);
    const offline = booleanOption(ctx, 'offline');
    const objects = await readInputs(files, ctx);
    let resolver: WasmModuleResolver;
    if (offline) {
      ctx.stderr.write(
        "envext translate: --offline: Wasm modules are not fetched; serving URLs and sha256 sums come from Envoy Gateway's test formulas, not from the modules\n",
      );
      resolver = new DeterministicWasmResolver();
    } else {
      resolver = new FetchWasmResolver({
        servingBase: stringOption(ctx, 'wasm-serving-base') ?? DEFAULT_SERVING_BASE,
        ociPull: await ociPull(),
      });
    }
    const { snapshot, result } = await runTranslate(objects, resolver);
    const hasClass = [...snapshot.resources.GatewayClass.values()].some(
      (c) => c.spec.controllerName === EG_CONTROLLER_NAME,
    );
    if (!hasClass) {
      ctx.log.warn(`no GatewayClass with controllerName ${EG_CONTROLLER_NAME} in the input: no Gateway is translated`);
    }
    const doc: Record<string, unknown> = {};
    if (type === 'status' || type === 'all') Object.assign(doc, statusDocument(snapshot, result));
    if (type === 'xds' || type === 'all') doc['xds'] = xdsDocument(result);
    ctx.stdout.write(
      output === 'json'
        ? `${JSON.stringify(doc, null, 2)}\n`
        : stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false }),
    );
    return 0;
  },
};
