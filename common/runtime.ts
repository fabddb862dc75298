/**
 * How envext runs Node: the V8 flags and the environment its executable starts with
 * (`bin/envext.js`'s shebang), and `npm start` and the container image too. The benchmarks start
 * the processes they measure the same way; `runtime.test.ts` checks that all of them agree.
 *
 * - `--max-semi-space-size=4` (MiB): V8's young generation grows to 3 × 16 MiB while a
 *   translation builds long-lived objects and is never given back, though a control plane is idle
 *   between changes. Measured at 5,000 routes (npm run bench -- translate): RSS 158 → 144 MiB;
 *   translation times within run-to-run noise.
 * - `MALLOC_ARENA_MAX=2`, `MALLOC_MMAP_THRESHOLD_=131072`: glibc keeps per-thread arenas and the
 *   freed memory of the large responses of many Envoys' first syncs; measured at 5,000 routes and
 *   50 clients (npm run bench -- serve): RSS 204 instead of 225–240 MiB.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

export const NODE_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

/** The shebang line of `bin/envext.js` that applies both (`env -S`: GNU coreutils ≥ 8.30, BSD, macOS). */
export function shebang(): string {
  const env = Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`);
  return `#!/usr/bin/env -S ${[...env, 'node', ...NODE_FLAGS].join(' ')}`;
}
