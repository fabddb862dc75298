/**
 * The parts of a translation that are unions over every route — the clusters of an IR and the
 * HCM filters of a listener — kept as reference counts, so a translation after a change touches
 * only the routes that came or went (by object identity: unchanged routes keep their IR
 * objects) instead of rebuilding maps of ten thousand names.
 *
 * `translateXds` uses one either way (kept in XdsTranslationMemo, or new for a call without a
 * memo). A name several contributors share takes one of their values; the translator's shared
 * names (a rule's cluster on several hostnames, a policy's filter on several routes) carry the
 * same value from every contributor, so kept and fresh unions give equal resources.
 */

/** One name's entry: its value, the contributor it came from, and how many contributors it has. */
interface Entry<K, T> {
  value: T;
  owner: K;
  count: number;
}

export interface UnionChange {
  /** Names that appeared or disappeared: an order built from names must be redone. */
  readonly namesChanged: boolean;
  /** The names that appeared, and those that disappeared (each at most once). */
  readonly addedNames: readonly string[];
  readonly removedNames: readonly string[];
  /** Names that stayed but whose value is now another object. */
  readonly replaced: readonly string[];
}

/**
 * A union of named values contributed by keys (routes). `update` takes the current contributors
 * and applies only the difference from the previous call.
 */
export class Union<K extends object, T extends { readonly name: string }> {
  readonly entries = new Map<string, Entry<K, T>>();
  private contributors = new Set<K>();

  constructor(private readonly partsOf: (key: K) => readonly T[]) {}

  update(keys: Iterable<K>): UnionChange {
    const now = new Set(keys);
    /** Names whose last contributor left, with the value they had. */
    const removedNames = new Map<string, T>();
    /** Names still contributed whose value came from a contributor that left. */
    const orphaned = new Set<string>();
    for (const k of this.contributors) {
      if (now.has(k)) continue;
      for (const { name } of this.partsOf(k)) {
        const e = this.entries.get(name);
        if (e === undefined) continue;
        if (--e.count <= 0) {
          this.entries.delete(name);
          removedNames.set(name, e.value);
          orphaned.delete(name);
        } else if (e.owner === k) orphaned.add(name);
      }
    }
    const replaced: string[] = [];
    const addedNames: string[] = [];
    for (const k of now) {
      if (this.contributors.has(k)) continue;
      for (const value of this.partsOf(k)) {
        const name = value.name;
        const e = this.entries.get(name);
        if (e !== undefined) {
          e.count++;
          continue;
        }
        this.entries.set(name, { value, owner: k, count: 1 });
        if (!removedNames.has(name)) addedNames.push(name);
        else if (removedNames.get(name) !== value) replaced.push(name);
        removedNames.delete(name);
      }
    }
    // A value never outlives its contributor: take the first remaining one's (rare: only names
    // several contributors share, when the one whose value was kept left).
    if (orphaned.size > 0) {
      for (const k of now) {
        for (const value of this.partsOf(k)) {
          const name = value.name;
          const e = orphaned.has(name) ? this.entries.get(name) : undefined;
          if (e === undefined) continue;
          orphaned.delete(name);
          if (e.value !== value) replaced.push(name);
          e.value = value;
          e.owner = k;
        }
        if (orphaned.size === 0) break;
      }
    }
    this.contributors = now;
    return {
      namesChanged: addedNames.length > 0 || removedNames.size > 0,
      addedNames,
      removedNames: [...removedNames.keys()],
      replaced,
    };
  }
}

/**
 * A list sorted by name, kept in step with a Union: the previous list with removed names taken
 * out, added names put in at their places and replaced values swapped in (a new array each time:
 * the previous one may still be someone's result); rebuilt and sorted when the change is large.
 */
export class SortedByName<T extends { readonly name: string }> {
  private list: T[] = [];

  update<K extends object>(union: Union<K, T>, change: UnionChange): T[] {
    const edit = (): T[] | undefined => {
      const moved = change.addedNames.length + change.removedNames.length;
      // A splice moves the tail: past a few hundred names a sort is as cheap.
      if (moved > 256 || this.list.length === 0) return moved === 0 && this.list.length === 0 ? [] : undefined;
      if (moved === 0 && change.replaced.length === 0) return this.list;
      const list = [...this.list];
      for (const name of change.removedNames) {
        const i = indexOf(list, name);
        if (i < 0) return undefined;
        list.splice(i, 1);
      }
      for (const name of change.addedNames) {
        const e = union.entries.get(name);
        if (e === undefined) return undefined;
        const i = lowerBound(list, name);
        if (list[i]?.name === name) return undefined;
        list.splice(i, 0, e.value);
      }
      for (const name of change.replaced) {
        const i = indexOf(list, name);
        const e = union.entries.get(name);
        if (i < 0 || e === undefined) return undefined;
        list[i] = e.value;
      }
      return list.length === union.entries.size ? list : undefined;
    };
    this.list = edit() ?? [...union.entries.values()].map((e) => e.value).sort((a, b) => compare(a.name, b.name));
    return this.list;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The first position in a list sorted by name whose name is not below `name`. */
function lowerBound(list: readonly { readonly name: string }[], name: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compare(list[mid]!.name, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Binary search in a list sorted by name. */
function indexOf(list: readonly { readonly name: string }[], name: string): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compare(list[mid]!.name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
