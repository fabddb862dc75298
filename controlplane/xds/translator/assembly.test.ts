import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/seeded-random.js';
import { SortedByName, Union } from './assembly.js';

interface Item {
  readonly name: string;
  readonly v: number;
}
type Key = { readonly parts: readonly Item[] };

const key = (...parts: Item[]): Key => ({ parts });
const fresh = (keys: readonly Key[]): Item[] => {
  const u = new Union<Key, Item>((k) => k.parts);
  return new SortedByName<Item>().update(u, u.update(keys));
};

describe('Union + SortedByName', () => {
  it('gives what a fresh union gives after every change', () => {
    const a = key({ name: 'b', v: 1 }, { name: 'a', v: 1 });
    const b = key({ name: 'c', v: 1 });
    const shared = key(a.parts[1]!); // a second contributor of "a", with the same value (as in translation)
    const a2 = key({ name: 'b', v: 2 }, { name: 'a', v: 2 }); // a replaced: same names, new values
    const shared2 = key(a2.parts[1]!);
    const steps: Key[][] = [[a, b], [a, b, shared], [a2, b, shared2], [a2, b], [b], [], [a, b], [b, shared], [a, b]];
    const u = new Union<Key, Item>((k) => k.parts);
    const sorted = new SortedByName<Item>();
    for (const keys of steps) {
      const list = sorted.update(u, u.update(keys));
      expect(list, JSON.stringify(keys)).toEqual(fresh(keys));
    }
  });

  it('reports replaced names without a reorder, and names that came or went', () => {
    const u = new Union<Key, Item>((k) => k.parts);
    const one = key({ name: 'x', v: 1 });
    const none = { addedNames: [], removedNames: [] };
    expect(u.update([one])).toEqual({ namesChanged: true, addedNames: ['x'], removedNames: [], replaced: [] });
    expect(u.update([one])).toEqual({ namesChanged: false, ...none, replaced: [] });
    expect(u.update([key(one.parts[0]!)])).toEqual({ namesChanged: false, ...none, replaced: [] }); // a new contributor, same value
    expect(u.update([key({ name: 'x', v: 2 })])).toEqual({ namesChanged: false, ...none, replaced: ['x'] });
    expect(u.update([])).toEqual({ namesChanged: true, addedNames: [], removedNames: ['x'], replaced: [] });
  });

  it('never keeps the value of a contributor that left', () => {
    const u = new Union<Key, Item>((k) => k.parts);
    const first = key({ name: 'a', v: 1 });
    const second = key({ name: 'a', v: 2 });
    u.update([first, second]);
    expect(u.entries.get('a')?.value.v).toBe(1);
    expect(u.update([second])).toMatchObject({ namesChanged: false, replaced: ['a'] });
    expect(u.entries.get('a')?.value.v).toBe(2);
  });

  it('swaps a replaced value in place', () => {
    const u = new Union<Key, Item>((k) => k.parts);
    const sorted = new SortedByName<Item>();
    sorted.update(u, u.update([key({ name: 'a', v: 1 }, { name: 'b', v: 1 })]));
    const list = sorted.update(u, u.update([key({ name: 'a', v: 1 }, { name: 'b', v: 7 })]));
    expect(list).toEqual([
      { name: 'a', v: 1 },
      { name: 'b', v: 7 },
    ]);
  });

  it('keeps the list sorted through random adds, removals and replacements (spliced, not re-sorted)', () => {
    const rnd = seededRandom(20261122);
    const pool: Key[] = [];
    for (let i = 0; i < 300; i++) {
      const names = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => `n${Math.floor(rnd() * 400)}`);
      pool.push(key(...names.map((name) => ({ name, v: Math.floor(rnd() * 2) }))));
    }
    const u = new Union<Key, Item>((k) => k.parts);
    const sorted = new SortedByName<Item>();
    let live = pool.slice(0, 150);
    for (let step = 0; step < 200; step++) {
      const r = rnd();
      if (r < 0.4) live = [...live, pool[Math.floor(rnd() * pool.length)]!];
      else if (r < 0.8 && live.length > 0) live = live.filter((_, i) => i !== Math.floor(rnd() * live.length));
      else live = live.map((k) => (rnd() < 0.02 ? pool[Math.floor(rnd() * pool.length)]! : k));
      const keys = [...new Set(live)];
      const list = sorted.update(u, u.update(keys));
      // Names several contributors share keep one contributor's value: compare names and the
      // union's own values.
      expect(
        list.map((x) => x.name),
        `step ${step}`,
      ).toEqual(fresh(keys).map((x) => x.name));
      expect(list, `step ${step}`).toEqual(
        [...u.entries.values()].map((e) => e.value).sort((a, b) => (a.name < b.name ? -1 : 1)),
      );
    }
  });
});
