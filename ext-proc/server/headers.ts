/**
 * Header maps as Envoy sends them, and header mutations encoded the way Envoy reads them.
 *
 * Received: `HeaderMap{ headers: HeaderValue{ key, value, raw_value }[] }`. Keys are lower-case.
 * Values arrive in `raw_value` (bytes; Envoy's `send_header_raw_value` runtime guard, default on);
 * older Envoy used `value`. Nothing is decoded until asked for: a pass-through handler never pays
 * for header strings.
 *
 * Sent: `HeaderValueOption{ header: { key, raw_value }, append: { value } }`. Envoy's ext_proc reads
 * only `raw_value` (a `value` alone becomes an empty header, envoyproxy/envoy#31555; both set is an
 * error) and only the deprecated `append` BoolValue (default false = overwrite; `append_action` is
 * ignored), so both are always written explicitly. Values are bytes; strings are converted as latin1
 * so that every byte round-trips (undici does the same).
 */
import type { HeaderInput, HeaderMutation } from './types.js';

/** The decoded shape of `config.core.v3.HeaderValue` (a protobufjs message or a plain object). */
export interface WireHeaderValue {
  readonly key: string;
  readonly value?: string;
  readonly raw_value?: Uint8Array;
}

/** Read-only view of a received header map. Names are matched case-insensitively. */
export class Headers {
  /** The entries as received, in order (duplicates kept). */
  readonly raw: readonly WireHeaderValue[];

  constructor(raw: readonly WireHeaderValue[] | undefined) {
    this.raw = raw ?? [];
  }

  /** Number of entries (duplicates counted). */
  get size(): number {
    return this.raw.length;
  }

  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined {
    const key = lower(name);
    for (const h of this.raw) if (h.key === key) return valueOf(h);
    return undefined;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const key = lower(name);
    const out: string[] = [];
    for (const h of this.raw) if (h.key === key) out.push(valueOf(h));
    return out;
  }

  /** The first value of `name` as bytes, exactly as received. */
  getBytes(name: string): Uint8Array | undefined {
    const key = lower(name);
    for (const h of this.raw) {
      if (h.key !== key) continue;
      const raw = h.raw_value;
      return raw !== undefined && raw.length > 0 ? raw : Buffer.from(h.value ?? '', 'latin1');
    }
    return undefined;
  }

  has(name: string): boolean {
    const key = lower(name);
    for (const h of this.raw) if (h.key === key) return true;
    return false;
  }

  /** `[name, value]` pairs in order. */
  entries(): [string, string][] {
    return this.raw.map((h) => [h.key, valueOf(h)]);
  }

  /** name → value; duplicate names are joined with `, ` (RFC 9110 §5.3). */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.raw) {
      const v = valueOf(h);
      const prev = out[h.key];
      out[h.key] = prev === undefined ? v : `${prev}, ${v}`;
    }
    return out;
  }
}

function lower(name: string): string {
  // Most callers already pass lower case; skip the allocation then.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return name.toLowerCase();
  }
  return name;
}

function valueOf(h: WireHeaderValue): string {
  const raw = h.raw_value;
  if (raw !== undefined && raw.length > 0)
    return Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1');
  return h.value ?? '';
}

/** Builds a `HeaderMap` (for requests the test client sends) with values in `raw_value`. */
export function toHeaderMap(input: HeaderInput): { headers: { key: string; raw_value: Buffer }[] } {
  const headers: { key: string; raw_value: Buffer }[] = [];
  for (const [k, v] of pairs(input)) headers.push({ key: k.toLowerCase(), raw_value: Buffer.from(v, 'latin1') });
  return { headers };
}

/** The pairs of a HeaderInput, with array values expanded. */
export function pairs(input: HeaderInput): [string, string][] {
  if (Array.isArray(input)) return (input as readonly (readonly [string, string])[]).map(([k, v]) => [k, v]);
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(input as Readonly<Record<string, string | readonly string[]>>)) {
    if (typeof v === 'string') out.push([k, v]);
    else for (const one of v) out.push([k, one]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutation rules

/**
 * Mirrors the filter's `mutation_rules` (`config.common.mutation_rules.v3.HeaderMutationRules`) so
 * that the framework knows which mutations Envoy would drop or reject. Defaults are Envoy's.
 */
export interface MutationRules {
  /** Allow changing `host`, `:authority`, `:scheme`, `:method`. Envoy default false. */
  readonly allowAllRouting?: boolean;
  /** Allow changing `x-envoy-*` headers. Envoy default false. */
  readonly allowEnvoy?: boolean;
  /** Disallow changing any `:`-prefixed header or `host`. Envoy default false. */
  readonly disallowSystem?: boolean;
  /** Envoy fails the request (500) on a disallowed mutation instead of ignoring it. Default false. */
  readonly disallowIsError?: boolean;
  /** The connection manager's `max_headers_count` (default 100). */
  readonly maxHeadersCount?: number;
}

/** Why a single header change is not sent. */
export interface DroppedMutation {
  readonly op: 'set' | 'append' | 'remove';
  readonly name: string;
  readonly reason: string;
}

/** A header mutation that Envoy would reject outright (fail the request): a handler bug. */
export class InvalidMutationError extends Error {
  override readonly name = 'InvalidMutationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Max bytes of a header key or value, from the proto's validation rules. */
export const MAX_HEADER_BYTES = 16384;

// RFC 9110 token characters; Envoy's headerNameIsValid also admits a leading ':' for pseudo-headers.
const TOKEN = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// Envoy's headerValueIsValid: no NUL, CR or LF.
const BAD_VALUE = /[\0\r\n]/;

const ROUTING = new Set(['host', ':authority', ':scheme', ':method']);

/**
 * Why Envoy (with these rules) would not apply this change, or undefined when it would.
 * Source: envoy `source/extensions/filters/common/mutation_rules/mutation_rules.cc` (default rules)
 * and `ext_proc/mutation_utils.cc` (removal of system headers is always ignored).
 */
export function disallowedReason(
  op: 'set' | 'append' | 'remove',
  name: string,
  rules: MutationRules,
): string | undefined {
  const system = name.startsWith(':') || name === 'host';
  if (op === 'remove' && system) return 'removing a ":"-prefixed header or host is always ignored by Envoy';
  if (rules.disallowSystem === true && system)
    return 'mutation_rules.disallow_system forbids ":"-prefixed headers and host';
  if (ROUTING.has(name) && rules.allowAllRouting !== true) {
    return 'Envoy ignores changes to host, :authority, :scheme and :method unless mutation_rules.allow_all_routing';
  }
  if (name.startsWith('x-envoy-') && rules.allowEnvoy !== true) {
    return 'Envoy ignores changes to x-envoy-* headers unless mutation_rules.allow_envoy';
  }
  return undefined;
}

/** `HeaderValueOption` in protobufjs encode shape. */
export interface WireHeaderOption {
  header: { key: string; raw_value: Buffer };
  append: { value: boolean };
}

/** `HeaderMutation` in protobufjs encode shape. */
export interface WireHeaderMutation {
  set_headers: WireHeaderOption[];
  remove_headers: string[];
}

/**
 * Validates and encodes a mutation. Changes Envoy would silently ignore are left out and reported in
 * `dropped` (or, with `disallowIsError`, thrown, because Envoy would then fail the request); changes
 * Envoy would reject (bad name or value, too many headers) throw `InvalidMutationError`.
 */
export function encodeHeaderMutation(
  m: HeaderMutation,
  rules: MutationRules,
  field: string,
  dropped: DroppedMutation[],
): WireHeaderMutation | undefined {
  const out: WireHeaderMutation = { set_headers: [], remove_headers: [] };
  const max = rules.maxHeadersCount ?? 100;
  // Per-answer hot path: no closures, no [name, value] pair arrays, no Set (see addHeaders).
  if (m.set !== undefined) addHeaders(out, 'set', m.set, rules, field, dropped);
  if (m.append !== undefined) addHeaders(out, 'append', m.append, rules, field, dropped);
  if (m.remove !== undefined) {
    const remove: unknown = m.remove;
    if (!Array.isArray(remove)) throw new InvalidMutationError(`${field}.remove`, 'must be a list of header names');
    for (const rawName of remove as readonly unknown[]) {
      const name = checkName(rawName, field, 'remove');
      const why = disallowedReason('remove', name, rules);
      if (why !== undefined) {
        if (rules.disallowIsError === true && !(name.startsWith(':') || name === 'host')) {
          throw new InvalidMutationError(`${field}.remove`, `"${name}": ${why} (and disallow_is_error makes it a 500)`);
        }
        dropped.push({ op: 'remove', name, reason: why });
        continue;
      }
      out.remove_headers.push(name);
    }
  }
  if (out.set_headers.length > max || out.remove_headers.length > max) {
    throw new InvalidMutationError(
      field,
      `${Math.max(out.set_headers.length, out.remove_headers.length)} header changes exceed max_headers_count ${max}; Envoy rejects the mutation`,
    );
  }
  if (out.set_headers.length === 0 && out.remove_headers.length === 0) return undefined;
  return out;
}

/** Adds the `set` or `append` part of a mutation to `out` (validated; disallowed changes dropped). */
function addHeaders(
  out: WireHeaderMutation,
  op: 'set' | 'append',
  input: HeaderInput,
  rules: MutationRules,
  field: string,
  dropped: DroppedMutation[],
): void {
  // Where this op's entries start: `set` with several values for one name (an array value, or
  // names differing only in case) overwrites with the first and appends the rest.
  const start = out.set_headers.length;
  if (Array.isArray(input)) {
    for (const pair of input as readonly (readonly [string, string])[]) {
      addHeader(out, op, start, pair[0], pair[1], rules, field, dropped);
    }
    return;
  }
  const obj = input as Readonly<Record<string, string | readonly string[]>>;
  for (const rawName in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, rawName)) continue;
    const v = obj[rawName];
    if (typeof v === 'string') addHeader(out, op, start, rawName, v, rules, field, dropped);
    else if (Array.isArray(v)) {
      for (const one of v as readonly string[]) addHeader(out, op, start, rawName, one, rules, field, dropped);
    } else addHeader(out, op, start, rawName, v, rules, field, dropped); // reported by checkValue
  }
}

function addHeader(
  out: WireHeaderMutation,
  op: 'set' | 'append',
  start: number,
  rawName: string,
  value: unknown,
  rules: MutationRules,
  field: string,
  dropped: DroppedMutation[],
): void {
  const name = checkName(rawName, field, op);
  checkValue(name, value, field, op);
  const why = disallowedReason(op, name, rules);
  if (why !== undefined) {
    if (rules.disallowIsError === true) {
      throw new InvalidMutationError(`${field}.${op}`, `"${name}": ${why} (and disallow_is_error makes it a 500)`);
    }
    dropped.push({ op, name, reason: why });
    return;
  }
  let append = op === 'append';
  const set = out.set_headers;
  // Past max_headers_count the mutation is rejected at the end anyway: no quadratic scan then.
  if (!append && set.length <= (rules.maxHeadersCount ?? 100)) {
    for (let i = start; i < set.length; i++) {
      if ((set[i] as WireHeaderOption).header.key === name) {
        append = true;
        break;
      }
    }
  }
  set.push({ header: { key: name, raw_value: Buffer.from(value, 'latin1') }, append: { value: append } });
}

function checkName(raw: unknown, field: string, op: string): string {
  if (typeof raw !== 'string' || raw.length === 0)
    throw new InvalidMutationError(`${field}.${op}`, 'empty header name');
  const name = lower(raw);
  if (Buffer.byteLength(name) > MAX_HEADER_BYTES) {
    throw new InvalidMutationError(`${field}.${op}`, `header name longer than ${MAX_HEADER_BYTES} bytes`);
  }
  if (!TOKEN.test(name)) throw new InvalidMutationError(`${field}.${op}`, `invalid header name ${JSON.stringify(raw)}`);
  return name;
}

function checkValue(name: string, value: unknown, field: string, op: string): asserts value is string {
  if (typeof value !== 'string') {
    throw new InvalidMutationError(`${field}.${op}`, `value of "${name}" must be a string, got ${typeof value}`);
  }
  if (BAD_VALUE.test(value)) {
    throw new InvalidMutationError(`${field}.${op}`, `value of "${name}" contains CR, LF or NUL, which Envoy rejects`);
  }
  if (value.length > MAX_HEADER_BYTES) {
    throw new InvalidMutationError(`${field}.${op}`, `value of "${name}" is longer than ${MAX_HEADER_BYTES} bytes`);
  }
}
