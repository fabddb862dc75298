/**
 * A small reader for the parts of a Wasm binary the host needs before instantiating it: the
 * function types of imports and exports (for `envext wasm inspect` and import checking, which
 * `WebAssembly.Module.imports()` does not give), and the memory limits, which the host rewrites to
 * cap guest memory the way Envoy's V8 caps it (1 GiB by default).
 *
 * Layout (WebAssembly core spec §5):
 *
 * ```
 * "\0asm" u32(version=1)
 * section*: u8 id, leb128 u32 size, payload
 *   1 type     vec(0x60 vec(valtype) vec(valtype))
 *   2 import   vec(name module, name field, desc: 0x00 typeidx | 0x01 table | 0x02 limits | 0x03 global | 0x04 tag)
 *   3 function vec(typeidx)
 *   5 memory   vec(limits: 0x00 min | 0x01 min max | 0x02/0x03 shared | 0x04..0x07 memory64)
 *   7 export   vec(name, kind u8, idx)
 * ```
 */
import { EnvextError } from '../../common/errors.js';

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref' | 'other';

export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface ImportEntry {
  readonly module: string;
  readonly name: string;
  readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
  /** For functions: the signature, when the type section could be read. */
  readonly type?: FuncType;
}

export interface ExportEntry {
  readonly name: string;
  readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
  readonly type?: FuncType;
}

export interface MemoryLimits {
  /** Pages of 64 KiB. */
  readonly initial: number;
  readonly maximum: number | undefined;
  readonly shared: boolean;
  readonly memory64: boolean;
}

export interface WasmBinaryInfo {
  readonly imports: readonly ImportEntry[];
  readonly exports: readonly ExportEntry[];
  /** Memories defined by the module (imported memories are in `imports`). */
  readonly memories: readonly MemoryLimits[];
  /** True when the module has a start section (code that runs inside instantiation). */
  readonly hasStartSection: boolean;
}

const KINDS = ['function', 'table', 'memory', 'global', 'tag'] as const;
const VALTYPES: Readonly<Record<number, ValType>> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
};

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }
  byte(): number {
    if (this.pos >= this.end) throw new Error('unexpected end of section');
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error('LEB128 too long');
    }
  }
  u64(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 70) throw new Error('LEB128 too long');
    }
  }
  name(): string {
    const n = this.u32();
    if (this.pos + n > this.end) throw new Error('name runs past the section');
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  limits(): MemoryLimits {
    const flags = this.byte();
    const memory64 = (flags & 0x04) !== 0;
    const read = (): number => (memory64 ? this.u64() : this.u32());
    const initial = read();
    const maximum = (flags & 0x01) !== 0 ? read() : undefined;
    return { initial, maximum, shared: (flags & 0x02) !== 0, memory64 };
  }
}

interface Section {
  readonly id: number;
  /** Offset of the id byte. */
  readonly start: number;
  readonly payloadStart: number;
  readonly end: number;
}

function sections(bytes: Uint8Array, file: string): Section[] {
  if (
    bytes.length < 8 ||
    bytes[0] !== 0 ||
    bytes[1] !== 0x61 ||
    bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d ||
    bytes[4] !== 1
  ) {
    throw new EnvextError('WASM_INVALID_MODULE', `${file}: not a WebAssembly binary module (bad magic or version)`, {
      hint: 'pass a compiled .wasm file; compile .wat text first (e.g. with wat2wasm)',
    });
  }
  const out: Section[] = [];
  const r = new Reader(bytes, 8, bytes.length);
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const payloadStart = r.pos;
    const end = payloadStart + size;
    if (end > bytes.length) {
      throw new EnvextError('WASM_INVALID_MODULE', `${file}: section ${id} at byte ${start} runs past the end`, {
        hint: 'the file is truncated or corrupt',
      });
    }
    out.push({ id, start, payloadStart, end });
    r.pos = end;
  }
  return out;
}

/** Reads imports, exports (with signatures) and memory limits from a Wasm binary. */
export function readWasmBinary(bytes: Uint8Array, file = 'module'): WasmBinaryInfo {
  const types: (FuncType | undefined)[] = [];
  const imports: ImportEntry[] = [];
  const funcTypes: (FuncType | undefined)[] = [];
  const memories: MemoryLimits[] = [];
  const exports: ExportEntry[] = [];
  let hasStartSection = false;
  try {
    for (const s of sections(bytes, file)) {
      const r = new Reader(bytes, s.payloadStart, s.end);
      switch (s.id) {
        case 1: {
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            const form = r.byte();
            if (form !== 0x60) {
              // GC proposal type forms (rec groups, structs): not used by proxy-wasm modules.
              types.length = 0;
              break;
            }
            const params: ValType[] = [];
            for (let p = r.u32(); p > 0; p--) params.push(VALTYPES[r.byte()] ?? 'other');
            const results: ValType[] = [];
            for (let p = r.u32(); p > 0; p--) results.push(VALTYPES[r.byte()] ?? 'other');
            types.push({ params, results });
          }
          break;
        }
        case 2: {
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            const module = r.name();
            const name = r.name();
            const kindByte = r.byte();
            const kind = KINDS[kindByte];
            if (kind === undefined) throw new Error(`unknown import kind ${kindByte}`);
            if (kind === 'function') {
              const type = types[r.u32()];
              funcTypes.push(type);
              imports.push(type === undefined ? { module, name, kind } : { module, name, kind, type });
            } else {
              if (kind === 'table') {
                r.byte();
                r.limits();
              } else if (kind === 'memory') r.limits();
              else if (kind === 'global') {
                r.byte();
                r.byte();
              } else {
                r.byte();
                r.u32();
              }
              imports.push({ module, name, kind });
            }
          }
          break;
        }
        case 3: {
          for (let n = r.u32(); n > 0; n--) funcTypes.push(types[r.u32()]);
          break;
        }
        case 5: {
          for (let n = r.u32(); n > 0; n--) memories.push(r.limits());
          break;
        }
        case 7: {
          const n = r.u32();
          for (let i = 0; i < n; i++) {
            const name = r.name();
            const kind = KINDS[r.byte()] ?? 'function';
            const index = r.u32();
            const type = kind === 'function' ? funcTypes[index] : undefined;
            exports.push(type === undefined ? { name, kind } : { name, kind, type });
          }
          break;
        }
        case 8:
          hasStartSection = true;
          break;
        default:
          break;
      }
    }
  } catch (e) {
    if (e instanceof EnvextError) throw e;
    throw new EnvextError('WASM_INVALID_MODULE', `${file}: cannot read the module: ${(e as Error).message}`, {
      hint: 'the file is truncated or corrupt',
    });
  }
  return { imports, exports, memories, hasStartSection };
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/**
 * Returns a copy of the module whose defined memories may grow to at most `maxPages` pages
 * (the declared maximum is kept when it is lower). `memory.grow` past the cap then returns -1
 * inside the guest, exactly as under Envoy's V8 with its 1 GiB limit; guests usually trap on it.
 * Throws `WASM_MEMORY_CAP` when the initial size alone exceeds the cap (Envoy fails to load).
 */
export function capMemory(bytes: Uint8Array, maxPages: number, file = 'module'): Uint8Array {
  const secs = sections(bytes, file);
  const mem = secs.find((s) => s.id === 5);
  if (mem === undefined) return bytes;
  const r = new Reader(bytes, mem.payloadStart, mem.end);
  const n = r.u32();
  const payload: number[] = [...leb(n)];
  for (let i = 0; i < n; i++) {
    const l = r.limits();
    if (l.memory64) return bytes; // V8 memory64 is off by default; leave such modules to fail on their own
    if (l.initial > maxPages) {
      throw new EnvextError(
        'WASM_MEMORY_CAP',
        `${file}: memory ${i} starts at ${l.initial} pages (${l.initial * 64} KiB), above the cap of ${maxPages} pages`,
        { hint: 'lower the module initial memory or raise the host memory cap (maxMemoryPages)' },
      );
    }
    const max = l.maximum === undefined ? maxPages : Math.min(l.maximum, maxPages);
    payload.push(0x01 | (l.shared ? 0x02 : 0), ...leb(l.initial), ...leb(max));
  }
  const header = [5, ...leb(payload.length)];
  const out = new Uint8Array(bytes.length - (mem.end - mem.start) + header.length + payload.length);
  out.set(bytes.subarray(0, mem.start), 0);
  out.set(header, mem.start);
  out.set(payload, mem.start + header.length);
  out.set(bytes.subarray(mem.end), mem.start + header.length + payload.length);
  return out;
}
