/**
 * `envext serve` and `envext bootstrap`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { booleanOption, stringOption, stringsOption, type Command, type CommandContext } from '../../common/cli.js';
import { EnvextError, UsageError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { EG_CONTROLLER_NAME } from '../api/types.js';
import type { ResourceStatus } from '../gatewayapi/status.js';
import type { LeaderElector } from '../provider/kubernetes/leader-election.js';
import { WasmModuleCache } from '../wasm-cache/module-cache.js';
import { ModuleServer } from '../wasm-cache/server.js';
import { parseGateway, parseHostPort, renderBootstrap } from './bootstrap.js';
import { ControlPlane, type ResourceSource, type StatusSink } from './control-plane.js';
import { FileSource } from './file-source.js';

function readFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e: unknown) {
    throw new EnvextError('SERVE_FILE_UNREADABLE', `${flag} ${path}: ${errorMessage(e)}`, {
      hint: `check the path given to ${flag}`,
    });
  }
}

/** The HMAC secret of serving paths: from a file, or generated once and kept in the cache dir. */
function wasmSecret(ctx: CommandContext, cacheDir: string): Buffer {
  const file = stringOption(ctx, 'wasm-secret-file');
  if (file !== undefined) return readFile(file, '--wasm-secret-file');
  const kept = join(cacheDir, '.serving-secret');
  if (existsSync(kept)) return readFileSync(kept);
  const secret = randomBytes(32);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(kept, secret, { mode: 0o600 });
  return secret;
}

function printStatuses(
  out: NodeJS.WritableStream,
  statuses: readonly ResourceStatus[],
  previous: Map<string, string>,
): void {
  for (const s of statuses) {
    const id = `${s.kind} ${'namespace' in s ? `${s.namespace}/` : ''}${s.name}`;
    const lines: string[] = [];
    const conds = (
      prefix: string,
      cs: readonly { type: string; status: string; reason: string; message: string }[],
    ): void => {
      for (const c of cs) lines.push(`  ${prefix}${c.type}=${c.status} (${c.reason}): ${c.message}`);
    };
    switch (s.kind) {
      case 'EnvoyExtensionPolicy':
        for (const a of s.status.ancestors)
          conds(
            `ancestor ${a.ancestorRef.kind ?? 'Gateway'} ${a.ancestorRef.namespace ?? ''}/${a.ancestorRef.name}${a.ancestorRef.sectionName === undefined ? '' : `#${a.ancestorRef.sectionName}`}: `,
            a.conditions,
          );
        break;
      case 'HTTPRoute':
      case 'GRPCRoute':
        for (const p of s.status.parents) conds(`parent ${p.parentRef.name}: `, p.conditions);
        break;
      default:
        conds('', s.status.conditions);
    }
    const text = `${id}\n${lines.join('\n')}\n`;
    if (previous.get(id) === text) continue;
    previous.set(id, text);
    out.write(text);
  }
}

/** `envext serve` */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the control plane: xDS over ADS, the Wasm module server, statuses',
  description:
    'Watches Gateway API resources and EnvoyExtensionPolicies (from YAML files, or from Kubernetes), translates them ' +
    'the way Envoy Gateway does, and serves the result to Envoy over ADS (state of the world and delta; node.cluster = ' +
    'the Gateway namespace/name selects its config). Wasm modules named by policies are pulled (HTTPS or OCI), verified ' +
    'and served to Envoy at unguessable paths. Health: /healthz, /readyz; Prometheus metrics: /metrics on --admin-address.',
  options: {
    provider: {
      type: 'string',
      valueName: 'file|kubernetes',
      description: 'where resources come from',
      defaultText: 'file',
    },
    config: {
      type: 'string',
      multiple: true,
      valueName: 'PATH',
      description: 'file provider: YAML files or directories (watched)',
    },
    kubeconfig: {
      type: 'string',
      description: 'kubernetes provider: kubeconfig file (default: in-cluster, then $KUBECONFIG, ~/.kube/config)',
    },
    namespace: {
      type: 'string',
      multiple: true,
      description: 'kubernetes provider: watch only these namespaces (default: all)',
    },
    'controller-name': {
      type: 'string',
      description: 'GatewayClass controllerName to serve',
      defaultText: EG_CONTROLLER_NAME,
    },
    'leader-election-namespace': {
      type: 'string',
      description: 'namespace of the leader Lease',
      defaultText: '$POD_NAMESPACE or envext-system',
    },
    'no-leader-election': { type: 'boolean', description: 'write statuses without electing a leader (single replica)' },
    'xds-address': {
      type: 'string',
      valueName: 'HOST:PORT',
      description: 'ADS listen address',
      defaultText: '0.0.0.0:18000',
    },
    'xds-tls-cert': {
      type: 'string',
      valueName: 'FILE',
      description: 'PEM certificate for the xDS port (enables TLS)',
    },
    'xds-tls-key': { type: 'string', valueName: 'FILE', description: 'PEM key for --xds-tls-cert' },
    'xds-tls-ca': {
      type: 'string',
      valueName: 'FILE',
      description: 'PEM CA: require client certificates signed by it (mTLS)',
    },
    'wasm-address': {
      type: 'string',
      valueName: 'HOST:PORT',
      description: 'Wasm module server listen address',
      defaultText: '0.0.0.0:18002',
    },
    'wasm-public-url': {
      type: 'string',
      valueName: 'URL',
      description: 'URL Envoy reaches the module server at',
      defaultText: 'http(s)://127.0.0.1:<wasm port>',
    },
    'wasm-tls-cert': { type: 'string', valueName: 'FILE', description: 'PEM certificate: serve modules over HTTPS' },
    'wasm-tls-key': { type: 'string', valueName: 'FILE', description: 'PEM key for --wasm-tls-cert' },
    'wasm-cache-dir': {
      type: 'string',
      valueName: 'DIR',
      description: 'where modules are stored',
      defaultText: '~/.cache/envext/wasm',
    },
    'wasm-secret-file': {
      type: 'string',
      valueName: 'FILE',
      description: 'HMAC key of module paths (default: generated and kept in the cache dir)',
    },
    'admin-address': {
      type: 'string',
      valueName: 'HOST:PORT',
      description: '/healthz, /readyz, /metrics, /debug/clients',
      defaultText: '127.0.0.1:8081',
    },
    'proxyless-grpc': {
      type: 'boolean',
      description: 'also serve proxyless gRPC clients (api_listeners, round_robin fallback)',
    },
    'status-file': {
      type: 'string',
      valueName: 'FILE',
      description: 'file provider: also write statuses as YAML to FILE',
    },
  },
  examples: [
    'envext serve --provider file --config examples/quickstart',
    'envext serve --provider kubernetes --namespace default --wasm-public-url http://envext.envext-system.svc:18002',
  ],
  async run(ctx) {
    const provider = stringOption(ctx, 'provider') ?? 'file';
    if (provider !== 'file' && provider !== 'kubernetes')
      throw new UsageError(`--provider must be file or kubernetes, not "${provider}"`);
    const log: Logger = ctx.log.child({ component: 'serve' });
    const xdsAddress = stringOption(ctx, 'xds-address') ?? '0.0.0.0:18000';
    parseHostPort(xdsAddress, '--xds-address', true);
    const wasmAddress = parseHostPort(stringOption(ctx, 'wasm-address') ?? '0.0.0.0:18002', '--wasm-address', true);
    const adminAddress = stringOption(ctx, 'admin-address') ?? '127.0.0.1:8081';
    parseHostPort(adminAddress, '--admin-address', true);
    const controllerName = stringOption(ctx, 'controller-name') ?? EG_CONTROLLER_NAME;
    const cacheDir = stringOption(ctx, 'wasm-cache-dir') ?? join(homedir(), '.cache', 'envext', 'wasm');

    const cert = stringOption(ctx, 'xds-tls-cert');
    const key = stringOption(ctx, 'xds-tls-key');
    const ca = stringOption(ctx, 'xds-tls-ca');
    if ((cert === undefined) !== (key === undefined))
      throw new UsageError('--xds-tls-cert and --xds-tls-key go together');
    if (ca !== undefined && cert === undefined)
      throw new UsageError('--xds-tls-ca needs --xds-tls-cert and --xds-tls-key');
    const xdsTls =
      cert === undefined || key === undefined
        ? undefined
        : {
            cert: readFile(cert, '--xds-tls-cert'),
            key: readFile(key, '--xds-tls-key'),
            ...(ca === undefined ? {} : { ca: readFile(ca, '--xds-tls-ca') }),
          };

    const wasmCert = stringOption(ctx, 'wasm-tls-cert');
    const wasmKey = stringOption(ctx, 'wasm-tls-key');
    if ((wasmCert === undefined) !== (wasmKey === undefined))
      throw new UsageError('--wasm-tls-cert and --wasm-tls-key go together');
    const wasmTls =
      wasmCert === undefined || wasmKey === undefined
        ? undefined
        : { cert: readFile(wasmCert, '--wasm-tls-cert'), key: readFile(wasmKey, '--wasm-tls-key') };
    let publicUrl = stringOption(ctx, 'wasm-public-url');
    const wasmCache = new WasmModuleCache({
      dir: cacheDir,
      get servingBaseUrl(): string {
        return publicUrl ?? '';
      },
      secret: wasmSecret(ctx, cacheDir),
      log: log.child({ component: 'wasm-cache' }),
    });
    const moduleServer = new ModuleServer({
      cache: wasmCache,
      host: wasmAddress.host,
      port: wasmAddress.port,
      ...(wasmTls === undefined ? {} : { tls: wasmTls }),
      log: log.child({ component: 'wasm-cache' }),
    });

    let source: ResourceSource;
    let statusSink: StatusSink;
    let elector: LeaderElector | undefined;
    const printed = new Map<string, string>();
    if (provider === 'file') {
      const paths = stringsOption(ctx, 'config');
      if (paths.length === 0)
        throw new UsageError(
          '--provider file needs --config DIR (or files)',
          'e.g. envext serve --config examples/quickstart',
        );
      for (const p of paths)
        if (!existsSync(p))
          throw new EnvextError('SERVE_CONFIG_NOT_FOUND', `--config ${p}: no such file or directory`, {
            hint: 'pass a directory of YAML resources',
          });
      const statusFile = stringOption(ctx, 'status-file');
      const files = new FileSource({ paths, logger: log, ...(statusFile === undefined ? {} : { statusFile }) });
      source = files;
      statusSink = async (statuses) => {
        printStatuses(ctx.stdout, statuses, printed);
        await files.writeStatusFile(statuses);
      };
    } else {
      // Loaded only for this provider: client-node's modules alone are ~25 MiB of a process.
      const { kubernetesSource } = await import('./kubernetes-source.js');
      const kube = await kubernetesSource({
        kubeconfig: stringOption(ctx, 'kubeconfig'),
        controllerName,
        namespaces: stringsOption(ctx, 'namespace'),
        leaderElection: !booleanOption(ctx, 'no-leader-election'),
        leaseNamespace: stringOption(ctx, 'leader-election-namespace') ?? process.env.POD_NAMESPACE ?? 'envext-system',
        identity: process.env.POD_NAME,
        log,
      });
      source = kube.source;
      statusSink = kube.statusSink;
      elector = kube.elector;
    }

    const cp = new ControlPlane({
      source,
      wasmCache,
      moduleServer,
      xdsAddress,
      ...(xdsTls === undefined ? {} : { xdsTls }),
      adminAddress,
      controllerName,
      statusSink,
      proxylessGrpc: booleanOption(ctx, 'proxyless-grpc'),
      // The module URL needs the bound port when none was given (port 0 in tests).
      onListening: (p) => {
        publicUrl ??= `${wasmTls === undefined ? 'http' : 'https'}://127.0.0.1:${p.wasm}`;
      },
      log,
    });
    const ports = await cp.start();
    elector?.start();

    const xdsHost = parseHostPort(xdsAddress, '--xds-address', true).host;
    const connect = `${xdsHost === '0.0.0.0' || xdsHost === '::' ? '127.0.0.1' : xdsHost}:${ports.xds}`;
    const groups = cp.cache.groupNames();
    ctx.stdout.write(
      `\nenvext serve is running (${provider} provider)\n` +
        `  xDS (ADS, SotW + delta${xdsTls === undefined ? '' : ', TLS'}):  ${connect}\n` +
        `  Wasm modules:                ${publicUrl}\n` +
        `  health/metrics:              http://${adminAddress.replace(/:\d+$/, '')}:${ports.admin}/readyz  /metrics\n` +
        `  Gateways (node.cluster):     ${groups.length === 0 ? '(none yet)' : groups.join(', ')}\n` +
        (groups.length === 0
          ? ''
          : `\nPoint Envoy at it:\n` +
            groups
              .map(
                (g) =>
                  `  npx envext bootstrap --gateway ${g} --xds-address ${connect} > envoy.yaml && envoy -c envoy.yaml\n`,
              )
              .join('')) +
        '\n',
    );

    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    log.info('shutting down');
    await elector?.stop();
    await cp.stop();
  },
};

/** `envext bootstrap` */
export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'print an Envoy bootstrap that connects to envext serve',
  description:
    'Prints the Envoy bootstrap (YAML or JSON) for one Gateway: node.cluster = NAMESPACE/NAME selects its config, ' +
    'ADS over gRPC (delta by default, as Envoy Gateway) to the xDS address, LDS/CDS over ADS waiting for the control ' +
    "plane (initial_fetch_timeout 0s), and an admin listener. Checked against Envoy's bootstrap proto.",
  options: {
    gateway: { type: 'string', valueName: 'NS/NAME', description: 'the Gateway this Envoy serves (required)' },
    'xds-address': {
      type: 'string',
      valueName: 'HOST:PORT',
      description: 'where envext serve listens for xDS',
      defaultText: '127.0.0.1:18000',
    },
    'node-id': { type: 'string', description: 'node.id, unique per Envoy', defaultText: 'envoy-<ns>-<name>' },
    'admin-address': {
      type: 'string',
      valueName: 'HOST:PORT',
      description: "Envoy's admin listener",
      defaultText: '127.0.0.1:19000',
    },
    api: { type: 'string', valueName: 'delta|sotw', description: 'ADS flavour', defaultText: 'delta' },
    'tls-ca': {
      type: 'string',
      valueName: 'FILE',
      description: 'CA file (as Envoy sees it) to verify envext serve: enables TLS',
    },
    'tls-cert': { type: 'string', valueName: 'FILE', description: 'client certificate file for mTLS' },
    'tls-key': { type: 'string', valueName: 'FILE', description: 'client key file for mTLS' },
    output: { type: 'string', short: 'o', valueName: 'yaml|json', description: 'output format', defaultText: 'yaml' },
  },
  examples: [
    'envext bootstrap --gateway default/eg > envoy.yaml',
    'envext bootstrap --gateway default/eg --xds-address envext.envext-system.svc:18000 --api sotw -o json',
  ],
  run(ctx) {
    const gateway = stringOption(ctx, 'gateway');
    if (gateway === undefined)
      throw new UsageError('--gateway NAMESPACE/NAME is required', 'e.g. envext bootstrap --gateway default/eg');
    parseGateway(gateway);
    const api = stringOption(ctx, 'api') ?? 'delta';
    if (api !== 'delta' && api !== 'sotw') throw new UsageError(`--api must be delta or sotw, not "${api}"`);
    const output = stringOption(ctx, 'output') ?? 'yaml';
    if (output !== 'yaml' && output !== 'json') throw new UsageError(`-o must be yaml or json, not "${output}"`);
    const caFile = stringOption(ctx, 'tls-ca');
    const certFile = stringOption(ctx, 'tls-cert');
    const keyFile = stringOption(ctx, 'tls-key');
    if ((certFile === undefined) !== (keyFile === undefined))
      throw new UsageError('--tls-cert and --tls-key go together');
    if (certFile !== undefined && caFile === undefined) throw new UsageError('--tls-cert needs --tls-ca');
    const xdsAddress = stringOption(ctx, 'xds-address');
    const nodeId = stringOption(ctx, 'node-id');
    const adminAddress = stringOption(ctx, 'admin-address');
    ctx.stdout.write(
      renderBootstrap(
        {
          gateway,
          api,
          ...(xdsAddress === undefined ? {} : { xdsAddress }),
          ...(nodeId === undefined ? {} : { nodeId }),
          ...(adminAddress === undefined ? {} : { adminAddress }),
          ...(caFile === undefined
            ? {}
            : {
                tls: {
                  caFile,
                  ...(certFile === undefined ? {} : { certFile }),
                  ...(keyFile === undefined ? {} : { keyFile }),
                },
              }),
        },
        output,
      ),
    );
  },
};
