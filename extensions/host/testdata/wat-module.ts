/**
 * Builds small proxy-wasm modules in WAT for the host's tests and benchmarks.
 *
 * `proxyModule(body)` wraps `body` in a module that imports every `env` call Envoy registers for
 * ABI 0.2.1 (as `$proxy_log`, `$proxy_get_header_map_value`, …) and a few WASI calls (`$fd_write`,
 * `$clock_time_get`, `$random_get`, `$environ_sizes_get`, `$environ_get`, `$proc_exit`,
 * `$fd_read`), exports the 0.2.1 marker, one page of memory and a bump allocator `malloc` that
 * grows memory when needed (and traps when growth is refused). The heap restarts at 64 KiB on
 * every `proxy_on_delete` of a stream when `resetHeapOnDelete` is set, so long benchmark runs do
 * not grow without bound.
 *
 * Memory layout used by tests: 0x100.. out-pointer slots (`$R0`=256, `$R1`=260, `$R2`=264,
 * `$R3`=268), 1024.. constant strings (data segments), 65536.. heap.
 */
import { ENV_IMPORTS } from '../envoy-imports.js';

const WASI = [
  ['fd_write', '(param i32 i32 i32 i32) (result i32)'],
  ['fd_read', '(param i32 i32 i32 i32) (result i32)'],
  ['clock_time_get', '(param i32 i64 i32) (result i32)'],
  ['random_get', '(param i32 i32) (result i32)'],
  ['environ_sizes_get', '(param i32 i32) (result i32)'],
  ['environ_get', '(param i32 i32) (result i32)'],
  ['proc_exit', '(param i32)'],
] as const;

function sig(params: readonly string[], results: readonly string[]): string {
  const p = params.length > 0 ? ` (param ${params.join(' ')})` : '';
  const r = results.length > 0 ? ` (result ${results.join(' ')})` : '';
  return `${p}${r}`;
}

export interface ModuleOptions {
  /** ABI marker export. Default 0.2.1. Pass '' for none. */
  readonly abi?: string;
  /** Initial memory pages. Default 2. */
  readonly pages?: number;
  /** Declared maximum pages, if any. */
  readonly maxPages?: number;
  /** Export the allocator as this name ('' for none). Default 'malloc'. */
  readonly allocator?: string;
  /** Only import these env calls (default: every 0.2.1 call). */
  readonly imports?: readonly string[];
}

export function proxyModule(body: string, options: ModuleOptions = {}): string {
  const abi = options.abi ?? '0_2_1';
  const wanted = options.imports;
  const env = ENV_IMPORTS.filter((i) => i.abi.includes('0.2.1') && (wanted === undefined || wanted.includes(i.name)))
    .map((i) => `  (import "env" "${i.name}" (func $${i.name}${sig(i.params, i.results)}))`)
    .join('\n');
  const wasi = WASI.filter(([name]) => wanted === undefined || wanted.includes(name))
    .map(([name, s]) => `  (import "wasi_snapshot_preview1" "${name}" (func $${name} ${s}))`)
    .join('\n');
  const mem = `(memory (export "memory") ${options.pages ?? 2}${options.maxPages === undefined ? '' : ` ${options.maxPages}`})`;
  const allocator = options.allocator ?? 'malloc';
  return `(module
${env}
${wasi}
  ${mem}
  (global $heap (mut i32) (i32.const 65536))
  (func $malloc (param $n i32) (result i32) (local $p i32) (local $need i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.set $need (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $need) (i32.const 16)) (i32.const 1))) (i32.const -1))
          (then unreachable))))
    (local.get $p))
  (func $reset_heap (global.set $heap (i32.const 65536)))
  ${allocator === '' ? '' : `(export "${allocator}" (func $malloc))`}
  ${abi === '' ? '' : `(func (export "proxy_abi_version_${abi}"))`}
${body}
)`;
}
