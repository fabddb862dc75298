import { describe, expect, it } from 'vitest';
import { formatReference, isLoopbackRegistry, parseReference } from './reference.js';
import { isOciError } from './errors.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference', () => {
  const good: ReadonlyArray<{ input: string; want: string }> = [
    { input: 'nginx', want: 'docker.io/library/nginx:latest' },
    { input: 'user/repo:v1', want: 'docker.io/user/repo:v1' },
    { input: 'index.docker.io/library/nginx', want: 'docker.io/library/nginx:latest' },
    { input: 'localhost/x', want: 'localhost/x:latest' },
    { input: 'localhost:5000/filters/auth:v1.2_3', want: 'localhost:5000/filters/auth:v1.2_3' },
    { input: '127.0.0.1:5000/a/b/c', want: '127.0.0.1:5000/a/b/c:latest' },
    { input: `oci://ghcr.io/org/filter@${D}`, want: `ghcr.io/org/filter@${D}` },
    { input: `ghcr.io/org/filter:v1@${D}`, want: `ghcr.io/org/filter:v1@${D}` },
    { input: 'registry.example/a__b/c-d.e:TAG', want: 'registry.example/a__b/c-d.e:TAG' },
    { input: '[::1]:5000/x', want: '[::1]:5000/x:latest' },
  ];
  it.each(good)('$input', ({ input, want }) => {
    expect(formatReference(parseReference(input))).toBe(want);
  });

  const bad: ReadonlyArray<{ input: string; why: RegExp; pos: number }> = [
    { input: '', why: /empty reference/, pos: 1 },
    { input: 'ghcr.io/Org/x', why: /lowercase/, pos: 9 },
    { input: 'ghcr.io/org/x y', why: /invalid character/, pos: 14 },
    { input: 'ghcr.io/org//x', why: /empty path component/, pos: 13 },
    { input: 'ghcr.io/org/x:', why: /invalid tag/, pos: 15 },
    { input: 'ghcr.io/org/x:-v1', why: /invalid tag/, pos: 15 },
    { input: 'ghcr.io/org/x@sha256:abc', why: /digest/, pos: 25 },
    { input: `ghcr.io/org/x@md5:${'a'.repeat(32)}`, why: /digest/, pos: 15 },
    { input: `ghcr.io/org/x@sha256:${'A'.repeat(64)}`, why: /digest/, pos: 22 },
    { input: 'ghcr.io/', why: /missing repository/, pos: 9 },
    { input: 'bad_host.io:x/y', why: /registry host/, pos: 1 },
  ];
  it.each(bad)('rejects "$input"', ({ input, why, pos }) => {
    try {
      parseReference(input);
      expect.unreachable();
    } catch (e) {
      expect(isOciError(e, 'OCI_REFERENCE_INVALID')).toBe(true);
      const err = e as Error & { hint?: string };
      expect(err.message).toMatch(why);
      expect(err.message).toContain(`at position ${pos}`);
      // It names the character found at that position.
      expect(err.message).toContain(pos <= input.length ? `(${JSON.stringify(input[pos - 1])})` : '(end of input)');
      expect(err.hint).toMatch(/repository/);
    }
  });
});

describe('isLoopbackRegistry', () => {
  it.each([
    ['localhost:5000', true],
    ['127.0.0.1:5000', true],
    ['127.1.2.3', true],
    ['[::1]:5000', true],
    ['registry.example:5000', false],
    ['10.0.0.1:5000', false],
  ] as const)('%s → %s', (host, want) => {
    expect(isLoopbackRegistry(host)).toBe(want);
  });
});
