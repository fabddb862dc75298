/**
 * Encode and decode any loaded message by full name, and pack/unpack `google.protobuf.Any`.
 *
 * Objects use the .proto field names (`typed_config`), enums as their names, 64-bit integers as
 * decimal strings, bytes as `Buffer`. `encode` is strict: a key that is not a field of the
 * message (at any depth, including inside `Any` given in `@type` form) is an error naming its
 * path, because protobufjs on its own drops unknown keys silently and a misspelt Envoy field
 * would vanish without a trace.
 */
import protobuf from 'protobufjs';
import { ProtoError, TYPE_URL_PREFIX, messageType } from './loader.js';

/** A plain object in the shape of a message: field name → value. */
export type ProtoObject = Record<string, unknown>;

/** `google.protobuf.Any` as plain data. */
export interface AnyMessage {
  readonly type_url: string;
  readonly value: Uint8Array;
}

/** How decoded messages are presented. */
export const DECODE_OPTIONS: protobuf.IConversionOptions = {
  enums: String,
  longs: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
};

/**
 * Conversion used by `toJsonObject`: the same plus `json`, which makes protobufjs expand every
 * `Any` whose type is loaded into `{ '@type': url, ...fields }` and write bytes as base64.
 */
const JSON_OPTIONS: protobuf.IConversionOptions = { ...DECODE_OPTIONS, bytes: String, json: true };

/** Encodes `value` as the message `typeName`. Throws ProtoError on unknown fields or bad values. */
export function encode(typeName: string, value: ProtoObject): Uint8Array {
  const type = messageType(typeName);
  checkFields(type, value, '');
  let message: protobuf.Message;
  try {
    message = type.fromObject(value);
  } catch (e: unknown) {
    // protobufjs says e.g. ".envoy.config.listener.v3.Listener.address: object expected".
    throw new ProtoError('PROTO_INVALID_VALUE', `${e instanceof Error ? e.message : String(e)}`.replace(/^\./, ''), {
      cause: e,
    });
  }
  return type.encode(message).finish();
}

/** Decodes `bytes` as the message `typeName` into a plain object (DECODE_OPTIONS). */
export function decode(typeName: string, bytes: Uint8Array): ProtoObject {
  const type = messageType(typeName);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (e: unknown) {
    throw new ProtoError(
      'PROTO_DECODE_FAILED',
      `cannot decode ${type.fullName.slice(1)}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  return type.toObject(message, DECODE_OPTIONS);
}

/**
 * Decodes into the readable form used in golden files and logs: every `Any` whose type is
 * loaded expanded to `{ '@type': 'type.googleapis.com/…', …fields }`, bytes as base64.
 */
export function toJsonObject(typeName: string, bytes: Uint8Array): ProtoObject {
  const type = messageType(typeName);
  return type.toObject(type.decode(bytes), JSON_OPTIONS);
}

/** Packs `value` as `typeName` into an Any with Envoy's type URL prefix. */
export function pack(typeName: string, value: ProtoObject): AnyMessage {
  const name = messageType(typeName).fullName.slice(1);
  return { type_url: TYPE_URL_PREFIX + name, value: encode(name, value) };
}

/** The full message name an Any holds (`type.googleapis.com/x.y.Z` → `x.y.Z`). */
export function typeNameOf(any: { readonly type_url: string }): string {
  const slash = any.type_url.lastIndexOf('/');
  return any.type_url.slice(slash + 1);
}

/**
 * Unpacks an Any. With `expected`, a different type is an error (the way Envoy rejects a
 * `typed_config` of the wrong type).
 */
export function unpack(any: AnyMessage, expected?: string): { typeName: string; message: ProtoObject } {
  const typeName = typeNameOf(any);
  if (expected !== undefined && typeName !== expected.replace(/^\./, '')) {
    throw new ProtoError('PROTO_ANY_TYPE_MISMATCH', `Any holds ${typeName}, expected ${expected}`);
  }
  return { typeName, message: decode(typeName, any.value) };
}

function isPlainObject(v: unknown): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function checkFields(type: protobuf.Type, value: unknown, path: string): void {
  if (value instanceof protobuf.Message) return;
  if (!isPlainObject(value)) {
    throw new ProtoError('PROTO_INVALID_VALUE', `${where(type, path)}: expected an object, got ${describe(value)}`);
  }
  // `Type.fullName` is a getter that walks the namespace tree; compare names only on the rare
  // `@type` path, which is recognised by its key first.
  if (typeof value['@type'] === 'string' && type.fullName === '.google.protobuf.Any') {
    const { '@type': url, ...rest } = value;
    checkFields(messageType(url), rest, path);
    return;
  }
  const fields = type.fields;
  for (const key in value) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    const field = fields[key];
    if (field === undefined) {
      // With `oneofs: true` protobufjs adds a virtual property naming the set member.
      if (type.oneofs?.[key] !== undefined && typeof v === 'string') continue;
      const known = Object.keys(fields).join(', ');
      throw new ProtoError('PROTO_UNKNOWN_FIELD', `${where(type, path)}: unknown field "${key}" (fields: ${known})`);
    }
    const sub = field.resolvedType ?? field.resolve().resolvedType;
    if (!(sub instanceof protobuf.Type)) continue;
    const fieldPath = path === '' ? key : `${path}.${key}`;
    if (field.map) {
      if (!isPlainObject(v)) throw new ProtoError('PROTO_INVALID_VALUE', `${where(type, path)}: ${key} must be a map`);
      for (const k in v) checkFields(sub, v[k], `${fieldPath}[${k}]`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) throw new ProtoError('PROTO_INVALID_VALUE', `${where(type, path)}: ${key} must be a list`);
      for (let i = 0; i < v.length; i++) checkFields(sub, v[i], `${fieldPath}[${i}]`);
    } else {
      checkFields(sub, v, fieldPath);
    }
  }
}

function where(type: protobuf.Type, path: string): string {
  return `${type.fullName.slice(1)}${path === '' ? '' : ` at ${path}`}`;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  return v === null ? 'null' : typeof v;
}
