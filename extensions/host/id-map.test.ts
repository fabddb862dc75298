import { describe, expect, it } from 'vitest';
import { IdMap } from './id-map.js';

describe('IdMap', () => {
  it('behaves like a Map under random sets and deletes, including colliding keys and growth', () => {
    const m = new IdMap<number>(16);
    const ref = new Map<number, number>();
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let step = 0; step < 20_000; step++) {
      // keys that collide modulo small capacities, plus large u32 ids
      const key = rnd(4) === 0 ? 0xfffffff0 + rnd(16) : rnd(64) * 16 + rnd(3);
      if (rnd(3) === 0) {
        expect(m.delete(key)).toBe(ref.delete(key));
      } else {
        m.set(key, step);
        ref.set(key, step);
      }
      if (step % 97 === 0) {
        for (const [k, v] of ref) expect(m.get(k)).toBe(v);
        expect(m.size).toBe(ref.size);
      }
    }
    for (const [k, v] of ref) expect(m.get(k)).toBe(v);
    expect([...m.values()].sort((a, b) => a - b)).toEqual([...ref.values()].sort((a, b) => a - b));
    expect(m.get(123456)).toBeUndefined();
    expect(m.has(123456)).toBe(false);
  });
});
