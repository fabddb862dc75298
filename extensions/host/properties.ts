/**
 * Properties (`proxy_get_property` / `proxy_set_property`), encoded as Envoy encodes them
 * (reference §1.7–§1.8).
 *
 * A path is segments joined by NUL: `request\0headers\0user-agent`. The first segment is a
 * top-level attribute; the next ones index maps (by key), lists (by decimal index) and objects
 * (by field name). Values are encoded as:
 *
 * | value                         | bytes                                             |
 * | ----------------------------- | ------------------------------------------------- |
 * | string                        | UTF-8                                             |
 * | Uint8Array                    | raw                                               |
 * | bigint, integer number        | int64 little-endian (8 bytes)                     |
 * | non-integer number            | float64 little-endian (8 bytes)                   |
 * | boolean                       | 1 byte                                            |
 * | Date                          | int64 ns since the epoch                          |
 * | HeaderMap, object, Map        | serialized pairs of the encoded values            |
 * | array                         | serialized pairs of the encoded items, empty values |
 */
import { HeaderMap } from './pairs.js';

export type PropertyValue =
  | string
  | Uint8Array
  | bigint
  | number
  | boolean
  | Date
  | HeaderMap
  | readonly PropertyValue[]
  | ReadonlyMap<string, PropertyValue>
  | { readonly [key: string]: PropertyValue | undefined };

/** Encodes a value; `undefined` means Envoy would answer SerializationFailure. */
export function encodeProperty(v: PropertyValue): Uint8Array | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'bigint') {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt.asIntN(64, v));
    return b;
  }
  if (typeof v === 'number') {
    const b = Buffer.alloc(8);
    if (Number.isInteger(v)) b.writeBigInt64LE(BigInt(v));
    else b.writeDoubleLE(v);
    return b;
  }
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  if (v instanceof Date) return encodeProperty(BigInt(v.getTime()) * 1_000_000n);
  if (v instanceof HeaderMap) return v.encode();
  if (Array.isArray(v)) {
    const keys: string[] = [];
    for (const item of v as readonly PropertyValue[]) {
      const e = encodeProperty(item);
      if (e === undefined) return undefined;
      keys.push(Buffer.from(e).toString('latin1'));
    }
    return encodePairsLatin1(
      keys,
      keys.map(() => ''),
    );
  }
  const entries: [string, PropertyValue][] =
    v instanceof Map
      ? [...(v as ReadonlyMap<string, PropertyValue>).entries()]
      : (Object.entries(v).filter((e) => e[1] !== undefined) as [string, PropertyValue][]);
  const keys: string[] = [];
  const values: string[] = [];
  for (const [k, item] of entries) {
    const e = encodeProperty(item);
    if (e === undefined) return undefined;
    keys.push(k);
    values.push(Buffer.from(e).toString('latin1'));
  }
  // Values may be binary (ints): carry them through latin1 so every byte survives.
  return encodePairsLatin1(
    keys.map((k) => Buffer.from(k, 'utf8').toString('latin1')),
    values,
  );
}

function encodePairsLatin1(keys: readonly string[], values: readonly string[]): Uint8Array {
  // encodePairs writes UTF-8; re-encode latin1-carried bytes exactly.
  if (keys.length === 0) return new Uint8Array(0);
  let size = 4 + 8 * keys.length;
  for (let i = 0; i < keys.length; i++) size += keys[i]!.length + values[i]!.length + 2;
  const out = Buffer.alloc(size);
  out.writeUInt32LE(keys.length, 0);
  let p = 4;
  for (let i = 0; i < keys.length; i++) {
    out.writeUInt32LE(keys[i]!.length, p);
    out.writeUInt32LE(values[i]!.length, p + 4);
    p += 8;
  }
  for (let i = 0; i < keys.length; i++) {
    p += out.write(keys[i]!, p, 'latin1') + 1;
    p += out.write(values[i]!, p, 'latin1') + 1;
  }
  return out;
}

/** Follows `segments` (after the first) into a value; `undefined` when any step is missing. */
export function navigate(v: PropertyValue | undefined, segments: readonly string[]): PropertyValue | undefined {
  let cur = v;
  for (const seg of segments) {
    if (cur === undefined) return undefined;
    if (cur instanceof HeaderMap) {
      cur = cur.get(seg.toLowerCase());
    } else if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = (cur as readonly PropertyValue[])[Number(seg)];
    } else if (cur instanceof Map) {
      cur = (cur as ReadonlyMap<string, PropertyValue>).get(seg);
    } else if (
      typeof cur === 'object' &&
      !(cur instanceof Uint8Array) &&
      !(cur instanceof Date) &&
      Object.prototype.hasOwnProperty.call(cur, seg)
    ) {
      cur = (cur as { readonly [key: string]: PropertyValue | undefined })[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}

/** Splits a dotted attribute name (`request.headers`) or a NUL path into segments. */
export function propertyPath(path: string | readonly string[]): string[] {
  if (typeof path !== 'string') return [...path];
  return path.includes('\0') ? path.split('\0') : path.split('.');
}
