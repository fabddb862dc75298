/**
 * The host emulator: runs a proxy-wasm module as Envoy's HTTP and TCP Wasm filters would, with
 * verbs that drive the plugin and verbs that inspect the host (the model is proxy-wasm-go-sdk's
 * `proxytest`, reference §3.1).
 *
 * ```ts
 * const host = await HostEmulator.create(wasmBytes, { pluginConfiguration: '{"header":"x-hello"}' });
 * host.startPlugin();                                        // on_context_create, on_vm_start, on_configure
 * const id = host.initializeHttpContext();                   // on_context_create(id, root)
 * host.callOnRequestHeaders(id, { ':path': '/', ':method': 'GET', ':authority': 'a' }, true); // → HeadersStatus
 * host.currentRequestHeaders(id);                            // what the request looks like now
 * host.completeHttpContext(id);                              // on_log, on_done, on_delete
 * host.logs('info');                                         // messages the guest logged at info
 * ```
 *
 * Drive verbs: `startVm`, `startPlugin`, `configure`, `validateConfiguration`, `finishVm`,
 * `initializeHttpContext`, `callOnRequestHeaders|Body|Trailers|Metadata`,
 * `callOnResponseHeaders|Body|Trailers|Metadata`, `completeHttpContext`, `tick`, `advanceTime`,
 * `callOnHttpCallResponse`, `failHttpCall`, `callOnGrpcReceiveInitialMetadata`, `callOnGrpcReceive`,
 * `callOnGrpcReceiveTrailingMetadata`, `callOnGrpcClose`, `callOnForeignFunction`,
 * `enqueueSharedQueue`, `initializeConnection`, `callOnDownstreamData`, `callOnUpstreamData`,
 * `closeDownstreamConnection`, `closeUpstreamConnection`, `completeConnection`.
 *
 * Inspect verbs: `currentRequestHeaders|Body|Trailers`, `currentResponseHeaders|Body|Trailers`,
 * `forwardedRequestBody`, `forwardedResponseBody`, `currentHttpStreamAction`, `httpStreamActions`,
 * `sentLocalResponse`, `streamClosed`, `logs`, `logEntries`, `counter`, `gauge`, `histogram`,
 * `metrics`, `pendingCallouts`, `calloutAttributes`, `queueSize`, `sharedData`, `property`,
 * `tickPeriod`, `vmFailed`, `vmFailure`, `callTrace`, `downstreamData`, `upstreamData`,
 * `currentTcpStreamAction`, `memoryBytes`, `hostCalls`.
 *
 * Everything Envoy does differently from the spec is done the Envoy way: status translation and
 * clamping, deferred continue/local reply, access windows, buffering while stopped, on_log before
 * on_done/on_delete, whole-VM failure with fail-closed 503 `wasm_fail_stream` / fail-open bypass /
 * reload. A trap never throws out of a verb: it is recorded and the failure policy answers.
 */
import { EnvextError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import {
  BufferType,
  DataStatus,
  GrpcStatus,
  type GuestLogLevel,
  HeadersStatus,
  NetworkStatus,
  PeerType,
  StreamType,
  TrailersStatus,
  WasmResult,
} from './abi.js';
import { type Context, type FailurePolicy, type LocalResponse, type PluginInfo } from './context.js';
import { checkModule, type ModuleCheck } from './envoy-imports.js';
import { IdMap } from './id-map.js';
import { HeaderMap, type HeaderInput, type HeaderPair } from './pairs.js';
import { encodeProperty, propertyPath, type PropertyValue } from './properties.js';
import { type Clock, type LogEntry, type Metric, MetricStore, SharedState, VirtualClock } from './state.js';
import { type CompiledModule, WA } from './wasm-api.js';
import { capMemory, readWasmBinary } from './wasm-binary.js';
import { type Callout, type ForeignFunction, WasmVm } from './vm.js';

export interface EmulatorOptions {
  /** `vm_config.vm_id`. Default ''. */
  readonly vmId?: string;
  /** `vm_config.configuration` (buffer type 6). */
  readonly vmConfiguration?: Uint8Array | string;
  /** Configuration of the plugin `startPlugin()` starts by default (buffer type 7). */
  readonly pluginConfiguration?: Uint8Array | string;
  /** `root_id` of the default plugin. Default ''. */
  readonly rootId?: string;
  /** `PluginConfig.name` of the default plugin. Default 'envext-plugin'. */
  readonly pluginName?: string;
  /** Failure policy (Envoy default FAIL_CLOSED). `failOpen: true` is FAIL_OPEN. */
  readonly failurePolicy?: FailurePolicy;
  readonly failOpen?: boolean;
  /** FAIL_RELOAD: least time between two reloads (Envoy `ReloadConfig.backoff` base, 1 s). */
  readonly reloadBackoffMs?: number;
  /** Guest memory cap. Default 1 GiB, as Envoy's V8. */
  readonly maxMemoryBytes?: number;
  /** What `proxy_get_log_level` answers. Default 'info'. */
  readonly logLevel?: GuestLogLevel;
  /** Environment visible through WASI (`VmConfig.environment_variables`). */
  readonly environment?: Readonly<Record<string, string>>;
  /** Default: a `VirtualClock` (deterministic; move it with `advanceTime`). */
  readonly clock?: Clock;
  readonly foreignFunctions?: Readonly<Record<string, ForeignFunction>>;
  /** Known clusters for callouts; unknown ones are refused as Envoy does. Default: any. */
  readonly clusters?: readonly string[];
  /** Top-level attributes (node, xds, listener_direction, …) for `proxy_get_property`. */
  readonly properties?: Readonly<Record<string, PropertyValue>>;
  /** Pass headers StopIteration (1) through instead of translating it to stop-all (Envoy knob). */
  readonly allowOnHeadersStopIteration?: boolean;
  /** Body buffering limit (Envoy `per_connection_buffer_limit_bytes`, default 1 MiB). */
  readonly bufferLimitBytes?: number;
  /** Shared data/queues store; pass one to share it between emulators (as VMs with one vm_id). */
  readonly shared?: SharedState;
  /** Also write guest logs to this logger (as `wasm log <root_id> <vm_id>: msg`). */
  readonly logger?: Logger;
  /** Record every guest callback for `callTrace()` (default true; benchmarks turn it off). */
  readonly recordCalls?: boolean;
  /** Keep at most this many log entries (oldest dropped first). Default 100000. */
  readonly maxLogEntries?: number;
  /** Keep inspection state of at most this many completed streams. Default 1000. */
  readonly keepCompletedStreams?: number;
  /**
   * `capability_restriction_config.allowed_capabilities` (names such as `proxy_http_call`,
   * `fd_write`, `proxy_on_request_headers`): other host calls fail (InternalFailure / NOTCAPABLE)
   * and other callbacks are never called. Default: all allowed.
   */
  readonly allowedCapabilities?: readonly string[];
}

/** One stream callback's translated result, for `httpStreamActions` and `envext wasm run`. */
export interface StreamAction {
  readonly phase:
    | 'request_headers'
    | 'request_body'
    | 'request_trailers'
    | 'response_headers'
    | 'response_body'
    | 'response_trailers'
    | 'new_connection'
    | 'downstream_data'
    | 'upstream_data';
  /** The status Envoy acts on, after translation and clamping. */
  readonly status: number;
  readonly name: string;
  /** What the guest returned (undefined when it was not called: VM failed, stream closed). */
  readonly raw: number | undefined;
}

/** One guest callback the host made, in order (`callTrace`). */
export interface TraceEntry {
  readonly callback: string;
  readonly contextId: number;
}

const HEADERS_NAMES = [
  'Continue',
  'StopIteration',
  'ContinueAndEndStream',
  'StopAllIterationAndBuffer',
  'StopAllIterationAndWatermark',
];
const DATA_NAMES = ['Continue', 'StopIterationAndBuffer', 'StopIterationAndWatermark', 'StopIterationNoBuffer'];
const TRAILERS_NAMES = ['Continue', 'StopIteration'];
/** Export names by phase (constants, so the hot path builds no strings). */
const CALLBACK: Readonly<Record<StreamAction['phase'], string>> = {
  request_headers: 'proxy_on_request_headers',
  request_body: 'proxy_on_request_body',
  request_trailers: 'proxy_on_request_trailers',
  response_headers: 'proxy_on_response_headers',
  response_body: 'proxy_on_response_body',
  response_trailers: 'proxy_on_response_trailers',
  new_connection: 'proxy_on_new_connection',
  downstream_data: 'proxy_on_downstream_data',
  upstream_data: 'proxy_on_upstream_data',
};

/** Envoy's `Grpc::Utility::httpToGrpcStatus`, for local replies to gRPC requests without a gRPC status. */
export function httpToGrpcStatus(http: number): number {
  switch (http) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** Envoy's translation of an `on_*_headers` result (reference §2.5). */
export function translateHeadersStatus(raw: number, stopped: boolean, allowStopIteration: boolean): HeadersStatus {
  if (stopped || raw > HeadersStatus.StopAllIterationAndWatermark) return HeadersStatus.StopAllIterationAndWatermark;
  if (raw === HeadersStatus.StopIteration && !allowStopIteration) return HeadersStatus.StopAllIterationAndWatermark;
  return raw as HeadersStatus;
}

/** Envoy's translation of an `on_*_body` result. */
export function translateDataStatus(raw: number, stopped: boolean): DataStatus {
  if (stopped || raw > DataStatus.StopIterationNoBuffer) return DataStatus.StopIterationNoBuffer;
  return raw as DataStatus;
}

/** Envoy's translation of an `on_*_trailers` result. */
export function translateTrailersStatus(raw: number, stopped: boolean): TrailersStatus {
  if (stopped || raw > TrailersStatus.StopIteration) return TrailersStatus.StopIteration;
  return raw as TrailersStatus;
}

/** TCP `on_*_data` / `on_new_connection`. */
export function translateNetworkStatus(raw: number): NetworkStatus {
  return raw > NetworkStatus.StopIteration ? NetworkStatus.StopIteration : (raw as NetworkStatus);
}

interface Plugin {
  readonly info: PluginInfo;
  rootContextId: number;
}

/** Per-stream filter state that is not the guest's business (what Envoy's filter chain keeps). */
class Stream {
  readonly actions: StreamAction[] = [];
  requestStopped = false;
  requestStopAll = false;
  responseStopped = false;
  responseStopAll = false;
  requestBuffering = false;
  responseBuffering = false;
  /** Data (and trailers) that arrived while headers were stopped-all, delivered on continue. */
  pendingRequest: { data: Uint8Array; eos: boolean; trailers: HeaderInput | undefined } | undefined;
  pendingResponse: { data: Uint8Array; eos: boolean; trailers: HeaderInput | undefined } | undefined;
  readonly forwardedRequest: Uint8Array[] = [];
  readonly forwardedResponse: Uint8Array[] = [];
  failReplied = false;
  completed = false;
  /** A local reply was sent: the request side is over (Envoy stops decoding). */
  requestDone = false;
  /** The local reply was applied (it went through the response callbacks, directly, or reset). */
  localReplyApplied = false;
  /**
   * Inside one of this stream's filter callbacks. A local reply sent there is prepared and runs
   * when the callback has returned (Envoy's FilterManager::sendLocalReply during decoding:
   * prepareLocalReplyViaFilterChain, then executeLocalReplyIfPrepared after the filter returns).
   */
  inCallback = false;
  localReplyQueued = false;
  /** The upstream response reached this filter / its headers went past it (Continue). */
  responseStarted = false;
  responseHeadersSent = false;
  /** TCP: what was forwarded each way. */
  readonly forwardedDownstream: Uint8Array[] = [];
  readonly forwardedUpstream: Uint8Array[] = [];
  downstreamStopped = false;
  constructor(
    readonly vm: WasmVm,
    readonly ctx: Context,
    readonly plugin: Plugin,
  ) {}
}

const utf8 = (v: Uint8Array | string): Uint8Array => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export class HostEmulator {
  /** Result of the load-time checks (ABI version, allocator, problems). */
  readonly check: ModuleCheck;
  readonly clock: Clock;
  readonly metricStore = new MetricStore();
  readonly shared: SharedState;
  private readonly module: CompiledModule;
  private readonly opts: EmulatorOptions;
  private readonly entries: LogEntry[] = [];
  private readonly trace: TraceEntry[] = [];
  private readonly properties: Record<string, PropertyValue | undefined>;
  private readonly foreign = new Map<string, ForeignFunction>();
  private vmInstance: WasmVm | undefined;
  private readonly plugins: Plugin[] = [];
  private readonly streams = new IdMap<Stream>();
  private lastReloadNs = -1n;
  /** Number of VMs created (1 + reloads). */
  vmGenerations = 0;

  private constructor(module: CompiledModule, check: ModuleCheck, opts: EmulatorOptions) {
    this.module = module;
    this.check = check;
    this.opts = opts;
    this.clock = opts.clock ?? new VirtualClock();
    this.shared = opts.shared ?? new SharedState();
    this.properties = { ...(opts.properties ?? {}) };
    for (const [k, f] of Object.entries(opts.foreignFunctions ?? {})) this.foreign.set(k, f);
    this.recordCalls = opts.recordCalls ?? true;
  }

  /** Forgets the oldest completed streams beyond `keepCompletedStreams` (a FIFO with a head index). */
  private retire(id: number): void {
    const keep = this.opts.keepCompletedStreams ?? 1000;
    if (keep === 0) {
      this.streams.delete(id);
      return;
    }
    this.completed.push(id);
    if (this.completed.length - this.completedHead > keep) this.streams.delete(this.completed[this.completedHead++]!);
    if (this.completedHead > 4096) {
      this.completed.splice(0, this.completedHead);
      this.completedHead = 0;
    }
  }

  /**
   * Checks and compiles a module as Envoy's loader would. Refuses (throws `WASM_MODULE_REJECTED`)
   * a module with an unknown import (each one named), a signature mismatch, no ABI marker, no
   * allocator, or ABI 0.1.0; applies the memory cap.
   */
  static async create(bytes: Uint8Array, options: EmulatorOptions = {}, file = 'module'): Promise<HostEmulator> {
    const info = readWasmBinary(bytes, file);
    const maxPages = Math.floor((options.maxMemoryBytes ?? 1024 * 1024 * 1024) / 65536);
    let module: CompiledModule;
    try {
      module = await WA.compile(capMemory(bytes, maxPages, file));
    } catch (e) {
      if (e instanceof EnvextError) throw e;
      throw new EnvextError('WASM_INVALID_MODULE', `${file}: ${(e as Error).message}`, {
        hint: 'the module does not validate; rebuild it',
      });
    }
    const check = checkModule(module, info);
    if (check.problems.length > 0) {
      throw new EnvextError('WASM_MODULE_REJECTED', `${file}: ${check.problems.map((p) => p.message).join('; ')}`, {
        hint:
          check.problems[0]?.code === 'MISSING_IMPORT'
            ? 'Envoy provides only the proxy-wasm ABI 0.2.1 calls and its WASI subset; remove or stub these imports (`envext wasm inspect` lists them)'
            : 'run `envext wasm inspect` on the module for details',
      });
    }
    return new HostEmulator(module, check, options);
  }

  // ================================================================ VM and plugin lifecycle

  private get vm(): WasmVm {
    return this.vmInstance ?? this.startVm();
  }

  /** Instantiates the VM and runs `_initialize`/`_start` in restricted mode. Idempotent. */
  startVm(): WasmVm {
    if (this.vmInstance !== undefined) return this.vmInstance;
    const vmId = this.opts.vmId ?? '';
    const vm = WasmVm.start(this.module, this.check.abiVersion, this.check.allocator ?? 'malloc', {
      vmId,
      vmConfiguration: utf8(this.opts.vmConfiguration ?? ''),
      maxMemoryBytes: this.opts.maxMemoryBytes ?? 1024 * 1024 * 1024,
      logLevel: this.opts.logLevel ?? 'info',
      environment: this.opts.environment ?? {},
      clock: this.clock,
      metrics: this.metricStore,
      shared: this.shared,
      foreignFunctions: this.foreign,
      clusters: this.opts.clusters === undefined ? undefined : new Set(this.opts.clusters),
      properties: this.properties,
      log: (e) => this.record(e),
      ...(this.opts.allowedCapabilities === undefined
        ? {}
        : { allowedCapabilities: new Set(this.opts.allowedCapabilities) }),
    });
    vm.hooks = {
      continueStream: (ctx, type) => this.onContinue(ctx, type),
      closeStream: (ctx, type) => this.onClose(ctx, type),
      localResponse: (ctx) => this.onLocalResponse(ctx),
    };
    this.vmInstance = vm;
    this.vmGenerations++;
    return vm;
  }

  private record(e: LogEntry): void {
    this.entries.push(e);
    if (this.entries.length > (this.opts.maxLogEntries ?? 100_000)) this.entries.splice(0, this.entries.length >> 1);
    const logger = this.opts.logger;
    if (logger === undefined) return;
    const level = e.level === 'trace' ? 'debug' : e.level === 'critical' ? 'error' : e.level;
    if (!logger.isEnabled(level)) return;
    const root = this.vmInstance?.contexts.get(e.contextId)?.root?.plugin?.rootId ?? '';
    logger[level](`wasm log ${root} ${this.opts.vmId ?? ''}: ${e.message}`);
  }

  private traced(name: string, ctx: Context): void {
    this.trace.push({ callback: name, contextId: ctx.id });
  }

  private readonly recordCalls: boolean;
  private readonly completed: number[] = [];
  private completedHead = 0;

  private call(
    vm: WasmVm,
    name: string,
    ctx: Context,
    fn: Parameters<WasmVm['call']>[2],
    a = 0,
    b = 0,
    c = 0,
    d = 0,
    e = 0,
  ): number {
    if (this.recordCalls && fn !== undefined && !vm.failed) this.traced(name, ctx);
    return vm.call(name, ctx, fn, a, b, c, d, e);
  }

  /**
   * Starts a plugin: a new root context, then `proxy_on_context_create(root, 0)`,
   * `proxy_on_vm_start(root, vm_config_size)` and `proxy_on_configure(root, config_size)` (§2.2).
   * `false` from either, or a trap, fails the plugin load: throws `WASM_PLUGIN_START_FAILED`.
   * Returns the root context id.
   */
  startPlugin(
    plugin: {
      readonly rootId?: string;
      readonly name?: string;
      readonly configuration?: Uint8Array | string;
      readonly failurePolicy?: FailurePolicy;
    } = {},
  ): number {
    const info: PluginInfo = {
      name: plugin.name ?? this.opts.pluginName ?? 'envext-plugin',
      rootId: plugin.rootId ?? this.opts.rootId ?? '',
      configuration: utf8(plugin.configuration ?? this.opts.pluginConfiguration ?? ''),
      failurePolicy:
        plugin.failurePolicy ?? this.opts.failurePolicy ?? (this.opts.failOpen === true ? 'FAIL_OPEN' : 'FAIL_CLOSED'),
    };
    const p: Plugin = { info, rootContextId: 0 };
    this.startRoot(this.vm, p);
    this.plugins.push(p);
    return p.rootContextId;
  }

  private startRoot(vm: WasmVm, p: Plugin): void {
    const root = vm.newContext('root', undefined, p.info);
    p.rootContextId = root.id;
    const fail = (what: string): never => {
      throw new EnvextError(
        'WASM_PLUGIN_START_FAILED',
        `plugin ${JSON.stringify(p.info.name)} (root_id ${JSON.stringify(p.info.rootId)}): ${what}`,
        { hint: 'Envoy rejects this configuration; check the guest logs (`logs("error")`) for the reason' },
      );
    };
    this.call(vm, 'proxy_on_context_create', root, vm.fnContextCreate, root.id, 0);
    if (vm.failed) fail(`proxy_on_context_create failed: ${vm.failure?.message ?? ''}`);
    const vmCfg = vm.options.vmConfiguration;
    const started = vm.withConfigBuffer(root, BufferType.VmConfiguration, vmCfg, () =>
      vm.fnVmStart === undefined ? 1 : this.call(vm, 'proxy_on_vm_start', root, vm.fnVmStart, root.id, vmCfg.length),
    );
    if (vm.failed) fail(`proxy_on_vm_start failed: ${vm.failure?.message ?? ''}`);
    if (started === 0) fail('proxy_on_vm_start returned false');
    const cfg = p.info.configuration;
    const configured = vm.withConfigBuffer(root, BufferType.PluginConfiguration, cfg, () =>
      vm.fnConfigure === undefined ? 1 : this.call(vm, 'proxy_on_configure', root, vm.fnConfigure, root.id, cfg.length),
    );
    if (vm.failed) fail(`proxy_on_configure failed: ${vm.failure?.message ?? ''}`);
    if (configured === 0) fail('proxy_on_configure returned false');
  }

  private pluginFor(rootId: string | undefined): Plugin {
    if (this.plugins.length === 0) this.startPlugin();
    const p = rootId === undefined ? this.plugins[0] : this.plugins.find((x) => x.info.rootId === rootId);
    if (p === undefined) {
      throw new EnvextError('WASM_UNKNOWN_ROOT_ID', `no plugin with root_id ${JSON.stringify(rootId)} was started`, {
        hint: `started root ids: ${this.plugins.map((x) => JSON.stringify(x.info.rootId)).join(', ')}`,
      });
    }
    return p;
  }

  private rootContext(rootContextId?: number): Context {
    const id = rootContextId ?? this.pluginFor(undefined).rootContextId;
    const ctx = this.vm.contexts.get(id);
    if (ctx === undefined || ctx.kind !== 'root') {
      throw new EnvextError('WASM_UNKNOWN_CONTEXT', `no root context ${id}`, {
        hint: 'use the id startPlugin returned',
      });
    }
    return ctx;
  }

  /** Calls `proxy_on_configure` again with a new configuration (an xDS update). */
  configure(configuration: Uint8Array | string, rootContextId?: number): boolean {
    const root = this.rootContext(rootContextId);
    const cfg = utf8(configuration);
    const vm = this.vm;
    const r = vm.withConfigBuffer(root, BufferType.PluginConfiguration, cfg, () =>
      vm.fnConfigure === undefined ? 1 : this.call(vm, 'proxy_on_configure', root, vm.fnConfigure, root.id, cfg.length),
    );
    if (r === 1 && root.plugin !== undefined) root.plugin.configuration = cfg;
    return r === 1;
  }

  /** `proxy_validate_configuration` (Envoy's config validation); true when absent. */
  validateConfiguration(configuration: Uint8Array | string, rootContextId?: number): boolean {
    const root = this.rootContext(rootContextId);
    const cfg = utf8(configuration);
    const vm = this.vm;
    if (vm.fnValidateConfiguration === undefined) return true;
    const r = vm.withConfigBuffer(root, BufferType.PluginConfiguration, cfg, () =>
      this.call(vm, 'proxy_validate_configuration', root, vm.fnValidateConfiguration, root.id, cfg.length),
    );
    return r === 1;
  }

  /** Shuts the plugins down: `proxy_on_done(root)`; true ⇒ `proxy_on_delete`; false ⇒ pending `proxy_done`. */
  finishVm(): void {
    const vm = this.vm;
    for (const p of this.plugins) {
      const root = vm.contexts.get(p.rootContextId);
      if (root === undefined) continue;
      const done = this.call(vm, 'proxy_on_done', root, vm.fnDone, root.id);
      if (done === 0 && vm.fnDone !== undefined && !vm.failed) {
        root.pendingDone = true;
        continue;
      }
      this.call(vm, 'proxy_on_delete', root, vm.fnDelete, root.id);
      vm.removeContext(root);
    }
  }

  /** True when the root context still exists (false after on_delete). */
  rootAlive(rootContextId?: number): boolean {
    const id = rootContextId ?? this.plugins[0]?.rootContextId ?? -1;
    return this.vm.contexts.has(id);
  }

  // ================================================================ failure policy

  /** The VM for a new stream: FAIL_RELOAD replaces a failed VM (after the backoff). */
  private vmForNewStream(plugin: Plugin): WasmVm {
    const vm = this.vm;
    if (!vm.failed || plugin.info.failurePolicy !== 'FAIL_RELOAD') return vm;
    const now = this.clock.monotonicNs();
    const backoffNs = BigInt(Math.round((this.opts.reloadBackoffMs ?? 1000) * 1e6));
    if (this.lastReloadNs >= 0n && now - this.lastReloadNs < backoffNs) return vm;
    this.lastReloadNs = now;
    this.vmInstance = undefined;
    try {
      const fresh = this.startVm();
      for (const p of this.plugins) this.startRoot(fresh, p);
      return fresh;
    } catch (e) {
      this.record({ level: 'critical', message: `Wasm VM reload failed: ${(e as Error).message}`, contextId: 0 });
      return this.vm;
    }
  }

  // ================================================================ HTTP streams

  /**
   * Creates an HTTP stream context (`proxy_on_context_create(id, root)`). `attributes` supplies
   * request/connection properties (`source`, `destination`, `connection`, `request` extras…).
   */
  initializeHttpContext(
    options: { readonly rootId?: string; readonly attributes?: Readonly<Record<string, PropertyValue>> } = {},
  ): number {
    const plugin = this.pluginFor(options.rootId);
    const vm = this.vmForNewStream(plugin);
    const root = vm.contexts.get(plugin.rootContextId);
    const ctx = vm.newContext('http', root);
    if (options.attributes !== undefined) ctx.attributes = options.attributes;
    const s = new Stream(vm, ctx, plugin);
    this.streams.set(ctx.id, s);
    this.call(vm, 'proxy_on_context_create', ctx, vm.fnContextCreate, ctx.id, plugin.rootContextId);
    if (vm.failed) ctx.streamFailed = true;
    return ctx.id;
  }

  private stream(id: number, verb: string): Stream {
    const s = this.streams.get(id);
    if (s === undefined) {
      throw new EnvextError('WASM_UNKNOWN_CONTEXT', `invalid context ${id} in ${verb}`, {
        hint: 'use the id initializeHttpContext/initializeConnection returned, before completing it',
      });
    }
    return s;
  }

  private act(s: Stream, phase: StreamAction['phase'], status: number, names: readonly string[], raw?: number): number {
    s.actions.push({ phase, status, name: names[status] ?? String(status), raw });
    return status;
  }

  /**
   * Envoy's CHECK_FAIL_HTTP: after a VM failure, fail-open bypasses the filter; fail-closed
   * answers the stream once with a local 503 `wasm_fail_stream` (gRPC Unavailable) and stops.
   */
  private failedHttp(
    s: Stream,
    kind: 'headers' | 'data' | 'trailers',
    phase: StreamAction['phase'],
    names: readonly string[],
    chunk?: Uint8Array,
  ): number {
    s.ctx.streamFailed = true;
    const policy = s.plugin.info.failurePolicy;
    // Fail-open bypasses the filter; the response side of the fail reply itself skips it too.
    if (policy === 'FAIL_OPEN' || (phase.startsWith('response') && s.failReplied)) {
      if (chunk !== undefined) (phase.startsWith('request') ? s.forwardedRequest : s.forwardedResponse).push(chunk);
      return this.act(s, phase, 0, names);
    }
    const status =
      kind === 'headers'
        ? HeadersStatus.StopAllIterationAndWatermark
        : kind === 'data'
          ? DataStatus.StopIterationNoBuffer
          : TrailersStatus.StopIteration;
    this.act(s, phase, status, names);
    if (!s.failReplied) {
      s.failReplied = true;
      s.ctx.localResponse ??= {
        statusCode: 503,
        details: 'wasm_fail_stream',
        body: new Uint8Array(0),
        headers: [],
        grpcStatus: GrpcStatus.Unavailable,
      };
      this.applyLocalResponse(s);
    }
    return status;
  }

  /** True when the stream no longer reaches the guest (reset, or answered locally). */
  private gone(s: Stream): boolean {
    return s.ctx.closed !== undefined || s.completed;
  }

  callOnRequestHeaders(id: number, headers: HeaderInput, endOfStream: boolean): HeadersStatus {
    const s = this.stream(id, 'callOnRequestHeaders');
    return this.headersPhase(s, 'request', headers, endOfStream);
  }

  callOnResponseHeaders(id: number, headers: HeaderInput, endOfStream: boolean): HeadersStatus {
    const s = this.stream(id, 'callOnResponseHeaders');
    // After a local reply the upstream response never reaches the filter (the reply completed
    // the response and Envoy ends the stream): dropped, nothing is recorded.
    if (s.localReplyApplied) return HeadersStatus.StopAllIterationAndWatermark;
    s.responseStarted = true;
    return this.headersPhase(s, 'response', headers, endOfStream);
  }

  private headersPhase(s: Stream, dir: 'request' | 'response', headers: HeaderInput, eos: boolean): HeadersStatus {
    const { vm, ctx } = s;
    const phase = dir === 'request' ? 'request_headers' : 'response_headers';
    const map = headers instanceof HeaderMap ? headers : new HeaderMap(headers);
    if (dir === 'request') {
      ctx.requestHeaders = map;
      ctx.requestEndOfStream = eos;
    } else {
      ctx.responseHeaders = map;
      ctx.responseEndOfStream = eos;
    }
    if (this.gone(s)) return this.act(s, phase, HeadersStatus.Continue, HEADERS_NAMES) as HeadersStatus;
    if (vm.failed || ctx.streamFailed) {
      return this.failedHttp(s, 'headers', phase, HEADERS_NAMES) as HeadersStatus;
    }
    const fn = dir === 'request' ? vm.fnRequestHeaders : vm.fnResponseHeaders;
    if (dir === 'request') ctx.requestHeadersOpen = true;
    else ctx.responseHeadersOpen = true;
    vm.nextIterationStopped = false;
    s.inCallback = true;
    const raw = this.call(vm, CALLBACK[phase], ctx, fn, ctx.id, map.size, eos ? 1 : 0);
    s.inCallback = false;
    if (vm.failed) return this.failedHttp(s, 'headers', phase, HEADERS_NAMES) as HeadersStatus;
    const status = translateHeadersStatus(raw, vm.lastCallStopped, this.opts.allowOnHeadersStopIteration === true);
    const stopped = status === HeadersStatus.StopIteration || status >= HeadersStatus.StopAllIterationAndBuffer;
    if (dir === 'request') {
      // Envoy drops its pointer to the headers once they continue: the window closes.
      if (!stopped) ctx.requestHeadersOpen = false;
      s.requestStopped = stopped;
      s.requestStopAll = status >= HeadersStatus.StopAllIterationAndBuffer;
    } else {
      if (!stopped) ctx.responseHeadersOpen = false;
      s.responseStopped = stopped;
      s.responseStopAll = status >= HeadersStatus.StopAllIterationAndBuffer;
      if (!stopped) s.responseHeadersSent = true;
    }
    this.act(s, phase, status, HEADERS_NAMES, raw);
    this.runQueuedLocalReply(s);
    return status;
  }

  /**
   * Request data after a local reply is dropped before it reaches the filter, and nothing is
   * recorded: Envoy's FilterManager::decodeData starts with `if (state_.local_complete_) return;`
   * and the reply's end of stream made ConnectionManagerImpl::doEndStream call
   * setLocalComplete() and reset the (incomplete) request. Returns StopIterationNoBuffer then.
   */
  callOnRequestBody(id: number, body: Uint8Array | string, endOfStream: boolean): DataStatus {
    const s = this.stream(id, 'callOnRequestBody');
    if (s.requestDone) return DataStatus.StopIterationNoBuffer;
    return this.bodyPhase(s, 'request', utf8(body), endOfStream);
  }

  callOnResponseBody(id: number, body: Uint8Array | string, endOfStream: boolean): DataStatus {
    const s = this.stream(id, 'callOnResponseBody');
    if (s.localReplyApplied) return DataStatus.StopIterationNoBuffer;
    return this.bodyPhase(s, 'response', utf8(body), endOfStream);
  }

  private bodyPhase(s: Stream, dir: 'request' | 'response', chunk: Uint8Array, eos: boolean): DataStatus {
    const { vm, ctx } = s;
    const phase = dir === 'request' ? 'request_body' : 'response_body';
    const req = dir === 'request';
    if (this.gone(s)) return this.act(s, phase, DataStatus.StopIterationNoBuffer, DATA_NAMES) as DataStatus;
    if (vm.failed || ctx.streamFailed) {
      return this.failedHttp(s, 'data', phase, DATA_NAMES, chunk) as DataStatus;
    }
    // While headers are stopped-all, Envoy buffers data without calling the filter.
    if (req ? s.requestStopAll : s.responseStopAll) {
      const pending = (req ? s.pendingRequest : s.pendingResponse) ?? {
        data: new Uint8Array(0),
        eos: false,
        trailers: undefined,
      };
      pending.data = concat(pending.data, chunk);
      pending.eos = eos;
      if (req) s.pendingRequest = pending;
      else s.pendingResponse = pending;
      return this.act(s, phase, DataStatus.StopIterationAndBuffer, DATA_NAMES) as DataStatus;
    }
    return this.deliverBody(s, dir, chunk, eos);
  }

  private deliverBody(s: Stream, dir: 'request' | 'response', chunk: Uint8Array, eos: boolean): DataStatus {
    const { vm, ctx } = s;
    const req = dir === 'request';
    const phase = req ? 'request_body' : 'response_body';
    const buffered = req ? s.requestBuffering : s.responseBuffering;
    const body = buffered ? concat(req ? ctx.requestBody : ctx.responseBody, chunk) : chunk;
    const limit = this.opts.bufferLimitBytes ?? 1024 * 1024;
    if (buffered && body.length > limit) {
      // Envoy's buffer overflow: 413 on requests, 500 on responses.
      ctx.localResponse ??= {
        statusCode: req ? 413 : 500,
        details: req ? 'request_payload_too_large' : 'response_payload_too_large',
        body: Buffer.from(req ? 'Payload Too Large' : 'Internal Server Error'),
        headers: [],
        grpcStatus: undefined,
      };
      // Sent while Envoy's filter manager runs this filter's data callback: it runs afterwards.
      this.act(s, phase, DataStatus.StopIterationNoBuffer, DATA_NAMES);
      this.applyLocalResponse(s);
      return DataStatus.StopIterationNoBuffer;
    }
    if (req) {
      ctx.requestBody = body;
      ctx.requestBodyOpen = true;
      ctx.requestEndOfStream = eos;
    } else {
      ctx.responseBody = body;
      ctx.responseBodyOpen = true;
      ctx.responseEndOfStream = eos;
    }
    vm.nextIterationStopped = false;
    const fn = req ? vm.fnRequestBody : vm.fnResponseBody;
    s.inCallback = true;
    const raw = this.call(vm, CALLBACK[phase], ctx, fn, ctx.id, body.length, eos ? 1 : 0);
    s.inCallback = false;
    if (vm.failed) {
      if (req) ctx.requestBodyOpen = false;
      else ctx.responseBodyOpen = false;
      return this.failedHttp(s, 'data', phase, DATA_NAMES) as DataStatus;
    }
    const status = translateDataStatus(raw, vm.lastCallStopped);
    const keep = status === DataStatus.StopIterationAndBuffer || status === DataStatus.StopIterationAndWatermark;
    if (req) {
      s.requestBuffering = keep;
      ctx.requestBodyOpen = keep;
      if (status === DataStatus.Continue) s.forwardedRequest.push(ctx.requestBody);
    } else {
      s.responseBuffering = keep;
      ctx.responseBodyOpen = keep;
      if (status === DataStatus.Continue) s.forwardedResponse.push(ctx.responseBody);
    }
    this.act(s, phase, status, DATA_NAMES, raw);
    this.runQueuedLocalReply(s);
    return status;
  }

  /** Dropped after a local reply, like request data (see `callOnRequestBody`). */
  callOnRequestTrailers(id: number, trailers: HeaderInput): TrailersStatus {
    const s = this.stream(id, 'callOnRequestTrailers');
    if (s.requestDone) return TrailersStatus.StopIteration;
    return this.trailersPhase(s, 'request', trailers);
  }

  callOnResponseTrailers(id: number, trailers: HeaderInput): TrailersStatus {
    const s = this.stream(id, 'callOnResponseTrailers');
    if (s.localReplyApplied) return TrailersStatus.StopIteration;
    return this.trailersPhase(s, 'response', trailers);
  }

  private trailersPhase(s: Stream, dir: 'request' | 'response', trailers: HeaderInput): TrailersStatus {
    const { vm, ctx } = s;
    const req = dir === 'request';
    const phase = req ? 'request_trailers' : 'response_trailers';
    const map = trailers instanceof HeaderMap ? trailers : new HeaderMap(trailers);
    if (req) ctx.requestTrailers = map;
    else ctx.responseTrailers = map;
    if (this.gone(s)) return this.act(s, phase, TrailersStatus.StopIteration, TRAILERS_NAMES) as TrailersStatus;
    if (vm.failed || ctx.streamFailed) {
      return this.failedHttp(s, 'trailers', phase, TRAILERS_NAMES) as TrailersStatus;
    }
    const pending = req ? s.pendingRequest : s.pendingResponse;
    if ((req ? s.requestStopAll : s.responseStopAll) && pending !== undefined) {
      pending.trailers = trailers;
      return this.act(s, phase, TrailersStatus.StopIteration, TRAILERS_NAMES) as TrailersStatus;
    }
    if (req) ctx.requestTrailersOpen = true;
    else ctx.responseTrailersOpen = true;
    vm.nextIterationStopped = false;
    const fn = req ? vm.fnRequestTrailers : vm.fnResponseTrailers;
    s.inCallback = true;
    const raw = this.call(vm, CALLBACK[phase], ctx, fn, ctx.id, map.size);
    s.inCallback = false;
    if (vm.failed) return this.failedHttp(s, 'trailers', phase, TRAILERS_NAMES) as TrailersStatus;
    const status = translateTrailersStatus(raw, vm.lastCallStopped);
    if (status === TrailersStatus.Continue) {
      if (req) ctx.requestTrailersOpen = false;
      else ctx.responseTrailersOpen = false;
    }
    this.act(s, phase, status, TRAILERS_NAMES, raw);
    this.runQueuedLocalReply(s);
    return status;
  }

  /** `proxy_on_request_metadata` / `proxy_on_response_metadata` (Envoy extras; always Continue). */
  callOnRequestMetadata(id: number, elements: number): void {
    const s = this.stream(id, 'callOnRequestMetadata');
    if (!this.gone(s)) this.call(s.vm, 'proxy_on_request_metadata', s.ctx, s.vm.fnRequestMetadata, id, elements);
  }

  callOnResponseMetadata(id: number, elements: number): void {
    const s = this.stream(id, 'callOnResponseMetadata');
    if (!this.gone(s)) this.call(s.vm, 'proxy_on_response_metadata', s.ctx, s.vm.fnResponseMetadata, id, elements);
  }

  /**
   * Ends the stream as Envoy does (§2.4): `proxy_on_log` (headers readable, not writable), then
   * `proxy_on_done` (result ignored) and `proxy_on_delete`. Pending callouts stay with the root.
   */
  completeHttpContext(id: number): void {
    const s = this.stream(id, 'completeHttpContext');
    // A local reply may have ended the stream already (see endAfterLocalReply).
    if (!s.completed) this.endHttpStream(s);
    this.retire(id);
  }

  /** on_log, on_done, on_delete and the context's removal; the stream stays inspectable. */
  private endHttpStream(s: Stream): void {
    const { vm, ctx } = s;
    const id = ctx.id;
    s.completed = true;
    ctx.requestHeadersOpen = ctx.responseHeadersOpen = false;
    ctx.requestBodyOpen = ctx.responseBodyOpen = false;
    ctx.requestTrailersOpen = ctx.responseTrailersOpen = false;
    if (!vm.failed && !ctx.streamFailed) {
      ctx.inLog = true;
      this.call(vm, 'proxy_on_log', ctx, vm.fnLog, id);
      ctx.inLog = false;
      this.call(vm, 'proxy_on_done', ctx, vm.fnDone, id);
      this.call(vm, 'proxy_on_delete', ctx, vm.fnDelete, id);
    }
    vm.removeContext(ctx);
  }

  /**
   * Envoy ends the stream as soon as a local reply has completed the response (or reset it):
   * FilterManager::maybeEndEncode → endStream → ConnectionManagerImpl::doEndStream resets an
   * incomplete request and destroys the stream, so on_log, on_done and on_delete run then, not
   * when the client would have finished sending.
   */
  private endAfterLocalReply(s: Stream): void {
    if (!s.localReplyApplied || s.completed) return;
    const complete =
      s.responseHeadersSent && !s.responseStopped && !s.responseBuffering && s.pendingResponse === undefined;
    if (complete || s.ctx.closed !== undefined) this.endHttpStream(s);
  }

  // ---------------------------------------------------------------- deferred stream effects

  private onContinue(ctx: Context, type: StreamType): void {
    const s = this.streams.get(ctx.id);
    if (s === undefined || s.ctx !== ctx || this.gone(s)) return;
    if (type === StreamType.Downstream) {
      s.downstreamStopped = false;
      if (ctx.downstreamData.length > 0) {
        s.forwardedDownstream.push(ctx.downstreamData);
        ctx.downstreamData = new Uint8Array(0);
      }
      ctx.downstreamOpen = false;
      return;
    }
    const req = type === StreamType.HttpRequest;
    // Continuing a direction that is not stopped is a no-op in Envoy (e.g. called from the same
    // callback that returns Continue).
    const stopped = req
      ? s.requestStopped || s.requestBuffering || s.pendingRequest !== undefined
      : s.responseStopped || s.responseBuffering || s.pendingResponse !== undefined;
    if (!stopped || (req && s.requestDone)) return;
    s.actions.push({
      phase: req ? 'request_headers' : 'response_headers',
      status: 0,
      name: 'Continue (proxy_continue_stream)',
      raw: undefined,
    });
    if (req) {
      s.requestStopped = s.requestStopAll = false;
      if (s.requestBuffering) {
        s.forwardedRequest.push(ctx.requestBody);
        s.requestBuffering = false;
        ctx.requestBodyOpen = false;
      }
    } else {
      s.responseStopped = s.responseStopAll = false;
      s.responseHeadersSent = true;
      if (s.responseBuffering) {
        s.forwardedResponse.push(ctx.responseBody);
        s.responseBuffering = false;
        ctx.responseBodyOpen = false;
      }
    }
    // Data that arrived while stopped-all is delivered now, then its trailers.
    const pending = req ? s.pendingRequest : s.pendingResponse;
    if (pending !== undefined) {
      if (req) s.pendingRequest = undefined;
      else s.pendingResponse = undefined;
      this.deliverBody(s, req ? 'request' : 'response', pending.data, pending.eos);
      if (pending.trailers !== undefined) this.trailersPhase(s, req ? 'request' : 'response', pending.trailers);
    }
    // A local reply the filter had stopped is complete now.
    if (!req) this.endAfterLocalReply(s);
  }

  private onClose(ctx: Context, type: StreamType): void {
    const s = this.streams.get(ctx.id);
    if (s === undefined || s.ctx !== ctx) return;
    ctx.closed = type >= StreamType.Downstream ? 'connection closed by the filter' : 'wasm_close_stream';
  }

  private onLocalResponse(ctx: Context): void {
    const s = this.streams.get(ctx.id);
    if (s === undefined || s.ctx !== ctx || ctx.localResponse === undefined) return;
    // From the stream's own callback: prepared now, run once the callback has returned and its
    // status is recorded. From a callout/tick/queue callback on the root: run now (Envoy's
    // sendLocalReplyViaFilterChain, no filter callback is running).
    if (s.inCallback) s.localReplyQueued = true;
    else this.applyLocalResponse(s);
  }

  private runQueuedLocalReply(s: Stream): void {
    if (!s.localReplyQueued) return;
    s.localReplyQueued = false;
    this.applyLocalResponse(s);
  }

  /**
   * Envoy sends a local reply through the encoder chain, so this filter's response callbacks
   * see it (unless the VM failed). The request side stops.
   */
  private applyLocalResponse(s: Stream): void {
    if (s.localReplyApplied) return;
    s.localReplyApplied = true;
    const lr = s.ctx.localResponse!;
    s.requestDone = true;
    s.requestStopped = true;
    s.pendingRequest = undefined;
    s.ctx.requestBodyOpen = false;
    // Envoy's FilterManager::sendLocalReply: once response headers went downstream all it can do
    // is reset the stream; if the upstream response reached the filters but its headers were not
    // sent yet, sendDirectLocalReply writes the reply to the codec, bypassing the filter chain
    // (this filter's response callbacks are not called for it). Only a response that has not
    // started goes through the filter chain (sendLocalReplyViaFilterChain).
    if (s.responseHeadersSent) {
      s.ctx.closed ??= `stream reset: local reply ${lr.statusCode} (${lr.details}) after response headers were sent`;
      this.endAfterLocalReply(s);
      return;
    }
    const direct = s.responseStarted;
    // A gRPC request gets a trailers-only gRPC answer (HTTP 200, grpc-status, grpc-message), as
    // Envoy's sendLocalReply produces; otherwise an HTTP reply with the body as text/plain.
    const grpc = s.ctx.requestHeaders?.get('content-type')?.startsWith('application/grpc') === true;
    const headers = new HeaderMap([[':status', grpc ? '200' : String(lr.statusCode)]]);
    for (const [k, v] of lr.headers) headers.add(k, v);
    let body = lr.body;
    if (grpc) {
      headers.replace('content-type', 'application/grpc');
      headers.add('grpc-status', String(lr.grpcStatus ?? httpToGrpcStatus(lr.statusCode)));
      if (body.length > 0) headers.add('grpc-message', encodeURIComponent(Buffer.from(body).toString('utf8')));
      body = new Uint8Array(0);
    } else if (body.length > 0) {
      if (headers.get('content-type') === undefined) headers.add('content-type', 'text/plain');
      headers.replace('content-length', String(body.length));
    }
    // Reset the response side: what the guest may have seen before is replaced by the reply.
    s.responseStopped = s.responseStopAll = s.responseBuffering = false;
    s.forwardedResponse.length = 0;
    s.pendingResponse = undefined;
    s.ctx.responseBody = new Uint8Array(0);
    s.ctx.responseHeadersOpen = s.ctx.responseBodyOpen = s.ctx.responseTrailersOpen = false;
    if (direct) {
      s.ctx.responseHeaders = headers;
      s.ctx.responseTrailers = undefined;
      if (body.length > 0) s.forwardedResponse.push(body);
      s.responseHeadersSent = true;
      this.endAfterLocalReply(s);
      return;
    }
    this.headersPhase(s, 'response', headers, body.length === 0);
    if (body.length > 0) this.bodyPhase(s, 'response', body, true);
    if (s.ctx.responseHeaders === undefined) s.ctx.responseHeaders = headers;
    this.endAfterLocalReply(s);
  }

  // ================================================================ TCP streams

  /** Creates a TCP context and calls `proxy_on_new_connection`. Returns the id. */
  initializeConnection(
    options: { readonly rootId?: string; readonly attributes?: Readonly<Record<string, PropertyValue>> } = {},
  ): number {
    const plugin = this.pluginFor(options.rootId);
    const vm = this.vmForNewStream(plugin);
    const root = vm.contexts.get(plugin.rootContextId);
    const ctx = vm.newContext('tcp', root);
    if (options.attributes !== undefined) ctx.attributes = options.attributes;
    const s = new Stream(vm, ctx, plugin);
    this.streams.set(ctx.id, s);
    this.call(vm, 'proxy_on_context_create', ctx, vm.fnContextCreate, ctx.id, plugin.rootContextId);
    if (vm.failed) return (this.tcpFailed(s, 'new_connection'), ctx.id);
    const raw = this.call(vm, 'proxy_on_new_connection', ctx, vm.fnNewConnection, ctx.id);
    if (vm.failed) this.tcpFailed(s, 'new_connection');
    else this.act(s, 'new_connection', translateNetworkStatus(raw), TRAILERS_NAMES, raw);
    return ctx.id;
  }

  private tcpFailed(s: Stream, phase: StreamAction['phase']): NetworkStatus {
    s.ctx.streamFailed = true;
    if (s.plugin.info.failurePolicy === 'FAIL_OPEN') {
      return this.act(s, phase, NetworkStatus.Continue, TRAILERS_NAMES) as NetworkStatus;
    }
    s.ctx.closed ??= 'wasm_fail_stream: connection closed';
    return this.act(s, phase, NetworkStatus.StopIteration, TRAILERS_NAMES) as NetworkStatus;
  }

  callOnDownstreamData(id: number, data: Uint8Array | string, endOfStream = false): NetworkStatus {
    return this.dataPhase(this.stream(id, 'callOnDownstreamData'), 'downstream', utf8(data), endOfStream);
  }

  callOnUpstreamData(id: number, data: Uint8Array | string, endOfStream = false): NetworkStatus {
    return this.dataPhase(this.stream(id, 'callOnUpstreamData'), 'upstream', utf8(data), endOfStream);
  }

  private dataPhase(s: Stream, dir: 'downstream' | 'upstream', chunk: Uint8Array, eos: boolean): NetworkStatus {
    const { vm, ctx } = s;
    const down = dir === 'downstream';
    const phase = down ? 'downstream_data' : 'upstream_data';
    if (this.gone(s)) return this.act(s, phase, NetworkStatus.StopIteration, TRAILERS_NAMES) as NetworkStatus;
    if (vm.failed || ctx.streamFailed) {
      const st = this.tcpFailed(s, phase);
      if (st === NetworkStatus.Continue) (down ? s.forwardedDownstream : s.forwardedUpstream).push(chunk);
      return st;
    }
    // Data not forwarded stays in Envoy's read buffer and the next callback sees all of it.
    if (down) {
      ctx.downstreamData = concat(ctx.downstreamData, chunk);
      ctx.downstreamOpen = true;
    } else {
      ctx.upstreamData = concat(ctx.upstreamData, chunk);
      ctx.upstreamOpen = true;
    }
    const size = down ? ctx.downstreamData.length : ctx.upstreamData.length;
    const fn = down ? vm.fnDownstreamData : vm.fnUpstreamData;
    const raw = this.call(vm, CALLBACK[phase], ctx, fn, ctx.id, size, eos ? 1 : 0);
    if (vm.failed) return this.tcpFailed(s, phase);
    const status = translateNetworkStatus(raw);
    if (status === NetworkStatus.Continue) {
      if (down) {
        s.forwardedDownstream.push(ctx.downstreamData);
        ctx.downstreamData = new Uint8Array(0);
        ctx.downstreamOpen = false;
      } else {
        s.forwardedUpstream.push(ctx.upstreamData);
        ctx.upstreamData = new Uint8Array(0);
        ctx.upstreamOpen = false;
      }
    } else if (down) s.downstreamStopped = true;
    return this.act(s, phase, status, TRAILERS_NAMES, raw) as NetworkStatus;
  }

  closeDownstreamConnection(id: number, peer: PeerType = PeerType.Remote): void {
    const s = this.stream(id, 'closeDownstreamConnection');
    this.call(s.vm, 'proxy_on_downstream_connection_close', s.ctx, s.vm.fnDownstreamClose, id, peer);
  }

  closeUpstreamConnection(id: number, peer: PeerType = PeerType.Remote): void {
    const s = this.stream(id, 'closeUpstreamConnection');
    this.call(s.vm, 'proxy_on_upstream_connection_close', s.ctx, s.vm.fnUpstreamClose, id, peer);
  }

  /** Ends a TCP context in Envoy's order: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`. */
  completeConnection(id: number): void {
    const s = this.stream(id, 'completeConnection');
    const { vm, ctx } = s;
    s.completed = true;
    ctx.downstreamOpen = ctx.upstreamOpen = false;
    if (!vm.failed) {
      this.call(vm, 'proxy_on_done', ctx, vm.fnDone, id);
      ctx.inLog = true;
      this.call(vm, 'proxy_on_log', ctx, vm.fnLog, id);
      ctx.inLog = false;
      this.call(vm, 'proxy_on_delete', ctx, vm.fnDelete, id);
    }
    vm.removeContext(ctx);
    this.retire(id);
  }

  // ================================================================ timers and callouts

  /** Calls `proxy_on_tick` on every root context that set a tick period. */
  tick(): void {
    const vm = this.vm;
    for (const p of this.plugins) {
      const root = vm.contexts.get(p.rootContextId);
      if (root !== undefined && root.tickPeriodMs > 0) {
        root.nextTickNs = this.clock.monotonicNs() + BigInt(root.tickPeriodMs) * 1_000_000n;
        this.call(vm, 'proxy_on_tick', root, vm.fnTick, root.id);
      }
    }
  }

  /**
   * Moves the virtual clock forward by `ms`, firing every tick and callout timeout that falls due,
   * in time order (needs the default `VirtualClock`).
   */
  advanceTime(ms: number): void {
    const clock = this.clock;
    if (!(clock instanceof VirtualClock)) {
      throw new EnvextError('WASM_CLOCK_NOT_VIRTUAL', 'advanceTime needs the emulator virtual clock', {
        hint: 'do not pass a `clock` option, or pass a VirtualClock',
      });
    }
    const target = clock.monotonicNs() + BigInt(Math.round(ms * 1e6));
    for (let guard = 0; guard < 1_000_000; guard++) {
      const vm = this.vm;
      let next: { at: bigint; run: () => void } | undefined;
      for (const p of this.plugins) {
        const root = vm.contexts.get(p.rootContextId);
        if (root === undefined || root.tickPeriodMs === 0 || root.nextTickNs > target) continue;
        if (next === undefined || root.nextTickNs < next.at) {
          next = {
            at: root.nextTickNs,
            run: () => {
              root.nextTickNs += BigInt(root.tickPeriodMs) * 1_000_000n;
              this.call(vm, 'proxy_on_tick', root, vm.fnTick, root.id);
            },
          };
        }
      }
      for (const c of vm.callouts.values()) {
        if (c.deadlineNs === 0n || c.deadlineNs > target) continue;
        if (next === undefined || c.deadlineNs < next.at) next = { at: c.deadlineNs, run: () => this.timeout(c) };
      }
      if (next === undefined) break;
      clock.advance(Number(next.at - clock.monotonicNs()) / 1e6);
      next.run();
    }
    clock.advance(Number(target - clock.monotonicNs()) / 1e6);
  }

  private timeout(c: Callout): void {
    if (c.kind === 'http') {
      // Envoy's async client answers a timeout with a local 504 through onSuccess.
      this.callOnHttpCallResponse(c.token, {
        headers: [
          [':status', '504'],
          ['content-length', '24'],
          ['content-type', 'text/plain'],
        ],
        body: 'upstream request timeout',
      });
    } else {
      this.callOnGrpcClose(c.token, 4, 'upstream request timeout'); // DEADLINE_EXCEEDED
    }
  }

  private callout(token: number, verb: string): { vm: WasmVm; c: Callout; root: Context | undefined } {
    const vm = this.vm;
    const c = vm.callouts.get(token);
    if (c === undefined) {
      throw new EnvextError('WASM_UNKNOWN_CALLOUT', `${verb}: no pending callout with token ${token}`, {
        hint: `pending tokens: ${[...vm.callouts.keys()].join(', ') || 'none'}`,
      });
    }
    return { vm, c, root: vm.contexts.get(c.rootContextId) };
  }

  /**
   * Answers an HTTP callout: `proxy_on_http_call_response(root, token, headers, body, trailers)`
   * on the root context; the response is readable only during that call (map 6/7, buffer 4).
   */
  callOnHttpCallResponse(
    token: number,
    response: {
      readonly headers: HeaderInput;
      readonly body?: Uint8Array | string;
      readonly trailers?: HeaderInput;
    },
  ): void {
    const { vm, c, root } = this.callout(token, 'callOnHttpCallResponse');
    if (c.kind !== 'http') {
      throw new EnvextError(
        'WASM_WRONG_CALLOUT_KIND',
        `callOnHttpCallResponse: token ${token} is a ${c.kind} callout`,
        {
          hint: 'answer gRPC callouts with callOnGrpcReceive / callOnGrpcClose',
        },
      );
    }
    vm.callouts.delete(token);
    if (root === undefined) return;
    const headers = new HeaderMap(response.headers);
    const body = utf8(response.body ?? '');
    const trailers = new HeaderMap(response.trailers ?? []);
    root.callResponse = { headers, body, trailers };
    root.statusCode = WasmResult.Ok;
    root.statusMessage = '';
    try {
      this.call(
        vm,
        'proxy_on_http_call_response',
        root,
        vm.fnHttpCallResponse,
        root.id,
        token,
        headers.size,
        body.length,
        trailers.size,
      );
    } finally {
      root.callResponse = undefined;
    }
  }

  /** Fails an HTTP callout (reset): `num_headers = 0`, `proxy_get_status` → BrokenConnection, "reset". */
  failHttpCall(token: number, message = 'reset'): void {
    const { vm, root } = this.callout(token, 'failHttpCall');
    vm.callouts.delete(token);
    if (root === undefined) return;
    root.statusCode = WasmResult.BrokenConnection;
    root.statusMessage = message;
    this.call(vm, 'proxy_on_http_call_response', root, vm.fnHttpCallResponse, root.id, token, 0, 0, 0);
  }

  callOnGrpcReceiveInitialMetadata(token: number, metadata: HeaderInput): void {
    const { vm, root } = this.callout(token, 'callOnGrpcReceiveInitialMetadata');
    if (root === undefined) return;
    const md = new HeaderMap(metadata);
    root.grpcInitialMetadata = md;
    try {
      this.call(vm, 'proxy_on_grpc_receive_initial_metadata', root, vm.fnGrpcInitialMetadata, root.id, token, md.size);
    } finally {
      root.grpcInitialMetadata = undefined;
    }
  }

  /** Delivers one response message (a unary call is then complete and forgotten). */
  callOnGrpcReceive(token: number, message: Uint8Array | string): void {
    const { vm, c, root } = this.callout(token, 'callOnGrpcReceive');
    if (c.kind === 'grpc_call') vm.callouts.delete(token);
    if (root === undefined) return;
    const msg = utf8(message);
    root.grpcMessage = msg;
    try {
      this.call(vm, 'proxy_on_grpc_receive', root, vm.fnGrpcReceive, root.id, token, msg.length);
    } finally {
      root.grpcMessage = undefined;
    }
  }

  callOnGrpcReceiveTrailingMetadata(token: number, metadata: HeaderInput): void {
    const { vm, root } = this.callout(token, 'callOnGrpcReceiveTrailingMetadata');
    if (root === undefined) return;
    const md = new HeaderMap(metadata);
    root.grpcTrailingMetadata = md;
    try {
      this.call(
        vm,
        'proxy_on_grpc_receive_trailing_metadata',
        root,
        vm.fnGrpcTrailingMetadata,
        root.id,
        token,
        md.size,
      );
    } finally {
      root.grpcTrailingMetadata = undefined;
    }
  }

  /** Closes a gRPC call/stream with a status; the message is read with `proxy_get_status`. */
  callOnGrpcClose(token: number, status: number, message = ''): void {
    const { vm, root } = this.callout(token, 'callOnGrpcClose');
    vm.callouts.delete(token);
    if (root === undefined) return;
    root.statusCode = status;
    root.statusMessage = message;
    this.call(vm, 'proxy_on_grpc_close', root, vm.fnGrpcClose, root.id, token, status);
  }

  /** `proxy_on_foreign_function(root, function_id, args_size)`; args readable as buffer type 8. */
  callOnForeignFunction(functionId: number, args: Uint8Array | string, rootContextId?: number): void {
    const root = this.rootContext(rootContextId);
    const vm = this.vm;
    const data = utf8(args);
    root.callData = data;
    try {
      this.call(vm, 'proxy_on_foreign_function', root, vm.fnForeignFunction, root.id, functionId, data.length);
    } finally {
      root.callData = undefined;
    }
  }

  /** Registers (or replaces) a foreign function the guest can call by name. */
  registerForeignFunction(name: string, fn: ForeignFunction): void {
    this.foreign.set(name, fn);
  }

  /** Enqueues from outside the guest (another VM); wakes the registering root. */
  enqueueSharedQueue(queueId: number, data: Uint8Array | string): void {
    const q = this.shared.queue(queueId);
    if (q === undefined) {
      throw new EnvextError('WASM_UNKNOWN_QUEUE', `no shared queue ${queueId}`, {
        hint: 'the guest must register it first (proxy_register_shared_queue)',
      });
    }
    q.items.push(utf8(data));
    q.owner.notify(q.owner.rootContextId, q.id);
  }

  /** Sets a top-level or nested property visible to every context (`node`, `xds.cluster_name`, …). */
  setProperty(path: string | readonly string[], value: PropertyValue): void {
    const segs = propertyPath(path);
    if (segs.length === 1) {
      this.properties[segs[0]!] = value;
      return;
    }
    const [top, ...rest] = segs;
    const existing = this.properties[top!];
    const base: Record<string, PropertyValue> =
      existing !== undefined && typeof existing === 'object' && existing.constructor === Object
        ? { ...(existing as Record<string, PropertyValue>) }
        : {};
    let cur = base;
    for (let i = 0; i < rest.length - 1; i++) {
      const k = rest[i]!;
      const next = cur[k];
      const obj: Record<string, PropertyValue> =
        next !== undefined && typeof next === 'object' && next.constructor === Object
          ? { ...(next as Record<string, PropertyValue>) }
          : {};
      cur[k] = obj;
      cur = obj;
    }
    cur[rest[rest.length - 1]!] = value;
    this.properties[top!] = base;
  }

  // ================================================================ inspection

  private ctxOf(id: number): Context {
    const s = this.streams.get(id);
    if (s === undefined) {
      throw new EnvextError('WASM_UNKNOWN_CONTEXT', `no stream context ${id}`, {
        hint: 'use the id initializeHttpContext/initializeConnection returned',
      });
    }
    return s.ctx;
  }

  /** Request headers as they are now (after the guest's edits), in order. */
  currentRequestHeaders(id: number): HeaderPair[] {
    return this.ctxOf(id).requestHeaders?.pairs() ?? [];
  }
  currentResponseHeaders(id: number): HeaderPair[] {
    return this.ctxOf(id).responseHeaders?.pairs() ?? [];
  }
  currentRequestTrailers(id: number): HeaderPair[] {
    return this.ctxOf(id).requestTrailers?.pairs() ?? [];
  }
  currentResponseTrailers(id: number): HeaderPair[] {
    return this.ctxOf(id).responseTrailers?.pairs() ?? [];
  }
  /** The request body buffer as the guest last saw/left it (accumulated while buffering). */
  currentRequestBody(id: number): Uint8Array {
    return this.ctxOf(id).requestBody;
  }
  currentResponseBody(id: number): Uint8Array {
    return this.ctxOf(id).responseBody;
  }
  /** Everything the filter let through upstream, in order. */
  forwardedRequestBody(id: number): Uint8Array {
    return this.stream(id, 'forwardedRequestBody').forwardedRequest.reduce(concat, new Uint8Array(0));
  }
  forwardedResponseBody(id: number): Uint8Array {
    return this.stream(id, 'forwardedResponseBody').forwardedResponse.reduce(concat, new Uint8Array(0));
  }
  /** The last translated stream action of an HTTP stream. */
  currentHttpStreamAction(id: number): StreamAction | undefined {
    const a = this.stream(id, 'currentHttpStreamAction').actions;
    return a[a.length - 1];
  }
  /** Every stream action, in order. */
  httpStreamActions(id: number): readonly StreamAction[] {
    return this.stream(id, 'httpStreamActions').actions;
  }
  currentTcpStreamAction(id: number): StreamAction | undefined {
    return this.currentHttpStreamAction(id);
  }
  /** The local reply sent on this stream (by the guest, or 503 `wasm_fail_stream` after a VM failure). */
  sentLocalResponse(id: number): LocalResponse | undefined {
    return this.ctxOf(id).localResponse;
  }
  /** Why the stream was reset/closed (`wasm_close_stream`, …), or undefined. */
  streamClosed(id: number): string | undefined {
    return this.ctxOf(id).closed;
  }
  /** TCP: bytes forwarded downstream→upstream and upstream→downstream. */
  downstreamData(id: number): Uint8Array {
    return this.stream(id, 'downstreamData').forwardedDownstream.reduce(concat, new Uint8Array(0));
  }
  upstreamData(id: number): Uint8Array {
    return this.stream(id, 'upstreamData').forwardedUpstream.reduce(concat, new Uint8Array(0));
  }

  /** Messages the guest logged at `level` (proxy_log, and WASI stdout=info / stderr=error). */
  logs(level: GuestLogLevel): string[] {
    return this.entries.filter((e) => e.level === level).map((e) => e.message);
  }
  logEntries(): readonly LogEntry[] {
    return this.entries;
  }
  /** Guest callbacks made so far, in order (lifecycle checks). */
  callTrace(): readonly TraceEntry[] {
    return this.trace;
  }

  counter(name: string): bigint | undefined {
    return this.metricStore.find(name, 'counter')?.value;
  }
  gauge(name: string): bigint | undefined {
    return this.metricStore.find(name, 'gauge')?.value;
  }
  histogram(name: string): readonly bigint[] | undefined {
    return this.metricStore.find(name, 'histogram')?.samples;
  }
  metrics(): readonly Metric[] {
    return this.metricStore.all();
  }

  /** Callouts not answered yet; with `contextId`, only those made while that context was current. */
  pendingCallouts(contextId?: number): Callout[] {
    const all = [...this.vm.callouts.values()];
    return contextId === undefined
      ? all
      : all.filter((c) => c.originContextId === contextId || c.rootContextId === contextId);
  }
  /** One pending callout by token. */
  calloutAttributes(token: number): Callout | undefined {
    return this.vm.callouts.get(token);
  }

  queueSize(queueId: number): number {
    return this.shared.queue(queueId)?.items.length ?? 0;
  }
  sharedData(key: string): Uint8Array | undefined {
    return this.shared.getData(this.opts.vmId ?? '', key)?.value;
  }
  /** A property as the guest would read it from `contextId` (default: the first root). */
  property(path: string | readonly string[], contextId?: number): Uint8Array | undefined {
    const vm = this.vm;
    const ctx = contextId === undefined ? this.rootContext() : (vm.contexts.get(contextId) ?? this.ctxOf(contextId));
    const v = vm.property(ctx, propertyPath(path));
    return v === undefined ? undefined : encodeProperty(v);
  }
  tickPeriod(rootContextId?: number): number {
    return this.rootContext(rootContextId).tickPeriodMs;
  }
  /** True once any trap or runtime error failed the current VM. */
  vmFailed(): boolean {
    return this.vmInstance?.failed ?? false;
  }
  vmFailure(): { readonly callback: string; readonly message: string } | undefined {
    return this.vmInstance?.failure;
  }
  memoryBytes(): number {
    return this.vmInstance?.memoryBytes() ?? 0;
  }
  /**
   * Calls any guest export with `contextId` as the current context (0 = the VM context), e.g. a
   * test hook in a WAT module. Returns the result (u32), or -1 when the VM failed.
   */
  callExport(name: string, contextId: number, ...args: number[]): number {
    const vm = this.vm;
    const ctx = contextId === 0 ? vm.vmContext : vm.contexts.get(contextId);
    const fn = vm.exports[name];
    if (ctx === undefined || typeof fn !== 'function') {
      throw new EnvextError('WASM_UNKNOWN_EXPORT', `no export ${JSON.stringify(name)} or context ${contextId}`, {
        hint: 'check the module exports (`envext wasm inspect`) and the context id',
      });
    }
    return this.call(vm, name, ctx, fn as Parameters<WasmVm['call']>[2], args[0], args[1], args[2], args[3], args[4]);
  }

  /** A copy of guest memory `[ptr, ptr+size)` (for tests that let the guest store results). */
  guestMemory(ptr: number, size: number): Uint8Array {
    return this.vm.readGuest(ptr, size);
  }

  /** Writes into guest memory (tests placing input for a guest hook). */
  guestMemoryWrite(ptr: number, bytes: Uint8Array): void {
    this.vm.writeGuest(ptr, bytes);
  }

  /** Host calls the guest made so far on the current VM. */
  hostCalls(): number {
    return this.vmInstance?.hostCalls ?? 0;
  }
}
