/**
 * A small raw ADS client on the `proto/` service definition, SotW or delta. It behaves the way
 * Envoy does on the wire: node on the first request only, wildcard Listener/Cluster
 * subscriptions, named RouteConfiguration/ClusterLoadAssignment subscriptions following what the
 * listeners and clusters reference, one ACK or NACK per response (NACK when `validate` throws).
 * Used by tests and benchmarks to observe exactly what the server sends; Envoy itself cannot run
 * on these machines.
 */
import * as grpc from '@grpc/grpc-js';
import { clientConstructor, decode, type ProtoObject } from '../../../proto/index.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, messageNameOf } from './types.js';

export interface ReceivedResponse {
  readonly typeUrl: string;
  /** SotW `version_info` or delta `system_version_info`. */
  readonly version: string;
  readonly nonce: string;
  /** Resource name → decoded message. */
  readonly resources: ReadonlyMap<string, ProtoObject>;
  /** Delta only. */
  readonly removed: readonly string[];
  /** Whether the client NACKed it. */
  readonly nacked: boolean;
}

export interface AdsClientOptions {
  readonly address: string;
  readonly nodeId: string;
  readonly cluster: string;
  readonly mode: 'sotw' | 'delta';
  readonly credentials?: grpc.ChannelCredentials;
  /** Throw to NACK a response (the message becomes `error_detail.message`). */
  readonly validate?: (typeUrl: string, resources: ReadonlyMap<string, ProtoObject>) => void;
  /** Follow RDS/EDS names referenced by listeners and clusters (default true). */
  readonly followReferences?: boolean;
  /** Delta: versions the client claims to have on connect. */
  readonly initialVersions?: ReadonlyMap<string, Record<string, string>>;
  /** Types to subscribe to with a wildcard at start (default Cluster and Listener). */
  readonly wildcardTypes?: readonly string[];
}

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

type Waiter = { readonly test: () => boolean; readonly resolve: () => void };

export class AdsClient {
  /** Every response in arrival order. */
  readonly responses: ReceivedResponse[] = [];
  /** Current state per type: name → resource (what an Envoy would hold after ACKs). */
  readonly state = new Map<string, Map<string, ProtoObject>>();
  /** Last ACKed version per type. */
  readonly acked = new Map<string, string>();
  /** Delta: per-resource versions held. */
  readonly versions = new Map<string, Map<string, string>>();
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<ProtoObject, ProtoObject>;
  private readonly subscribed = new Map<string, Set<string>>();
  private readonly waiters = new Set<Waiter>();
  private sentNode = false;
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(private readonly options: AdsClientOptions) {
    const Client = clientConstructor('envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.client = new Client(options.address, options.credentials ?? grpc.credentials.createInsecure());
    const method = options.mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    const open = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<ProtoObject, ProtoObject>>)[
      method
    ]!;
    this.call = open.call(this.client);
    this.call.on('data', (res: ProtoObject) => this.onResponse(res));
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.ended = true;
      this.wake();
    });
    this.call.on('end', () => {
      this.ended = true;
      this.wake();
    });
    const wildcard = options.wildcardTypes ?? [CLUSTER_TYPE, LISTENER_TYPE];
    for (const t of wildcard) this.request(t, [], true);
    // A reconnecting Envoy re-subscribes by name to what it holds, with the versions it has.
    for (const [t, versions] of options.initialVersions ?? []) {
      if (!wildcard.includes(t)) this.request(t, Object.keys(versions).sort(), true);
    }
  }

  /** Subscribes to `names` of `typeUrl` (SotW: replaces the list; delta: adds). */
  subscribe(typeUrl: string, names: readonly string[]): void {
    this.request(typeUrl, names, false);
  }

  /** Resolves when `test` holds (checked after every response); rejects after `timeoutMs`. */
  async until(test: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (test()) return;
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}${this.error ? ` (stream error: ${this.error.message})` : ''}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Resolves once every one of `types` has ACKed `version`. */
  async untilVersion(
    version: string,
    types: readonly string[] = [CLUSTER_TYPE, LISTENER_TYPE],
    timeoutMs = 10_000,
  ): Promise<void> {
    await this.until(() => types.every((t) => this.acked.get(t) === version), timeoutMs, `version ${version}`);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (this.ended || w.test()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private request(typeUrl: string, names: readonly string[], initial: boolean): void {
    const set = this.subscribed.get(typeUrl) ?? new Set<string>();
    const added = names.filter((n) => !set.has(n));
    const removed = this.options.mode === 'sotw' ? [] : [...set].filter((n) => !names.includes(n));
    if (!initial && added.length === 0 && removed.length === 0 && this.subscribed.has(typeUrl)) return;
    if (this.options.mode === 'sotw') {
      this.subscribed.set(typeUrl, new Set(names));
      this.write({
        type_url: typeUrl,
        resource_names: [...names],
        version_info: this.acked.get(typeUrl) ?? '',
        response_nonce: this.lastNonce.get(typeUrl) ?? '',
      });
    } else {
      for (const n of added) set.add(n);
      this.subscribed.set(typeUrl, set);
      const initialVersions = initial ? this.options.initialVersions?.get(typeUrl) : undefined;
      this.write({
        type_url: typeUrl,
        resource_names_subscribe: added,
        ...(initialVersions === undefined ? {} : { initial_resource_versions: initialVersions }),
      });
    }
  }

  private readonly lastNonce = new Map<string, string>();

  private write(req: ProtoObject): void {
    if (!this.sentNode) {
      this.sentNode = true;
      req = { ...req, node: { id: this.options.nodeId, cluster: this.options.cluster } };
    }
    this.call.write(req);
  }

  private onResponse(res: ProtoObject): void {
    const typeUrl = String(res.type_url);
    const nonce = String(res.nonce);
    const rawVersion = this.options.mode === 'sotw' ? res.version_info : res.system_version_info;
    const version = typeof rawVersion === 'string' ? rawVersion : '';
    const resources = new Map<string, ProtoObject>();
    const typeName = messageNameOf(typeUrl);
    const versions = new Map<string, string>();
    const raw = Array.isArray(res.resources) ? (res.resources as ProtoObject[]) : [];
    for (const item of raw) {
      const any = (this.options.mode === 'sotw' ? item : item.resource) as { type_url: string; value: Uint8Array };
      const msg = decode(typeName, any.value);
      const name = String(typeUrl === ENDPOINT_TYPE ? msg.cluster_name : msg.name);
      resources.set(name, msg);
      if (this.options.mode === 'delta') versions.set(name, String(item.version));
    }
    const removed = Array.isArray(res.removed_resources) ? (res.removed_resources as string[]) : [];
    let nackMessage: string | undefined;
    try {
      this.options.validate?.(typeUrl, resources);
    } catch (e: unknown) {
      nackMessage = e instanceof Error ? e.message : String(e);
    }
    this.responses.push({ typeUrl, version, nonce, resources, removed, nacked: nackMessage !== undefined });
    this.lastNonce.set(typeUrl, nonce);
    if (nackMessage === undefined) {
      let held = this.state.get(typeUrl);
      if (this.options.mode === 'sotw') {
        held = new Map(resources);
        // SotW RDS/EDS responses may carry a subset; keep others the client still has.
        if (typeUrl === ROUTE_TYPE || typeUrl === ENDPOINT_TYPE) {
          const old = this.state.get(typeUrl);
          if (old !== undefined) for (const [n, r] of old) if (!held.has(n)) held.set(n, r);
        }
      } else {
        held ??= new Map();
        const vs = this.versions.get(typeUrl) ?? new Map<string, string>();
        for (const [n, r] of resources) held.set(n, r);
        for (const [n, v] of versions) vs.set(n, v);
        for (const n of removed) {
          held.delete(n);
          vs.delete(n);
        }
        this.versions.set(typeUrl, vs);
      }
      this.state.set(typeUrl, held);
      this.acked.set(typeUrl, version);
    }
    if (this.options.mode === 'sotw') {
      this.call.write({
        type_url: typeUrl,
        version_info: this.acked.get(typeUrl) ?? '',
        response_nonce: nonce,
        resource_names: [...(this.subscribed.get(typeUrl) ?? [])],
        ...(nackMessage === undefined ? {} : { error_detail: { code: 3, message: nackMessage } }),
      });
    } else {
      this.call.write({
        type_url: typeUrl,
        response_nonce: nonce,
        ...(nackMessage === undefined ? {} : { error_detail: { code: 3, message: nackMessage } }),
      });
    }
    if (nackMessage === undefined && this.options.followReferences !== false) this.follow(typeUrl);
    this.wake();
  }

  /** Subscribes to the RDS names of held listeners and the EDS names of held clusters. */
  private follow(typeUrl: string): void {
    if (typeUrl === LISTENER_TYPE) {
      const names = new Set<string>();
      for (const l of this.state.get(LISTENER_TYPE)?.values() ?? []) for (const n of rdsNames(l)) names.add(n);
      this.subscribe(ROUTE_TYPE, [...names].sort());
    } else if (typeUrl === CLUSTER_TYPE) {
      const names = new Set<string>();
      for (const c of this.state.get(CLUSTER_TYPE)?.values() ?? []) {
        if (c.type !== 'EDS') continue;
        const service = (c.eds_cluster_config as ProtoObject | undefined)?.service_name;
        names.add(typeof service === 'string' && service !== '' ? service : String(c.name));
      }
      this.subscribe(ENDPOINT_TYPE, [...names].sort());
    }
  }
}

function rdsNames(listener: ProtoObject): string[] {
  const anys: ProtoObject[] = [];
  const api = (listener.api_listener as ProtoObject | undefined)?.api_listener as ProtoObject | undefined;
  if (api) anys.push(api);
  const chains = [...((listener.filter_chains as ProtoObject[] | undefined) ?? [])];
  if (listener.default_filter_chain !== undefined) chains.push(listener.default_filter_chain as ProtoObject);
  for (const chain of chains) {
    for (const f of (chain.filters as ProtoObject[] | undefined) ?? [])
      if (f.typed_config) anys.push(f.typed_config as ProtoObject);
  }
  const out: string[] = [];
  for (const a of anys) {
    if (!String(a.type_url).endsWith(HCM)) continue;
    const hcm = decode(HCM, a.value as Uint8Array);
    const name = (hcm.rds as ProtoObject | undefined)?.route_config_name;
    if (typeof name === 'string') out.push(name);
  }
  return out;
}
