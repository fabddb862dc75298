/**
 * The one loader for protobuf definitions: Envoy's API protos shipped in `@grpc/grpc-js-xds`
 * (`deps/envoy-api`, `deps/xds`, `deps/googleapis`, `deps/protoc-gen-validate`) plus the
 * project's own `.proto` files under `proto/`, parsed once per process into one protobufjs Root.
 *
 * Import resolution order (first hit wins):
 *
 *   proto/  (ours: newer ext_proc, health)  →  grpc-js-xds deps/envoy-api  →  deps/xds
 *   →  deps/googleapis  →  deps/protoc-gen-validate  →  protobufjs's bundled google/protobuf
 *
 * so a file of ours with the same import path as an upstream one (e.g.
 * `envoy/service/ext_proc/v3/external_processor.proto`) replaces it everywhere, including where
 * other Envoy protos import it.
 *
 * Field names are kept as written in the .proto files (`keepCase`: `typed_config`, not
 * `typedConfig`), the way Envoy's YAML and the Envoy Gateway golden files spell them.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import protobuf from 'protobufjs';
import { EnvextError } from '../common/errors.js';
import { packageRoot } from '../common/package-root.js';

const require = createRequire(import.meta.url);

/** Envoy API entry files loaded by default; their imports come along. */
export const DEFAULT_ENVOY_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/wasm/v3/wasm.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'xds/type/v3/typed_struct.proto',
];

/** Prefix of type URLs in `google.protobuf.Any`, as Envoy writes them. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** Thrown for unknown types, fields the proto does not have, and undecodable bytes. */
export class ProtoError extends EnvextError {
  override readonly name = 'ProtoError';
}

/** The folders imports are resolved against, in order. */
export function includeDirs(): string[] {
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const protobufjsRoot = dirname(require.resolve('protobufjs/package.json'));
  return [
    join(packageRoot(), 'proto'),
    join(xds, 'deps', 'envoy-api'),
    join(xds, 'deps', 'xds'),
    join(xds, 'deps', 'googleapis'),
    join(xds, 'deps', 'protoc-gen-validate'),
    protobufjsRoot,
  ];
}

/** Import paths (relative to `proto/`) of the project's own .proto files. */
export function ownProtoFiles(): string[] {
  const base = join(packageRoot(), 'proto');
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.proto')) out.push(relative(base, full).split(sep).join('/'));
    }
  };
  if (existsSync(base)) walk(base);
  return out.sort();
}

let root: protobuf.Root | undefined;
let dirs: string[] = [];

function resolveImport(target: string): string {
  if (isAbsolute(target)) return target;
  for (const dir of dirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  // protobufjs maps google/protobuf/{any,duration,…}.proto to bundled copies by name; anything
  // else missing fails in loadSync with the path it tried.
  return target;
}

/**
 * The shared Root, loading the default Envoy files and the project's own protos on first use.
 * Later calls with more files add them to the same Root.
 */
export function protoRoot(extraFiles: readonly string[] = []): protobuf.Root {
  if (root === undefined) {
    dirs = includeDirs();
    const r = new protobuf.Root();
    r.resolvePath = (_origin: string, target: string): string => resolveImport(target);
    loadInto(r, [...ownProtoFiles(), ...DEFAULT_ENVOY_FILES]);
    root = r;
  }
  if (extraFiles.length === 0) return root;
  const missing = extraFiles.filter((f) => !root?.files.includes(resolveImport(f)));
  if (missing.length > 0) loadInto(root, missing);
  return root;
}

/**
 * protobufjs serves `google/protobuf/struct.proto` from a bundled JSON descriptor whose `Value`
 * fields are camelCase (`stringValue`), unlike every other field here (`keepCase`). Rename them
 * in this Root to the .proto spelling (`string_value`), so a `Struct` is written the same way as
 * everything else. Field numbers are unchanged, so the wire format is too.
 */
function snakeCaseStructValue(r: protobuf.Root): void {
  const value = r.lookup('google.protobuf.Value');
  if (!(value instanceof protobuf.Type)) return;
  const kind = value.oneofs?.['kind'];
  for (const field of [...value.fieldsArray]) {
    const snake = field.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (snake === field.name) continue;
    kind?.remove(field);
    value.remove(field);
    const renamed = new protobuf.Field(snake, field.id, field.type, field.options);
    value.add(renamed);
    kind?.add(renamed);
  }
  // The message class may already exist, with a `kind` oneof getter that knows only the old
  // names; a new class picks up the renamed fields.
  value.ctor = protobuf.Type.generateConstructor(value)() as protobuf.Constructor<object>;
}

function loadInto(r: protobuf.Root, files: readonly string[]): void {
  try {
    r.loadSync(files.map(resolveImport), { keepCase: true });
    snakeCaseStructValue(r);
    r.resolveAll();
    releaseSources(r);
  } catch (e: unknown) {
    throw new ProtoError('PROTO_LOAD_FAILED', `cannot load protos: ${e instanceof Error ? e.message : String(e)}`, {
      hint: 'check the .proto files under proto/ and that @grpc/grpc-js-xds is installed (npm ci)',
      cause: e,
    });
  }
}

/**
 * protobufjs keeps option values (`(udpa.annotations.versioning).previous_message_type`, …) as
 * V8 slices of the .proto text, which keeps the whole source of every loaded file alive
 * (1.2 MiB for the default set). Copies them out so the sources can be collected.
 */
function releaseSources(r: protobuf.Root): void {
  const seen = new Set<object>();
  const flat = (v: unknown): unknown => {
    // Strings shorter than 13 characters are never slices in V8; JSON.parse builds a flat copy.
    if (typeof v === 'string') return v.length < 13 ? v : (JSON.parse(JSON.stringify(v)) as string);
    if (typeof v !== 'object' || v === null || seen.has(v)) return v;
    seen.add(v);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = flat(o[k]);
    return v;
  };
  const visit = (obj: protobuf.ReflectionObject): void => {
    const o = obj as protobuf.ReflectionObject & { parsedOptions?: unknown; valuesOptions?: unknown };
    flat(o.options);
    flat(o.parsedOptions);
    flat(o.valuesOptions);
    if (obj instanceof protobuf.Type) {
      for (const f of obj.fieldsArray) visit(f);
      for (const one of obj.oneofsArray) visit(one);
    }
    if (obj instanceof protobuf.Service) for (const m of obj.methodsArray) visit(m);
    if (obj instanceof protobuf.Namespace) for (const n of obj.nestedArray) visit(n);
  };
  visit(r);
}

function normalizeName(name: string): string {
  const bare = name.startsWith(TYPE_URL_PREFIX) ? name.slice(TYPE_URL_PREFIX.length) : name;
  return bare.startsWith('.') ? bare.slice(1) : bare;
}

/** The message type with this full name (`envoy.config.listener.v3.Listener`), or a ProtoError. */
const typeCache = new Map<string, protobuf.Type>();

export function messageType(fullName: string): protobuf.Type {
  // Hot path (every encode/decode): a Map hit instead of a Root lookup.
  const cached = typeCache.get(fullName);
  if (cached !== undefined) return cached;
  const name = normalizeName(fullName);
  const found = protoRoot().lookup(name);
  if (!(found instanceof protobuf.Type)) {
    throw new ProtoError('PROTO_UNKNOWN_TYPE', `unknown protobuf message type "${name}"`, {
      hint: 'check the spelling, or load its .proto with protoRoot([file])',
    });
  }
  typeCache.set(fullName, found);
  return found;
}

/** The service with this full name (`envoy.service.discovery.v3.AggregatedDiscoveryService`). */
export function serviceType(fullName: string): protobuf.Service {
  const name = normalizeName(fullName);
  const found = protoRoot().lookup(name);
  if (!(found instanceof protobuf.Service)) {
    throw new ProtoError('PROTO_UNKNOWN_SERVICE', `unknown protobuf service "${name}"`, {
      hint: 'check the spelling, or load its .proto with protoRoot([file])',
    });
  }
  return found;
}
