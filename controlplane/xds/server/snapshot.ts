/**
 * An immutable xDS snapshot: every resource of one node group (one Gateway), encoded once with
 * Envoy's protos, with a per-resource version (a hash of its bytes) and one snapshot version
 * shared by all types (as Envoy Gateway does).
 *
 * Encoding happens once per snapshot, not once per client: each resource keeps its
 * `DiscoveryResponse.resources` chunk (field 2, an `Any`) and its
 * `DeltaDiscoveryResponse.resources` chunk (field 2, a `Resource`) ready to be concatenated
 * after a small per-response header (version, type URL, nonce). Protobuf allows fields in any
 * order, so `header ‖ chunk ‖ chunk …` is a valid message.
 *
 *   DiscoveryResponse       = [1 version_info][4 type_url][5 nonce] [2 Any]…
 *   Any                     = [1 type_url][2 value = encoded resource]
 *   DeltaDiscoveryResponse  = [1 system_version_info][4 type_url][5 nonce][6 removed]… [2 Resource]…
 *   Resource                = [3 name][1 version][2 Any]
 */
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { EnvextError } from '../../../common/errors.js';
import { decode, encode, type AnyMessage, type ProtoObject } from '../../../proto/index.js';
import { encodeRouteConfiguration } from './route-config.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, inPushOrder, messageNameOf } from './types.js';

/** One encoded resource. */
export class EncodedResource {
  private sotw: Uint8Array | undefined;
  private delta: Uint8Array | undefined;

  constructor(
    readonly typeUrl: string,
    readonly name: string,
    /** The resource message itself (what an `Any.value` holds). */
    readonly bytes: Uint8Array,
    /** Per-resource version: the first 16 hex digits of sha256(bytes). */
    readonly version: string,
    /** Hash of the plain-object input it was encoded from (to skip re-encoding equal input). */
    readonly inputHash?: string,
  ) {}

  /** `DiscoveryResponse.resources` entry: tag of field 2 + length + Any. */
  sotwChunk(): Uint8Array {
    this.sotw ??= protobuf.Writer.create()
      .uint32((2 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(this.typeUrl)
      .uint32((2 << 3) | 2)
      .bytes(this.bytes)
      .ldelim()
      .finish();
    return this.sotw;
  }

  /** `DeltaDiscoveryResponse.resources` entry: tag of field 2 + length + Resource{name, version, Any}. */
  deltaChunk(): Uint8Array {
    this.delta ??= protobuf.Writer.create()
      .uint32((2 << 3) | 2)
      .fork()
      .uint32((3 << 3) | 2)
      .string(this.name)
      .uint32((1 << 3) | 2)
      .string(this.version)
      .uint32((2 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(this.typeUrl)
      .uint32((2 << 3) | 2)
      .bytes(this.bytes)
      .ldelim()
      .ldelim()
      .finish();
    return this.delta;
  }

  /** As a plain `Any`, for callers that decode. */
  toAny(): AnyMessage {
    return { type_url: this.typeUrl, value: this.bytes };
  }
}

const edsNames = new WeakMap<EncodedResource, string | null>();

/** For an EDS Cluster, the ClusterLoadAssignment name it needs; otherwise undefined. */
export function edsServiceName(cluster: EncodedResource): string | undefined {
  let name = edsNames.get(cluster);
  if (name === undefined) {
    const c = decode('envoy.config.cluster.v3.Cluster', cluster.bytes);
    const service = obj(c.eds_cluster_config).service_name;
    name = c.type !== 'EDS' ? null : typeof service === 'string' && service !== '' ? service : cluster.name;
    edsNames.set(cluster, name);
  }
  return name ?? undefined;
}

/** Resources of one type, by name. */
export type ResourceMap = ReadonlyMap<string, EncodedResource>;

/**
 * What a translator hands over: per type URL, Envoy messages as plain objects (the `proto/`
 * form, `.proto` field names) or already-encoded `Any`s.
 */
export type XdsResourcesInput = ReadonlyMap<string, readonly (ProtoObject | AnyMessage)[]>;

export class XdsSnapshot {
  /** Hash of every type's content; equal hashes mean equal snapshots. */
  readonly contentHash: string;
  private readonly typeHashes: Map<string, string> = new Map();

  constructor(
    /** One version for every type of this snapshot. */
    readonly version: string,
    readonly types: ReadonlyMap<string, ResourceMap>,
    /** The same types' hashes, when known (`withVersion`). */
    hashes?: { readonly content: string; readonly types: ReadonlyMap<string, string> },
  ) {
    if (hashes !== undefined) {
      this.contentHash = hashes.content;
      this.typeHashes = new Map(hashes.types);
      return;
    }
    const all = createHash('sha256');
    for (const typeUrl of inPushOrder(types.keys())) {
      const resources = types.get(typeUrl)!;
      const names = [...resources.keys()];
      // Translators hand resources over sorted by name: check before sorting.
      let sorted = true;
      for (let i = 1; i < names.length && sorted; i++) sorted = names[i - 1]! < names[i]!;
      if (!sorted) names.sort();
      // One string per type: a hash update per resource field costs more than the hashing.
      const text = names.map((n) => `${n}\0${resources.get(n)!.version}\n`).join('');
      const typeHash = createHash('sha256').update(text).digest('hex');
      this.typeHashes.set(typeUrl, typeHash);
      all.update(typeUrl).update('=').update(typeHash).update('\n');
    }
    this.contentHash = all.digest('hex');
  }

  resources(typeUrl: string): ResourceMap {
    return this.types.get(typeUrl) ?? EMPTY;
  }

  /** Hash of one type's content (names and versions). */
  typeHash(typeUrl: string): string {
    return this.typeHashes.get(typeUrl) ?? EMPTY_HASH;
  }

  /** The same content under another version string. */
  withVersion(version: string): XdsSnapshot {
    return new XdsSnapshot(version, this.types, { content: this.contentHash, types: this.typeHashes });
  }
}

const EMPTY: ResourceMap = new Map();
const EMPTY_HASH = createHash('sha256').digest('hex');

/** The name Envoy knows a resource by. */
export function resourceName(typeUrl: string, message: ProtoObject): string {
  const field = typeUrl === ENDPOINT_TYPE ? 'cluster_name' : 'name';
  const name = message[field];
  if (typeof name !== 'string' || name === '') {
    throw new EnvextError('XDS_RESOURCE_UNNAMED', `${messageNameOf(typeUrl)} resource has no ${field}`, {
      hint: 'every xDS resource needs a unique name; this is a translator bug',
    });
  }
  return name;
}

function isAny(v: ProtoObject | AnyMessage): v is AnyMessage {
  return typeof v.type_url === 'string' && v.value instanceof Uint8Array;
}

/** Encodes one resource; `name` is read from the message (decoded first when given as Any). */
export function encodeResource(typeUrl: string, input: ProtoObject | AnyMessage, inputHash?: string): EncodedResource {
  const typeName = messageNameOf(typeUrl);
  let bytes: Uint8Array;
  let name: string;
  if (isAny(input)) {
    if (input.type_url !== typeUrl) {
      throw new EnvextError('XDS_TYPE_MISMATCH', `resource of type ${input.type_url} given as ${typeUrl}`, {
        hint: 'group resources by their own type URL',
      });
    }
    bytes = input.value;
    name = resourceName(typeUrl, decode(typeName, bytes));
  } else {
    name = resourceName(typeUrl, input);
    // Thousands of routes in one message: encoded by parts, unchanged routes' bytes reused.
    bytes = typeUrl === ROUTE_TYPE ? encodeRouteConfiguration(input) : encode(typeName, input);
  }
  return new EncodedResource(
    typeUrl,
    name,
    bytes,
    createHash('sha256').update(bytes).digest('hex').slice(0, 16),
    inputHash,
  );
}

/**
 * Encodings by input object. Inputs are never mutated once handed over (translator output is
 * immutable), so the same object always encodes to the same bytes.
 */
const encodedInputs = new WeakMap<object, EncodedResource>();

/**
 * Builds a snapshot. Names must be unique per type (clients NACK duplicates, so a duplicate is a
 * translator bug and fails here rather than on every Envoy).
 */
export function buildSnapshot(version: string, input: XdsResourcesInput, reuse?: XdsSnapshot): XdsSnapshot {
  const types = new Map<string, Map<string, EncodedResource>>();
  for (const [typeUrl, list] of input) {
    const previous = reuse?.resources(typeUrl);
    const byName = new Map<string, EncodedResource>();
    for (const item of list) {
      // The translator returns the same object for an unchanged resource (its memos), so most
      // inputs were encoded before; others with equal content (by a hash of their JSON, far
      // cheaper than strict encoding) reuse the previous encoding and its chunks.
      let r: EncodedResource | undefined;
      if (isAny(item)) r = encodeResource(typeUrl, item);
      else {
        r = encodedInputs.get(item);
        if (r === undefined || r.typeUrl !== typeUrl) {
          // A RouteConfiguration is encoded by parts, cheaper than hashing its JSON.
          const inputHash =
            typeUrl === ROUTE_TYPE ? undefined : createHash('sha256').update(JSON.stringify(item)).digest('base64');
          const old = previous?.get(resourceName(typeUrl, item));
          r =
            old !== undefined && inputHash !== undefined && old.inputHash === inputHash
              ? old
              : encodeResource(typeUrl, item, inputHash);
          encodedInputs.set(item, r);
        }
      }
      if (byName.has(r.name)) {
        throw new EnvextError(
          'XDS_DUPLICATE_RESOURCE',
          `two ${messageNameOf(typeUrl)} resources are named "${r.name}"`,
          {
            hint: 'resource names must be unique per type; this is a translator bug',
          },
        );
      }
      // Keep the old object when the bytes did not change, so its encoded chunks are reused.
      const old = previous?.get(r.name);
      byName.set(r.name, old !== undefined && old.version === r.version ? old : r);
    }
    types.set(typeUrl, byName);
  }
  return new XdsSnapshot(version, types);
}

/**
 * Reference check before publishing (go-control-plane's `Consistent()` in spirit): every RDS
 * name a listener uses has a RouteConfiguration, every cluster a route names has a Cluster, and
 * every EDS cluster has a ClusterLoadAssignment. Returns readable problems; an empty list means
 * consistent. Envoy would otherwise wait forever (RDS/EDS) or answer 503 (missing cluster).
 */
export function checkReferences(snapshot: XdsSnapshot): string[] {
  const problems: string[] = [];
  const routes = snapshot.resources(ROUTE_TYPE);
  const clusters = snapshot.resources(CLUSTER_TYPE);
  const endpoints = snapshot.resources(ENDPOINT_TYPE);
  for (const listener of snapshot.resources(LISTENER_TYPE).values()) {
    for (const rds of rdsNames(decode('envoy.config.listener.v3.Listener', listener.bytes))) {
      if (!routes.has(rds))
        problems.push(`Listener "${listener.name}" uses RouteConfiguration "${rds}", which is missing`);
    }
  }
  for (const route of routes.values()) {
    for (const cluster of routeClusters(decode('envoy.config.route.v3.RouteConfiguration', route.bytes))) {
      if (!clusters.has(cluster))
        problems.push(`RouteConfiguration "${route.name}" routes to Cluster "${cluster}", which is missing`);
    }
  }
  for (const cluster of clusters.values()) {
    const c = decode('envoy.config.cluster.v3.Cluster', cluster.bytes);
    if (c.type !== 'EDS') continue;
    const eds = obj(c.eds_cluster_config);
    const service = typeof eds.service_name === 'string' && eds.service_name !== '' ? eds.service_name : cluster.name;
    if (!endpoints.has(service)) problems.push(`Cluster "${cluster.name}" uses EDS "${service}", which is missing`);
  }
  return problems;
}

function obj(v: unknown): ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as ProtoObject) : {};
}

function list(v: unknown): ProtoObject[] {
  return Array.isArray(v) ? v.map(obj) : [];
}

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function rdsNames(listener: ProtoObject): string[] {
  const hcms: ProtoObject[] = [];
  const fromAny = (a: unknown): void => {
    const any = obj(a);
    if (typeof any.type_url === 'string' && any.type_url.endsWith(HCM) && any.value instanceof Uint8Array) {
      hcms.push(decode(HCM, any.value));
    }
  };
  fromAny(obj(listener.api_listener).api_listener);
  const chains = [...list(listener.filter_chains)];
  if (listener.default_filter_chain !== undefined) chains.push(obj(listener.default_filter_chain));
  for (const chain of chains) for (const f of list(chain.filters)) fromAny(f.typed_config);
  return hcms.flatMap((h) => {
    const name = obj(h.rds).route_config_name;
    return typeof name === 'string' ? [name] : [];
  });
}

function routeClusters(rc: ProtoObject): Set<string> {
  const out = new Set<string>();
  for (const vh of list(rc.virtual_hosts)) {
    for (const r of list(vh.routes)) {
      const action = obj(r.route);
      if (typeof action.cluster === 'string') out.add(action.cluster);
      for (const wc of list(obj(action.weighted_clusters).clusters)) if (typeof wc.name === 'string') out.add(wc.name);
      for (const m of list(action.request_mirror_policies)) if (typeof m.cluster === 'string') out.add(m.cluster);
    }
  }
  return out;
}
