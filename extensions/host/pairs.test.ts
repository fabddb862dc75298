import { describe, expect, it } from 'vitest';
import { decodePairs, encodePairList, HeaderMap, PAIRS_MAX_BYTES } from './pairs.js';
import { encodeProperty } from './properties.js';

describe('serialized pairs', () => {
  it('encodes the reference example byte for byte', () => {
    const hex = Buffer.from(
      encodePairList([
        ['a', '1'],
        ['b', '22'],
      ]),
    ).toString('hex');
    expect(hex).toBe(
      '02000000' + '01000000' + '01000000' + '01000000' + '02000000' + '6100' + '3100' + '6200' + '323200',
    );
  });

  const roundTrips = [
    { name: 'empty', pairs: [] },
    {
      name: 'repeated keys',
      pairs: [
        ['k', '1'],
        ['k', '2'],
      ],
    },
    { name: 'empty value', pairs: [['k', '']] },
    { name: 'utf-8', pairs: [['x-name', 'Zoë 😀']] },
  ] as const;
  it.each(roundTrips)('round-trips $name', ({ pairs }) => {
    expect(decodePairs(encodePairList(pairs))).toEqual(pairs);
  });

  const malformed = [
    { name: 'count beyond the data', bytes: Uint8Array.of(5, 0, 0, 0) },
    { name: 'missing NUL', bytes: encodePairList([['a', 'b']]).subarray(0, 13) },
    { name: 'trailing garbage', bytes: Uint8Array.from([...encodePairList([['a', 'b']]), 0]) },
    { name: 'more than 1024 pairs', bytes: encodePairList(Array.from({ length: 1025 }, () => ['k', 'v'] as const)) },
    { name: 'more than 1 MiB', bytes: encodePairList([['k', 'v'.repeat(PAIRS_MAX_BYTES)]]) },
  ];
  it.each(malformed)('yields an empty map for $name', ({ bytes }) => {
    expect(decodePairs(bytes)).toEqual([]);
  });

  it('accepts exactly 1024 pairs', () => {
    expect(decodePairs(encodePairList(Array.from({ length: 1024 }, () => ['k', 'v'] as const)))).toHaveLength(1024);
  });
});

describe('HeaderMap', () => {
  it('lower-cases keys, keeps order, replaces the first value and drops the rest, caches the encoding', () => {
    const m = new HeaderMap({ 'X-A': ['1', '2'], b: '3' });
    expect(m.get('x-a')).toBe('1');
    const first = m.encode();
    expect(m.encode()).toBe(first);
    m.replace('X-a', '9');
    expect(m.pairs()).toEqual([
      ['x-a', '9'],
      ['b', '3'],
    ]);
    expect(m.encode()).not.toBe(first);
    expect(m.byteSize()).toBe(6);
    m.remove('B');
    expect(m.toObject()).toEqual({ 'x-a': '9' });
  });
});

describe('property encoding', () => {
  const cases = [
    { name: 'string', v: 'abc', hex: '616263' },
    { name: 'int64', v: 5000n, hex: '8813000000000000' },
    { name: 'integer number as int64', v: -1, hex: 'ffffffffffffffff' },
    { name: 'double', v: 1.5, hex: '000000000000f83f' },
    { name: 'bool', v: true, hex: '01' },
    { name: 'timestamp', v: new Date(1), hex: '40420f0000000000' },
    { name: 'list', v: ['a'], hex: Buffer.from(encodePairList([['a', '']])).toString('hex') },
    { name: 'map', v: { k: 'v' }, hex: Buffer.from(encodePairList([['k', 'v']])).toString('hex') },
  ];
  it.each(cases)('$name', ({ v, hex }) => {
    expect(Buffer.from(encodeProperty(v)!).toString('hex')).toBe(hex);
  });
});
