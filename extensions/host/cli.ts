/**
 * `envext wasm inspect|run|bench`: look at a proxy-wasm module the way Envoy's loader does, run one
 * request through it in the host, and measure the host's per-request cost.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  booleanOption,
  type Command,
  type CommandContext,
  type CommandGroup,
  stringOption,
  stringsOption,
} from '../../common/cli.js';
import { EnvextError, UsageError } from '../../common/errors.js';
import { HostEmulator, type EmulatorOptions } from './emulator.js';
import { checkModule, envoyImportsFor, formatSignature, type ModuleCheck } from './envoy-imports.js';
import {
  type CalloutAnswer,
  parseCallouts,
  parseRequestSpec,
  parseResponseSpec,
  type RequestSpec,
  type ResponseSpec,
} from './request-spec.js';
import { runLifecycle, type RunResult } from './run.js';
import { systemClock } from './state.js';
import { type CompiledModule, WA } from './wasm-api.js';
import { readWasmBinary, type WasmBinaryInfo } from './wasm-binary.js';
import { compileWat } from './wat.js';

/** Reads a `.wasm` file, or compiles a `.wat` file. */
export async function loadModuleFile(path: string): Promise<Uint8Array> {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new EnvextError('WASM_FILE_NOT_FOUND', `${path}: no such file`, {
      hint: 'pass the path of a .wasm or .wat file',
    });
  }
  const bytes = readFileSync(path);
  if (path.endsWith('.wat')) return compileWat(bytes.toString('utf8'), path);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readJson(path: string, flag: string): unknown {
  if (!existsSync(path)) {
    throw new EnvextError('WASM_FILE_NOT_FOUND', `${flag} ${path}: no such file`, {
      hint: `pass an existing JSON file to ${flag}`,
    });
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (e) {
    throw new EnvextError('WASM_BAD_SPEC', `${flag} ${path}: not valid JSON: ${(e as Error).message}`, {
      hint: 'see "REQ/RESP JSON" in the README',
    });
  }
}

/** `--plugin-config FILE|TEXT`: an existing file's bytes, else the text itself. */
function configValue(ctx: CommandContext, flag: string): Uint8Array | undefined {
  const v = stringOption(ctx, flag);
  if (v === undefined) return undefined;
  if (existsSync(v) && statSync(v).isFile()) return readFileSync(v);
  return Buffer.from(v, 'utf8');
}

export interface InspectReport {
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
  readonly abiVersion: ModuleCheck['abiVersion'];
  readonly allocator: ModuleCheck['allocator'] | null;
  /** Would Envoy load it? */
  readonly envoyLoads: boolean;
  /** Will this host run it? */
  readonly hostRuns: boolean;
  readonly problems: ModuleCheck['problems'];
  readonly imports: readonly {
    module: string;
    name: string;
    kind: string;
    signature: string | null;
    providedByEnvoy: boolean;
  }[];
  readonly exports: readonly { name: string; kind: string; signature: string | null }[];
  readonly memory: { readonly initialPages: number; readonly maximumPages: number | null } | null;
  readonly startSection: boolean;
}

export function inspectModule(file: string, bytes: Uint8Array): InspectReport {
  const info: WasmBinaryInfo = readWasmBinary(bytes, file);
  let module: CompiledModule;
  try {
    module = new WA.Module(bytes);
  } catch (e) {
    throw new EnvextError('WASM_INVALID_MODULE', `${file}: ${(e as Error).message}`, {
      hint: 'the module does not validate',
    });
  }
  const check = checkModule(module, info);
  const provided = envoyImportsFor(check.abiVersion === 'unknown' ? '0.2.1' : check.abiVersion);
  const mem = info.memories[0];
  return {
    file,
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    abiVersion: check.abiVersion,
    allocator: check.allocator ?? null,
    envoyLoads: check.loadable,
    hostRuns: check.problems.length === 0,
    problems: check.problems,
    imports: info.imports.map((i) => ({
      module: i.module,
      name: i.name,
      kind: i.kind,
      signature: i.type === undefined ? null : formatSignature(i.type),
      providedByEnvoy: i.kind === 'function' && provided.has(`${i.module}.${i.name}`),
    })),
    exports: info.exports.map((e) => ({
      name: e.name,
      kind: e.kind,
      signature: e.type === undefined ? null : formatSignature(e.type),
    })),
    memory: mem === undefined ? null : { initialPages: mem.initial, maximumPages: mem.maximum ?? null },
    startSection: info.hasStartSection,
  };
}

function printInspect(ctx: CommandContext, r: InspectReport): void {
  const w = (s: string): void => void ctx.stdout.write(s + '\n');
  w(`${r.file}: ${r.size} bytes, sha256 ${r.sha256}`);
  w(`ABI: ${r.abiVersion === 'unknown' ? 'none (no proxy_abi_version_* export)' : r.abiVersion}`);
  w(`allocator: ${r.allocator ?? 'none'}`);
  w(
    `memory: ${r.memory === null ? 'none exported' : `${r.memory.initialPages} pages initial, max ${r.memory.maximumPages ?? 'unbounded (Envoy caps at 1 GiB)'}`}`,
  );
  if (r.startSection) w('start section: yes (runs at instantiation, before any context; no host calls there)');
  w(`envoy would load it: ${r.envoyLoads ? 'yes' : 'no'}`);
  if (!r.hostRuns && r.envoyLoads) w('this host runs it: no');
  for (const p of r.problems) w(`  ${p.severity === 'envoy' ? 'refused' : 'note'}: ${p.message}`);
  w(`imports (${r.imports.length}):`);
  for (const i of r.imports) {
    w(`  ${i.providedByEnvoy ? ' ' : '!'} ${i.module}.${i.name} ${i.signature ?? `(${i.kind})`}`);
  }
  w(`exports (${r.exports.length}):`);
  for (const e of r.exports) w(`    ${e.name} ${e.signature ?? `(${e.kind})`}`);
}

const inspectCommand: Command = {
  name: 'inspect',
  summary: "show a module's ABI version, imports, exports and size, and whether Envoy would load it",
  description:
    'Reads MODULE (.wasm, or .wat compiled on the fly) and checks it as Envoy does: ABI marker export, every import ' +
    'against what Envoy provides for that ABI (each unknown import named), import signatures, and the allocator ' +
    '(malloc, then proxy_on_memory_allocate). Exits 1 when Envoy would refuse the module.',
  positionals: [{ name: 'MODULE', description: '.wasm or .wat file', required: true }],
  options: { json: { type: 'boolean', description: 'print JSON' } },
  examples: ['envext wasm inspect examples/wasm/add-header.wat', 'envext wasm inspect filter.wasm --json'],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const report = inspectModule(file, await loadModuleFile(file));
    if (booleanOption(ctx, 'json')) ctx.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else printInspect(ctx, report);
    return report.envoyLoads ? 0 : 1;
  },
};

const hostOptions = {
  'plugin-config': {
    type: 'string',
    valueName: 'FILE|TEXT',
    description: 'plugin configuration: a file, or the text itself (JSON is passed as text, as Envoy passes a Struct)',
  },
  'vm-config': { type: 'string', valueName: 'FILE|TEXT', description: 'VM configuration (buffer type 6)' },
  'root-id': { type: 'string', valueName: 'ID', description: "the plugin's root_id", defaultText: "''" },
  'vm-id': {
    type: 'string',
    valueName: 'ID',
    description: 'vm_id (shared data and queue namespace)',
    defaultText: "''",
  },
  request: { type: 'string', valueName: 'REQ.json', description: 'the request to run (see README: REQ/RESP JSON)' },
  response: {
    type: 'string',
    valueName: 'RESP.json',
    description: 'the upstream response (omit to stop after the request)',
  },
  callouts: {
    type: 'string',
    valueName: 'FILE',
    description: 'answers for HTTP and gRPC callouts by cluster (see README); unlisted HTTP clusters fail (reset)',
  },
  'fail-open': { type: 'boolean', description: 'after a VM failure, bypass the filter instead of answering 503' },
  property: {
    type: 'string',
    multiple: true,
    valueName: 'PATH=VALUE',
    description: 'a string property for proxy_get_property, e.g. xds.cluster_name=backend (repeatable)',
  },
  'guest-log-level': {
    type: 'string',
    valueName: 'LEVEL',
    description: 'what proxy_get_log_level answers: trace|debug|info|warn|error|critical',
    defaultText: 'info',
  },
} as const;

async function buildHost(ctx: CommandContext, file: string, throughput = false): Promise<HostEmulator> {
  const bytes = await loadModuleFile(file);
  const level = stringOption(ctx, 'guest-log-level') ?? 'info';
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;
  if (!(levels as readonly string[]).includes(level)) {
    throw new UsageError(`--guest-log-level ${level}: unknown level`, `use one of ${levels.join(', ')}`);
  }
  const opts: EmulatorOptions = {
    failOpen: booleanOption(ctx, 'fail-open'),
    logLevel: level as (typeof levels)[number],
    clock: systemClock,
    recordCalls: false,
    // `bench` keeps no per-stream inspection state and only a small log ring.
    ...(throughput ? { keepCompletedStreams: 0, maxLogEntries: 1000 } : {}),
  };
  const pc = configValue(ctx, 'plugin-config');
  const vc = configValue(ctx, 'vm-config');
  const rootId = stringOption(ctx, 'root-id');
  const vmId = stringOption(ctx, 'vm-id');
  const host = await HostEmulator.create(
    bytes,
    {
      ...opts,
      ...(pc === undefined ? {} : { pluginConfiguration: pc }),
      ...(vc === undefined ? {} : { vmConfiguration: vc }),
      ...(rootId === undefined ? {} : { rootId }),
      ...(vmId === undefined ? {} : { vmId }),
    },
    file,
  );
  for (const p of stringsOption(ctx, 'property')) {
    const eq = p.indexOf('=');
    if (eq <= 0)
      throw new UsageError(`--property ${p}: expected PATH=VALUE`, 'e.g. --property xds.cluster_name=backend');
    host.setProperty(p.slice(0, eq), p.slice(eq + 1));
  }
  host.startPlugin();
  return host;
}

function loadSpecs(ctx: CommandContext): {
  req: RequestSpec;
  resp: ResponseSpec | undefined;
  callouts: Map<string, CalloutAnswer>;
} {
  const reqFile = stringOption(ctx, 'request');
  if (reqFile === undefined) throw new UsageError('--request REQ.json is required', 'see README: REQ/RESP JSON');
  const respFile = stringOption(ctx, 'response');
  const calloutsFile = stringOption(ctx, 'callouts');
  return {
    req: parseRequestSpec(readJson(reqFile, '--request'), reqFile),
    resp: respFile === undefined ? undefined : parseResponseSpec(readJson(respFile, '--response'), respFile),
    callouts:
      calloutsFile === undefined
        ? new Map<string, CalloutAnswer>()
        : parseCallouts(readJson(calloutsFile, '--callouts'), calloutsFile),
  };
}

function printRun(ctx: CommandContext, r: RunResult): void {
  const w = (s: string): void => void ctx.stdout.write(s + '\n');
  const body = (b: RunResult['request']['body']): string =>
    typeof b === 'string' ? JSON.stringify(b) : `base64:${b.base64}`;
  w('stream actions:');
  for (const a of r.actions)
    w(
      `  ${a.phase.padEnd(18)} ${a.name}${a.raw !== undefined && a.raw !== a.status ? ` (guest returned ${a.raw})` : ''}`,
    );
  w(`request ${r.request.forwarded ? 'forwarded upstream' : 'NOT forwarded'}:`);
  for (const [k, v] of r.request.headers) w(`  ${k}: ${v}`);
  if (body(r.request.body) !== '""') w(`  body: ${body(r.request.body)}`);
  for (const [k, v] of r.request.trailers) w(`  trailer ${k}: ${v}`);
  if (r.localReply !== undefined) {
    w(
      `local reply: ${r.localReply.statusCode} (${r.localReply.details})${r.localReply.grpcStatus === undefined ? '' : ` grpc-status ${r.localReply.grpcStatus}`}`,
    );
  }
  if (r.response !== undefined) {
    w('response sent downstream:');
    for (const [k, v] of r.response.headers) w(`  ${k}: ${v}`);
    if (body(r.response.body) !== '""') w(`  body: ${body(r.response.body)}`);
    for (const [k, v] of r.response.trailers) w(`  trailer ${k}: ${v}`);
  }
  if (r.streamClosed !== undefined) w(`stream reset: ${r.streamClosed}`);
  if (r.callouts.length > 0) {
    w('callouts:');
    for (const c of r.callouts) w(`  #${c.token} ${c.kind} → ${c.cluster}: ${c.answer}`);
  }
  if (r.metrics.length > 0) {
    w('metrics:');
    for (const m of r.metrics)
      w(`  ${m.kind} ${m.name} = ${Array.isArray(m.value) ? `[${m.value.join(', ')}]` : m.value}`);
  }
  if (r.logs.length > 0) {
    w('logs:');
    for (const l of r.logs) w(`  [${l.level}] ${l.message}`);
  }
  if (r.vmFailure !== undefined) w(`VM failed in ${r.vmFailure.callback}: ${r.vmFailure.message}`);
}

const runCommand: Command = {
  name: 'run',
  summary: 'run one request (and optionally its response) through a module in the host and show what happened',
  description:
    'Loads MODULE as Envoy would, starts the plugin (on_vm_start, on_configure), then runs one HTTP request ' +
    'lifecycle: request headers/body/trailers, callouts answered from --callouts, the response from --response ' +
    '(or the local reply the filter sent), on_log, on_done, on_delete. Prints the final request and response, ' +
    'stream actions per phase, local reply, logs, metrics and callouts. Exits 1 if the VM failed.',
  positionals: [{ name: 'MODULE', description: '.wasm or .wat file', required: true }],
  options: { ...hostOptions, json: { type: 'boolean', description: 'print JSON' } },
  examples: [
    'envext wasm run examples/wasm/add-header.wat --request examples/wasm/request.json --response examples/wasm/response.json',
    'envext wasm run filter.wasm --plugin-config config.json --request req.json --json',
  ],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const specs = loadSpecs(ctx);
    const host = await buildHost(ctx, file);
    const result = runLifecycle(host, specs.req, specs.resp, specs.callouts)!;
    if (booleanOption(ctx, 'json')) ctx.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else printRun(ctx, result);
    return result.vmFailure === undefined ? 0 : 1;
  },
};

const benchCommand: Command = {
  name: 'bench',
  summary: 'measure requests/s and µs per request lifecycle of a module in the host',
  description:
    'Runs the lifecycle of `envext wasm run` repeatedly (callouts answered from --callouts) after a warm-up and ' +
    'reports the fastest of 5 rounds: requests/s, µs per lifecycle and host calls/s. Logs are not printed.',
  positionals: [{ name: 'MODULE', description: '.wasm or .wat file', required: true }],
  options: {
    ...hostOptions,
    iterations: { type: 'string', valueName: 'N', description: 'lifecycles per round', defaultText: '20000' },
    json: { type: 'boolean', description: 'print JSON' },
  },
  examples: [
    'envext wasm bench examples/wasm/add-header.wat --request examples/wasm/request.json --response examples/wasm/response.json',
  ],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const n = Number(stringOption(ctx, 'iterations') ?? '20000');
    if (!Number.isInteger(n) || n < 1) throw new UsageError('--iterations must be a positive integer');
    const specs = loadSpecs(ctx);
    const host = await buildHost(ctx, file, true);
    const once = (): void => void runLifecycle(host, specs.req, specs.resp, specs.callouts, false);
    for (let i = 0; i < Math.min(n, 2000); i++) once();
    let best = Number.POSITIVE_INFINITY;
    let calls = 0;
    for (let r = 0; r < 5; r++) {
      const before = host.hostCalls();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) once();
      const ms = performance.now() - t0;
      if (ms < best) {
        best = ms;
        calls = host.hostCalls() - before;
      }
    }
    const us = (best * 1000) / n;
    const report = {
      module: file,
      iterations: n,
      usPerLifecycle: Math.round(us * 1000) / 1000,
      requestsPerSec: Math.round((n * 1000) / best),
      hostCallsPerLifecycle: calls / n,
      hostCallsPerSec: Math.round((calls * 1000) / best),
      vmFailed: host.vmFailed(),
      memoryBytes: host.memoryBytes(),
    };
    if (booleanOption(ctx, 'json')) ctx.stdout.write(JSON.stringify(report) + '\n');
    else {
      ctx.stdout.write(
        `${report.requestsPerSec} requests/s, ${report.usPerLifecycle} µs per lifecycle, ` +
          `${report.hostCallsPerLifecycle} host calls per lifecycle (${report.hostCallsPerSec}/s)` +
          `${report.vmFailed ? ' — the VM FAILED during the run' : ''}\n`,
      );
    }
    return report.vmFailed ? 1 : 0;
  },
};

/** `envext wasm`. */
export const wasmCommands: CommandGroup = {
  name: 'wasm',
  summary: 'inspect proxy-wasm modules and run them in the TypeScript host as Envoy would',
  subcommands: [inspectCommand, runCommand, benchCommand],
};
