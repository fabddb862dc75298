/**
 * One ADS stream, state-of-the-world or delta. The server creates one per gRPC call; it owns the
 * per-type state the xDS protocol asks for (xds_protocol.rst; reference §2.7):
 *
 *   stream ── node (from the first request) ── group = node.cluster ── snapshot
 *     └─ per type URL: subscriptions (names, wildcard), last nonce sent, what was sent,
 *        what the client accepted, and what it rejected.
 *
 * Rules kept here:
 * - A request whose `response_nonce` is not the last nonce sent for its type is stale and ignored.
 * - `error_detail` marks a NACK: logged, counted, and the rejected content is never sent again on
 *   this stream (nor, through the node memory, on the node's next stream) until the snapshot
 *   changes. go-control-plane's SotW path resends a NACKed version forever (its issue #962);
 *   we do not.
 * - Responses go out only when the content for that client changed or its subscriptions
 *   changed; types are pushed in `PUSH_ORDER`, and removals of clusters and endpoints wait until
 *   listeners and routes of the same version were answered (make-before-break).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../../common/log.js';
import { messageType, type ProtoObject } from '../../../proto/index.js';
import { XdsSnapshot, edsServiceName, type EncodedResource, type ResourceMap } from './snapshot.js';
import {
  CLUSTER_TYPE,
  DEFERRED_REMOVAL_TYPES,
  ENDPOINT_TYPE,
  FULL_STATE_TYPES,
  REFERRER_TYPES,
  inPushOrder,
  typeLabel,
} from './types.js';

/** How long a make-before-break hold may last before it is released anyway. */
const RELEASE_AFTER_MS = 5_000;

/** What a node rejected and accepted, kept across its streams (reconnects resume). */
export interface NodeMemory {
  /** SotW: per type, the hash of a resource set the node NACKed. */
  readonly rejectedSets: Map<string, string>;
  /** SotW: per type, the last set the node ACKed and its version. */
  readonly acceptedSets: Map<string, { readonly version: string; readonly resources: ResourceMap }>;
  /** Delta: per type, resource name → version the node NACKed. */
  readonly rejectedResources: Map<string, Map<string, string>>;
  /**
   * Delta: per type, the last snapshot the node ACKed a response from. Snapshots are shared by
   * every node of a group, so this costs a reference per node, not a copy of its resources.
   */
  readonly acceptedSnapshots: Map<string, XdsSnapshot>;
  streams: number;
  lastSeen: number;
}

export function newNodeMemory(): NodeMemory {
  return {
    rejectedSets: new Map(),
    acceptedSets: new Map(),
    rejectedResources: new Map(),
    acceptedSnapshots: new Map(),
    streams: 0,
    lastSeen: Date.now(),
  };
}

/** What the stream needs from the server around it. */
export interface StreamHost {
  snapshot(group: string): XdsSnapshot | undefined;
  publishedAt(group: string): number | undefined;
  nodeMemory(nodeId: string): NodeMemory;
  onNack(info: NackInfo): void;
  onPush(typeUrl: string, group: string): void;
  onAck(typeUrl: string, group: string, latencySeconds: number | undefined): void;
  log: Logger;
}

export interface NackInfo {
  readonly nodeId: string;
  readonly group: string;
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
}

/** Thrown for a request the server cannot serve; the server ends the call with it. */
export class StreamError extends Error {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface SentResponse {
  readonly nonce: string;
  readonly version: string;
  /** Version of the snapshot the response came from (for push latency). */
  readonly snapshotVersion: string;
  /** SotW: the full set sent. Delta: the resources sent in this response. */
  readonly resources: ResourceMap;
  readonly setHash: string;
  /** Delta: names removed in this response. */
  readonly removed: readonly string[];
}

interface TypeState {
  wildcard: boolean;
  readonly names: Set<string>;
  /** Whether any request for this type arrived (a first request must be answered). */
  requested: boolean;
  /** The last response sent, until it is answered. */
  outstanding: SentResponse | undefined;
  /** Nonce of the last response sent on this stream for this type. */
  lastNonce: string;
  /** SotW: the set and subscription signature of the last response sent. */
  sentSet: ResourceMap;
  sentHash: string | undefined;
  sentSubscription: string;
  /** Delta: name → version the client has (from initial_resource_versions and our sends). */
  readonly known: Map<string, string>;
  /** Delta: names subscribed by the latest request that still need an answer. */
  readonly pendingSubscribe: Set<string>;
  /**
   * Delta, plain wildcard: the client holds exactly this snapshot's resources of the type, so
   * `known` is implicit (not materialised: no per-client copy of thousands of entries) and the
   * next push is the shared diff between two snapshots.
   */
  syncedWith: XdsSnapshot | undefined;
  /** Version the client last ACKed. */
  ackedVersion: string;
}

function newTypeState(): TypeState {
  return {
    wildcard: false,
    names: new Set(),
    requested: false,
    outstanding: undefined,
    lastNonce: '',
    sentSet: new Map(),
    sentHash: undefined,
    sentSubscription: '',
    known: new Map(),
    pendingSubscribe: new Set(),
    syncedWith: undefined,
    ackedVersion: '',
  };
}

const SOTW_RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';
const DELTA_RESPONSE = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

function setHash(resources: ResourceMap): string {
  const h = createHash('sha256');
  for (const name of [...resources.keys()].sort())
    h.update(name).update('\0').update(resources.get(name)!.version).update('\n');
  return h.digest('hex');
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

export abstract class AdsStream {
  nodeId = '';
  group = '';
  /** Node as sent by the client (for logs and the admin view). */
  node: ProtoObject | undefined;
  protected memory: NodeMemory | undefined;
  protected readonly types = new Map<string, TypeState>();
  private nonceCounter = 0;
  /** True while a new version's cluster/endpoint removals wait for listeners and routes. */
  protected holdRemovals = false;
  /** True while a new version's listeners and routes wait for warm clusters. */
  protected holdReferrers = false;
  private closed = false;

  constructor(
    protected readonly host: StreamHost,
    private readonly send: (bytes: Buffer) => void,
    readonly mode: 'sotw' | 'delta',
  ) {}

  /** Handles one request from the client. Throws StreamError to end the call. */
  onRequest(req: ProtoObject): void {
    if (this.closed) return;
    if (this.nodeId === '') this.identify(req);
    const typeUrl = str(req.type_url);
    if (typeUrl === '') throw new StreamError(3, 'request without type_url');
    let state = this.types.get(typeUrl);
    const first = state === undefined;
    if (state === undefined) {
      state = newTypeState();
      this.types.set(typeUrl, state);
    }
    const nonce = str(req.response_nonce);
    // Stale: answers a response that a newer one superseded. The newer one will be answered.
    if (nonce !== '' && nonce !== state.lastNonce) {
      if (this.host.log.isEnabled('debug')) {
        this.host.log.debug('stale request ignored', { node: this.nodeId, type: typeLabel(typeUrl), nonce });
      }
      return;
    }
    if (nonce !== '' && state.outstanding?.nonce === nonce) this.answer(typeUrl, state, state.outstanding, req);
    this.subscribe(typeUrl, state, req, first);
    state.requested = true;
    if (!(this.holdReferrers && REFERRER_TYPES.has(typeUrl))) this.pushType(typeUrl, state);
    this.maybeRelease();
  }

  /** The group's snapshot changed (or was deleted): push what changed, in order. */
  onSnapshot(): void {
    if (this.closed || this.nodeId === '') return;
    this.holdRemovals = true;
    this.holdReferrers = true;
    this.pushAll();
  }

  /** Pushes every type in order, honouring the holds, then releases what can be released. */
  private pushAll(): void {
    for (const typeUrl of inPushOrder(this.types.keys())) {
      if (this.holdReferrers && REFERRER_TYPES.has(typeUrl)) continue;
      this.pushType(typeUrl, this.types.get(typeUrl)!);
    }
    this.maybeRelease();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.disarmReleaseTimer();
    if (this.memory !== undefined) {
      this.memory.streams--;
      this.memory.lastSeen = Date.now();
    }
  }

  /** Per type: the version the client last ACKed (for the admin view and tests). */
  ackedVersions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [t, s] of this.types) out[typeLabel(t)] = s.ackedVersion;
    return out;
  }

  private identify(req: ProtoObject): void {
    const node = req.node as ProtoObject | undefined;
    const id = str(node?.id);
    const cluster = str(node?.cluster);
    if (id === '')
      throw new StreamError(
        3,
        'the first request must carry node.id (set it in the Envoy bootstrap or with --service-node)',
      );
    if (cluster === '') {
      throw new StreamError(
        3,
        `node "${id}" has no node.cluster: set it to the Gateway's namespace/name (envext bootstrap --gateway NS/NAME does)`,
      );
    }
    this.node = node;
    this.nodeId = id;
    this.group = cluster;
    this.memory = this.host.nodeMemory(id);
    this.memory.streams++;
    this.memory.lastSeen = Date.now();
  }

  private answer(typeUrl: string, state: TypeState, sent: SentResponse, req: ProtoObject): void {
    state.outstanding = undefined;
    const detail = req.error_detail as ProtoObject | undefined;
    if (detail !== undefined) {
      const message = str(detail.message);
      this.onRejected(typeUrl, state, sent);
      this.host.onNack({
        nodeId: this.nodeId,
        group: this.group,
        typeUrl,
        version: sent.version,
        nonce: sent.nonce,
        message,
      });
      return;
    }
    const previous = state.ackedVersion;
    state.ackedVersion = sent.version;
    this.onAccepted(typeUrl, state, sent);
    let latency: number | undefined;
    if (sent.snapshotVersion !== previous && this.host.snapshot(this.group)?.version === sent.snapshotVersion) {
      const at = this.host.publishedAt(this.group);
      if (at !== undefined) latency = (performance.now() - at) / 1000;
    }
    this.host.onAck(typeUrl, this.group, latency);
  }

  /**
   * Make-before-break, in two steps per new version:
   * 1. listeners and routes wait until the clusters were answered and the endpoints of every
   *    EDS cluster the client holds were subscribed and answered (new clusters are warm);
   * 2. cluster and endpoint removals wait until listeners and routes were answered.
   * Only types the client asked for are waited on; a timer releases both holds if a client
   * never completes a step, so a misbehaving client cannot freeze its own stream.
   */
  private maybeRelease(): void {
    if (this.holdReferrers && this.warm()) {
      this.holdReferrers = false;
      for (const typeUrl of inPushOrder(this.types.keys())) {
        if (REFERRER_TYPES.has(typeUrl)) this.pushType(typeUrl, this.types.get(typeUrl)!);
      }
    }
    if (this.holdRemovals && !this.holdReferrers) {
      for (const t of REFERRER_TYPES) if (this.types.get(t)?.outstanding !== undefined) return this.armReleaseTimer();
      this.holdRemovals = false;
      for (const typeUrl of inPushOrder(this.types.keys())) {
        if (DEFERRED_REMOVAL_TYPES.has(typeUrl)) this.pushType(typeUrl, this.types.get(typeUrl)!);
      }
    }
    if (this.holdReferrers || this.holdRemovals) this.armReleaseTimer();
    else this.disarmReleaseTimer();
  }

  /** Whether clusters and the endpoints they need were answered. */
  private warm(): boolean {
    const clusters = this.types.get(CLUSTER_TYPE);
    if (clusters?.outstanding !== undefined) return false;
    const endpoints = this.types.get(ENDPOINT_TYPE);
    if (endpoints === undefined || clusters === undefined) return true;
    if (endpoints.outstanding !== undefined) return false;
    if (endpoints.wildcard) return true;
    const snapshotClusters = this.currentResources(CLUSTER_TYPE).resources;
    for (const name of this.heldNames(CLUSTER_TYPE, clusters)) {
      const r = snapshotClusters.get(name);
      const eds = r === undefined ? undefined : edsServiceName(r);
      if (eds !== undefined && !endpoints.names.has(eds)) return false;
    }
    return true;
  }

  private releaseTimer: NodeJS.Timeout | undefined;

  private armReleaseTimer(): void {
    if (this.releaseTimer !== undefined) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (this.closed) return;
      this.host.log.warn('client did not answer in time; releasing make-before-break holds', { node: this.nodeId });
      this.holdReferrers = false;
      this.holdRemovals = false;
      this.pushAll();
    }, RELEASE_AFTER_MS);
    this.releaseTimer.unref();
  }

  private disarmReleaseTimer(): void {
    if (this.releaseTimer === undefined) return;
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
  }

  /** Names of the resources of this type the client holds (or was last sent). */
  protected abstract heldNames(typeUrl: string, state: TypeState): Iterable<string>;

  protected nextNonce(state: TypeState): string {
    state.lastNonce = String(++this.nonceCounter);
    return state.lastNonce;
  }

  protected write(bytes: Buffer): void {
    this.send(bytes);
  }

  protected currentResources(typeUrl: string): { version: string; resources: ResourceMap } {
    const snap = this.host.snapshot(this.group);
    return { version: snap?.version ?? '', resources: snap?.resources(typeUrl) ?? new Map() };
  }

  protected hasSnapshot(): boolean {
    return this.host.snapshot(this.group) !== undefined;
  }

  protected abstract subscribe(typeUrl: string, state: TypeState, req: ProtoObject, first: boolean): void;
  protected abstract pushType(typeUrl: string, state: TypeState): void;
  protected abstract onRejected(typeUrl: string, state: TypeState, sent: SentResponse): void;
  protected abstract onAccepted(typeUrl: string, state: TypeState, sent: SentResponse): void;
}

/** The state before anything was sent. */
const EMPTY_SNAPSHOT = new XdsSnapshot('', new Map());

interface SharedResponse {
  readonly nonce: string;
  readonly bytes: Buffer;
  readonly changed: ResourceMap;
  readonly removed: readonly string[];
}

/**
 * Responses every client in the same position gets byte for byte: SotW "all resources of the
 * type" per snapshot, and delta "from snapshot A to snapshot B". Built once, shared by all
 * clients (kept while the `from` snapshot is alive). Their nonces contain a character the
 * per-stream counter nonces never do, so they cannot collide on a stream.
 */
const sharedSotw = new WeakMap<XdsSnapshot, Map<string, SharedResponse>>();
const sharedDelta = new WeakMap<XdsSnapshot, WeakMap<XdsSnapshot, Map<string, SharedResponse>>>();

function sotwFull(snapshot: XdsSnapshot, typeUrl: string): SharedResponse {
  let byType = sharedSotw.get(snapshot);
  if (byType === undefined) {
    byType = new Map();
    sharedSotw.set(snapshot, byType);
  }
  let r = byType.get(typeUrl);
  if (r === undefined) {
    const nonce = `s${snapshot.version}`;
    const resources = snapshot.resources(typeUrl);
    const chunks: Uint8Array[] = [
      messageType(SOTW_RESPONSE).encode({ version_info: snapshot.version, type_url: typeUrl, nonce }).finish(),
    ];
    for (const e of resources.values()) chunks.push(e.sotwChunk());
    r = { nonce, bytes: Buffer.concat(chunks), changed: resources, removed: [] };
    byType.set(typeUrl, r);
  }
  return r;
}

function deltaDiff(from: XdsSnapshot, to: XdsSnapshot, typeUrl: string): SharedResponse {
  // Keyed by both snapshot objects: version strings repeat across caches (and EMPTY is shared).
  let byTo = sharedDelta.get(from);
  if (byTo === undefined) {
    byTo = new WeakMap();
    sharedDelta.set(from, byTo);
  }
  let byKey = byTo.get(to);
  if (byKey === undefined) {
    byKey = new Map();
    byTo.set(to, byKey);
  }
  const key = typeUrl;
  let r = byKey.get(key);
  if (r === undefined) {
    const before = from.resources(typeUrl);
    const after = to.resources(typeUrl);
    const changed = new Map<string, EncodedResource>();
    for (const [n, e] of after) if (before.get(n)?.version !== e.version) changed.set(n, e);
    const removed = [...before.keys()].filter((n) => !after.has(n)).sort();
    const nonce = `d${from.version}>${to.version}`;
    const chunks: Uint8Array[] = [
      messageType(DELTA_RESPONSE)
        .encode({ system_version_info: to.version, type_url: typeUrl, nonce, removed_resources: removed })
        .finish(),
    ];
    for (const e of changed.values()) chunks.push(e.deltaChunk());
    r = {
      nonce,
      bytes: changed.size === 0 && removed.length === 0 ? Buffer.alloc(0) : Buffer.concat(chunks),
      changed,
      removed,
    };
    byKey.set(key, r);
  }
  return r;
}

/** Whether `a` holds exactly the resources of `b` (the same encoded objects). */
function sameResources(a: ResourceMap, b: ResourceMap): boolean {
  if (a.size !== b.size) return false;
  for (const [n, r] of a) if (b.get(n) !== r) return false;
  return true;
}

/** State-of-the-world ADS (`StreamAggregatedResources`). */
export class SotwStream extends AdsStream {
  private readonly header = messageType(SOTW_RESPONSE);

  protected subscribe(typeUrl: string, state: TypeState, req: ProtoObject, first: boolean): void {
    const names = strings(req.resource_names);
    // Legacy wildcard: the first request for a full-state type with no names; it stays wildcard
    // while the names stay empty. `*` asks for the wildcard explicitly.
    const legacy = names.length === 0 && FULL_STATE_TYPES.has(typeUrl) && (first || state.wildcard);
    state.wildcard = legacy || names.includes('*');
    state.names.clear();
    for (const n of names) if (n !== '*') state.names.add(n);
  }

  private subscriptionKey(state: TypeState): string {
    return `${state.wildcard ? '*' : ''}|${[...state.names].sort().join(',')}`;
  }

  protected pushType(typeUrl: string, state: TypeState): void {
    if (!state.requested || !this.hasSnapshot()) return;
    const { version, resources } = this.currentResources(typeUrl);
    // A plain wildcard subscription (Envoy's LDS/CDS) shares the snapshot's own map and its
    // precomputed hash: no per-client copy or hash of thousands of entries.
    const plainWildcard = state.wildcard && state.names.size === 0;
    let desired: ResourceMap = resources;
    if (!plainWildcard) {
      const picked = new Map<string, EncodedResource>();
      if (state.wildcard) for (const [n, r] of resources) picked.set(n, r);
      for (const n of state.names) {
        const r = resources.get(n);
        if (r !== undefined) picked.set(n, r);
      }
      desired = picked;
    }
    // Make-before-break: while removals are held, keep what the client was last sent.
    let kept = false;
    if (this.holdRemovals && DEFERRED_REMOVAL_TYPES.has(typeUrl)) {
      let withKept: Map<string, EncodedResource> | undefined;
      for (const [n, r] of state.sentSet) {
        if (!desired.has(n) && (state.wildcard || state.names.has(n))) {
          withKept ??= new Map(desired);
          withKept.set(n, r);
          kept = true;
        }
      }
      if (withKept !== undefined) desired = withKept;
    }
    let hash = plainWildcard && !kept ? this.host.snapshot(this.group)!.typeHash(typeUrl) : setHash(desired);
    let sendVersion = kept ? `${version}-keep` : version;
    let sendSet: ResourceMap = desired;
    const subscription = this.subscriptionKey(state);
    const subscriptionChanged = subscription !== state.sentSubscription;
    const memory = this.memory!;
    if (memory.rejectedSets.get(typeUrl) === hash) {
      // This node rejected exactly this content. A fresh stream gets its last accepted set
      // instead (the node keeps working after a restart); otherwise nothing is resent.
      const accepted = memory.acceptedSets.get(typeUrl);
      if (state.sentHash !== undefined || accepted === undefined) {
        if (!subscriptionChanged || state.sentHash === undefined) return;
      } else {
        sendSet = accepted.resources;
        sendVersion = accepted.version;
        hash = setHash(sendSet);
      }
    }
    if (hash === state.sentHash && !subscriptionChanged) return;
    let nonce: string;
    let bytes: Buffer;
    const snapshot = this.host.snapshot(this.group)!;
    const shared = sendSet === resources && plainWildcard ? sotwFull(snapshot, typeUrl) : undefined;
    if (shared !== undefined && shared.nonce !== state.lastNonce) {
      nonce = shared.nonce;
      state.lastNonce = nonce;
      bytes = shared.bytes;
    } else {
      nonce = this.nextNonce(state);
      const head = this.header.encode({ version_info: sendVersion, type_url: typeUrl, nonce }).finish();
      const chunks: Uint8Array[] = [head];
      for (const r of sendSet.values()) chunks.push(r.sotwChunk());
      bytes = Buffer.concat(chunks);
    }
    state.sentSet = sendSet;
    state.sentHash = hash;
    state.sentSubscription = subscription;
    state.outstanding = {
      nonce,
      version: sendVersion,
      snapshotVersion: version,
      resources: sendSet,
      setHash: hash,
      removed: [],
    };
    this.write(bytes);
    this.host.onPush(typeUrl, this.group);
  }

  protected heldNames(_typeUrl: string, state: TypeState): Iterable<string> {
    return state.sentSet.keys();
  }

  protected onRejected(typeUrl: string, _state: TypeState, sent: SentResponse): void {
    this.memory!.rejectedSets.set(typeUrl, sent.setHash);
  }

  protected onAccepted(typeUrl: string, _state: TypeState, sent: SentResponse): void {
    const memory = this.memory!;
    memory.acceptedSets.set(typeUrl, { version: sent.version, resources: sent.resources });
    if (memory.rejectedSets.get(typeUrl) === sent.setHash) memory.rejectedSets.delete(typeUrl);
  }
}

/** Incremental ADS (`DeltaAggregatedResources`). */
export class DeltaStream extends AdsStream {
  private readonly header = messageType(DELTA_RESPONSE);

  /** Turns an implicit `known` (synced with a snapshot) into an explicit map. */
  private materialize(typeUrl: string, state: TypeState): void {
    const synced = state.syncedWith;
    if (synced === undefined) return;
    state.syncedWith = undefined;
    state.known.clear();
    for (const [n, r] of synced.resources(typeUrl))
      if (state.wildcard || state.names.has(n)) state.known.set(n, r.version);
  }

  protected subscribe(typeUrl: string, state: TypeState, req: ProtoObject, first: boolean): void {
    const sub = strings(req.resource_names_subscribe);
    const unsub = strings(req.resource_names_unsubscribe);
    if (!first && (sub.length > 0 || unsub.length > 0)) this.materialize(typeUrl, state);
    if (first) {
      // Legacy wildcard: no names in the first request for a full-state type.
      if (sub.length === 0 && FULL_STATE_TYPES.has(typeUrl)) state.wildcard = true;
      // Reconnect: what the client already has need not be resent (xds_protocol.rst).
      const initial = req.initial_resource_versions as Record<string, string> | undefined;
      if (initial !== undefined) for (const [n, v] of Object.entries(initial)) state.known.set(n, v);
    }
    // Names as the snapshot spells them (the same string objects): fifty clients subscribing to
    // thousands of endpoints would otherwise each keep their own copy of every name.
    const current = sub.length > 0 ? this.host.snapshot(this.group)?.resources(typeUrl) : undefined;
    for (const received of sub) {
      const n = current?.get(received)?.name ?? received;
      if (n === '*') state.wildcard = true;
      else {
        state.names.add(n);
        // An explicit subscription is answered even when the client already has the resource,
        // except on the first request, where initial_resource_versions says what it has.
        if (!first || !state.known.has(n)) state.pendingSubscribe.add(n);
      }
    }
    for (const n of unsub) {
      if (n === '*') state.wildcard = false;
      else {
        state.names.delete(n);
        state.pendingSubscribe.delete(n);
      }
    }
    // Forget what is no longer subscribed: the client drops it itself.
    if (!state.wildcard) for (const n of [...state.known.keys()]) if (!state.names.has(n)) state.known.delete(n);
    // A fresh plain-wildcard client holds nothing: it is "synced" with the empty snapshot.
    if (
      first &&
      state.wildcard &&
      state.names.size === 0 &&
      state.known.size === 0 &&
      state.pendingSubscribe.size === 0
    ) {
      state.syncedWith = EMPTY_SNAPSHOT;
    }
  }

  protected pushType(typeUrl: string, state: TypeState): void {
    if (!state.requested) return;
    const snap = this.host.snapshot(this.group);
    const rejected = this.memory!.rejectedResources.get(typeUrl);
    const hold = this.holdRemovals && DEFERRED_REMOVAL_TYPES.has(typeUrl);
    if (
      state.syncedWith !== undefined &&
      snap !== undefined &&
      state.pendingSubscribe.size === 0 &&
      (rejected === undefined || rejected.size === 0)
    ) {
      if (state.syncedWith === snap) return;
      const diff = deltaDiff(state.syncedWith, snap, typeUrl);
      // A client subscribed by name takes the shared diff only when it names everything in it
      // (a new cluster's endpoints wait for the client to subscribe to them).
      const covered =
        state.wildcard ||
        ([...diff.changed.keys()].every((n) => state.names.has(n)) && diff.removed.every((n) => state.names.has(n)));
      if (covered && !(hold && diff.removed.length > 0)) {
        state.syncedWith = snap;
        if (diff.changed.size === 0 && diff.removed.length === 0) return;
        state.lastNonce = diff.nonce;
        state.outstanding = {
          nonce: diff.nonce,
          version: snap.version,
          snapshotVersion: snap.version,
          resources: diff.changed,
          setHash: '',
          removed: diff.removed,
        };
        this.write(diff.bytes);
        this.host.onPush(typeUrl, this.group);
        return;
      }
    }
    this.materialize(typeUrl, state);
    if (snap === undefined && state.known.size === 0 && state.pendingSubscribe.size === 0) return;
    const { version, resources } = this.currentResources(typeUrl);
    const accepted = this.memory!.acceptedSnapshots.get(typeUrl)?.resources(typeUrl);
    const send = new Map<string, EncodedResource>();
    let skipped = false;
    const consider = (n: string): void => {
      const r = resources.get(n);
      if (r === undefined) return;
      const explicit = state.pendingSubscribe.has(n);
      if (!explicit && state.known.get(n) === r.version) return;
      if (rejected?.get(n) === r.version) {
        skipped = true;
        // This node rejected exactly this resource: never resend it. A client that does not
        // hold the resource at all (a fresh stream) gets the node's last accepted version.
        const good = accepted?.get(n);
        if (!state.known.has(n) && good !== undefined && good.version !== r.version) send.set(n, good);
        return;
      }
      send.set(n, r);
    };
    if (state.wildcard) for (const n of resources.keys()) consider(n);
    for (const n of state.names) consider(n);
    const removed: string[] = [];
    for (const n of state.known.keys()) {
      if (!resources.has(n) && !hold) removed.push(n);
    }
    // A subscription to a resource that does not exist is answered with its removal.
    for (const n of state.pendingSubscribe) if (!resources.has(n) && !removed.includes(n)) removed.push(n);
    state.pendingSubscribe.clear();
    if (send.size === 0 && removed.length === 0) {
      this.resync(state, snap, resources, skipped);
      return;
    }
    removed.sort();
    // A client asking for every resource of the type by name (Envoy's EDS: one name per
    // cluster) gets the response every such client gets, built once: fifty Envoys syncing
    // thousands of endpoints then share one buffer instead of holding fifty copies.
    const everything =
      snap !== undefined && removed.length === 0 && send.size === resources.size && version === snap.version
        ? deltaDiff(EMPTY_SNAPSHOT, snap, typeUrl)
        : undefined;
    let nonce: string;
    let bytes: Buffer;
    if (everything !== undefined && everything.nonce !== state.lastNonce && sameResources(send, resources)) {
      nonce = everything.nonce;
      state.lastNonce = nonce;
      bytes = everything.bytes;
      for (const r of send.values()) state.known.set(r.name, r.version);
    } else {
      nonce = this.nextNonce(state);
      const head = this.header
        .encode({ system_version_info: version, type_url: typeUrl, nonce, removed_resources: removed })
        .finish();
      const chunks: Uint8Array[] = [head];
      for (const r of send.values()) {
        chunks.push(r.deltaChunk());
        state.known.set(r.name, r.version);
      }
      bytes = Buffer.concat(chunks);
    }
    for (const n of removed) state.known.delete(n);
    state.outstanding = { nonce, version, snapshotVersion: version, resources: send, setHash: '', removed };
    this.write(bytes);
    this.host.onPush(typeUrl, this.group);
    this.resync(state, snap, resources, skipped);
  }

  /**
   * After a full diff: a client holding exactly the snapshot's resources of the type — plain
   * wildcard, or subscribed by name to every one of them (Envoy's EDS) — goes back to implicit
   * state (no per-client map of thousands of name → version entries).
   */
  private resync(state: TypeState, snap: XdsSnapshot | undefined, resources: ResourceMap, skipped: boolean): void {
    if (snap === undefined || skipped || state.known.size !== resources.size) return;
    // Plain wildcard, or subscribed by name to exactly every resource of the type (Envoy's EDS).
    if (state.wildcard ? state.names.size > 0 : state.names.size !== resources.size) return;
    for (const [n, v] of state.known) if (resources.get(n)?.version !== v) return;
    if (!state.wildcard) for (const n of state.names) if (!resources.has(n)) return;
    state.syncedWith = snap;
    state.known.clear();
  }

  protected heldNames(typeUrl: string, state: TypeState): Iterable<string> {
    if (state.syncedWith === undefined) return state.known.keys();
    const names = state.syncedWith.resources(typeUrl).keys();
    return state.wildcard ? names : [...names].filter((n) => state.names.has(n));
  }

  protected onRejected(typeUrl: string, _state: TypeState, sent: SentResponse): void {
    const memory = this.memory!;
    let rejected = memory.rejectedResources.get(typeUrl);
    if (rejected === undefined) {
      rejected = new Map();
      memory.rejectedResources.set(typeUrl, rejected);
    }
    for (const [n, r] of sent.resources) rejected.set(n, r.version);
  }

  protected onAccepted(typeUrl: string, _state: TypeState, sent: SentResponse): void {
    const memory = this.memory!;
    const snapshot = this.host.snapshot(this.group);
    if (snapshot?.version === sent.snapshotVersion) memory.acceptedSnapshots.set(typeUrl, snapshot);
    const rejected = memory.rejectedResources.get(typeUrl);
    if (rejected === undefined) return;
    for (const [n, r] of sent.resources) if (rejected.get(n) === r.version) rejected.delete(n);
  }
}
