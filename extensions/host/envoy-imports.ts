/**
 * What Envoy provides to a proxy-wasm module, and whether Envoy would load a given module.
 *
 * Exported API (stable; `extensions/sdk`'s `envext build` and the host both use it):
 *
 * - `ENV_IMPORTS`: every `env` import Envoy registers (proxy_* host calls plus the two
 *   Emscripten helpers), each with its signature, the ABI versions that register it, and whether
 *   it may be called during `_initialize`/`_start` (restricted mode).
 * - `WASI_IMPORTS`: the WASI functions Envoy registers under both `wasi_snapshot_preview1` and
 *   `wasi_unstable` (`WASI_MODULES`), with signatures; `functional` marks the ones that do
 *   something (the rest are inert stubs returning an errno).
 * - `envoyImportsFor(abi)`: the map `"module.name"` → `ImportSpec` Envoy registers for that ABI.
 * - `detectAbiVersion(exportNames)`: `'0.1.0' | '0.2.0' | '0.2.1' | 'unknown'`, first marker export
 *   in export order wins, as in proxy-wasm-cpp-host `bytecode_util.cc`.
 * - `checkModule(module, binary?)`: inspects a compiled `WebAssembly.Module` (plus, when given, the
 *   `readWasmBinary` result for signatures) and returns `{ abiVersion, allocator, problems,
 *   loadable }`. Each problem has a stable `code` (`MISSING_IMPORT`, `IMPORT_TYPE_MISMATCH`,
 *   `UNKNOWN_ABI`, `MISSING_ALLOCATOR`, `UNSUPPORTED_ABI`) and a message in Envoy's wording,
 *   e.g. `Failed to load Wasm module due to a missing import: env.proxy_foo`. `loadable` is
 *   true when Envoy would load the module (a 0.1.0 module is loadable by Envoy; this host
 *   reports it with `UNSUPPORTED_ABI` severity `host`).
 * - `formatSignature(type)`: `(i32, i64) -> i32`.
 *
 * Sources: reference §1.3–§1.5 and §1.10 (proxy-wasm-cpp-host `wasm.cc` registerCallbacks,
 * `exports.h`; Envoy `context.cc`).
 */
import { type CompiledModule, WA } from './wasm-api.js';
import type { FuncType, ValType, WasmBinaryInfo } from './wasm-binary.js';

export type AbiVersion = '0.1.0' | '0.2.0' | '0.2.1' | 'unknown';

export interface ImportSpec {
  readonly module: string;
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
  /** ABI versions for which Envoy registers this import. */
  readonly abi: readonly Exclude<AbiVersion, 'unknown'>[];
  /** Callable during `_initialize`/`_start`/`main` (reference §1.5). */
  readonly allowedInInit: boolean;
  /** For WASI: does something beyond returning an errno. */
  readonly functional: boolean;
}

const ALL: readonly Exclude<AbiVersion, 'unknown'>[] = ['0.1.0', '0.2.0', '0.2.1'];
const V02: readonly Exclude<AbiVersion, 'unknown'>[] = ['0.2.0', '0.2.1'];

function sig(spec: string): { params: ValType[]; results: ValType[] } {
  // "iii>i": params before '>', results after; i=i32, I=i64.
  const [p = '', r = ''] = spec.split('>');
  const t = (c: string): ValType => (c === 'I' ? 'i64' : 'i32');
  return { params: [...p].map(t), results: [...r].map(t) };
}

function env(
  name: string,
  signature: string,
  abi: readonly Exclude<AbiVersion, 'unknown'>[] = ALL,
  allowedInInit = false,
): ImportSpec {
  return { module: 'env', name, ...sig(signature), abi, allowedInInit, functional: true };
}

/** Every `env` import Envoy registers, with its signature (i32 unless marked i64). */
export const ENV_IMPORTS: readonly ImportSpec[] = [
  // logging, time, timers
  env('proxy_log', 'iii>i', ALL, true),
  env('proxy_get_log_level', 'i>i', ['0.2.1']),
  env('proxy_get_current_time_nanoseconds', 'i>i'),
  env('proxy_set_tick_period_milliseconds', 'i>i'),
  // configuration and buffers
  env('proxy_get_buffer_bytes', 'iiiii>i'),
  env('proxy_get_buffer_status', 'iii>i'),
  env('proxy_set_buffer_bytes', 'iiiii>i'),
  env('proxy_get_configuration', 'ii>i', ['0.1.0']),
  // header maps
  env('proxy_get_header_map_pairs', 'iii>i'),
  env('proxy_set_header_map_pairs', 'iii>i'),
  env('proxy_get_header_map_value', 'iiiii>i'),
  env('proxy_add_header_map_value', 'iiiii>i'),
  env('proxy_replace_header_map_value', 'iiiii>i'),
  env('proxy_remove_header_map_value', 'iii>i'),
  env('proxy_get_header_map_size', 'ii>i'),
  // stream control
  env('proxy_continue_stream', 'i>i', V02),
  env('proxy_close_stream', 'i>i', V02),
  env('proxy_continue_request', '>i', ['0.1.0']),
  env('proxy_continue_response', '>i', ['0.1.0']),
  env('proxy_clear_route_cache', '>i', ['0.1.0']),
  env('proxy_send_local_response', 'iiiiiiii>i'),
  env('proxy_get_status', 'iii>i'),
  // callouts
  env('proxy_http_call', 'iiiiiiiiii>i'),
  env('proxy_grpc_call', 'iiiiiiiiiiii>i'),
  env('proxy_grpc_stream', 'iiiiiiiii>i'),
  env('proxy_grpc_send', 'iiii>i'),
  env('proxy_grpc_cancel', 'i>i'),
  env('proxy_grpc_close', 'i>i'),
  // shared data and queues
  env('proxy_get_shared_data', 'iiiii>i'),
  env('proxy_set_shared_data', 'iiiii>i'),
  env('proxy_register_shared_queue', 'iii>i'),
  env('proxy_resolve_shared_queue', 'iiiii>i'),
  env('proxy_enqueue_shared_queue', 'iii>i'),
  env('proxy_dequeue_shared_queue', 'iii>i'),
  // metrics
  env('proxy_define_metric', 'iiii>i'),
  env('proxy_increment_metric', 'iI>i'),
  env('proxy_record_metric', 'iI>i'),
  env('proxy_get_metric', 'ii>i'),
  // properties and misc
  env('proxy_get_property', 'iiii>i'),
  env('proxy_set_property', 'iiii>i'),
  env('proxy_set_effective_context', 'i>i'),
  env('proxy_done', '>i'),
  env('proxy_call_foreign_function', 'iiiiii>i'),
  // Emscripten helpers Envoy always registers
  env('emscripten_notify_memory_growth', 'i>', ALL, true),
  env('pthread_equal', 'ii>i'),
];

/** The two module names Envoy registers the WASI functions under. */
export const WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'] as const;

function wasi(name: string, signature: string, functional: boolean, allowedInInit: boolean): ImportSpec {
  return { module: 'wasi_snapshot_preview1', name, ...sig(signature), abi: ALL, allowedInInit, functional };
}

/**
 * The WASI subset Envoy registers (reference §1.4). All return an errno i32 except `proc_exit`.
 * Allowed during `_initialize`/`_start` (§1.5): the listed calls and the inert fs/sock stubs, not
 * `sched_yield` or `proc_exit`.
 */
export const WASI_IMPORTS: readonly ImportSpec[] = [
  wasi('fd_write', 'iiii>i', true, true),
  wasi('fd_read', 'iiii>i', false, true),
  wasi('fd_seek', 'iIii>i', false, true),
  wasi('fd_close', 'i>i', false, true),
  wasi('fd_fdstat_get', 'ii>i', true, true),
  wasi('fd_fdstat_set_flags', 'ii>i', false, true),
  wasi('fd_fdstat_set_rights', 'iII>i', false, true),
  wasi('environ_get', 'ii>i', true, true),
  wasi('environ_sizes_get', 'ii>i', true, true),
  wasi('args_get', 'ii>i', true, true),
  wasi('args_sizes_get', 'ii>i', true, true),
  wasi('clock_time_get', 'iIi>i', true, true),
  wasi('clock_res_get', 'ii>i', true, true),
  wasi('fd_advise', 'iIIi>i', false, true),
  wasi('fd_allocate', 'iII>i', false, true),
  wasi('fd_datasync', 'i>i', false, true),
  wasi('fd_filestat_set_size', 'iI>i', false, true),
  wasi('fd_filestat_set_times', 'iIIi>i', false, true),
  wasi('fd_pread', 'iiiIi>i', false, true),
  wasi('fd_pwrite', 'iiiIi>i', false, true),
  wasi('fd_readdir', 'iiiIi>i', false, true),
  wasi('fd_renumber', 'ii>i', false, true),
  wasi('fd_sync', 'i>i', false, true),
  wasi('fd_tell', 'ii>i', false, true),
  wasi('path_create_directory', 'iii>i', false, true),
  wasi('path_filestat_set_times', 'iiiiIIi>i', false, true),
  wasi('path_link', 'iiiiiii>i', false, true),
  wasi('path_readlink', 'iiiiii>i', false, true),
  wasi('path_remove_directory', 'iii>i', false, true),
  wasi('path_rename', 'iiiiii>i', false, true),
  wasi('path_symlink', 'iiiii>i', false, true),
  wasi('path_unlink_file', 'iii>i', false, true),
  wasi('sock_accept', 'iii>i', false, true),
  wasi('sock_recv', 'iiiiii>i', false, true),
  wasi('sock_send', 'iiiii>i', false, true),
  wasi('sock_shutdown', 'ii>i', false, true),
  wasi('random_get', 'ii>i', true, true),
  wasi('sched_yield', '>i', true, false),
  wasi('poll_oneoff', 'iiii>i', true, true),
  wasi('proc_exit', 'i>', true, false),
  wasi('path_open', 'iiiiiIIii>i', false, true),
  wasi('fd_prestat_get', 'ii>i', false, true),
  wasi('fd_prestat_dir_name', 'iii>i', false, true),
  wasi('path_filestat_get', 'iiiii>i', false, true),
  wasi('fd_filestat_get', 'ii>i', false, true),
];

/** `"module.name"` → spec, for what Envoy registers when it detected `abi`. */
export function envoyImportsFor(abi: AbiVersion): ReadonlyMap<string, ImportSpec> {
  const m = new Map<string, ImportSpec>();
  for (const spec of ENV_IMPORTS) {
    if (abi === 'unknown' || spec.abi.includes(abi)) m.set(`env.${spec.name}`, spec);
  }
  for (const spec of WASI_IMPORTS) {
    for (const module of WASI_MODULES) m.set(`${module}.${spec.name}`, { ...spec, module });
  }
  return m;
}

const ABI_MARKERS: Readonly<Record<string, Exclude<AbiVersion, 'unknown'>>> = {
  proxy_abi_version_0_1_0: '0.1.0',
  proxy_abi_version_0_2_0: '0.2.0',
  proxy_abi_version_0_2_1: '0.2.1',
};

/** The ABI a module declares: the first marker function export in export order. */
export function detectAbiVersion(exports: readonly { name: string; kind: string }[]): AbiVersion {
  for (const e of exports) {
    const v = ABI_MARKERS[e.name];
    if (v !== undefined && e.kind === 'function') return v;
  }
  return 'unknown';
}

export type ModuleProblemCode =
  'MISSING_IMPORT' | 'IMPORT_TYPE_MISMATCH' | 'UNKNOWN_ABI' | 'MISSING_ALLOCATOR' | 'UNSUPPORTED_ABI';

export interface ModuleProblem {
  readonly code: ModuleProblemCode;
  /** `envoy`: Envoy refuses the module; `host`: Envoy loads it but this host does not run it. */
  readonly severity: 'envoy' | 'host';
  /** The import (`env.proxy_foo`) or export concerned, when there is one. */
  readonly subject?: string;
  readonly message: string;
}

export interface ModuleCheck {
  readonly abiVersion: AbiVersion;
  /** The allocator Envoy would use: `malloc` first, then `proxy_on_memory_allocate`. */
  readonly allocator: 'malloc' | 'proxy_on_memory_allocate' | undefined;
  readonly problems: readonly ModuleProblem[];
  /** True when Envoy would load the module (no `envoy`-severity problem). */
  readonly loadable: boolean;
}

export function formatSignature(t: { params: readonly string[]; results: readonly string[] }): string {
  return `(${t.params.join(', ')}) -> ${t.results.length === 0 ? '()' : t.results.join(', ')}`;
}

function sameType(a: FuncType, b: ImportSpec): boolean {
  return (
    a.params.length === b.params.length &&
    a.results.length === b.results.length &&
    a.params.every((p, i) => p === b.params[i]) &&
    a.results.every((p, i) => p === b.results[i])
  );
}

/**
 * Checks a compiled module as Envoy's loader would: ABI marker, every import against what Envoy
 * registers for that ABI (each unknown import named), signatures when `binary` is given, and an
 * allocator export. Returns every problem rather than the first.
 */
export function checkModule(module: CompiledModule, binary?: WasmBinaryInfo): ModuleCheck {
  const exports = WA.Module.exports(module);
  const abiVersion = detectAbiVersion(exports);
  const problems: ModuleProblem[] = [];
  if (abiVersion === 'unknown') {
    problems.push({
      code: 'UNKNOWN_ABI',
      severity: 'envoy',
      message:
        'Wasm VM failed to load: the module exports no proxy_abi_version_0_2_1, _0_2_0 or _0_1_0 function (unknown ABI)',
    });
  } else if (abiVersion === '0.1.0') {
    problems.push({
      code: 'UNSUPPORTED_ABI',
      severity: 'host',
      subject: 'proxy_abi_version_0_1_0',
      message:
        'the module uses proxy-wasm ABI 0.1.0; Envoy still loads it, but this host runs ABI 0.2.0 and 0.2.1 only',
    });
  }
  const provided = envoyImportsFor(abiVersion === 'unknown' ? '0.2.1' : abiVersion);
  const typed = new Map<string, FuncType>();
  for (const i of binary?.imports ?? []) if (i.type !== undefined) typed.set(`${i.module}.${i.name}`, i.type);
  for (const imp of WA.Module.imports(module)) {
    const key = `${imp.module}.${imp.name}`;
    const spec = provided.get(key);
    if (spec === undefined || imp.kind !== 'function') {
      problems.push({
        code: 'MISSING_IMPORT',
        severity: 'envoy',
        subject: key,
        message: `Failed to load Wasm module due to a missing import: ${key}`,
      });
      continue;
    }
    const t = typed.get(key);
    if (t !== undefined && !sameType(t, spec)) {
      problems.push({
        code: 'IMPORT_TYPE_MISMATCH',
        severity: 'envoy',
        subject: key,
        message: `import type mismatch for ${key}: the module declares ${formatSignature(t)}, Envoy provides ${formatSignature(spec)}`,
      });
    }
  }
  const names = new Set(exports.filter((e) => e.kind === 'function').map((e) => e.name));
  const allocator = names.has('malloc')
    ? 'malloc'
    : names.has('proxy_on_memory_allocate')
      ? 'proxy_on_memory_allocate'
      : undefined;
  if (allocator === undefined && abiVersion !== 'unknown') {
    problems.push({
      code: 'MISSING_ALLOCATOR',
      severity: 'envoy',
      message: 'Wasm VM failed to start: missing malloc function (export malloc or proxy_on_memory_allocate)',
    });
  }
  return { abiVersion, allocator, problems, loadable: !problems.some((p) => p.severity === 'envoy') };
}
