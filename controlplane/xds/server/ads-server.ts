/**
 * The ADS server: `envoy.service.discovery.v3.AggregatedDiscoveryService` on @grpc/grpc-js, both
 * `StreamAggregatedResources` (state of the world) and `DeltaAggregatedResources` (incremental),
 * serving each client the snapshot of its node group (`node.cluster`) from a SnapshotCache.
 *
 * Shaped after Envoy Gateway's xDS runner: keepalive enforcement (min ping interval 15 s),
 * connections aged out after 10–12 h (random, so proxies spread over replicas after a
 * rollout) with 2 min grace, 32 MiB receive limit, optional TLS or mTLS.
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { EnvextError, errorMessage } from '../../../common/errors.js';
import { rootLogger, type Logger } from '../../../common/log.js';
import { serviceDefinition, type ProtoObject } from '../../../proto/index.js';
import type { SnapshotCache } from './cache.js';
import { createXdsMetrics, type XdsMetrics } from './metrics.js';
import {
  type AdsStream,
  DeltaStream,
  SotwStream,
  StreamError,
  newNodeMemory,
  type NackInfo,
  type NodeMemory,
  type StreamHost,
} from './stream.js';
import { typeLabel } from './types.js';

const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** TLS for the xDS port. With `ca`, clients must present a certificate signed by it (mTLS). */
export interface XdsTlsOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

export interface AdsServerOptions {
  readonly cache: SnapshotCache;
  /** Metrics registry; a private one when absent. */
  readonly registry?: Registry;
  readonly log?: Logger;
  /** How long a node's NACK/ACK memory outlives its last stream (default 1 h). */
  readonly nodeMemoryTtlMs?: number;
}

/** A connected client, for `/debug` output and tests. */
export interface ClientInfo {
  readonly nodeId: string;
  readonly group: string;
  readonly mode: 'sotw' | 'delta';
  readonly acked: Record<string, string>;
}

export class AdsServer {
  readonly metrics: XdsMetrics;
  readonly registry: Registry;
  private readonly log: Logger;
  private readonly streams = new Set<AdsStream>();
  private readonly memories = new Map<string, NodeMemory>();
  private readonly nodeMemoryTtlMs: number;
  private server: grpc.Server | undefined;
  private readonly unsubscribe: () => void;
  private readonly host: StreamHost;

  constructor(private readonly options: AdsServerOptions) {
    this.registry = options.registry ?? new Registry();
    this.metrics = createXdsMetrics(this.registry);
    this.log = options.log ?? rootLogger.child({ component: 'xds' });
    this.nodeMemoryTtlMs = options.nodeMemoryTtlMs ?? 3_600_000;
    const cache = options.cache;
    this.host = {
      snapshot: (g) => cache.get(g),
      publishedAt: (g) => cache.publishedAt(g),
      nodeMemory: (id) => this.memoryOf(id),
      onNack: (info) => this.onNack(info),
      onPush: (t) => this.metrics.pushes.inc({ type: typeLabel(t) }),
      onAck: (t, _g, latency) => {
        this.metrics.acks.inc({ type: typeLabel(t) });
        if (latency !== undefined) this.metrics.pushLatency.observe({ type: typeLabel(t) }, latency);
      },
      log: this.log,
    };
    this.unsubscribe = cache.subscribe((group, snapshot) => {
      if (snapshot !== undefined) this.metrics.snapshots.inc({ group });
      for (const s of this.streams) if (s.group === group) s.onSnapshot();
    });
  }

  /**
   * Starts serving on `address` (`host:port`, port 0 for any free port, or `unix:/path`).
   * Resolves to the bound port (0 for Unix sockets).
   */
  async listen(address: string, tls?: XdsTlsOptions): Promise<number> {
    if (this.server !== undefined)
      throw new EnvextError('XDS_ALREADY_LISTENING', 'the xDS server is already listening');
    const ageMs = (10 + Math.floor(Math.random() * 3)) * 3_600_000;
    const server = new grpc.Server({
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 15_000,
      'grpc.max_receive_message_length': 32 * 1024 * 1024,
      'grpc.max_send_message_length': -1,
      'grpc.max_connection_age_ms': ageMs,
      'grpc.max_connection_age_grace_ms': 120_000,
    });
    server.addService(adsDefinition(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<ProtoObject, Buffer>) => this.serve(call, 'sotw'),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<ProtoObject, Buffer>) => this.serve(call, 'delta'),
    });
    const creds =
      tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(
            tls.ca ?? null,
            [{ private_key: tls.key, cert_chain: tls.cert }],
            tls.ca !== undefined,
          );
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, creds, (error, bound) => {
        if (error) {
          reject(
            new EnvextError('XDS_LISTEN_FAILED', `cannot listen for xDS on ${address}: ${error.message}`, {
              hint: 'pick another --xds-address or stop what holds the port',
              cause: error,
            }),
          );
        } else resolve(bound);
      });
    });
    this.server = server;
    return port;
  }

  /** Connected clients, sorted by node id. */
  clients(): ClientInfo[] {
    return [...this.streams]
      .filter((s) => s.nodeId !== '')
      .map((s) => ({ nodeId: s.nodeId, group: s.group, mode: s.mode, acked: s.ackedVersions() }))
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Stops accepting streams; open streams are cancelled after `graceMs`. */
  async close(graceMs = 2_000): Promise<void> {
    this.unsubscribe();
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
      // Open ADS streams never end on their own; end them so tryShutdown can finish.
      for (const s of this.streams) s.close();
      for (const end of this.enders) end();
    });
  }

  private readonly enders = new Set<() => void>();
  private readonly gate = new WriteGate(4, 2_000);

  private serve(call: grpc.ServerDuplexStream<ProtoObject, Buffer>, mode: 'sotw' | 'delta'): void {
    let done = false;
    // Writes go out in order, one at a time per stream; large ones (a full snapshot) also take
    // a slot of the server-wide gate, so fifty clients syncing at once do not each hold a
    // framed multi-megabyte copy in memory at the same moment.
    const queue: Buffer[] = [];
    let writing = false;
    const pump = (): void => {
      if (writing || queue.length === 0 || done) return;
      const bytes = queue.shift()!;
      const big = bytes.length >= LARGE_WRITE_BYTES;
      const go = (release: () => void): void => {
        if (done) {
          release();
          return;
        }
        writing = true;
        call.write(bytes, () => {
          writing = false;
          release();
          pump();
        });
      };
      if (big) this.gate.run(go);
      else go(() => undefined);
    };
    const send = (bytes: Buffer): void => {
      queue.push(bytes);
      pump();
    };
    const stream = mode === 'sotw' ? new SotwStream(this.host, send, mode) : new DeltaStream(this.host, send, mode);
    this.streams.add(stream);
    this.metrics.clients.inc({ mode });
    const finish = (): void => {
      if (done) return;
      done = true;
      stream.close();
      this.streams.delete(stream);
      this.enders.delete(end);
      this.metrics.clients.dec({ mode });
      if (stream.nodeId !== '')
        this.log.info('client disconnected', { node: stream.nodeId, group: stream.group, mode });
      this.sweepMemories();
    };
    const end = (): void => {
      finish();
      call.end();
    };
    this.enders.add(end);
    call.on('data', (req: ProtoObject) => {
      const known = stream.nodeId !== '';
      try {
        stream.onRequest(req);
      } catch (e: unknown) {
        const code = e instanceof StreamError ? e.grpcCode : grpc.status.INTERNAL;
        this.log.warn('xDS stream rejected', { node: stream.nodeId, error: errorMessage(e) });
        finish();
        call.emit('error', Object.assign(new Error(errorMessage(e)), { code, details: errorMessage(e) }));
        return;
      }
      if (!known && stream.nodeId !== '') {
        this.log.info('client connected', { node: stream.nodeId, group: stream.group, mode });
        if (this.options.cache.get(stream.group) === undefined) {
          this.log.warn('no snapshot for this node group yet; the client waits', {
            node: stream.nodeId,
            group: stream.group,
            groups: this.options.cache.groupNames().join(',') || '(none)',
          });
        }
      }
    });
    call.on('end', () => {
      finish();
      call.end();
    });
    call.on('error', () => finish());
    call.on('cancelled', () => finish());
    call.on('close', () => finish());
  }

  private onNack(info: NackInfo): void {
    this.metrics.nacks.inc({ type: typeLabel(info.typeUrl), group: info.group });
    this.log.warn('client rejected config (NACK); it keeps its last accepted version and this one is not resent', {
      node: info.nodeId,
      group: info.group,
      type: typeLabel(info.typeUrl),
      version: info.version,
      nonce: info.nonce,
      error: info.message,
    });
  }

  private memoryOf(nodeId: string): NodeMemory {
    let m = this.memories.get(nodeId);
    if (m === undefined) {
      m = newNodeMemory();
      this.memories.set(nodeId, m);
    }
    return m;
  }

  /** Forgets nodes that have had no stream for longer than the TTL. */
  private sweepMemories(): void {
    const cutoff = Date.now() - this.nodeMemoryTtlMs;
    for (const [id, m] of this.memories) if (m.streams <= 0 && m.lastSeen < cutoff) this.memories.delete(id);
  }
}

/** Responses at least this large go through the server-wide write gate. */
const LARGE_WRITE_BYTES = 256 * 1024;

/**
 * At most `slots` large writes in flight. A slot is released when the write completes, or
 * after `maxHoldMs` so a client that stops reading cannot hold everybody else up.
 */
class WriteGate {
  private active = 0;
  private readonly waiting: ((release: () => void) => void)[] = [];

  constructor(
    private readonly slots: number,
    private readonly maxHoldMs: number,
  ) {}

  run(fn: (release: () => void) => void): void {
    if (this.active >= this.slots) {
      this.waiting.push(fn);
      return;
    }
    this.active++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.active--;
      const next = this.waiting.shift();
      if (next !== undefined) this.run(next);
    };
    const timer = setTimeout(release, this.maxHoldMs);
    timer.unref();
    fn(release);
  }
}

let definition: grpc.ServiceDefinition | undefined;

/**
 * The ADS service definition with a response serializer that passes pre-encoded bytes through
 * (responses are assembled from chunks encoded once per snapshot; see snapshot.ts).
 */
function adsDefinition(): grpc.ServiceDefinition {
  if (definition !== undefined) return definition;
  const base = serviceDefinition(ADS_SERVICE);
  const out: Record<string, grpc.MethodDefinition<ProtoObject, Buffer | ProtoObject>> = {};
  for (const [name, method] of Object.entries(base)) {
    const m = method as grpc.MethodDefinition<ProtoObject, ProtoObject>;
    out[name] = {
      ...m,
      responseSerialize: (value: Buffer | ProtoObject) => (Buffer.isBuffer(value) ? value : m.responseSerialize(value)),
      responseDeserialize: m.responseDeserialize,
    };
  }
  definition = out;
  return definition;
}
