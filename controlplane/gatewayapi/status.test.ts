import { describe, expect, it } from 'vitest';
import { condition } from './status.js';

describe('condition', () => {
  it('gives one shared object for equal conditions (statuses are never mutated)', () => {
    const a = condition('Accepted', true, 'Accepted', 'Route is accepted', 3);
    expect(condition('Accepted', true, 'Accepted', 'Route is accepted', 3)).toBe(a);
    expect(a).toEqual({
      type: 'Accepted',
      status: 'True',
      reason: 'Accepted',
      message: 'Route is accepted',
      observedGeneration: 3,
    });
  });

  it.each([
    ['type', condition('ResolvedRefs', true, 'Accepted', 'Route is accepted', 3)],
    ['status', condition('Accepted', false, 'Accepted', 'Route is accepted', 3)],
    ['reason', condition('Accepted', true, 'Invalid', 'Route is accepted', 3)],
    ['generation', condition('Accepted', true, 'Accepted', 'Route is accepted', 4)],
    ['no generation', condition('Accepted', true, 'Accepted', 'Route is accepted')],
  ])('keeps conditions that differ in %s apart', (_what, other) => {
    const a = condition('Accepted', true, 'Accepted', 'Route is accepted', 3);
    expect(other).not.toBe(a);
    expect(other).not.toEqual(a);
  });

  it('leaves out observedGeneration when there is none', () => {
    expect(Object.keys(condition('Accepted', true, 'Accepted', 'x'))).toEqual(['type', 'status', 'reason', 'message']);
  });
});
