// A small JSON reader/writer for plugin configuration and bodies (Envoy delivers a
// `google.protobuf.Struct` configuration as JSON). Import from "envext/assembly/json"; it is
// not part of the main entry so filters that do not parse JSON do not pay for it.
//
import { decimal } from './util';

// Numbers keep their source text (`raw`), so a parse → stringify round trip does not reformat
// them; `JsonValue.number()` parses on demand.

export enum JsonKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

export class JsonValue {
  constructor(public readonly kind: JsonKind) {}

  /** The string value, or null when this is not a string. */
  string(): string | null {
    return this.kind == JsonKind.String ? changetype<JsonString>(this).value : null;
  }
  /** The number value, or `fallback` when this is not a number. */
  number(fallback: f64 = 0): f64 {
    return this.kind == JsonKind.Number ? parseFloat(changetype<JsonNumber>(this).raw) : fallback;
  }
  bool(fallback: bool = false): bool {
    return this.kind == JsonKind.Bool ? changetype<JsonBool>(this).value : fallback;
  }
  array(): Array<JsonValue> | null {
    return this.kind == JsonKind.Array ? changetype<JsonArray>(this).items : null;
  }
  object(): JsonObject | null {
    return this.kind == JsonKind.Object ? changetype<JsonObject>(this) : null;
  }
  /** Compact JSON text of this value. */
  stringify(): string {
    const parts = new Array<string>();
    writeValue(this, parts);
    return parts.join('');
  }
}

export class JsonNull extends JsonValue {
  constructor() {
    super(JsonKind.Null);
  }
}
export class JsonBool extends JsonValue {
  constructor(public value: bool) {
    super(JsonKind.Bool);
  }
}
export class JsonNumber extends JsonValue {
  constructor(public raw: string) {
    super(JsonKind.Number);
  }
  static fromInt(n: i64): JsonNumber {
    return new JsonNumber(n < 0 ? '-' + decimal(<u64>-n) : decimal(<u64>n));
  }
}
export class JsonString extends JsonValue {
  constructor(public value: string) {
    super(JsonKind.String);
  }
}
export class JsonArray extends JsonValue {
  constructor(public items: Array<JsonValue> = new Array<JsonValue>()) {
    super(JsonKind.Array);
  }
}
/** An object; keys keep their order. Lookup is linear (configs and bodies are small). */
export class JsonObject extends JsonValue {
  keys: Array<string> = new Array<string>();
  values: Array<JsonValue> = new Array<JsonValue>();
  constructor() {
    super(JsonKind.Object);
  }
  get(key: string): JsonValue | null {
    const i = this.keys.indexOf(key);
    return i < 0 ? null : unchecked(this.values[i]);
  }
  has(key: string): bool {
    return this.keys.includes(key);
  }
  set(key: string, value: JsonValue): void {
    const i = this.keys.indexOf(key);
    if (i < 0) {
      this.keys.push(key);
      this.values.push(value);
    } else {
      this.values[i] = value;
    }
  }
  /** `key`'s string value, or `fallback`. */
  getString(key: string, fallback: string | null = null): string | null {
    const v = this.get(key);
    if (v == null || v.kind != JsonKind.String) return fallback;
    return changetype<JsonString>(v).value;
  }
  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v == null ? fallback : v.number(fallback);
  }
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v == null ? fallback : v.bool(fallback);
  }
  getObject(key: string): JsonObject | null {
    const v = this.get(key);
    return v == null ? null : v.object();
  }
  getArray(key: string): Array<JsonValue> | null {
    const v = this.get(key);
    return v == null ? null : v.array();
  }
  /** `key`'s array of strings (non-strings skipped), or an empty array. */
  getStrings(key: string): Array<string> {
    const out = new Array<string>();
    const a = this.getArray(key);
    if (a == null) return out;
    for (let i = 0; i < a.length; i++) {
      const s = unchecked(a[i]).string();
      if (s != null) out.push(s);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

let errorMessage: string = '';

/** Why the last `parseJson` returned null (with the character offset). */
export function jsonError(): string {
  return errorMessage;
}

const MAX_DEPTH = 64;

class Parser {
  pos: i32 = 0;
  constructor(public text: string) {}

  fail(what: string): JsonValue | null {
    if (errorMessage.length == 0) errorMessage = what + ' at offset ' + decimal(<u64>this.pos);
    return null;
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  literal(word: string): bool {
    if (this.text.substr(this.pos, word.length) == word) {
      this.pos += word.length;
      return true;
    }
    return false;
  }

  value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail('nesting too deep');
    this.ws();
    if (this.pos >= this.text.length) return this.fail('unexpected end');
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b /* { */) return this.object(depth);
    if (c == 0x5b /* [ */) return this.array(depth);
    if (c == 0x22 /* " */) {
      const s = this.string();
      return s == null ? null : new JsonString(s);
    }
    if (c == 0x74 && this.literal('true')) return new JsonBool(true);
    if (c == 0x66 && this.literal('false')) return new JsonBool(false);
    if (c == 0x6e && this.literal('null')) return new JsonNull();
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    return this.fail('unexpected character');
  }

  number(): JsonValue | null {
    const t = this.text;
    const start = this.pos;
    if (t.charCodeAt(this.pos) == 0x2d) this.pos++;
    let digits = 0;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if ((c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x65 || c == 0x45 || c == 0x2b || c == 0x2d) {
        if (c >= 0x30 && c <= 0x39) digits++;
        this.pos++;
      } else break;
    }
    if (digits == 0) return this.fail('invalid number');
    return new JsonNumber(t.substring(start, this.pos));
  }

  string(): string | null {
    const t = this.text;
    this.pos++; // opening quote
    let start = this.pos;
    let out = '';
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 0x22) {
        out += t.substring(start, this.pos);
        this.pos++;
        return out;
      }
      if (c == 0x5c /* \ */) {
        out += t.substring(start, this.pos);
        this.pos++;
        if (this.pos >= t.length) break;
        const e = t.charCodeAt(this.pos);
        this.pos++;
        if (e == 0x6e) out += '\n';
        else if (e == 0x74) out += '\t';
        else if (e == 0x72) out += '\r';
        else if (e == 0x62) out += '\b';
        else if (e == 0x66) out += '\f';
        else if (e == 0x75 /* u */) {
          if (this.pos + 4 > t.length) break;
          let code = 0;
          for (let k = 0; k < 4; k++) {
            const h = t.charCodeAt(this.pos + k);
            let d = -1;
            if (h >= 0x30 && h <= 0x39) d = h - 0x30;
            else if (h >= 0x61 && h <= 0x66) d = h - 0x57;
            else if (h >= 0x41 && h <= 0x46) d = h - 0x37;
            if (d < 0) {
              this.fail('invalid \\u escape');
              return null;
            }
            code = (code << 4) | d;
          }
          out += String.fromCharCode(code);
          this.pos += 4;
        } else out += String.fromCharCode(e); // \" \\ \/
        start = this.pos;
        continue;
      }
      if (c < 0x20) {
        this.fail('control character in string');
        return null;
      }
      this.pos++;
    }
    this.fail('unterminated string');
    return null;
  }

  array(depth: i32): JsonValue | null {
    this.pos++;
    const arr = new JsonArray();
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return arr;
    }
    for (;;) {
      const v = this.value(depth + 1);
      if (v == null) return null;
      arr.items.push(v);
      this.ws();
      if (this.pos >= this.text.length) return this.fail('unterminated array');
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x5d) return arr;
      if (c != 0x2c) return this.fail("expected ',' or ']'");
    }
    return null; // unreachable: the loop only exits by returning
  }

  object(depth: i32): JsonValue | null {
    this.pos++;
    const obj = new JsonObject();
    this.ws();
    if (this.pos < this.text.length && this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return obj;
    }
    for (;;) {
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) return this.fail('expected a key');
      const key = this.string();
      if (key == null) return null;
      this.ws();
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x3a) return this.fail("expected ':'");
      this.pos++;
      const v = this.value(depth + 1);
      if (v == null) return null;
      obj.set(key, v);
      this.ws();
      if (this.pos >= this.text.length) return this.fail('unterminated object');
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x7d) return obj;
      if (c != 0x2c) return this.fail("expected ',' or '}'");
    }
    return null; // unreachable: the loop only exits by returning
  }
}

/** Parses JSON text; null when it is not valid JSON (`jsonError()` says why and where). */
export function parseJson(text: string): JsonValue | null {
  errorMessage = '';
  const p = new Parser(text);
  const v = p.value(0);
  if (v == null) return null;
  p.ws();
  if (p.pos != text.length) return p.fail('trailing characters');
  return v;
}

/**
 * Parses a plugin/VM configuration that must be a JSON object. A null or empty text gives an
 * empty object; anything that is not a JSON object gives null (`jsonError()` says why).
 */
export function parseJsonObject(text: string | null): JsonObject | null {
  if (text == null || text.length == 0) {
    errorMessage = '';
    return new JsonObject();
  }
  const v = parseJson(text);
  if (v == null) return null;
  const o = v.object();
  if (o == null) errorMessage = 'expected a JSON object';
  return o;
}

// ---------------------------------------------------------------------------------------------
// Writer

const HEX = '0123456789abcdef';

/** `s` as a JSON string literal, quotes included. */
export function jsonQuote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c || c < 0x20) {
      out += s.substring(start, i);
      if (c == 0x22) out += '\\"';
      else if (c == 0x5c) out += '\\\\';
      else if (c == 0x0a) out += '\\n';
      else if (c == 0x0d) out += '\\r';
      else if (c == 0x09) out += '\\t';
      else out += '\\u00' + String.fromCharCode(c < 0x10 ? 0x30 : 0x31) + String.fromCharCode(HEX.charCodeAt(c & 15));
      start = i + 1;
    }
  }
  return out + s.substring(start) + '"';
}

function writeValue(v: JsonValue, out: Array<string>): void {
  switch (v.kind) {
    case JsonKind.Null:
      out.push('null');
      break;
    case JsonKind.Bool:
      out.push(changetype<JsonBool>(v).value ? 'true' : 'false');
      break;
    case JsonKind.Number:
      out.push(changetype<JsonNumber>(v).raw);
      break;
    case JsonKind.String:
      out.push(jsonQuote(changetype<JsonString>(v).value));
      break;
    case JsonKind.Array: {
      const items = changetype<JsonArray>(v).items;
      out.push('[');
      for (let i = 0; i < items.length; i++) {
        if (i > 0) out.push(',');
        writeValue(unchecked(items[i]), out);
      }
      out.push(']');
      break;
    }
    default: {
      const o = changetype<JsonObject>(v);
      out.push('{');
      for (let i = 0; i < o.keys.length; i++) {
        if (i > 0) out.push(',');
        out.push(jsonQuote(unchecked(o.keys[i])));
        out.push(':');
        writeValue(unchecked(o.values[i]), out);
      }
      out.push('}');
    }
  }
}
