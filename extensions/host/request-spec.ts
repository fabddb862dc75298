/**
 * The REQ/RESP/callouts JSON files of `envext wasm run` and `envext wasm bench`, parsed with every
 * problem named by file and field.
 *
 * ```jsonc
 * // REQ.json
 * {
 *   "method": "POST", "path": "/api?x=1", "authority": "example.com", "scheme": "https",
 *   "headers": { "x-user": "bob", "accept": ["a", "b"] },   // or [["x-user", "bob"], …]
 *   "body": "text" | { "base64": "…" } | ["chunk 1", { "base64": "…" }],   // chunks = body callbacks
 *   "trailers": { "x-checksum": "abc" },
 *   "connection": { "sourceAddress": "10.0.0.1", "sourcePort": 51000, "destinationAddress": "10.0.0.2",
 *                   "destinationPort": 8080, "id": 7, "mtls": false, "requestedServerName": "example.com",
 *                   "tlsVersion": "TLSv1.3" },
 *   "protocol": "HTTP/1.1", "id": "req-1"
 * }
 * // RESP.json
 * { "status": 200, "headers": { "content-type": "text/plain" }, "body": "hello", "trailers": {} }
 * // CALLOUTS.json: answers by cluster; an HTTP call to a cluster not listed fails (reset), a gRPC
 * // callout without a "grpc" entry is closed UNAVAILABLE
 * { "authsvc": { "status": 200, "headers": { "x-auth": "ok" }, "body": "yes" }, "down": { "fail": true },
 *   "grpcsvc": { "grpc": { "status": 0, "message": "…" | { "base64": "…" }, "statusMessage": "",
 *                          "initialMetadata": {}, "trailingMetadata": {} } } }
 * ```
 */
import { EnvextError, type Problem } from '../../common/errors.js';
import type { HeaderPair } from './pairs.js';
import type { PropertyValue } from './properties.js';

export interface RequestSpec {
  readonly headers: HeaderPair[];
  readonly body: Uint8Array[];
  readonly trailers: HeaderPair[] | undefined;
  readonly attributes: Record<string, PropertyValue>;
}

export interface ResponseSpec {
  readonly headers: HeaderPair[];
  readonly body: Uint8Array[];
  readonly trailers: HeaderPair[] | undefined;
}

export interface CalloutAnswer {
  readonly fail: boolean;
  readonly headers: HeaderPair[];
  readonly body: Uint8Array;
  readonly trailers: HeaderPair[];
  /** Answer for gRPC callouts to this cluster (`"grpc": { … }`). */
  readonly grpc: GrpcAnswer | undefined;
}

export interface GrpcAnswer {
  /** gRPC status; 0 (OK) delivers `message`, anything else closes the call with it. */
  readonly status: number;
  readonly message: Uint8Array;
  readonly statusMessage: string;
  readonly initialMetadata: HeaderPair[];
  readonly trailingMetadata: HeaderPair[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Collector {
  readonly problems: Problem[] = [];
  constructor(readonly file: string) {}
  add(field: string, message: string): void {
    this.problems.push({ resource: this.file, field, message });
  }
  throwIfAny(what: string): void {
    if (this.problems.length === 0) return;
    const text = this.problems.map((p) => `${p.field === '' ? '' : `${p.field}: `}${p.message}`).join('; ');
    throw new EnvextError('WASM_BAD_SPEC', `${this.file}: ${text}`, {
      hint: `see "REQ/RESP JSON" in the README for the ${what} format`,
    });
  }
}

function headerList(c: Collector, field: string, v: unknown): HeaderPair[] {
  if (v === undefined) return [];
  const out: HeaderPair[] = [];
  if (Array.isArray(v)) {
    v.forEach((p, i) => {
      if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string') {
        out.push([p[0], p[1]]);
      } else c.add(`${field}[${i}]`, 'expected ["name", "value"]');
    });
    return out;
  }
  if (!isObj(v)) {
    c.add(field, 'expected an object of name → value (or list of values) or a list of [name, value]');
    return out;
  }
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === 'string') out.push([k, val]);
    else if (typeof val === 'number' || typeof val === 'boolean') out.push([k, String(val)]);
    else if (Array.isArray(val) && val.every((x) => typeof x === 'string')) {
      for (const x of val) out.push([k, x]);
    } else c.add(`${field}.${k}`, 'expected a string or a list of strings');
  }
  return out;
}

function bodyChunk(c: Collector, field: string, v: unknown): Uint8Array | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (isObj(v) && typeof v['base64'] === 'string') {
    const b = v['base64'];
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b)) {
      c.add(`${field}.base64`, 'not valid base64');
      return undefined;
    }
    return Buffer.from(b, 'base64');
  }
  c.add(field, 'expected a string, { "base64": "…" }, or a list of those (one per body callback)');
  return undefined;
}

function body(c: Collector, field: string, v: unknown): Uint8Array[] {
  if (v === undefined) return [];
  const chunks = Array.isArray(v) ? v : [v];
  const out: Uint8Array[] = [];
  chunks.forEach((x, i) => {
    const b = bodyChunk(c, Array.isArray(v) ? `${field}[${i}]` : field, x);
    if (b !== undefined) out.push(b);
  });
  return out;
}

function str(c: Collector, o: Obj, key: string, def: string | undefined): string | undefined {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'string' || v === '') {
    c.add(key, 'expected a non-empty string');
    return def;
  }
  return v;
}

function unknownKeys(c: Collector, o: Obj, known: readonly string[], prefix = ''): void {
  for (const k of Object.keys(o))
    if (!known.includes(k)) c.add(`${prefix}${k}`, `unknown field (known: ${known.join(', ')})`);
}

const REQ_KEYS = [
  'method',
  'path',
  'authority',
  'scheme',
  'headers',
  'body',
  'trailers',
  'connection',
  'protocol',
  'id',
];
const CONN_KEYS = [
  'sourceAddress',
  'sourcePort',
  'destinationAddress',
  'destinationPort',
  'id',
  'mtls',
  'requestedServerName',
  'tlsVersion',
];

/** Parses REQ.json (already JSON-decoded). Throws `WASM_BAD_SPEC` listing every problem. */
export function parseRequestSpec(value: unknown, file: string): RequestSpec {
  const c = new Collector(file);
  if (!isObj(value)) {
    c.add('', 'expected a JSON object');
    c.throwIfAny('REQ');
  }
  const o = value as Obj;
  unknownKeys(c, o, REQ_KEYS);
  const method = str(c, o, 'method', 'GET')!;
  const path = str(c, o, 'path', '/')!;
  const authority = str(c, o, 'authority', 'localhost')!;
  const scheme = str(c, o, 'scheme', 'http')!;
  if (!path.startsWith('/')) c.add('path', 'must start with "/"');
  const extra = headerList(c, 'headers', o['headers']);
  for (const [k] of extra)
    if (k.startsWith(':')) c.add('headers', `pseudo-header ${k}: use method/path/authority/scheme`);
  const headers: HeaderPair[] = [
    [':authority', authority],
    [':path', path],
    [':method', method],
    [':scheme', scheme],
  ];
  const id = str(c, o, 'id', undefined);
  if (id !== undefined && !extra.some(([k]) => k.toLowerCase() === 'x-request-id')) extra.push(['x-request-id', id]);
  headers.push(...extra);
  const attributes: Record<string, PropertyValue> = {};
  const protocol = str(c, o, 'protocol', 'HTTP/1.1')!;
  const bodyChunks = body(c, 'body', o['body']);
  const size = bodyChunks.reduce((n, b) => n + b.length, 0);
  attributes['request'] = { protocol, size: BigInt(size), total_size: BigInt(size) };
  const conn = o['connection'];
  if (conn !== undefined) {
    if (!isObj(conn)) c.add('connection', 'expected an object');
    else {
      unknownKeys(c, conn, CONN_KEYS, 'connection.');
      const addr = (a: string, p: string, name: 'source' | 'destination'): void => {
        const address = conn[a];
        const port = conn[p];
        if (address !== undefined && typeof address !== 'string') c.add(`connection.${a}`, 'expected a string');
        if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)) {
          c.add(`connection.${p}`, 'expected a port number 0-65535');
        }
        if (typeof address === 'string' || typeof port === 'number') {
          attributes[name] = {
            address:
              typeof address === 'string' ? `${address}${typeof port === 'number' ? `:${port}` : ''}` : undefined,
            port: typeof port === 'number' ? BigInt(port) : undefined,
          };
        }
      };
      addr('sourceAddress', 'sourcePort', 'source');
      addr('destinationAddress', 'destinationPort', 'destination');
      const connection: Record<string, PropertyValue> = {};
      if (conn['id'] !== undefined) {
        if (typeof conn['id'] !== 'number' || !Number.isInteger(conn['id']))
          c.add('connection.id', 'expected an integer');
        else connection['id'] = BigInt(conn['id']);
      }
      if (conn['mtls'] !== undefined) {
        if (typeof conn['mtls'] !== 'boolean') c.add('connection.mtls', 'expected true or false');
        else connection['mtls'] = conn['mtls'];
      }
      for (const [k, attr] of [
        ['requestedServerName', 'requested_server_name'],
        ['tlsVersion', 'tls_version'],
      ] as const) {
        const v = conn[k];
        if (v === undefined) continue;
        if (typeof v !== 'string') c.add(`connection.${k}`, 'expected a string');
        else connection[attr] = v;
      }
      attributes['connection'] = connection;
    }
  }
  const trailers = o['trailers'] === undefined ? undefined : headerList(c, 'trailers', o['trailers']);
  c.throwIfAny('REQ');
  return { headers, body: bodyChunks, trailers, attributes };
}

/** Parses RESP.json. */
export function parseResponseSpec(value: unknown, file: string): ResponseSpec {
  const c = new Collector(file);
  if (!isObj(value)) {
    c.add('', 'expected a JSON object');
    c.throwIfAny('RESP');
  }
  const o = value as Obj;
  unknownKeys(c, o, ['status', 'headers', 'body', 'trailers']);
  const rawStatus = o['status'] ?? 200;
  const status = typeof rawStatus === 'number' ? rawStatus : 0;
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    c.add('status', 'expected an HTTP status code (100-999)');
  }
  const headers: HeaderPair[] = [[':status', String(status)], ...headerList(c, 'headers', o['headers'])];
  const b = body(c, 'body', o['body']);
  const trailers = o['trailers'] === undefined ? undefined : headerList(c, 'trailers', o['trailers']);
  c.throwIfAny('RESP');
  return { headers, body: b, trailers };
}

/** Parses the callouts file: cluster → answer. */
export function parseCallouts(value: unknown, file: string): Map<string, CalloutAnswer> {
  const c = new Collector(file);
  const out = new Map<string, CalloutAnswer>();
  if (!isObj(value)) {
    c.add('', 'expected an object keyed by cluster name');
    c.throwIfAny('callouts');
  }
  for (const [cluster, v] of Object.entries(value as Obj)) {
    if (!isObj(v)) {
      c.add(cluster, 'expected { "status": 200, "headers": {…}, "body": "…" } or { "fail": true }');
      continue;
    }
    unknownKeys(c, v, ['status', 'headers', 'body', 'trailers', 'fail', 'grpc'], `${cluster}.`);
    let grpc: GrpcAnswer | undefined;
    const g = v['grpc'];
    if (g !== undefined) {
      if (!isObj(g)) c.add(`${cluster}.grpc`, 'expected { "status": 0, "message": "…" }');
      else {
        unknownKeys(
          c,
          g,
          ['status', 'message', 'statusMessage', 'initialMetadata', 'trailingMetadata'],
          `${cluster}.grpc.`,
        );
        const st = g['status'] ?? 0;
        if (typeof st !== 'number' || !Number.isInteger(st) || st < 0 || st > 16) {
          c.add(`${cluster}.grpc.status`, 'expected a gRPC status code 0-16');
        }
        const sm = g['statusMessage'] ?? '';
        if (typeof sm !== 'string') c.add(`${cluster}.grpc.statusMessage`, 'expected a string');
        const msg = g['message'] === undefined ? [] : body(c, `${cluster}.grpc.message`, g['message']);
        grpc = {
          status: typeof st === 'number' ? st : 0,
          message: msg[0] ?? new Uint8Array(0),
          statusMessage: typeof sm === 'string' ? sm : '',
          initialMetadata: headerList(c, `${cluster}.grpc.initialMetadata`, g['initialMetadata']),
          trailingMetadata: headerList(c, `${cluster}.grpc.trailingMetadata`, g['trailingMetadata']),
        };
      }
    }
    const rawStatus = v['status'] ?? 200;
    const status = typeof rawStatus === 'number' ? rawStatus : 0;
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      c.add(`${cluster}.status`, 'expected an HTTP status code (100-999)');
    }
    const chunks = body(c, `${cluster}.body`, v['body']);
    const len = chunks.reduce((n, x) => n + x.length, 0);
    const joined = new Uint8Array(len);
    let p = 0;
    for (const x of chunks) {
      joined.set(x, p);
      p += x.length;
    }
    out.set(cluster, {
      fail: v['fail'] === true,
      headers: [[':status', String(status)], ...headerList(c, `${cluster}.headers`, v['headers'])],
      body: joined,
      trailers: headerList(c, `${cluster}.trailers`, v['trailers']),
      grpc,
    });
  }
  c.throwIfAny('callouts');
  return out;
}
