import { describe, expect, it } from 'vitest';
import { ValidationMemo, snapshotFromObjects, type SourcedObject } from './load.js';

const route = (name: string, path = '/'): Record<string, unknown> => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'default' },
  spec: { rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }] }] },
});

describe('ValidationMemo', () => {
  // [case, the object of the second read given the first read's object, same resource object?]
  it.each<[string, (first: SourcedObject) => SourcedObject, boolean]>([
    ['the same SourcedObject', (o) => o, true],
    ['the same value on another line (a moved document)', (o) => ({ value: o.value, source: 'f.yaml:40' }), true],
    ['an equal value parsed again (an edited kind: List)', () => ({ value: route('r'), source: 'f.yaml:1' }), true],
    ['a changed value', () => ({ value: route('r', '/x'), source: 'f.yaml:1' }), false],
    [
      'the same value under another bundle kind',
      (o) => ({ value: o.value, source: 'f.yaml:1', defaultKind: 'GRPCRoute' }),
      false,
    ],
  ])('%s', (_name, second, same) => {
    const memo = new ValidationMemo();
    const first: SourcedObject = { value: route('r'), source: 'f.yaml:1' };
    const a = memo.parse(first, {});
    memo.endRead();
    const b = memo.parse(second(first), {});
    memo.endRead();
    expect(a.ok).toBe(true);
    if (same) expect(b).toBe(a);
    else expect(b).not.toBe(a);
    expect(memo.validations).toBe(same ? 1 : 2);
  });

  it('finds by content only what the previous read had', () => {
    const memo = new ValidationMemo();
    const a = memo.parse({ value: route('r'), source: 'f.yaml:1' }, {});
    memo.endRead();
    memo.endRead(); // a read without r
    expect(memo.parse({ value: route('r'), source: 'f.yaml:1' }, {})).not.toBe(a);
  });

  it('reports an invalid object parsed again with equal content as the same value', () => {
    const memo = new ValidationMemo();
    const bad = (): Record<string, unknown> => ({ ...route('r'), spec: { rules: 'no' } });
    const first = snapshotFromObjects([{ value: bad(), source: 'f.yaml:1' }], 1, {}, memo).snapshot;
    const second = snapshotFromObjects([{ value: bad(), source: 'f.yaml:2' }], 2, {}, memo).snapshot;
    expect(second.rejected[0]?.value).toBe(first.rejected[0]?.value);
    expect(second.rejected[0]?.source).toBe('f.yaml:2');
  });

  it('reports a reused invalid object at its new source', () => {
    const memo = new ValidationMemo();
    const bad = { value: { ...route('r'), spec: { rules: 'no' } }, source: 'f.yaml:1' };
    const first = snapshotFromObjects([bad], 1, {}, memo).snapshot;
    const second = snapshotFromObjects([{ value: bad.value, source: 'f.yaml:9' }], 2, {}, memo).snapshot;
    expect(first.rejected.map((r) => r.source)).toEqual(['f.yaml:1']);
    expect(second.rejected.map((r) => r.source)).toEqual(['f.yaml:9']);
    expect(second.rejected[0]?.problems[0]?.resource).toBe('HTTPRoute default/r (f.yaml:9)');
  });
});
