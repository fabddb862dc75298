import { afterEach, describe, expect, it } from 'vitest';
import { DeadlineQueue, type DeadlineOwner } from './deadlines.js';

function owner(): DeadlineOwner & { fired: number[] } {
  const fired: number[] = [];
  return { fired, onDeadline: (token) => fired.push(token) };
}

describe('DeadlineQueue', () => {
  let q: DeadlineQueue | undefined;
  afterEach(() => q?.clear());

  it.each([
    { name: 'a pending entry fires with its token', cancel: false, want: [7] },
    { name: 'a cancelled entry does not fire', cancel: true, want: [] },
  ])('$name', async ({ cancel, want }) => {
    q = new DeadlineQueue(5);
    const o = owner();
    const entry = q.add(o, 7);
    if (cancel) DeadlineQueue.cancel(entry);
    await new Promise((r) => setTimeout(r, 40));
    expect(o.fired).toEqual(want);
    // Either way the queue no longer references the owner.
    expect(entry.owner).toBeUndefined();
    expect(q.size).toBe(0);
  });

  it('a cancelled entry no longer holds its owner while it waits for its time', () => {
    q = new DeadlineQueue(60_000);
    const o = owner();
    const entry = q.add(o, 1);
    expect(entry.owner).toBe(o);
    DeadlineQueue.cancel(entry);
    expect(entry.owner).toBeUndefined();
    expect(q.size).toBe(1);
  });
});
