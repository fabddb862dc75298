import { describe, expect, it } from 'vitest';
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
    expect(u.update([one])).toEqual({ namesChanged: true, replaced: [] });
    expect(u.update([one])).toEqual({ namesChanged: false, replaced: [] });
    expect(u.update([key(one.parts[0]!)])).toEqual({ namesChanged: false, replaced: [] }); // a new contributor, same value
    expect(u.update([key({ name: 'x', v: 2 })])).toEqual({ namesChanged: false, replaced: ['x'] });
    expect(u.update([])).toEqual({ namesChanged: true, replaced: [] });
  });

  it('never keeps the value of a contributor that left', () => {
    const u = new Union<Key, Item>((k) => k.parts);
    const first = key({ name: 'a', v: 1 });
    const second = key({ name: 'a', v: 2 });
    u.update([first, second]);
    expect(u.entries.get('a')?.value.v).toBe(1);
    expect(u.update([second])).toEqual({ namesChanged: false, replaced: ['a'] });
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
});
