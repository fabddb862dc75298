/**
 * Lists as the IR and the translator output keep them, for as long as a translation lives.
 *
 * A list grown by `push()` keeps V8's growth headroom: the first push makes room for 17
 * elements, so a one-element list takes ~180 bytes instead of ~56, and every route keeps
 * several (backend settings, endpoints, extensions, clusters). `packed` copies a list to its
 * exact length; every empty list becomes the one shared `NONE` (IR and translator output are
 * never mutated: they are readonly by type).
 */
export const NONE: readonly never[] = [];

export function packed<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? NONE : list.slice();
}

/**
 * One shared object per distinct value of a small record that translation builds again and
 * again (a condition, a parent reference, a processing mode: the same few values for thousands
 * of routes). Only for records nobody mutates; bounded: forgets everything at `limit` entries.
 */
export class Interner<T> {
  private readonly values = new Map<string, T>();
  constructor(private readonly limit = 4096) {}

  get(key: string, make: () => T): T {
    let v = this.values.get(key);
    if (v === undefined) {
      if (this.values.size >= this.limit) this.values.clear();
      v = make();
      this.values.set(key, v);
    }
    return v;
  }
}
