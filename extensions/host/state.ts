/**
 * Host-wide state that outlives one VM instance, as in Envoy: metrics are Envoy stats, shared data
 * and queues live in the process keyed by vm_id, logs go to Envoy's log. A reloaded VM (failure
 * policy `FAIL_RELOAD`) keeps all of it.
 */
import { type GuestLogLevel, type MetricType } from './abi.js';

/** A clock the host reads for `proxy_get_current_time_nanoseconds` and WASI clocks. */
export interface Clock {
  /** Wall-clock nanoseconds since the epoch. */
  nowNs(): bigint;
  /** Monotonic nanoseconds. */
  monotonicNs(): bigint;
}

/** A clock the emulator moves by hand, so ticks, timeouts and time are deterministic. */
export class VirtualClock implements Clock {
  private ns: bigint;
  private readonly startNs: bigint;
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.ns = BigInt(startMs) * 1_000_000n;
    this.startNs = this.ns;
  }
  nowNs(): bigint {
    return this.ns;
  }
  monotonicNs(): bigint {
    return this.ns - this.startNs;
  }
  /** Moves time forward by `ms` milliseconds (fractions allowed down to 1 ns). */
  advance(ms: number): void {
    this.ns += BigInt(Math.round(ms * 1e6));
  }
}

/** The real clock (`envext wasm run`). */
export const systemClock: Clock = {
  nowNs: () => BigInt(Date.now()) * 1_000_000n,
  monotonicNs: () => process.hrtime.bigint(),
};

export interface LogEntry {
  readonly level: GuestLogLevel;
  readonly message: string;
  /** The context the guest was running in (the effective context). */
  readonly contextId: number;
}

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface Metric {
  readonly id: number;
  readonly name: string;
  readonly kind: MetricKind;
  /** Counter/gauge value; i64 arrives from the guest as BigInt and stays BigInt. */
  value: bigint;
  /** Histogram samples, in order. */
  readonly samples: bigint[];
}

const KIND_BY_TYPE: readonly MetricKind[] = ['counter', 'gauge', 'histogram'];

/** Stats defined by guests. Ids carry the type in the low 2 bits (counter 4, 8…; gauge 5, 9…). */
export class MetricStore {
  private readonly byId = new Map<number, Metric>();
  private readonly byName = new Map<string, Metric>();
  private readonly next = [0, 0, 0];

  /** `proxy_define_metric`: redefining a name of the same type returns the same id. */
  define(type: MetricType, name: string): Metric {
    const kind = KIND_BY_TYPE[type]!;
    const key = `${kind}\0${name}`;
    const existing = this.byName.get(key);
    if (existing !== undefined) return existing;
    const n = ++this.next[type]!;
    const m: Metric = { id: (n << 2) | type, name, kind, value: 0n, samples: [] };
    this.byId.set(m.id, m);
    this.byName.set(key, m);
    return m;
  }

  get(id: number): Metric | undefined {
    return this.byId.get(id);
  }

  find(name: string, kind?: MetricKind): Metric | undefined {
    for (const m of this.byId.values()) if (m.name === name && (kind === undefined || m.kind === kind)) return m;
    return undefined;
  }

  all(): Metric[] {
    return [...this.byId.values()];
  }
}

export interface SharedValue {
  readonly value: Uint8Array;
  readonly cas: number;
}

export interface SharedQueue {
  readonly id: number;
  readonly vmId: string;
  readonly name: string;
  readonly items: Uint8Array[];
  /** Who registered it: `proxy_on_queue_ready` goes to this root context. */
  owner: { readonly notify: (rootContextId: number, queueId: number) => void; readonly rootContextId: number };
}

/** Shared data (with CAS) and shared queues, keyed by vm_id; one per process in Envoy. */
export class SharedState {
  private readonly data = new Map<string, SharedValue>();
  private cas = 0;
  private readonly queues = new Map<string, SharedQueue>();
  private readonly queuesById = new Map<number, SharedQueue>();
  private nextQueueId = 0;

  getData(vmId: string, key: string): SharedValue | undefined {
    return this.data.get(`${vmId}\0${key}`);
  }

  /** Returns false on a CAS mismatch (`cas` ≠ 0 and ≠ the current one; a new key always succeeds). */
  setData(vmId: string, key: string, value: Uint8Array, cas: number): boolean {
    const k = `${vmId}\0${key}`;
    const cur = this.data.get(k);
    if (cas !== 0 && cur !== undefined && cur.cas !== cas) return false;
    this.cas = this.cas >= 0xffffffff ? 1 : this.cas + 1;
    this.data.set(k, { value: Uint8Array.from(value), cas: this.cas });
    return true;
  }

  dataKeys(vmId: string): string[] {
    const p = `${vmId}\0`;
    return [...this.data.keys()].filter((k) => k.startsWith(p)).map((k) => k.slice(p.length));
  }

  registerQueue(vmId: string, name: string, owner: SharedQueue['owner']): SharedQueue {
    const k = `${vmId}\0${name}`;
    const q = this.queues.get(k);
    if (q !== undefined) {
      q.owner = owner;
      return q;
    }
    const created: SharedQueue = { id: ++this.nextQueueId, vmId, name, items: [], owner };
    this.queues.set(k, created);
    this.queuesById.set(created.id, created);
    return created;
  }

  resolveQueue(vmId: string, name: string): SharedQueue | undefined {
    return this.queues.get(`${vmId}\0${name}`);
  }

  queue(id: number): SharedQueue | undefined {
    return this.queuesById.get(id);
  }
}
