/**
 * The ResourceSnapshot: every resource a provider currently sees, immutable, keyed by
 * kind → `namespace/name` (or `name` for cluster-scoped kinds). Every provider (file,
 * kubernetes) produces one per change and hands it to `translateGatewayApi`; nothing mutates a
 * snapshot after `build()`.
 *
 * Resources in a snapshot have passed their schema (api/schemas.ts): the translator can trust
 * their shape. Objects that failed it are kept in `rejected` with every problem, so the
 * translator can report them (status conditions, logs) instead of losing them silently.
 */
import type { Problem } from '../../common/errors.js';
import type { ValidateOptions } from '../api/schema.js';
import { parseResource } from '../api/validate.js';
import { CLUSTER_SCOPED, RESOURCE_KINDS, type ResourceByKind, type ResourceKind } from '../api/types.js';

/** A resource that could not be used: its identity as far as known, and why. */
export interface RejectedResource {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** Where it came from: `file.yaml:12`, `kubernetes`. */
  readonly source: string;
  /** True for kinds envext knows but does not translate yet (ListenerSet, BackendTLSPolicy, …). */
  readonly unsupported: boolean;
  readonly problems: readonly Problem[];
  /** The object as read (so unsupported kinds can still be named in conditions). */
  readonly value: unknown;
}

export type ResourceMaps = { readonly [K in ResourceKind]: ReadonlyMap<string, ResourceByKind[K]> };

export interface ResourceSnapshot {
  /** Typed, validated resources per kind, keyed by `namespace/name` (`name` when cluster-scoped). */
  readonly resources: ResourceMaps;
  /** Objects that failed validation or are of kinds not supported yet. */
  readonly rejected: readonly RejectedResource[];
  /** Monotonic per provider; 0 for one-off snapshots (`envext translate`). */
  readonly revision: number;
}

/** The map key of a resource. */
export function resourceKey(kind: ResourceKind, namespace: string | undefined, name: string): string {
  return CLUSTER_SCOPED.has(kind) ? name : `${namespace ?? ''}/${name}`;
}

/** One resource, or undefined. */
export function getResource<K extends ResourceKind>(
  snapshot: ResourceSnapshot,
  kind: K,
  namespace: string | undefined,
  name: string,
): ResourceByKind[K] | undefined {
  return snapshot.resources[kind].get(resourceKey(kind, namespace, name));
}

/** All resources of a kind, in key order (deterministic output). */
export function listResources<K extends ResourceKind>(
  snapshot: ResourceSnapshot,
  kind: K,
): readonly ResourceByKind[K][] {
  const m = snapshot.resources[kind];
  return [...m.keys()].sort().map((k) => m.get(k) as ResourceByKind[K]);
}

function emptyMaps(): { [K in ResourceKind]: Map<string, ResourceByKind[K]> } {
  const out: Record<string, Map<string, unknown>> = {};
  for (const k of RESOURCE_KINDS) out[k] = new Map();
  return out as { [K in ResourceKind]: Map<string, ResourceByKind[K]> };
}

/**
 * Collects objects into a snapshot. Later objects with the same kind/namespace/name replace
 * earlier ones (a warning is recorded in `duplicates`).
 */
export class SnapshotBuilder {
  private readonly maps = emptyMaps();
  private readonly rejectedList: RejectedResource[] = [];
  /** `Kind ns/name` of every object given more than once, with both sources. */
  readonly duplicates: string[] = [];
  private readonly sources = new Map<string, string>();
  /** Maps of the seeded snapshot, per kind not changed since: `build` reuses them (identity = unchanged). */
  private readonly seeded = new Map<ResourceKind, ReadonlyMap<string, unknown>>();

  constructor(private readonly options: ValidateOptions = {}) {}

  /** Validates and adds one object. Returns the problems (empty when it was accepted). */
  add(input: unknown, source: string, defaultKind?: ResourceKind): readonly Problem[] {
    const parsed = parseResource(input, source, defaultKind, 'default', this.options);
    if (!parsed.ok) {
      this.rejectedList.push({
        kind: parsed.kind,
        namespace: parsed.namespace,
        name: parsed.name,
        source,
        unsupported: parsed.unsupported,
        problems: parsed.problems,
        value: input,
      });
      return parsed.problems;
    }
    this.put(parsed.kind, parsed.resource, source);
    return [];
  }

  /** Adds an already validated resource (providers that validate themselves). */
  put<K extends ResourceKind>(kind: K, resource: ResourceByKind[K], source = ''): void {
    const key = resourceKey(kind, resource.metadata.namespace, resource.metadata.name);
    const id = `${kind} ${key}`;
    const prev = this.sources.get(id);
    if (prev !== undefined) this.duplicates.push(`${id} (${prev} and ${source})`);
    this.sources.set(id, source);
    (this.maps[kind] as Map<string, ResourceByKind[K]>).set(key, resource);
    this.seeded.delete(kind);
  }

  /** Copies every resource of `base` in (see builderFrom). */
  seed(base: ResourceSnapshot): void {
    for (const kind of RESOURCE_KINDS) {
      const into = this.maps[kind] as Map<string, unknown>;
      for (const [k, v] of base.resources[kind]) into.set(k, v);
      if (into.size === base.resources[kind].size) this.seeded.set(kind, base.resources[kind]);
    }
  }

  /** Removes a resource (providers applying deletions to a copy). */
  delete(kind: ResourceKind, namespace: string | undefined, name: string): boolean {
    const deleted = this.maps[kind].delete(resourceKey(kind, namespace, name));
    if (deleted) this.seeded.delete(kind);
    return deleted;
  }

  build(revision = 0): ResourceSnapshot {
    const resources = {} as Record<ResourceKind, ReadonlyMap<string, unknown>>;
    // A kind nothing was put into or deleted from since `seed` keeps the base's map object, so
    // consumers can tell an unchanged kind by identity (translation caches, wasm requests).
    for (const k of RESOURCE_KINDS)
      resources[k] = this.seeded.get(k) ?? new Map<string, unknown>(this.maps[k] as Map<string, unknown>);
    return Object.freeze({
      resources: Object.freeze(resources) as ResourceMaps,
      rejected: Object.freeze([...this.rejectedList]),
      revision,
    });
  }
}

/**
 * A builder seeded with every resource of `base` (for a provider applying one change). The
 * resource objects are shared, not copied, so translation caches keyed by object identity keep
 * working for everything that did not change; replacing a seeded resource is not a duplicate.
 */
export function builderFrom(base: ResourceSnapshot, options: ValidateOptions = {}): SnapshotBuilder {
  const b = new SnapshotBuilder(options);
  b.seed(base);
  return b;
}

/** Snapshot of the given objects (tests, `envext translate`). */
export function snapshotOf(objects: Iterable<unknown>, source = 'input'): ResourceSnapshot {
  const b = new SnapshotBuilder();
  let i = 0;
  for (const o of objects) b.add(o, `${source}#${i++}`);
  return b.build();
}
