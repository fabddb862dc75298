import { describe, expect, it } from 'vitest';
import { Interner, NONE, packed } from './lists.js';

describe('packed', () => {
  it('gives the one shared empty list for every empty list', () => {
    expect(packed([])).toBe(NONE);
    expect(packed([1].filter(() => false))).toBe(NONE);
  });

  it('copies a non-empty list with the same elements, in order', () => {
    const grown: number[] = [];
    for (let i = 0; i < 3; i++) grown.push(i);
    const p = packed(grown);
    expect(p).not.toBe(grown);
    expect(p).toEqual([0, 1, 2]);
  });
});

describe('Interner', () => {
  it('makes a value once per key and gives the same object back', () => {
    const i = new Interner<{ v: string }>();
    let made = 0;
    const make = (v: string) => () => {
      made++;
      return { v };
    };
    const a = i.get('a', make('a'));
    expect(i.get('a', make('other'))).toBe(a);
    expect(i.get('b', make('b'))).toEqual({ v: 'b' });
    expect(made).toBe(2);
  });

  it('forgets everything when it reaches its limit (bounded memory), then interns again', () => {
    const i = new Interner<object>(2);
    const a = i.get('a', () => ({}));
    i.get('b', () => ({}));
    i.get('c', () => ({})); // full: cleared before this one
    const again = i.get('a', () => ({}));
    expect(again).not.toBe(a);
    expect(i.get('a', () => ({}))).toBe(again);
  });
});
