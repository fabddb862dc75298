/**
 * Checks on module bytes: the `\0asm` magic and the proxy-wasm ABI version a module exports.
 */
import { OciError } from './errors.js';

/** Istio's and Envoy Gateway's default module size cap: 256 MiB. */
export const DEFAULT_MAX_MODULE_BYTES = 256 * 1024 * 1024;

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** True when `data` starts with the WebAssembly magic `\0asm` and is at least a header long. */
export function hasWasmMagic(data: Uint8Array): boolean {
  return data.length >= 8 && MAGIC.every((b, i) => data[i] === b);
}

/**
 * Throws `OCI_NOT_WASM` / `OCI_TOO_LARGE` unless `data` looks like a module within `maxBytes`.
 * `size` is the module's full size when `data` is only its beginning (a file still being read).
 */
export function validateModule(
  data: Uint8Array,
  what: string,
  maxBytes = DEFAULT_MAX_MODULE_BYTES,
  size = data.length,
): void {
  if (size > maxBytes) {
    throw new OciError('OCI_TOO_LARGE', `${what} is ${size} bytes, more than the ${maxBytes} allowed`, {
      hint: 'raise the size limit (--max-size) if this module is really that big',
    });
  }
  if (!hasWasmMagic(data)) {
    const head = Buffer.from(data.subarray(0, 4)).toString('hex');
    throw new OciError(
      'OCI_NOT_WASM',
      `${what} is not a WebAssembly module (starts with 0x${head || '(empty)'}, not \\0asm)`,
      {
        hint: 'push a compiled .wasm file (envext build writes one)',
      },
    );
  }
}

function readLeb(data: Uint8Array, pos: { p: number }): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    const b = data[pos.p++];
    if (b === undefined) throw new RangeError('truncated LEB128');
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
  throw new RangeError('LEB128 too long');
}

/**
 * The proxy-wasm ABI versions a module declares through its `proxy_abi_version_*` exports
 * (e.g. `proxy_abi_version_0_2_1`), read from the export section. Empty when there is none or the
 * module cannot be parsed (this is metadata, not validation).
 */
export function proxyWasmAbiVersions(data: Uint8Array): string[] {
  const out: string[] = [];
  try {
    const pos = { p: 8 };
    while (pos.p < data.length) {
      const id = data[pos.p++];
      const size = readLeb(data, pos);
      const end = pos.p + size;
      if (id === 7) {
        const count = readLeb(data, pos);
        for (let i = 0; i < count && pos.p < end; i++) {
          const len = readLeb(data, pos);
          const name = Buffer.from(data.subarray(pos.p, pos.p + len)).toString('utf8');
          pos.p += len + 1;
          readLeb(data, pos);
          if (name.startsWith('proxy_abi_version_')) out.push(name);
        }
        return out;
      }
      pos.p = end;
    }
  } catch {
    return out;
  }
  return out;
}
