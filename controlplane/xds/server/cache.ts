/**
 * Snapshot cache: the latest snapshot per node group.
 *
 * A node group is the value of Envoy's `node.cluster` (`--service-cluster`); Envoy Gateway uses
 * the Gateway's `namespace/name` there, and so do we. Every client whose `node.cluster` equals
 * the key gets that key's snapshot, including clients that connect later (EG's
 * `lastSnapshot[irKey]`). Storing content equal to the current snapshot changes nothing and
 * wakes nobody (EG's `watchable.Map` deep-equal suppression).
 */
import { buildSnapshot, type XdsResourcesInput, type XdsSnapshot } from './snapshot.js';

export type SnapshotListener = (group: string, snapshot: XdsSnapshot | undefined) => void;

export interface SetResult {
  /** The group's snapshot version after the call. */
  readonly version: string;
  /** False when the content equalled the current snapshot (nothing was published). */
  readonly changed: boolean;
}

export class SnapshotCache {
  private counter = 0;
  private readonly groups = new Map<string, XdsSnapshot>();
  private readonly published = new Map<string, number>();
  private readonly listeners = new Set<SnapshotListener>();

  /** Encodes `resources` and publishes them as the group's new snapshot when they differ. */
  set(group: string, resources: XdsResourcesInput): SetResult {
    const current = this.groups.get(group);
    // Encoding reuses unchanged resources of the current snapshot (and their encoded chunks).
    const candidate = buildSnapshot('', resources, current);
    if (current !== undefined && current.contentHash === candidate.contentHash) {
      return { version: current.version, changed: false };
    }
    // One counter for every group, so a version never repeats within a process, even after a
    // group is deleted and comes back.
    const snapshot = candidate.withVersion(String(++this.counter));
    this.groups.set(group, snapshot);
    this.published.set(group, performance.now());
    for (const fn of this.listeners) fn(group, snapshot);
    return { version: snapshot.version, changed: true };
  }

  /** Removes a group: its clients are told every resource is gone. */
  delete(group: string): boolean {
    if (!this.groups.delete(group)) return false;
    this.published.delete(group);
    for (const fn of this.listeners) fn(group, undefined);
    return true;
  }

  get(group: string): XdsSnapshot | undefined {
    return this.groups.get(group);
  }

  /** `performance.now()` when the group's current snapshot was published (for push latency). */
  publishedAt(group: string): number | undefined {
    return this.published.get(group);
  }

  groupNames(): string[] {
    return [...this.groups.keys()].sort();
  }

  /** Calls `fn` on every publish and delete; returns the unsubscribe function. */
  subscribe(fn: SnapshotListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
