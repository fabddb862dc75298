/**
 * How envext runs Node. The benchmarks start the processes they measure the same way;
 * `runtime.test.ts` checks that every place agrees with this file.
 *
 * - `NODE_ENV`, for every envext process (`bin/envext.js`'s shebang, `npm start`, the image):
 *   `MALLOC_ARENA_MAX=2`, `MALLOC_MMAP_THRESHOLD_=131072`. glibc otherwise keeps per-thread
 *   arenas and the freed memory of large buffers (the responses of many Envoys' first syncs);
 *   measured at 5,000 routes and 50 clients (npm run bench -- serve): RSS 204 instead of
 *   225–240 MiB.
 * - `CONTROL_PLANE_NODE_FLAGS`, for the control plane where it is deployed (`npm start`, and
 *   `NODE_OPTIONS` in controlplane/deploy/controlplane.yaml): `--max-semi-space-size=4` (MiB).
 *   V8's young generation grows to 3 × 16 MiB while a translation builds long-lived objects and
 *   is never given back, though a control plane is idle between changes: RSS at 5,000 routes
 *   158 → 144 MiB (npm run bench -- translate), translation times within run-to-run noise. Not
 *   for the ext_proc data path: there it makes garbage collection 4× as frequent and costs
 *   15–35 % more CPU per request at 16 concurrent streams (npm run bench -- ext-proc), so the
 *   executable keeps V8's default.
 */
export const NODE_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

export const CONTROL_PLANE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** The shebang line of `bin/envext.js` (`env -S`: GNU coreutils ≥ 8.30, BSD, macOS). */
export function shebang(): string {
  const env = Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`);
  return `#!/usr/bin/env -S ${[...env, 'node'].join(' ')}`;
}

/** `NODE_ENV` as `A=1 B=2`, for messages and benchmark reports. */
export function describeRuntime(flags: readonly string[]): string {
  const env = Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`);
  return `node${flags.length === 0 ? '' : ` ${flags.join(' ')}`} with ${env.join(' ')}`;
}
