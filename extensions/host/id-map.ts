/**
 * A map from context ids to values for the per-request hot path.
 *
 * Context ids come from one increasing counter and live briefly, so a `Map` sees a `set` and a
 * `delete` of a fresh key per stream: V8's ordered hash table then keeps rehashing its deleted
 * entries (about 200 ns per set+delete pair on the benchmark VM). Open addressing with linear
 * probing and the id itself as the hash puts consecutive live ids in consecutive slots; deletion
 * uses backward shifting (Knuth 6.4, algorithm R) so no tombstones accumulate.
 */
export class IdMap<T> {
  private keys: number[];
  private vals: (T | undefined)[];
  private mask: number;
  private count = 0;

  constructor(capacity = 64) {
    let cap = 16;
    while (cap < capacity) cap <<= 1;
    this.keys = new Array<number>(cap).fill(-1);
    this.vals = new Array<T | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  get(key: number): T | undefined {
    const keys = this.keys;
    const mask = this.mask;
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) return this.vals[i];
      if (k === -1) return undefined;
    }
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  set(key: number, value: T): this {
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const keys = this.keys;
    const mask = this.mask;
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) {
        this.vals[i] = value;
        return this;
      }
      if (k === -1) {
        keys[i] = key;
        this.vals[i] = value;
        this.count++;
        return this;
      }
    }
  }

  delete(key: number): boolean {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    let i = key & mask;
    for (; ; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) break;
      if (k === -1) return false;
    }
    keys[i] = -1;
    vals[i] = undefined;
    this.count--;
    // Shift back later entries of the same probe run that would otherwise become unreachable.
    for (let j = (i + 1) & mask; keys[j] !== -1; j = (j + 1) & mask) {
      const home = keys[j]! & mask;
      const reachable = i <= j ? home > i && home <= j : home > i || home <= j;
      if (reachable) continue;
      keys[i] = keys[j]!;
      vals[i] = vals[j];
      keys[j] = -1;
      vals[j] = undefined;
      i = j;
    }
    return true;
  }

  *values(): IterableIterator<T> {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== -1) yield this.vals[i]!;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = oldKeys.length * 2;
    this.keys = new Array<number>(cap).fill(-1);
    this.vals = new Array<T | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.count = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] !== -1) this.set(oldKeys[i]!, oldVals[i]!);
  }
}
