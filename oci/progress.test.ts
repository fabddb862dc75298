import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressBar } from './progress.js';

function stream(tty: boolean): { s: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const s = Object.assign(new PassThrough(), tty ? { isTTY: true, columns: 80 } : {});
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { s, text: () => Buffer.concat(chunks).toString() };
}

describe('progressBar', () => {
  it('draws on a TTY and clears the line at the end', () => {
    const { s, text } = stream(true);
    const bar = progressBar(s, 'pushing', true);
    bar.update(16 * 1024 * 1024, 32 * 1024 * 1024);
    bar.update(32 * 1024 * 1024, 32 * 1024 * 1024);
    bar.finish();
    expect(text()).toContain('pushing [');
    expect(text()).toContain('32.0/32.0 MiB');
    expect(text().endsWith('\r\x1b[K')).toBe(true);
  });

  it.each([
    { name: 'not a TTY', tty: false, enabled: true },
    { name: 'disabled (--json)', tty: true, enabled: false },
  ])('draws nothing when $name', ({ tty, enabled }) => {
    const { s, text } = stream(tty);
    const bar = progressBar(s, 'pulling', enabled);
    bar.update(1, 2);
    bar.update(2, 2);
    bar.finish();
    expect(text()).toBe('');
  });
});
