import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

const now = (): Date => new Date('2026-11-22T00:00:00.000Z');

function sink(): { write: (l: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (l: string) => void lines.push(l) };
}

describe('logger', () => {
  it('writes text with component and fields, quoting where needed', () => {
    const s = sink();
    const log = createLogger({ sink: s, now }).child({ component: 'oci' });
    log.info('pushed', { digest: 'sha256:ab', note: 'two words', size: 12, big: 5n });
    expect(s.lines).toEqual([
      '2026-11-22T00:00:00.000Z INFO  oci: pushed digest=sha256:ab note="two words" size=12 big=5\n',
    ]);
  });

  it('writes one JSON object per line, errors with their code', () => {
    const s = sink();
    const log = createLogger({ sink: s, now, format: 'json' }).child({ component: 'xds' });
    const e = Object.assign(new Error('nack'), { code: 'XDS_NACK' });
    log.warn('client rejected', { err: e });
    const rec = JSON.parse(s.lines[0] ?? '') as Record<string, unknown>;
    expect(rec).toMatchObject({
      time: '2026-11-22T00:00:00.000Z',
      level: 'warn',
      component: 'xds',
      msg: 'client rejected',
    });
    expect(rec['err']).toMatchObject({ message: 'nack', code: 'XDS_NACK' });
  });

  it.each([
    { level: 'debug', want: 4 },
    { level: 'info', want: 3 },
    { level: 'warn', want: 2 },
    { level: 'error', want: 1 },
    { level: 'silent', want: 0 },
  ] as const)('level $level keeps $want of 4 records', ({ level, want }) => {
    const s = sink();
    const log = createLogger({ sink: s, now, level });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(s.lines).toHaveLength(want);
    expect(log.isEnabled('debug')).toBe(level === 'debug');
  });
});
