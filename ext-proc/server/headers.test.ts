import { describe, expect, it } from 'vitest';
import { encodeHeaderMutation, InvalidMutationError, type DroppedMutation } from './headers.js';
import type { HeaderMutation } from './types.js';

/** [key, value, append] per set_headers entry, plus remove_headers. */
function encoded(m: HeaderMutation, maxHeadersCount?: number): { set: [string, string, boolean][]; remove: string[] } {
  const dropped: DroppedMutation[] = [];
  const hm = encodeHeaderMutation(m, maxHeadersCount === undefined ? {} : { maxHeadersCount }, 'headers', dropped);
  return {
    set: (hm?.set_headers ?? []).map((o) => [o.header.key, o.header.raw_value.toString('latin1'), o.append.value]),
    remove: hm?.remove_headers ?? [],
  };
}

describe('encodeHeaderMutation', () => {
  it.each([
    { name: 'set overwrites', m: { set: { 'x-a': '1' } }, set: [['x-a', '1', false]], remove: [] },
    { name: 'append appends', m: { append: { 'x-a': '1' } }, set: [['x-a', '1', true]], remove: [] },
    {
      name: 'set with a list value overwrites with the first and appends the rest',
      m: { set: { 'x-a': ['1', '2', '3'] } },
      set: [
        ['x-a', '1', false],
        ['x-a', '2', true],
        ['x-a', '3', true],
      ],
      remove: [],
    },
    {
      name: 'set with names that differ only in case: one overwrite, then appends',
      m: {
        set: [
          ['X-A', '1'],
          ['x-a', '2'],
        ],
      },
      set: [
        ['x-a', '1', false],
        ['x-a', '2', true],
      ],
      remove: [],
    },
    {
      name: 'a set after an append of the same name still overwrites (set is applied first)',
      m: { set: { 'x-a': '1' }, append: { 'x-a': '2' } },
      set: [
        ['x-a', '1', false],
        ['x-a', '2', true],
      ],
      remove: [],
    },
    {
      name: 'latin1 values keep every byte; remove is lower-cased',
      m: { set: { 'x-b': 'caf\u00e9' }, remove: ['X-Gone'] },
      set: [['x-b', 'caf\u00e9', false]],
      remove: ['x-gone'],
    },
  ] as { name: string; m: HeaderMutation; set: [string, string, boolean][]; remove: string[] }[])(
    '$name',
    ({ m, set, remove }) => {
      expect(encoded(m)).toEqual({ set, remove });
    },
  );

  it.each([
    {
      name: 'a value that is not a string',
      m: { set: { 'x-a': 1 } },
      field: 'headers.set',
      error: /value of "x-a" must be a string/,
    },
    {
      name: 'a list item that is not a string',
      m: { append: { 'x-a': ['ok', null] } },
      field: 'headers.append',
      error: /must be a string, got object/,
    },
    {
      name: 'remove that is not a list',
      m: { remove: 'x-a' },
      field: 'headers.remove',
      error: /must be a list of header names/,
    },
    { name: 'an invalid name', m: { set: { 'x a': 'v' } }, field: 'headers.set', error: /invalid header name "x a"/ },
    { name: 'CR in a value', m: { set: { 'x-a': 'v\r\nx: y' } }, field: 'headers.set', error: /CR, LF or NUL/ },
    { name: 'an empty name in remove', m: { remove: [''] }, field: 'headers.remove', error: /empty header name/ },
  ])('rejects $name', ({ m, field, error }) => {
    let thrown: unknown;
    try {
      encoded(m as unknown as HeaderMutation);
    } catch (e: unknown) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(InvalidMutationError);
    expect((thrown as InvalidMutationError).field).toBe(field);
    expect((thrown as InvalidMutationError).message).toMatch(error);
  });

  it('rejects more changes than max_headers_count, naming the count', () => {
    const set = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-${i}`, 'v']));
    expect(() => encoded({ set }, 10)).toThrow(/12 header changes exceed max_headers_count 10/);
    expect(encoded({ set }, 12).set).toHaveLength(12);
  });
});
