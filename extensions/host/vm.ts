/**
 * One proxy-wasm VM: a module instance, its contexts and every ABI 0.2.1 host call, behaving as
 * Envoy (proxy-wasm-cpp-host + `source/extensions/common/wasm`) does; see
 * `/work/shared/reference/proxy-wasm.md` §1–§2 for the rules cited below.
 *
 * Hot path (STYLE.md §7): the import object is built once per instance; host calls dispatch through
 * `current`, the (effective) context set before each guest call and restored in `finally`; memory
 * views are cached and rebuilt only when `memory.buffer` changes (growth detaches them); data for
 * the guest is written straight into the block its allocator returned.
 *
 * Stream semantics that touch the filter chain (continue, close, local reply) are delegated to
 * `StreamHooks`, which the emulator implements; they run after the outermost guest call returns,
 * like Envoy's `DeferAfterCallActions`.
 */
import { randomFillSync } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { EnvextError, errorMessage } from '../../common/errors.js';
import {
  BUFFER_TYPE_MAX,
  BufferType,
  Errno,
  type GuestLogLevel,
  LOG_LEVEL_NAMES,
  MAP_TYPE_MAX,
  MapType,
  MetricType,
  StreamType,
  WasmResult,
} from './abi.js';
import { Context, type PluginInfo } from './context.js';
import { IdMap } from './id-map.js';
import { type AbiVersion, ENV_IMPORTS, WASI_IMPORTS, WASI_MODULES } from './envoy-imports.js';
import { decodePairs, HeaderMap, type HeaderPair, lowerKey } from './pairs.js';
import { encodeProperty, navigate, type PropertyValue } from './properties.js';
import type { Clock, LogEntry, MetricStore, SharedState } from './state.js';
import { type CompiledModule, type ImportFunction, type ImportObject, WA, type WasmMemory } from './wasm-api.js';

type GuestFn = (a?: number, b?: number, c?: number, d?: number, e?: number) => unknown;

/** What a foreign function returns: bytes (Ok) or a status. */
export type ForeignFunctionResult = Uint8Array | { readonly status: WasmResult };
/** A host function the guest reaches with `proxy_call_foreign_function(name, args)`. */
export type ForeignFunction = (args: Uint8Array, contextId: number) => ForeignFunctionResult;

export type CalloutKindName = 'http' | 'grpc_call' | 'grpc_stream';

/** A callout the guest started and nobody has answered yet. */
export interface Callout {
  readonly token: number;
  readonly kind: CalloutKindName;
  /** The root context the response goes to (callouts always run on the root, §2.9). */
  readonly rootContextId: number;
  /** The context that was current (effective) when the guest made the call. */
  readonly originContextId: number;
  /** HTTP: the cluster. gRPC: the cluster named by the service. */
  readonly upstream: string;
  readonly headers: readonly HeaderPair[];
  readonly body: Uint8Array;
  readonly trailers: readonly HeaderPair[];
  readonly timeoutMs: number;
  /** gRPC only. */
  readonly serviceName?: string;
  readonly method?: string;
  /** gRPC stream: messages sent with `proxy_grpc_send`; `localClosed` after end_stream/close. */
  readonly sent: Uint8Array[];
  localClosed: boolean;
  /** Virtual time (ns) at which an HTTP callout times out (0 = never). */
  readonly deadlineNs: bigint;
}

/** Filter-chain effects of host calls, implemented by the emulator. */
export interface StreamHooks {
  /** `proxy_continue_stream` for HTTP request/response or downstream TCP; runs after the VM call. */
  continueStream(ctx: Context, type: StreamType): void;
  /** `proxy_close_stream`; runs after the VM call. */
  closeStream(ctx: Context, type: StreamType): void;
  /** `proxy_send_local_response` was recorded on `ctx.localResponse`; runs after the VM call. */
  localResponse(ctx: Context): void;
}

export interface VmOptions {
  /** `vm_config.vm_id`: namespace for shared data and queues. Default ''. */
  readonly vmId: string;
  /** VM configuration (buffer type 6). */
  readonly vmConfiguration: Uint8Array;
  /** Guest memory cap in bytes (Envoy's V8: 1 GiB). */
  readonly maxMemoryBytes: number;
  /** What `proxy_get_log_level` answers. */
  readonly logLevel: GuestLogLevel;
  /** `VmConfig.environment_variables` visible through WASI `environ_*`. */
  readonly environment: Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly metrics: MetricStore;
  readonly shared: SharedState;
  readonly foreignFunctions: ReadonlyMap<string, ForeignFunction>;
  /** Known cluster names; undefined = any name is accepted. */
  readonly clusters: ReadonlySet<string> | undefined;
  /** Node/xDS/listener attributes and anything else the embedder supplies. */
  readonly properties: Readonly<Record<string, PropertyValue | undefined>>;
  readonly log: (entry: LogEntry) => void;
  /**
   * `PluginConfig.capability_restriction_config.allowed_capabilities`: when set, host calls not
   * listed become stubs that log and return InternalFailure (WASI: NOTCAPABLE), and `proxy_on_*`
   * callbacks not listed are never called. Undefined = everything allowed.
   */
  readonly allowedCapabilities?: ReadonlySet<string>;
}

/** Thrown inside a host call to trap the guest (restricted call, host contract violation). */
class HostTrap extends Error {
  override readonly name = 'HostTrap';
}

const EMPTY = new Uint8Array(0);
const FAILED = -1;
const LEVEL_BY_NAME: Readonly<Record<GuestLogLevel, number>> = {
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  error: 4,
  critical: 5,
};

export class WasmVm {
  readonly abiVersion: AbiVersion;
  readonly options: VmOptions;
  readonly exports: Readonly<Record<string, unknown>>;
  private readonly memory: WasmMemory | undefined;
  private readonly malloc: GuestFn | undefined;

  // guest callbacks, looked up once (a missing one means Continue / no-op)
  readonly fnContextCreate: GuestFn | undefined;
  readonly fnVmStart: GuestFn | undefined;
  readonly fnValidateConfiguration: GuestFn | undefined;
  readonly fnConfigure: GuestFn | undefined;
  readonly fnTick: GuestFn | undefined;
  readonly fnRequestHeaders: GuestFn | undefined;
  readonly fnRequestBody: GuestFn | undefined;
  readonly fnRequestTrailers: GuestFn | undefined;
  readonly fnRequestMetadata: GuestFn | undefined;
  readonly fnResponseHeaders: GuestFn | undefined;
  readonly fnResponseBody: GuestFn | undefined;
  readonly fnResponseTrailers: GuestFn | undefined;
  readonly fnResponseMetadata: GuestFn | undefined;
  readonly fnNewConnection: GuestFn | undefined;
  readonly fnDownstreamData: GuestFn | undefined;
  readonly fnUpstreamData: GuestFn | undefined;
  readonly fnDownstreamClose: GuestFn | undefined;
  readonly fnUpstreamClose: GuestFn | undefined;
  readonly fnHttpCallResponse: GuestFn | undefined;
  readonly fnGrpcInitialMetadata: GuestFn | undefined;
  readonly fnGrpcReceive: GuestFn | undefined;
  readonly fnGrpcTrailingMetadata: GuestFn | undefined;
  readonly fnGrpcClose: GuestFn | undefined;
  readonly fnQueueReady: GuestFn | undefined;
  readonly fnForeignFunction: GuestFn | undefined;
  readonly fnDone: GuestFn | undefined;
  readonly fnLog: GuestFn | undefined;
  readonly fnDelete: GuestFn | undefined;

  /** The context host calls act on (the effective context); undefined outside guest calls. */
  current: Context | undefined;
  /** True during `_initialize`/`_start`: only the calls of reference §1.5 are allowed. */
  restricted = false;
  failed = false;
  failure: { readonly callback: string; readonly message: string } | undefined;
  /** Set by `proxy_send_local_response`: the running callback's status becomes a stop. */
  nextIterationStopped = false;
  /** `nextIterationStopped` as the last outermost guest call left it (read by the stream layer). */
  lastCallStopped = false;

  readonly vmContext: Context;
  readonly contexts = new IdMap<Context>();
  private nextContextId = 1;
  readonly callouts = new Map<number, Callout>();
  private nextHttpToken = 0;
  private nextGrpcCallToken = 1;
  private nextGrpcStreamToken = 2;
  hooks: StreamHooks | undefined;

  private depth = 0;
  private readonly afterCall: (() => void)[] = [];
  /** Roots whose `proxy_done` was called: deleted after the current VM call. */
  private readonly doneRoots: Context[] = [];
  /** Number of host calls made (for benchmarks: host calls per second). */
  hostCalls = 0;

  private u8: Uint8Array = EMPTY;
  private readonly strCache: ({ ptr: number; bytes: Uint8Array; str: string } | undefined)[] = new Array<undefined>(
    64,
  ).fill(undefined);
  private buf: Buffer = Buffer.alloc(0);
  private dv: DataView = new DataView(new ArrayBuffer(0));

  private constructor(
    module: CompiledModule,
    abiVersion: AbiVersion,
    options: VmOptions,
    allocatorName: 'malloc' | 'proxy_on_memory_allocate',
  ) {
    this.abiVersion = abiVersion;
    this.options = options;
    this.vmContext = new Context(0, 'vm', undefined);
    const instance = new WA.Instance(module, this.buildImports());
    const ex = instance.exports as Readonly<Record<string, unknown>>;
    this.exports = ex;
    const mem = ex['memory'];
    this.memory = mem instanceof Object && 'buffer' in mem ? (mem as WasmMemory) : undefined;
    const allowed = options.allowedCapabilities;
    const fn = (name: string): GuestFn | undefined =>
      typeof ex[name] !== 'function' || (allowed !== undefined && name.startsWith('proxy_on_') && !allowed.has(name))
        ? undefined
        : (ex[name] as GuestFn);
    this.malloc = typeof ex[allocatorName] === 'function' ? (ex[allocatorName] as GuestFn) : undefined;
    this.fnContextCreate = fn('proxy_on_context_create');
    this.fnVmStart = fn('proxy_on_vm_start');
    this.fnValidateConfiguration = fn('proxy_validate_configuration');
    this.fnConfigure = fn('proxy_on_configure');
    this.fnTick = fn('proxy_on_tick');
    this.fnRequestHeaders = fn('proxy_on_request_headers');
    this.fnRequestBody = fn('proxy_on_request_body');
    this.fnRequestTrailers = fn('proxy_on_request_trailers');
    this.fnRequestMetadata = fn('proxy_on_request_metadata');
    this.fnResponseHeaders = fn('proxy_on_response_headers');
    this.fnResponseBody = fn('proxy_on_response_body');
    this.fnResponseTrailers = fn('proxy_on_response_trailers');
    this.fnResponseMetadata = fn('proxy_on_response_metadata');
    this.fnNewConnection = fn('proxy_on_new_connection');
    this.fnDownstreamData = fn('proxy_on_downstream_data');
    this.fnUpstreamData = fn('proxy_on_upstream_data');
    this.fnDownstreamClose = fn('proxy_on_downstream_connection_close');
    this.fnUpstreamClose = fn('proxy_on_upstream_connection_close');
    this.fnHttpCallResponse = fn('proxy_on_http_call_response');
    this.fnGrpcInitialMetadata = fn('proxy_on_grpc_receive_initial_metadata');
    this.fnGrpcReceive = fn('proxy_on_grpc_receive');
    this.fnGrpcTrailingMetadata = fn('proxy_on_grpc_receive_trailing_metadata');
    this.fnGrpcClose = fn('proxy_on_grpc_close');
    this.fnQueueReady = fn('proxy_on_queue_ready');
    this.fnForeignFunction = fn('proxy_on_foreign_function');
    this.fnDone = fn('proxy_on_done');
    this.fnLog = fn('proxy_on_log');
    this.fnDelete = fn('proxy_on_delete');
  }

  /**
   * Instantiates `module` (the start section runs here, with no context), then runs
   * `_initialize` (+ `main(0,0)`/`__main_void`) or `_start` in restricted mode. A failure in any
   * of these throws `WASM_VM_START_FAILED`.
   */
  static start(
    module: CompiledModule,
    abiVersion: AbiVersion,
    allocator: 'malloc' | 'proxy_on_memory_allocate',
    options: VmOptions,
  ): WasmVm {
    let vm: WasmVm;
    try {
      vm = new WasmVm(module, abiVersion, options, allocator);
    } catch (e) {
      throw new EnvextError('WASM_VM_START_FAILED', `Wasm VM failed to instantiate: ${errorMessage(e)}`, {
        hint: 'the module start section trapped or linking failed; keep top-level code free of host calls',
        cause: e,
      });
    }
    const init = (name: string, ...args: number[]): void => {
      const f = vm.exports[name];
      if (typeof f !== 'function') return;
      vm.restricted = true;
      vm.current = vm.vmContext;
      try {
        (f as (...a: number[]) => unknown)(...args);
      } catch (e) {
        vm.markFailed(name, e);
        throw new EnvextError('WASM_VM_START_FAILED', `Wasm VM failed to start: ${name} failed: ${errorMessage(e)}`, {
          hint: 'during _initialize/_start only proxy_log and the WASI calls are allowed (restricted mode)',
          cause: e,
        });
      } finally {
        vm.restricted = false;
        vm.current = undefined;
      }
    };
    if (typeof vm.exports['_initialize'] === 'function') {
      init('_initialize');
      if (typeof vm.exports['main'] === 'function') init('main', 0, 0);
      else if (typeof vm.exports['__main_void'] === 'function') init('__main_void');
    } else {
      init('_start');
    }
    return vm;
  }

  // ---------------------------------------------------------------- contexts and guest calls

  /** Allocates a context id and registers the context (the guest is told by the caller). */
  newContext(kind: 'root' | 'http' | 'tcp', root: Context | undefined, plugin?: PluginInfo): Context {
    const ctx = new Context(this.nextContextId++, kind, root);
    if (plugin !== undefined) ctx.plugin = plugin;
    if (kind !== 'root') ctx.startNs = this.options.clock.nowNs();
    this.contexts.set(ctx.id, ctx);
    return ctx;
  }

  removeContext(ctx: Context): void {
    this.contexts.delete(ctx.id);
    // Pending callouts die with the root context that owns them (Envoy cancels them).
    if (ctx.kind === 'root') {
      for (const [token, c] of this.callouts) if (c.rootContextId === ctx.id) this.callouts.delete(token);
    }
  }

  /**
   * Calls a guest export with `ctx` as the current context. Returns the result as u32, 0 for
   * void, or -1 when the VM failed (now or before): a trap marks the whole VM failed and never
   * escapes to the caller.
   */
  call(name: string, ctx: Context, fn: GuestFn | undefined, a = 0, b = 0, c = 0, d = 0, e = 0): number {
    if (this.failed) return FAILED;
    if (fn === undefined) {
      if (this.depth === 0) this.lastCallStopped = false;
      return 0;
    }
    const prev = this.current;
    this.current = ctx;
    this.depth++;
    try {
      // Call with the export's exact arity: V8's fast JS→Wasm wrapper needs matching argument
      // counts (a mismatch falls back to a generic path several times slower).
      let r: unknown;
      switch ((fn as { length: number }).length) {
        case 1:
          r = fn(a);
          break;
        case 2:
          r = fn(a, b);
          break;
        case 3:
          r = fn(a, b, c);
          break;
        case 0:
          r = fn();
          break;
        case 4:
          r = fn(a, b, c, d);
          break;
        default:
          r = fn(a, b, c, d, e);
      }
      return typeof r === 'number' ? r >>> 0 : 0;
    } catch (err) {
      this.markFailed(name, err);
      return FAILED;
    } finally {
      this.current = prev;
      if (--this.depth === 0) {
        // Envoy reads the stop flag for this callback's status, clears it, then runs the
        // deferred actions (DeferAfterCallActions); their own calls must not clobber it.
        const stopped = this.nextIterationStopped;
        this.nextIterationStopped = false;
        this.drainAfterCall();
        this.lastCallStopped = stopped;
      }
    }
  }

  /** Marks the whole VM failed, as any trap does in Envoy (§2.8), and logs it. */
  markFailed(callback: string, err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    const message = err instanceof Error ? `${err.name}: ${err.message}` : errorMessage(err);
    this.failure = { callback, message };
    this.options.log({
      level: 'critical',
      message: `Function: ${callback} failed: ${message}`,
      contextId: this.current?.id ?? 0,
    });
  }

  /** Queues work to run when the outermost guest call returns (or now, outside any call). */
  defer(action: () => void): void {
    if (this.depth === 0) action();
    else this.afterCall.push(action);
  }

  private drainAfterCall(): void {
    while (this.afterCall.length > 0) {
      const batch = this.afterCall.splice(0);
      for (const action of batch) action();
    }
    while (this.doneRoots.length > 0) {
      const root = this.doneRoots.shift()!;
      if (!this.contexts.has(root.id)) continue;
      root.pendingDone = false;
      this.call('proxy_on_delete', root, this.fnDelete, root.id);
      this.removeContext(root);
    }
  }

  /** Writes a buffer-typed configuration into a root context for the duration of `run`. */
  withConfigBuffer<T>(root: Context, type: number, bytes: Uint8Array, run: () => T): T {
    root.configBuffer = bytes;
    root.configBufferType = type;
    try {
      return run();
    } finally {
      root.configBuffer = undefined;
      root.configBufferType = -1;
    }
  }

  /** Used by the emulator to deliver `proxy_on_queue_ready` after the current call. */
  queueReady(rootContextId: number, queueId: number): void {
    this.defer(() => {
      const root = this.contexts.get(rootContextId);
      if (root !== undefined) this.call('proxy_on_queue_ready', root, this.fnQueueReady, root.id, queueId);
    });
  }

  /** A copy of guest memory (empty when out of bounds). */
  readGuest(ptr: number, size: number): Uint8Array {
    const b = this.bytes(ptr, size);
    return b === undefined ? EMPTY : Uint8Array.from(b);
  }

  /** Copies into guest memory; throws when out of bounds (embedder misuse, not a guest fault). */
  writeGuest(ptr: number, data: Uint8Array): void {
    const b = this.bytes(ptr, data.length);
    if (b === undefined) {
      throw new EnvextError(
        'WASM_MEMORY_OUT_OF_BOUNDS',
        `guest memory [${ptr}, ${ptr + data.length}) is out of bounds`,
        {
          hint: 'allocate with the guest allocator first',
        },
      );
    }
    b.set(data);
  }

  memoryBytes(): number {
    return this.memory?.buffer.byteLength ?? 0;
  }

  // ---------------------------------------------------------------- guest memory

  private view(): Uint8Array {
    // Growing a (non-shared) memory detaches its old ArrayBuffer, whose views then read as
    // length 0: checking that is cheaper than the `memory.buffer` getter on every host call.
    if (this.u8.length !== 0) return this.u8;
    const mem = this.memory;
    if (mem === undefined) return EMPTY;
    const b = mem.buffer;
    if (this.u8.buffer !== b) {
      this.u8 = new Uint8Array(b);
      this.buf = Buffer.from(b);
      this.dv = new DataView(b);
    }
    return this.u8;
  }

  private inBounds(ptr: number, size: number): boolean {
    return ptr + size <= this.view().length;
  }

  /** A view of guest memory (valid until the next guest call), or undefined if out of bounds. */
  private bytes(ptr: number, size: number): Uint8Array | undefined {
    ptr >>>= 0;
    size >>>= 0;
    if (!this.inBounds(ptr, size)) return undefined;
    return this.u8.subarray(ptr, ptr + size);
  }

  private string(ptr: number, size: number): string | undefined {
    ptr >>>= 0;
    size >>>= 0;
    if (!this.inBounds(ptr, size)) return undefined;
    // Guests pass the same short strings (header names, log prefixes) from the same addresses
    // again and again: a small direct-mapped cache, validated byte for byte, skips the decode.
    if (size <= 32) {
      const slot = Math.imul(ptr ^ (size << 20), 0x9e3779b1) >>> 24; // 256 slots, Fibonacci hashing
      const hit = this.strCache[slot];
      const u8 = this.u8;
      if (hit !== undefined && hit.ptr === ptr && hit.bytes.length === size) {
        const b = hit.bytes;
        let same = true;
        for (let i = 0; i < size; i++) {
          if (b[i] !== u8[ptr + i]) {
            same = false;
            break;
          }
        }
        if (same) return hit.str;
      }
      const str = this.buf.toString('utf8', ptr, ptr + size);
      this.strCache[slot] = { ptr, bytes: u8.slice(ptr, ptr + size), str };
      return str;
    }
    return this.buf.toString('utf8', ptr, ptr + size);
  }

  private setU32(ptr: number, v: number): boolean {
    ptr >>>= 0;
    if (!this.inBounds(ptr, 4)) return false;
    this.dv.setUint32(ptr, v >>> 0, true);
    return true;
  }

  private setU64(ptr: number, v: bigint): boolean {
    ptr >>>= 0;
    if (!this.inBounds(ptr, 8)) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }

  /**
   * Hands data to the guest (§2.12): calls its allocator, copies into the block, writes
   * (ptr, size) to the two out-pointers. Empty data writes (0, 0) without allocating.
   */
  private copyOut(data: Uint8Array | string, ptrPtr: number, sizePtr: number): WasmResult {
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (size === 0) {
      return this.setU32(ptrPtr, 0) && this.setU32(sizePtr, 0) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
    }
    const p = this.malloc === undefined ? 0 : (this.malloc(size) as number) >>> 0; // may grow memory
    if (p === 0 || !this.inBounds(p, size)) return WasmResult.InvalidMemoryAccess;
    if (typeof data !== 'string') this.u8.set(data, p);
    else if (size === data.length && size <= 64) {
      // ASCII (byte length = string length): a plain loop beats Buffer#write for short values.
      const u8 = this.u8;
      for (let i = 0; i < size; i++) u8[p + i] = data.charCodeAt(i);
    } else this.buf.write(data, p, 'utf8');
    return this.setU32(ptrPtr, p) && this.setU32(sizePtr, size) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  }

  // ---------------------------------------------------------------- maps and buffers

  /** The map of `type` as the effective context may read it now, or the error status. */
  private readMap(ctx: Context, type: number): HeaderMap | WasmResult {
    const m = this.mapFor(ctx, type, false);
    if (m !== undefined) return m;
    // In the access-log phase a map that never existed answers NotFound (§2.6).
    return ctx.inLog ? WasmResult.NotFound : WasmResult.BadArgument;
  }

  private mapFor(ctx: Context, type: number, write: boolean): HeaderMap | undefined {
    switch (type) {
      case MapType.HttpRequestHeaders:
        if (ctx.requestHeadersOpen || (!write && ctx.inLog)) return ctx.requestHeaders;
        return undefined;
      case MapType.HttpRequestTrailers:
        if (ctx.requestTrailersOpen || (!write && ctx.inLog)) return ctx.requestTrailers;
        // In the last body callback Envoy creates the trailer map on demand (addDecodedTrailers).
        if (ctx.requestBodyOpen && ctx.requestEndOfStream) {
          ctx.requestTrailers ??= new HeaderMap();
          return ctx.requestTrailers;
        }
        return undefined;
      case MapType.HttpResponseHeaders:
        if (ctx.responseHeadersOpen || (!write && ctx.inLog)) return ctx.responseHeaders;
        return undefined;
      case MapType.HttpResponseTrailers:
        if (ctx.responseTrailersOpen || (!write && ctx.inLog)) return ctx.responseTrailers;
        if (ctx.responseBodyOpen && ctx.responseEndOfStream) {
          ctx.responseTrailers ??= new HeaderMap();
          return ctx.responseTrailers;
        }
        return undefined;
      // Callout answers are read through the root context, whatever the effective context is:
      // Envoy's context.cc getConstMap answers these from `rootContext()->grpc_receive_*_metadata_`
      // and `rootContext()->http_call_response_` (a root's rootContext() is itself). So a guest
      // that switched to its stream with proxy_set_effective_context still reads the answer.
      // Writes (getMap) never reach them: BadArgument.
      case MapType.GrpcReceiveInitialMetadata:
        return write ? undefined : ctx.root?.grpcInitialMetadata;
      case MapType.GrpcReceiveTrailingMetadata:
        return write ? undefined : ctx.root?.grpcTrailingMetadata;
      case MapType.HttpCallResponseHeaders:
        return write ? undefined : ctx.root?.callResponse?.headers;
      case MapType.HttpCallResponseTrailers:
        return write ? undefined : ctx.root?.callResponse?.trailers;
      default:
        return undefined;
    }
  }

  /** The buffer of `type` as the effective context sees it now (undefined ⇒ NotFound). */
  private bufferFor(ctx: Context, type: number): Uint8Array | undefined {
    switch (type) {
      case BufferType.HttpRequestBody:
        return ctx.requestBodyOpen ? ctx.requestBody : undefined;
      case BufferType.HttpResponseBody:
        return ctx.responseBodyOpen ? ctx.responseBody : undefined;
      case BufferType.DownstreamData:
        return ctx.downstreamOpen ? ctx.downstreamData : undefined;
      case BufferType.UpstreamData:
        return ctx.upstreamOpen ? ctx.upstreamData : undefined;
      // Read through the root context, as Envoy's getBuffer does: `rootContext()->http_call_response_`
      // (null outside the callback ⇒ NotFound) and `buffer_.set(rootContext()->grpc_receive_buffer_.get())`
      // (a null instance is an empty buffer ⇒ Ok with size 0 outside proxy_on_grpc_receive).
      case BufferType.HttpCallResponseBody:
        return ctx.root?.callResponse?.body;
      case BufferType.GrpcReceiveBuffer:
        return ctx.root?.grpcMessage ?? EMPTY;
      case BufferType.VmConfiguration:
      case BufferType.PluginConfiguration:
        return ctx.configBufferType === type ? ctx.configBuffer : undefined;
      case BufferType.CallData:
        return ctx.callData;
      default:
        return undefined;
    }
  }

  private storeBuffer(ctx: Context, type: number, data: Uint8Array): void {
    if (type === BufferType.HttpRequestBody) ctx.requestBody = data;
    else if (type === BufferType.HttpResponseBody) ctx.responseBody = data;
    else if (type === BufferType.DownstreamData) ctx.downstreamData = data;
    else ctx.upstreamData = data;
  }

  // ---------------------------------------------------------------- properties

  /** Resolves a property path for `ctx` (§1.7–1.8); undefined ⇒ NotFound. */
  property(ctx: Context, segments: readonly string[]): PropertyValue | undefined {
    const [top, ...rest] = segments;
    if (top === undefined || top === '') return undefined;
    const root = ctx.root;
    const plugin = root?.plugin;
    let base: PropertyValue | undefined;
    switch (top) {
      case 'plugin_name':
        base = plugin?.name;
        break;
      case 'plugin_root_id':
        base = plugin?.rootId;
        break;
      case 'plugin_vm_id':
        base = this.options.vmId;
        break;
      case 'connection_id':
        base = navigate(ctx.attributes?.['connection'], ['id']);
        break;
      default:
        base = ctx.attributes?.[top];
        if (base === undefined && (top === 'request' || top === 'response')) base = this.httpAttributes(ctx, top);
        else if (base !== undefined && (top === 'request' || top === 'response')) {
          base = { ...(this.httpAttributes(ctx, top) as object), ...(base as object) };
        }
        base ??= this.options.properties[top];
    }
    if (base !== undefined) {
      const v = navigate(base, rest);
      if (v !== undefined) return v;
    }
    // Unknown names fall back to filter state `wasm.<path>` (set by proxy_set_property).
    return ctx.filterState?.get(segments.join('\0'));
  }

  /** Request/response attributes derived from the stream's current headers. */
  private httpAttributes(ctx: Context, top: 'request' | 'response'): PropertyValue | undefined {
    if (ctx.kind !== 'http') return undefined;
    if (top === 'request') {
      const h = ctx.requestHeaders;
      if (h === undefined) return undefined;
      const path = h.get(':path');
      const q = path?.indexOf('?') ?? -1;
      return {
        headers: h,
        path,
        url_path: path === undefined ? undefined : q >= 0 ? path.slice(0, q) : path,
        query: path === undefined ? undefined : q >= 0 ? path.slice(q + 1) : '',
        host: h.get(':authority'),
        scheme: h.get(':scheme'),
        method: h.get(':method'),
        referer: h.get('referer'),
        useragent: h.get('user-agent'),
        id: h.get('x-request-id'),
        trailers: ctx.requestTrailers,
        time: ctx.startNs === 0n ? undefined : ctx.startNs,
      };
    }
    const h = ctx.responseHeaders;
    const status = h?.get(':status');
    return {
      headers: h,
      code: status === undefined || !/^\d+$/.test(status) ? undefined : BigInt(status),
      code_details: ctx.localResponse?.details,
      grpc_status: h?.get('grpc-status') === undefined ? undefined : BigInt(h.get('grpc-status') ?? '0'),
      trailers: ctx.responseTrailers,
    };
  }

  // ---------------------------------------------------------------- the import object

  private restrictedCall(name: string): never {
    throw new HostTrap(`restricted_callback: ${name} may not be called during _initialize/_start`);
  }

  private ctx(name: string): Context {
    const c = this.current;
    if (c === undefined || this.restricted) this.restrictedCall(name);
    return c;
  }

  private rootOf(name: string): Context | undefined {
    return this.ctx(name).root;
  }

  private buildImports(): ImportObject {
    // The import functions are plain closures over the VM (no `this` binding per call).
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const vm = this;
    const R = WasmResult;
    const env: Record<string, ImportFunction> = {
      proxy_log(level: number, ptr: number, size: number): number {
        vm.hostCalls++;
        if (level >>> 0 > 5) return R.BadArgument;
        const msg = vm.string(ptr, size);
        if (msg === undefined) return R.InvalidMemoryAccess;
        vm.options.log({ level: LOG_LEVEL_NAMES[level]!, message: msg, contextId: vm.current?.id ?? 0 });
        return R.Ok;
      },
      proxy_get_log_level(ptr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_get_log_level');
        return vm.setU32(ptr, LEVEL_BY_NAME[vm.options.logLevel]) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_get_current_time_nanoseconds(ptr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_get_current_time_nanoseconds');
        return vm.setU64(ptr, vm.options.clock.nowNs()) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_set_tick_period_milliseconds(ms: number): number {
        vm.hostCalls++;
        const root = vm.rootOf('proxy_set_tick_period_milliseconds');
        if (root === undefined) return R.BadArgument;
        root.tickPeriodMs = ms >>> 0;
        root.nextTickNs = vm.options.clock.monotonicNs() + BigInt(root.tickPeriodMs) * 1_000_000n;
        return R.Ok;
      },

      proxy_get_buffer_bytes(type: number, start: number, max: number, ptrPtr: number, sizePtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_buffer_bytes');
        if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
        const b = vm.bufferFor(ctx, type);
        if (b === undefined) return R.NotFound;
        start >>>= 0;
        max >>>= 0;
        if (start >= b.length) return vm.copyOut(EMPTY, ptrPtr, sizePtr);
        return vm.copyOut(b.subarray(start, Math.min(b.length, start + max)), ptrPtr, sizePtr);
      },
      proxy_get_buffer_status(type: number, sizePtr: number, flagsPtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_buffer_status');
        if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
        const b = vm.bufferFor(ctx, type);
        if (b === undefined) return R.NotFound;
        return vm.setU32(sizePtr, b.length) && vm.setU32(flagsPtr, 0) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_set_buffer_bytes(type: number, start: number, size: number, dataPtr: number, dataSize: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_set_buffer_bytes');
        if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
        const b = vm.bufferFor(ctx, type);
        if (b === undefined) return R.NotFound;
        if (type > BufferType.UpstreamData) return R.BadArgument; // call results and configs are immutable
        const data = vm.bytes(dataPtr, dataSize);
        if (data === undefined) return R.InvalidMemoryAccess;
        start >>>= 0;
        size >>>= 0;
        // Envoy supports exactly three edits of a live buffer: prepend, replace all, append.
        let next: Uint8Array;
        if (start === 0 && size === 0) next = concat(data, b);
        else if (start === 0 && size >= b.length) next = Uint8Array.from(data);
        else if (start >= b.length) next = concat(b, data);
        else return R.BadArgument;
        vm.storeBuffer(ctx, type, next);
        return R.Ok;
      },

      proxy_get_header_map_pairs(type: number, ptrPtr: number, sizePtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_header_map_pairs');
        if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
        // Envoy's getHeaderMapPairs is `headerMapToPairs(getConstMap(type))`, Ok whatever the
        // phase: a map that is not available now reads as an empty map.
        const m = vm.mapFor(ctx, type, false);
        return vm.copyOut(m === undefined ? EMPTY : m.encode(), ptrPtr, sizePtr);
      },
      proxy_set_header_map_pairs(type: number, ptr: number, size: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_set_header_map_pairs');
        if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
        const m = vm.mapFor(ctx, type, true);
        if (m === undefined) return R.BadArgument;
        const data = vm.bytes(ptr, size);
        if (data === undefined) return R.InvalidMemoryAccess;
        m.setAll(decodePairs(data));
        return R.Ok;
      },
      proxy_get_header_map_value(type: number, kPtr: number, kSize: number, vPtrPtr: number, vSizePtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_header_map_value');
        if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
        const m = vm.readMap(ctx, type);
        if (typeof m === 'number') return m;
        const key = vm.string(kPtr, kSize);
        if (key === undefined) return R.InvalidMemoryAccess;
        const v = m.get(lowerKey(key));
        if (v === undefined) return R.NotFound;
        return vm.copyOut(v, vPtrPtr, vSizePtr);
      },
      proxy_add_header_map_value(type: number, kPtr: number, kSize: number, vPtr: number, vSize: number): number {
        return vm.editHeader('proxy_add_header_map_value', type, kPtr, kSize, vPtr, vSize, 'add');
      },
      proxy_replace_header_map_value(type: number, kPtr: number, kSize: number, vPtr: number, vSize: number): number {
        return vm.editHeader('proxy_replace_header_map_value', type, kPtr, kSize, vPtr, vSize, 'replace');
      },
      proxy_remove_header_map_value(type: number, kPtr: number, kSize: number): number {
        return vm.editHeader('proxy_remove_header_map_value', type, kPtr, kSize, 0, 0, 'remove');
      },
      proxy_get_header_map_size(type: number, sizePtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_header_map_size');
        if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
        // Envoy's getHeaderMapSize looks the map up with the mutable getMap, which knows only the
        // request/response maps: callout maps (4–7) and on_log's maps answer BadArgument.
        const m = vm.mapFor(ctx, type, true);
        if (m === undefined) return R.BadArgument;
        return vm.setU32(sizePtr, m.byteSize()) ? R.Ok : R.InvalidMemoryAccess;
      },

      proxy_continue_stream(type: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_continue_stream');
        type >>>= 0;
        if (type > StreamType.Upstream) return R.BadArgument;
        if (type === StreamType.Upstream) return R.Unimplemented;
        const want = type === StreamType.Downstream ? 'tcp' : 'http';
        if (ctx.kind !== want) return R.NotFound;
        vm.defer(() => vm.hooks?.continueStream(ctx, type as StreamType));
        return R.Ok;
      },
      proxy_close_stream(type: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_close_stream');
        type >>>= 0;
        if (type > StreamType.Upstream) return R.BadArgument;
        const want = type >= StreamType.Downstream ? 'tcp' : 'http';
        if (ctx.kind !== want) return R.NotFound;
        vm.defer(() => vm.hooks?.closeStream(ctx, type as StreamType));
        return R.Ok;
      },
      proxy_send_local_response(
        status: number,
        dPtr: number,
        dSize: number,
        bPtr: number,
        bSize: number,
        hPtr: number,
        hSize: number,
        grpc: number,
      ): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_send_local_response');
        const details = vm.string(dPtr, dSize);
        const body = vm.bytes(bPtr, bSize);
        const headers = vm.bytes(hPtr, hSize);
        if (details === undefined || body === undefined || headers === undefined) return R.InvalidMemoryAccess;
        if (ctx.kind !== 'http') return R.NotFound;
        vm.nextIterationStopped = true;
        if (ctx.localResponse !== undefined) return R.Ok; // the first local reply wins
        ctx.localResponse = {
          statusCode: status >>> 0,
          details: details.replace(/[ \t]/g, '_'),
          body: Uint8Array.from(body),
          headers: decodePairs(headers).map(([k, v]) => [lowerKey(k), v] as const),
          grpcStatus: grpc >= 0 && grpc <= 16 ? grpc : undefined,
        };
        vm.defer(() => vm.hooks?.localResponse(ctx));
        return R.Ok;
      },
      proxy_get_status(codePtr: number, msgPtrPtr: number, msgSizePtr: number): number {
        vm.hostCalls++;
        const root = vm.rootOf('proxy_get_status');
        if (root === undefined) return R.NotFound;
        if (!vm.setU32(codePtr, root.statusCode)) return R.InvalidMemoryAccess;
        return vm.copyOut(root.statusMessage, msgPtrPtr, msgSizePtr);
      },

      proxy_http_call(
        uPtr: number,
        uSize: number,
        hPtr: number,
        hSize: number,
        bPtr: number,
        bSize: number,
        tPtr: number,
        tSize: number,
        timeout: number,
        tokenPtr: number,
      ): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_http_call');
        const root = ctx.root;
        const upstream = vm.string(uPtr, uSize);
        const h = vm.bytes(hPtr, hSize);
        const body = vm.bytes(bPtr, bSize);
        const t = vm.bytes(tPtr, tSize);
        if (upstream === undefined || h === undefined || body === undefined || t === undefined) {
          return R.InvalidMemoryAccess;
        }
        if (root === undefined) return R.BadArgument;
        if (vm.options.clusters !== undefined && !vm.options.clusters.has(upstream)) return R.BadArgument;
        const headers = decodePairs(h).map(([k, v]) => [lowerKey(k), v] as const);
        for (const required of [':path', ':method', ':authority']) {
          if (!headers.some(([k]) => k === required)) return R.BadArgument;
        }
        if (body.length > 0) headers.push(['content-length', String(body.length)]);
        vm.nextHttpToken += 4;
        const token = vm.nextHttpToken;
        const timeoutMs = timeout >>> 0;
        vm.callouts.set(token, {
          token,
          kind: 'http',
          rootContextId: root.id,
          originContextId: ctx.id,
          upstream,
          headers,
          body: Uint8Array.from(body),
          trailers: decodePairs(t),
          timeoutMs,
          sent: [],
          localClosed: true,
          deadlineNs: timeoutMs === 0 ? 0n : vm.options.clock.monotonicNs() + BigInt(timeoutMs) * 1_000_000n,
        });
        return vm.setU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_grpc_call(
        sPtr: number,
        sSize: number,
        nPtr: number,
        nSize: number,
        mPtr: number,
        mSize: number,
        mdPtr: number,
        mdSize: number,
        msgPtr: number,
        msgSize: number,
        timeout: number,
        tokenPtr: number,
      ): number {
        vm.hostCalls++;
        return vm.grpcStart(
          'proxy_grpc_call',
          'grpc_call',
          sPtr,
          sSize,
          nPtr,
          nSize,
          mPtr,
          mSize,
          mdPtr,
          mdSize,
          msgPtr,
          msgSize,
          timeout >>> 0,
          tokenPtr,
        );
      },
      proxy_grpc_stream(
        sPtr: number,
        sSize: number,
        nPtr: number,
        nSize: number,
        mPtr: number,
        mSize: number,
        mdPtr: number,
        mdSize: number,
        tokenPtr: number,
      ): number {
        vm.hostCalls++;
        return vm.grpcStart(
          'proxy_grpc_stream',
          'grpc_stream',
          sPtr,
          sSize,
          nPtr,
          nSize,
          mPtr,
          mSize,
          mdPtr,
          mdSize,
          0,
          0,
          0,
          tokenPtr,
        );
      },
      proxy_grpc_send(token: number, msgPtr: number, msgSize: number, endStream: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_grpc_send');
        token >>>= 0;
        if ((token & 3) !== 2) return R.BadArgument;
        const c = vm.callouts.get(token);
        if (c === undefined) return R.NotFound;
        const msg = vm.bytes(msgPtr, msgSize);
        if (msg === undefined) return R.InvalidMemoryAccess;
        c.sent.push(Uint8Array.from(msg));
        if (endStream !== 0) c.localClosed = true;
        return R.Ok;
      },
      proxy_grpc_cancel(token: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_grpc_cancel');
        token >>>= 0;
        const c = vm.callouts.get(token);
        if (c === undefined || c.kind === 'http') return R.NotFound;
        vm.callouts.delete(token);
        return R.Ok;
      },
      proxy_grpc_close(token: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_grpc_close');
        token >>>= 0;
        const c = vm.callouts.get(token);
        if (c === undefined || c.kind === 'http') return R.NotFound;
        // A stream is half-closed (the peer may still answer); a unary call is dropped.
        if (c.kind === 'grpc_stream') c.localClosed = true;
        else vm.callouts.delete(token);
        return R.Ok;
      },

      proxy_get_shared_data(kPtr: number, kSize: number, vPtrPtr: number, vSizePtr: number, casPtr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_get_shared_data');
        const key = vm.string(kPtr, kSize);
        if (key === undefined) return R.InvalidMemoryAccess;
        const v = vm.options.shared.getData(vm.options.vmId, key);
        if (v === undefined) return R.NotFound;
        const r = vm.copyOut(v.value, vPtrPtr, vSizePtr);
        if (r !== R.Ok) return r;
        return vm.setU32(casPtr, v.cas) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_set_shared_data(kPtr: number, kSize: number, vPtr: number, vSize: number, cas: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_set_shared_data');
        const key = vm.string(kPtr, kSize);
        const value = vm.bytes(vPtr, vSize);
        if (key === undefined || value === undefined) return R.InvalidMemoryAccess;
        return vm.options.shared.setData(vm.options.vmId, key, value, cas >>> 0) ? R.Ok : R.CasMismatch;
      },
      proxy_register_shared_queue(nPtr: number, nSize: number, idPtr: number): number {
        vm.hostCalls++;
        const root = vm.rootOf('proxy_register_shared_queue');
        const name = vm.string(nPtr, nSize);
        if (name === undefined) return R.InvalidMemoryAccess;
        if (root === undefined) return R.BadArgument;
        const q = vm.options.shared.registerQueue(vm.options.vmId, name, {
          rootContextId: root.id,
          notify: (rootId, queueId) => vm.queueReady(rootId, queueId),
        });
        return vm.setU32(idPtr, q.id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_resolve_shared_queue(vPtr: number, vSize: number, nPtr: number, nSize: number, idPtr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_resolve_shared_queue');
        const vmId = vm.string(vPtr, vSize);
        const name = vm.string(nPtr, nSize);
        if (vmId === undefined || name === undefined) return R.InvalidMemoryAccess;
        const q = vm.options.shared.resolveQueue(vmId === '' ? vm.options.vmId : vmId, name);
        if (q === undefined) return R.NotFound;
        return vm.setU32(idPtr, q.id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_enqueue_shared_queue(id: number, vPtr: number, vSize: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_enqueue_shared_queue');
        const q = vm.options.shared.queue(id >>> 0);
        if (q === undefined) return R.NotFound;
        const v = vm.bytes(vPtr, vSize);
        if (v === undefined) return R.InvalidMemoryAccess;
        q.items.push(Uint8Array.from(v));
        q.owner.notify(q.owner.rootContextId, q.id);
        return R.Ok;
      },
      proxy_dequeue_shared_queue(id: number, ptrPtr: number, sizePtr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_dequeue_shared_queue');
        const q = vm.options.shared.queue(id >>> 0);
        if (q === undefined) return R.NotFound;
        const item = q.items.shift();
        if (item === undefined) return R.Empty;
        return vm.copyOut(item, ptrPtr, sizePtr);
      },

      proxy_define_metric(type: number, nPtr: number, nSize: number, idPtr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_define_metric');
        if (type >>> 0 > MetricType.Histogram) return R.BadArgument;
        const name = vm.string(nPtr, nSize);
        if (name === undefined) return R.InvalidMemoryAccess;
        const m = vm.options.metrics.define(type as MetricType, name);
        return vm.setU32(idPtr, m.id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_increment_metric(id: number, delta: bigint): number {
        vm.hostCalls++;
        vm.ctx('proxy_increment_metric');
        const m = vm.options.metrics.get(id >>> 0);
        if (m === undefined) return R.NotFound;
        if (m.kind === 'counter') {
          if (delta <= 0n) return R.BadArgument;
          m.value = BigInt.asUintN(64, m.value + delta);
        } else if (m.kind === 'gauge') {
          m.value += delta;
        } else {
          return R.BadArgument;
        }
        return R.Ok;
      },
      proxy_record_metric(id: number, value: bigint): number {
        vm.hostCalls++;
        vm.ctx('proxy_record_metric');
        const m = vm.options.metrics.get(id >>> 0);
        if (m === undefined) return R.NotFound;
        if (m.kind === 'counter') m.value = BigInt.asUintN(64, m.value + BigInt.asUintN(64, value));
        else if (m.kind === 'gauge') m.value = value;
        else m.samples.push(BigInt.asUintN(64, value));
        return R.Ok;
      },
      proxy_get_metric(id: number, ptr: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_get_metric');
        const m = vm.options.metrics.get(id >>> 0);
        if (m === undefined) return R.NotFound;
        if (m.kind === 'histogram') return R.BadArgument;
        return vm.setU64(ptr, m.value) ? R.Ok : R.InvalidMemoryAccess;
      },

      proxy_get_property(pPtr: number, pSize: number, vPtrPtr: number, vSizePtr: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_get_property');
        const path = vm.string(pPtr, pSize);
        if (path === undefined) return R.InvalidMemoryAccess;
        const segments = path.split('\0');
        if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
        const v = vm.property(ctx, segments);
        if (v === undefined) return R.NotFound;
        const bytes = encodeProperty(v);
        if (bytes === undefined) return R.SerializationFailure;
        return vm.copyOut(bytes, vPtrPtr, vSizePtr);
      },
      proxy_set_property(pPtr: number, pSize: number, vPtr: number, vSize: number): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_set_property');
        const path = vm.string(pPtr, pSize);
        const value = vm.bytes(vPtr, vSize);
        if (path === undefined || value === undefined) return R.InvalidMemoryAccess;
        if (ctx.kind !== 'http' && ctx.kind !== 'tcp') return R.NotFound;
        (ctx.filterState ??= new Map()).set(path, Uint8Array.from(value));
        return R.Ok;
      },
      proxy_set_effective_context(id: number): number {
        vm.hostCalls++;
        vm.ctx('proxy_set_effective_context');
        const target = vm.contexts.get(id >>> 0);
        if (target === undefined) return R.BadArgument;
        // Lasts until the current host→guest call returns: `call` restores the previous context.
        vm.current = target;
        return R.Ok;
      },
      proxy_done(): number {
        vm.hostCalls++;
        const root = vm.rootOf('proxy_done');
        if (root === undefined || !root.pendingDone) return R.NotFound;
        vm.doneRoots.push(root);
        if (vm.depth === 0) vm.drainAfterCall();
        return R.Ok;
      },
      proxy_call_foreign_function(
        nPtr: number,
        nSize: number,
        aPtr: number,
        aSize: number,
        rPtrPtr: number,
        rSizePtr: number,
      ): number {
        vm.hostCalls++;
        const ctx = vm.ctx('proxy_call_foreign_function');
        const name = vm.string(nPtr, nSize);
        const args = vm.bytes(aPtr, aSize);
        if (name === undefined || args === undefined) return R.InvalidMemoryAccess;
        const f = vm.options.foreignFunctions.get(name) ?? BUILTIN_FOREIGN_FUNCTIONS.get(name);
        if (f === undefined) return R.NotFound;
        const out = f(Uint8Array.from(args), ctx.id);
        if (!(out instanceof Uint8Array)) return out.status;
        return vm.copyOut(out, rPtrPtr, rSizePtr);
      },
      emscripten_notify_memory_growth(): void {
        vm.hostCalls++;
      },
      pthread_equal(a: number, b: number): number {
        vm.hostCalls++;
        return a === b ? 1 : 0;
      },
    };
    const wasi = this.buildWasi();
    const allowed = this.options.allowedCapabilities;
    if (allowed !== undefined) {
      // Envoy replaces each call outside the allow list with a stub that logs and fails.
      const restrict = (
        table: Record<string, ImportFunction>,
        failure: number,
        isVoid: (n: string) => boolean,
      ): void => {
        for (const name of Object.keys(table)) {
          if (allowed.has(name)) continue;
          table[name] = () => {
            vm.hostCalls++;
            vm.options.log({
              level: 'error',
              message: `${name} is not allowed by capability_restriction_config`,
              contextId: vm.current?.id ?? 0,
            });
            return isVoid(name) ? undefined : failure;
          };
        }
      };
      const voidNames = new Set(
        [...ENV_IMPORTS, ...WASI_IMPORTS].filter((i) => i.results.length === 0).map((i) => i.name),
      );
      restrict(env, R.InternalFailure, (n) => voidNames.has(n));
      restrict(wasi, Errno.Notcapable, (n) => voidNames.has(n));
    }
    const imports: ImportObject = { env };
    for (const m of WASI_MODULES) imports[m] = wasi;
    return imports;
  }

  private editHeader(
    name: string,
    type: number,
    kPtr: number,
    kSize: number,
    vPtr: number,
    vSize: number,
    op: 'add' | 'replace' | 'remove',
  ): number {
    this.hostCalls++;
    const ctx = this.ctx(name);
    if (type >>> 0 > MAP_TYPE_MAX) return WasmResult.BadArgument;
    const m = this.mapFor(ctx, type, true);
    if (m === undefined) return WasmResult.BadArgument;
    const key = this.string(kPtr, kSize);
    if (key === undefined) return WasmResult.InvalidMemoryAccess;
    if (op === 'remove') {
      m.remove(key);
      return WasmResult.Ok;
    }
    const value = this.string(vPtr, vSize);
    if (value === undefined) return WasmResult.InvalidMemoryAccess;
    if (op === 'add') m.add(key, value);
    else m.replace(key, value);
    return WasmResult.Ok;
  }

  private grpcStart(
    name: string,
    kind: 'grpc_call' | 'grpc_stream',
    sPtr: number,
    sSize: number,
    nPtr: number,
    nSize: number,
    mPtr: number,
    mSize: number,
    mdPtr: number,
    mdSize: number,
    msgPtr: number,
    msgSize: number,
    timeoutMs: number,
    tokenPtr: number,
  ): number {
    const ctx = this.ctx(name);
    const root = ctx.root;
    const service = this.bytes(sPtr, sSize);
    const serviceName = this.string(nPtr, nSize);
    const method = this.string(mPtr, mSize);
    const md = this.bytes(mdPtr, mdSize);
    const msg = this.bytes(msgPtr, msgSize);
    if (service === undefined || serviceName === undefined || method === undefined || md === undefined || !msg) {
      return WasmResult.InvalidMemoryAccess;
    }
    if (root === undefined) return WasmResult.BadArgument;
    const cluster = grpcServiceCluster(service);
    if (cluster === undefined) return WasmResult.ParseFailure;
    if (this.options.clusters !== undefined && !this.options.clusters.has(cluster)) return WasmResult.ParseFailure;
    let token: number;
    if (kind === 'grpc_call') token = this.nextGrpcCallToken += 4;
    else token = this.nextGrpcStreamToken += 4;
    this.callouts.set(token, {
      token,
      kind,
      rootContextId: root.id,
      originContextId: ctx.id,
      upstream: cluster,
      serviceName,
      method,
      headers: decodePairs(md),
      body: Uint8Array.from(msg),
      trailers: [],
      timeoutMs,
      sent: [],
      localClosed: kind === 'grpc_call',
      deadlineNs: timeoutMs === 0 ? 0n : this.options.clock.monotonicNs() + BigInt(timeoutMs) * 1_000_000n,
    });
    return this.setU32(tokenPtr, token) ? WasmResult.Ok : WasmResult.InvalidMemoryAccess;
  }

  private buildWasi(): Record<string, ImportFunction> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const vm = this;
    const E = Errno;
    const allowedInit = new Set(WASI_IMPORTS.filter((w) => w.allowedInInit).map((w) => w.name));
    const envEntries = Object.entries(this.options.environment).map(([k, v]) => `${k}=${v}\0`);
    const stub = (errno: number) => (): number => {
      vm.hostCalls++;
      return errno;
    };
    const wasi: Record<string, ImportFunction> = {
      fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
        vm.hostCalls++;
        if (fd !== 1 && fd !== 2) return E.Badf;
        const parts: string[] = [];
        let total = 0;
        vm.view();
        for (let i = 0; i < iovsLen >>> 0; i++) {
          const at = (iovs >>> 0) + i * 8;
          if (!vm.inBounds(at, 8)) return E.Fault;
          const p = vm.dv.getUint32(at, true);
          const n = vm.dv.getUint32(at + 4, true);
          const s = vm.string(p, n);
          if (s === undefined) return E.Fault;
          parts.push(s);
          total += n;
        }
        let msg = parts.join('');
        if (msg.endsWith('\n')) msg = msg.slice(0, -1);
        vm.options.log({ level: fd === 1 ? 'info' : 'error', message: msg, contextId: vm.current?.id ?? 0 });
        return vm.setU32(nwrittenPtr, total) ? E.Success : E.Fault;
      },
      environ_sizes_get(countPtr: number, sizePtr: number): number {
        vm.hostCalls++;
        const size = envEntries.reduce((n, e) => n + Buffer.byteLength(e), 0);
        return vm.setU32(countPtr, envEntries.length) && vm.setU32(sizePtr, size) ? E.Success : E.Fault;
      },
      environ_get(environPtr: number, bufPtr: number): number {
        vm.hostCalls++;
        let p = bufPtr >>> 0;
        for (let i = 0; i < envEntries.length; i++) {
          const e = envEntries[i]!;
          const n = Buffer.byteLength(e);
          if (!vm.setU32((environPtr >>> 0) + i * 4, p) || !vm.inBounds(p, n)) return E.Fault;
          vm.buf.write(e, p, 'utf8');
          p += n;
        }
        return E.Success;
      },
      args_sizes_get(countPtr: number, sizePtr: number): number {
        vm.hostCalls++;
        return vm.setU32(countPtr, 0) && vm.setU32(sizePtr, 0) ? E.Success : E.Fault;
      },
      args_get: stub(E.Success),
      clock_time_get(id: number, _precision: bigint, ptr: number): number {
        vm.hostCalls++;
        if (id === 0) return vm.setU64(ptr, vm.options.clock.nowNs()) ? E.Success : E.Fault;
        if (id === 1) return vm.setU64(ptr, vm.options.clock.monotonicNs()) ? E.Success : E.Fault;
        return E.Notsup;
      },
      clock_res_get(_id: number, ptr: number): number {
        vm.hostCalls++;
        return vm.setU64(ptr, 1n) ? E.Success : E.Fault;
      },
      random_get(ptr: number, len: number): number {
        vm.hostCalls++;
        len >>>= 0;
        if (len > 65536) return E.Inval;
        const b = vm.bytes(ptr, len);
        if (b === undefined) return E.Fault;
        randomFillSync(b);
        return E.Success;
      },
      sched_yield: stub(E.Success),
      poll_oneoff(_in: number, _out: number, _n: number, neventsPtr: number): number {
        vm.hostCalls++;
        return vm.setU32(neventsPtr, 0) ? E.Success : E.Fault;
      },
      proc_exit(code: number): void {
        vm.hostCalls++;
        // Envoy logs and returns: proc_exit does not stop the guest (reference §1.4).
        vm.options.log({ level: 'error', message: `proc_exit(${code}) called`, contextId: vm.current?.id ?? 0 });
      },
      fd_fdstat_get(fd: number, ptr: number): number {
        vm.hostCalls++;
        if (fd !== 1 && fd !== 2) return E.Badf;
        const b = vm.bytes(ptr, 24);
        if (b === undefined) return E.Fault;
        b.fill(0);
        b[0] = 2; // character device
        vm.dv.setBigUint64((ptr >>> 0) + 8, 0x40n, true); // rights: fd_write
        return E.Success;
      },
    };
    // The rest are inert, as in Envoy: descriptor calls answer BADF, path/socket calls NOSYS.
    for (const spec of WASI_IMPORTS) {
      if (wasi[spec.name] !== undefined) continue;
      wasi[spec.name] = spec.name.startsWith('fd_') ? stub(E.Badf) : stub(E.Nosys);
    }
    // Restricted mode applies to WASI too, for the calls not on the allowed list.
    for (const name of Object.keys(wasi)) {
      if (allowedInit.has(name)) continue;
      const f = wasi[name]! as (...a: unknown[]) => unknown;
      wasi[name] = (...a: unknown[]) => {
        if (vm.restricted) vm.restrictedCall(name);
        return f(...a);
      };
    }
    return wasi;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * The cluster a gRPC callout goes to: `service` is either a bare cluster name or a serialized
 * `envoy.config.core.v3.GrpcService` (field 1 `envoy_grpc` { field 1 `cluster_name` }, or field 2
 * `google_grpc` { field 1 `target_uri` }). Undefined ⇒ ParseFailure.
 */
export function grpcServiceCluster(service: Uint8Array): string | undefined {
  if (service.length === 0) return undefined;
  const asText = Buffer.from(service).toString('utf8');
  // A cluster name is printable text; a serialized proto starts with a field tag (0x0a or 0x12).
  if (/^[\x20-\x7e]+$/.test(asText) && service[0] !== 0x0a && service[0] !== 0x12) return asText;
  const field = (b: Uint8Array, want: number): Uint8Array | undefined => {
    let p = 0;
    while (p < b.length) {
      let tag = 0;
      let shift = 0;
      for (;;) {
        if (p >= b.length) return undefined;
        const x = b[p++]!;
        tag |= (x & 0x7f) << shift;
        if ((x & 0x80) === 0) break;
        shift += 7;
      }
      const wire = tag & 7;
      if (wire === 2) {
        let len = 0;
        shift = 0;
        for (;;) {
          if (p >= b.length) return undefined;
          const x = b[p++]!;
          len |= (x & 0x7f) << shift;
          if ((x & 0x80) === 0) break;
          shift += 7;
        }
        if (p + len > b.length) return undefined;
        if (tag >>> 3 === want) return b.subarray(p, p + len);
        p += len;
      } else if (wire === 0) {
        while (p < b.length && (b[p++]! & 0x80) !== 0);
      } else if (wire === 1) p += 8;
      else if (wire === 5) p += 4;
      else return undefined;
    }
    return undefined;
  };
  const envoyGrpc = field(service, 1);
  const inner = envoyGrpc ?? field(service, 2);
  if (inner === undefined) return undefined;
  const name = field(inner, 1);
  return name === undefined || name.length === 0 ? undefined : Buffer.from(name).toString('utf8');
}

/** Envoy's built-in foreign functions that need no Envoy internals (reference §1.9). */
export const BUILTIN_FOREIGN_FUNCTIONS: ReadonlyMap<string, ForeignFunction> = new Map<string, ForeignFunction>([
  ['compress', (args) => new Uint8Array(deflateSync(args))],
  [
    'uncompress',
    (args) => {
      try {
        return new Uint8Array(inflateSync(args));
      } catch {
        return { status: WasmResult.SerializationFailure };
      }
    },
  ],
  ['clear_route_cache', () => EMPTY],
]);
