/**
 * Rendering Envoy resources the way Envoy's own YAML/JSON config dump writes them: proto field
 * names (`typed_config`), `'@type'` for `Any`, well-known types in their proto3-JSON form
 * (Duration `0.200s`, wrappers as bare values, Struct as JSON), enums by name, 64-bit integers
 * as strings. Input is the bytes of a message, so what is rendered is exactly what Envoy
 * would decode.
 */
import protobuf from 'protobufjs';
import { messageType, toJsonObject, type ProtoObject } from '../../../proto/index.js';

const WRAPPERS = new Set([
  '.google.protobuf.DoubleValue',
  '.google.protobuf.FloatValue',
  '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value',
  '.google.protobuf.Int32Value',
  '.google.protobuf.UInt32Value',
  '.google.protobuf.BoolValue',
  '.google.protobuf.StringValue',
  '.google.protobuf.BytesValue',
]);

const SCALAR_JSON = new Set([
  ...WRAPPERS,
  '.google.protobuf.Duration',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{seconds, nanos}` → `1.500s` (0, 3, 6 or 9 fractional digits, as protojson writes them). */
export function formatDuration(d: Record<string, unknown>): string {
  const seconds = BigInt(typeof d['seconds'] === 'string' || typeof d['seconds'] === 'number' ? d['seconds'] : 0);
  const nanos = typeof d['nanos'] === 'number' ? d['nanos'] : 0;
  const negative = seconds < 0n || nanos < 0;
  const abs = (seconds < 0n ? -seconds : seconds).toString();
  const n = Math.abs(nanos);
  if (n === 0) return `${negative ? '-' : ''}${abs}s`;
  let frac = n.toString().padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${negative ? '-' : ''}${abs}.${frac}s`;
}

function structValue(v: unknown): unknown {
  if (!isRecord(v)) return null;
  if ('null_value' in v) return null;
  if ('number_value' in v) return v['number_value'];
  if ('string_value' in v) return v['string_value'];
  if ('bool_value' in v) return v['bool_value'];
  if ('struct_value' in v) return structToJson(v['struct_value']);
  if ('list_value' in v) return listToJson(v['list_value']);
  return null;
}

function structToJson(s: unknown): Record<string, unknown> {
  const fields = isRecord(s) && isRecord(s['fields']) ? s['fields'] : {};
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, structValue(v)]));
}

function listToJson(l: unknown): unknown[] {
  const values = isRecord(l) && Array.isArray(l['values']) ? l['values'] : [];
  return values.map(structValue);
}

function render(type: protobuf.Type, value: unknown): unknown {
  if (!isRecord(value)) return value;
  const name = type.fullName;
  if (name === '.google.protobuf.Duration') return formatDuration(value);
  if (WRAPPERS.has(name)) {
    // An unset value field means the default (0, false, "").
    if ('value' in value) return value['value'];
    return name === '.google.protobuf.BoolValue'
      ? false
      : name === '.google.protobuf.StringValue' || name === '.google.protobuf.BytesValue'
        ? ''
        : 0;
  }
  if (name === '.google.protobuf.Struct') return structToJson(value);
  if (name === '.google.protobuf.ListValue') return listToJson(value);
  if (name === '.google.protobuf.Value') return structValue(value);
  if (name === '.google.protobuf.Any') {
    const url = value['@type'];
    if (typeof url !== 'string') return {}; // an empty Any (EG's FilterConfig `config: {}`)
    const { '@type': _t, ...rest } = value;
    const inner = render(messageType(url), rest);
    // Well-known types with a scalar JSON form sit under `value` (proto3 JSON for Any).
    return isRecord(inner) && !SCALAR_JSON.has(messageType(url).fullName)
      ? { '@type': url, ...inner }
      : { '@type': url, value: inner };
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    const field = type.fields[key];
    const sub = field?.resolvedType;
    if (field === undefined || !(sub instanceof protobuf.Type)) {
      out[key] = v;
    } else if (field.map && isRecord(v)) {
      out[key] = Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, render(sub, v[k])]),
      );
    } else if (Array.isArray(v)) {
      out[key] = v.map((x) => render(sub, x));
    } else {
      out[key] = render(sub, v);
    }
  }
  return out;
}

/** Decodes `bytes` as `typeName` and renders it in Envoy's JSON/YAML form (keys sorted). */
export function toEnvoyJson(typeName: string, bytes: Uint8Array): ProtoObject {
  const type = messageType(typeName);
  return render(type, toJsonObject(typeName, bytes)) as ProtoObject;
}
