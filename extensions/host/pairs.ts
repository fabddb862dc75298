/**
 * Header maps and their proxy-wasm wire format ("serialized pairs", reference §1.6).
 *
 * ```
 * u32 N                                  little-endian
 * N × (u32 key_len, u32 value_len)
 * N × (key bytes, 0x00, value bytes, 0x00)
 * ```
 *
 * `HeaderMap` keeps keys lower-cased (Envoy lower-cases on every write path) and caches its
 * encoding: the exact size is computed once and the bytes written once into a buffer of that size,
 * until the next mutation (STYLE.md §7).
 */

/** Limits proxy-wasm-cpp-host applies when parsing pairs from a guest (`limits.h`). */
export const PAIRS_MAX_BYTES = 1024 * 1024;
export const PAIRS_MAX_COUNT = 1024;

export type HeaderPair = readonly [key: string, value: string];
/** Headers as the emulator accepts them: ordered pairs, an object (arrays for repeats), or a map. */
export type HeaderInput = readonly HeaderPair[] | Readonly<Record<string, string | readonly string[]>> | HeaderMap;

const encoder = new TextEncoder();

function hasUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** Lower-cases ASCII keys, without allocating when the key already is lower-case. */
export function lowerKey(key: string): string {
  return hasUpper(key) ? key.toLowerCase() : key;
}

/** An ordered multi-map of header names to values, as Envoy's `HeaderMap`. */
export class HeaderMap {
  private readonly keys: string[] = [];
  private readonly values: string[] = [];
  private encoded: Uint8Array | undefined;

  constructor(input?: HeaderInput) {
    if (input === undefined) return;
    if (input instanceof HeaderMap) {
      for (const [k, v] of input.pairs()) this.add(k, v);
    } else if (Array.isArray(input)) {
      for (const [k, v] of input as readonly HeaderPair[]) this.add(k, v);
    } else {
      for (const [k, v] of Object.entries(input as Readonly<Record<string, string | readonly string[]>>)) {
        if (typeof v === 'string') this.add(k, v);
        else for (const one of v) this.add(k, one);
      }
    }
  }

  get size(): number {
    return this.keys.length;
  }

  /** First value for `key` (already lower-case), or undefined. */
  get(key: string): string | undefined {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] === key) return this.values[i];
    return undefined;
  }

  /** All values for `key`. */
  getAll(key: string): string[] {
    const k = lowerKey(key);
    const out: string[] = [];
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === k) out.push(this.values[i]!);
    return out;
  }

  add(key: string, value: string): void {
    this.keys.push(lowerKey(key));
    this.values.push(value);
    this.encoded = undefined;
  }

  /** Envoy `setCopy`: replaces the first value and removes the others, or appends. */
  replace(key: string, value: string): void {
    const k = lowerKey(key);
    const i = this.keys.indexOf(k);
    if (i < 0) {
      this.add(k, value);
      return;
    }
    this.values[i] = value;
    for (let j = this.keys.length - 1; j > i; j--) {
      if (this.keys[j] === k) {
        this.keys.splice(j, 1);
        this.values.splice(j, 1);
      }
    }
    this.encoded = undefined;
  }

  remove(key: string): void {
    const k = lowerKey(key);
    for (let j = this.keys.length - 1; j >= 0; j--) {
      if (this.keys[j] === k) {
        this.keys.splice(j, 1);
        this.values.splice(j, 1);
      }
    }
    this.encoded = undefined;
  }

  /** Removes every entry, then adds `pairs` (`proxy_set_header_map_pairs`). */
  setAll(pairs: readonly HeaderPair[]): void {
    this.keys.length = 0;
    this.values.length = 0;
    for (const [k, v] of pairs) this.add(k, v);
    this.encoded = undefined;
  }

  /** Envoy's `HeaderMap::byteSize()`: the sum of key and value lengths in bytes. */
  byteSize(): number {
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) {
      n += Buffer.byteLength(this.keys[i]!) + Buffer.byteLength(this.values[i]!);
    }
    return n;
  }

  pairs(): HeaderPair[] {
    return this.keys.map((k, i) => [k, this.values[i]!] as const);
  }

  /** The serialized-pairs encoding, cached until the next mutation. Empty map ⇒ 0 bytes. */
  encode(): Uint8Array {
    if (this.encoded !== undefined) return this.encoded;
    this.encoded = encodePairs(this.keys, this.values);
    return this.encoded;
  }

  /** `{ key: value }`, repeated keys joined into arrays; for output and test assertions. */
  toObject(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i]!;
      const prev = out[k];
      const v = this.values[i]!;
      out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    return out;
  }

  /** A copy (keys are already lower-case; the cached encoding is shared until either changes). */
  clone(): HeaderMap {
    const m = new HeaderMap();
    m.keys.push(...this.keys);
    m.values.push(...this.values);
    m.encoded = this.encoded;
    return m;
  }
}

/** Encodes keys/values into one exact-size buffer. No pairs ⇒ an empty array. */
export function encodePairs(keys: readonly string[], values: readonly string[]): Uint8Array {
  const n = keys.length;
  if (n === 0) return new Uint8Array(0);
  const klen = new Array<number>(n);
  const vlen = new Array<number>(n);
  let size = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    klen[i] = Buffer.byteLength(keys[i]!);
    vlen[i] = Buffer.byteLength(values[i]!);
    size += klen[i]! + vlen[i]! + 2;
  }
  const out = Buffer.allocUnsafeSlow(size);
  out.writeUInt32LE(n, 0);
  let p = 4;
  for (let i = 0; i < n; i++) {
    out.writeUInt32LE(klen[i]!, p);
    out.writeUInt32LE(vlen[i]!, p + 4);
    p += 8;
  }
  for (let i = 0; i < n; i++) {
    p += out.write(keys[i]!, p, 'utf8');
    out[p++] = 0;
    p += out.write(values[i]!, p, 'utf8');
    out[p++] = 0;
  }
  return out;
}

/** Encodes pairs given as tuples. */
export function encodePairList(pairs: readonly HeaderPair[]): Uint8Array {
  return encodePairs(
    pairs.map((p) => p[0]),
    pairs.map((p) => p[1]),
  );
}

/**
 * Decodes serialized pairs as proxy-wasm-cpp-host does: more than 1 MiB, more than 1024 pairs,
 * a missing NUL terminator or a length that does not add up yields an **empty** list, silently,
 * not an error. An empty input (or a single 0x00 byte) is an empty map.
 */
export function decodePairs(bytes: Uint8Array): HeaderPair[] {
  if (bytes.length === 0 || bytes.length > PAIRS_MAX_BYTES || bytes.length < 4) return [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true);
  if (n > PAIRS_MAX_COUNT) return [];
  let p = 4 + 8 * n;
  if (p > bytes.length) return [];
  const out: HeaderPair[] = [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(4 + 8 * i, true);
    const vl = dv.getUint32(8 + 8 * i, true);
    if (p + kl + vl + 2 > bytes.length) return [];
    if (b[p + kl] !== 0 || b[p + kl + 1 + vl] !== 0) return [];
    const k = b.toString('utf8', p, p + kl);
    p += kl + 1;
    const v = b.toString('utf8', p, p + vl);
    p += vl + 1;
    out.push([k, v]);
  }
  if (p !== bytes.length) return [];
  return out;
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}
