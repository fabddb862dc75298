/**
 * Writes translation statuses to the status subresource, the way Envoy Gateway's
 * `UpdateHandler` does (reference §1.8): GET the live object → merge our part of the status →
 * skip when equal → PUT `/status` with the object's resourceVersion → on 409 Conflict, read again
 * and retry (exponential backoff, 5 tries). Only the leader writes; a follower keeps the latest
 * desired statuses and writes them when it becomes leader.
 *
 * Merging keeps what other controllers own: route `parents` and policy `ancestors` entries with
 * another `controllerName` stay as they are. A condition whose type, status, reason, message and
 * observedGeneration did not change keeps its `lastTransitionTime`, so re-translating the same
 * input writes nothing (no status churn).
 */
import * as k8s from '@kubernetes/client-node';
import { rootLogger, type Logger } from '../../../common/log.js';
import { errorMessage } from '../../../common/errors.js';
import { kindInfo, type KindInfo } from './kinds.js';

/** One resource's desired status (the shape `translateGatewayApi` returns). */
export interface StatusUpdate {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly status: object;
}

export interface StatusWriterOptions {
  readonly kubeConfig: k8s.KubeConfig;
  readonly controllerName: string;
  readonly log?: Logger;
  /** Conflict retries (default 5) and the first backoff (default 50 ms, doubling). */
  readonly retries?: number;
  readonly backoffMs?: number;
  /** Clock for lastTransitionTime (tests). */
  readonly now?: () => Date;
}

type Obj = Record<string, unknown>;

interface Condition extends Obj {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface WriteStats {
  written: number;
  unchanged: number;
  conflicts: number;
  failed: number;
  missing: number;
}

export class StatusWriter {
  private readonly api: k8s.CustomObjectsApi;
  private readonly log: Logger;
  private readonly desired = new Map<string, StatusUpdate>();
  /** JSON of the desired status last applied successfully (skip identical requests). */
  private readonly applied = new Map<string, string>();
  private leader = false;
  private running: Promise<void> = Promise.resolve();
  readonly stats: WriteStats = { written: 0, unchanged: 0, conflicts: 0, failed: 0, missing: 0 };

  constructor(private readonly options: StatusWriterOptions) {
    this.api = options.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.log = options.log ?? rootLogger.child({ component: 'status-writer' });
  }

  /** Leader election calls this; becoming leader writes everything pending. */
  setLeader(leader: boolean): Promise<void> {
    this.leader = leader;
    if (leader) this.applied.clear();
    return this.flush();
  }

  /** Records the statuses of one translation and writes the changed ones (when leader). */
  update(statuses: readonly StatusUpdate[]): Promise<void> {
    for (const s of statuses) this.desired.set(keyOf(s), s);
    return this.flush();
  }

  /** Resolves when every write queued so far has finished. */
  idle(): Promise<void> {
    return this.running;
  }

  private flush(): Promise<void> {
    // One writer loop at a time, in order; a new flush waits for the previous one.
    this.running = this.running.then(() => this.writeAll());
    return this.running;
  }

  private async writeAll(): Promise<void> {
    if (!this.leader) return;
    for (const [key, s] of this.desired) {
      const json = JSON.stringify(s.status);
      if (this.applied.get(key) === json) continue;
      const ok = await this.writeOne(s);
      if (ok) this.applied.set(key, json);
    }
  }

  private async writeOne(s: StatusUpdate): Promise<boolean> {
    const info = kindInfo(s.kind);
    if (info === undefined || !info.status) {
      this.log.warn('no status subresource for this kind; status not written', { kind: s.kind, name: s.name });
      return true;
    }
    const retries = this.options.retries ?? 5;
    let backoff = this.options.backoffMs ?? 50;
    for (let attempt = 0; ; attempt++) {
      try {
        const live = (await this.get(info, s)) as Obj;
        const current = (live.status ?? {}) as Obj;
        const merged = mergeStatus(
          s.kind,
          current,
          s.status as Obj,
          this.options.controllerName,
          this.options.now?.() ?? new Date(),
        );
        if (canonical(merged) === canonical(current)) {
          this.stats.unchanged++;
          return true;
        }
        await this.put(info, s, { ...live, status: merged });
        this.stats.written++;
        this.log.debug('status written', { kind: s.kind, name: where(s) });
        return true;
      } catch (e: unknown) {
        const code = e instanceof k8s.ApiException ? e.code : undefined;
        if (code === 404) {
          this.stats.missing++;
          return true; // deleted meanwhile: nothing to write
        }
        if (code === 409 && attempt < retries) {
          this.stats.conflicts++;
          await new Promise((r) => setTimeout(r, backoff));
          backoff *= 2;
          continue;
        }
        this.stats.failed++;
        this.log.warn('status write failed', { kind: s.kind, name: where(s), error: errorMessage(e), code });
        return false;
      }
    }
  }

  private get(info: KindInfo, s: StatusUpdate): Promise<object> {
    const { group, version, plural } = info;
    return info.namespaced
      ? this.api.getNamespacedCustomObject({ group, version, plural, namespace: s.namespace ?? '', name: s.name })
      : this.api.getClusterCustomObject({ group, version, plural, name: s.name });
  }

  private put(info: KindInfo, s: StatusUpdate, body: object): Promise<object> {
    const { group, version, plural } = info;
    return info.namespaced
      ? this.api.replaceNamespacedCustomObjectStatus({
          group,
          version,
          plural,
          namespace: s.namespace ?? '',
          name: s.name,
          body,
        })
      : this.api.replaceClusterCustomObjectStatus({ group, version, plural, name: s.name, body });
  }
}

/** JSON with sorted object keys: a real apiserver returns custom resources with sorted keys. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const sorted: Obj = {};
    for (const key of Object.keys(value).sort()) sorted[key] = (value as Obj)[key];
    return sorted;
  });
}

function keyOf(s: StatusUpdate): string {
  return `${s.kind}/${s.namespace ?? ''}/${s.name}`;
}

function where(s: StatusUpdate): string {
  return s.namespace === undefined ? s.name : `${s.namespace}/${s.name}`;
}

function conditionsOf(v: unknown): Condition[] {
  return Array.isArray(v) ? (v as Condition[]) : [];
}

/** Keeps `lastTransitionTime` of unchanged conditions; stamps changed ones with `now`. */
export function carryTransitionTimes(
  next: readonly Condition[],
  previous: readonly Condition[],
  now: Date,
): Condition[] {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return next.map((c) => {
    const old = previous.find((p) => p.type === c.type);
    const same =
      old !== undefined &&
      old.status === c.status &&
      old.reason === c.reason &&
      old.message === c.message &&
      old.observedGeneration === c.observedGeneration;
    return { ...c, lastTransitionTime: same && old.lastTransitionTime !== undefined ? old.lastTransitionTime : stamp };
  });
}

/**
 * Our desired status merged into the live one: whole-object kinds get their conditions (and
 * listeners) replaced; routes and policies get only the entries of our controller replaced.
 */
export function mergeStatus(kind: string, live: Obj, desired: Obj, controllerName: string, now: Date): Obj {
  if (kind === 'HTTPRoute' || kind === 'GRPCRoute' || kind === 'EnvoyExtensionPolicy') {
    const field = kind === 'EnvoyExtensionPolicy' ? 'ancestors' : 'parents';
    const refField = kind === 'EnvoyExtensionPolicy' ? 'ancestorRef' : 'parentRef';
    const liveEntries = Array.isArray(live[field]) ? (live[field] as Obj[]) : [];
    const ours = (Array.isArray(desired[field]) ? (desired[field] as Obj[]) : []).map((entry) => {
      const old = liveEntries.find(
        (l) => l.controllerName === entry.controllerName && canonical(l[refField]) === canonical(entry[refField]),
      );
      return {
        ...entry,
        conditions: carryTransitionTimes(conditionsOf(entry.conditions), conditionsOf(old?.conditions), now),
      };
    });
    const others = liveEntries.filter((l) => l.controllerName !== controllerName);
    const merged: Obj = { ...live, [field]: [...others, ...ours] };
    if ((merged[field] as Obj[]).length === 0) delete merged[field];
    return merged;
  }
  const merged: Obj = {
    ...live,
    ...desired,
    conditions: carryTransitionTimes(conditionsOf(desired.conditions), conditionsOf(live.conditions), now),
  };
  if (Array.isArray(desired.listeners)) {
    const liveListeners = Array.isArray(live.listeners) ? (live.listeners as Obj[]) : [];
    merged.listeners = (desired.listeners as Obj[]).map((l) => ({
      ...l,
      conditions: carryTransitionTimes(
        conditionsOf(l.conditions),
        conditionsOf(liveListeners.find((x) => x.name === l.name)?.conditions),
        now,
      ),
    }));
  }
  return merged;
}
