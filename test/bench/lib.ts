/**
 * Helpers for benchmarks under test/bench/. Each benchmark is a script that measures the
 * subject and a baseline in the same run and prints one JSON object on stdout. Timings are never
 * asserted; they are reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let compiledOnce = false;

/**
 * The compiled JavaScript of a benchmark file (`.bench-dist/`, built with tsconfig.bench.json
 * once per process). Children that measure memory run it with plain `node`, the way `envext`
 * runs from `dist/`: under tsx, its loader thread alone adds about 30 MiB of RSS that users
 * never pay, and its keep-names helper adds work to every call.
 */
export function compiledBench(file: string): string {
  const out = join(projectRoot, '.bench-dist', relative(projectRoot, file).replace(/\.ts$/u, '.js'));
  if (!compiledOnce) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(projectRoot, 'tsconfig.bench.json')], {
      encoding: 'utf8',
    });
    // Type errors still emit; `npm run check` is where they fail. A missing output is fatal.
    if (r.status !== 0) process.stderr.write(`warning: tsc -p tsconfig.bench.json:\n${r.stdout}${r.stderr}`);
    compiledOnce = true;
  }
  if (!existsSync(out)) throw new Error(`compiling the benchmarks did not produce ${out}`);
  return out;
}

export interface Measurement {
  readonly name: string;
  readonly iterations: number;
  readonly totalMs: number;
  readonly nsPerOp: number;
  readonly opsPerSec: number;
}

/**
 * Runs `fn` for `warmup` iterations, then `rounds` rounds of `iterations` each, and keeps the
 * fastest round (the one least disturbed by GC and the other core's work).
 */
export function measure(
  name: string,
  fn: () => unknown,
  { iterations = 10_000, warmup = 1_000, rounds = 5 }: { iterations?: number; warmup?: number; rounds?: number } = {},
): Measurement {
  for (let i = 0; i < warmup; i++) fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) fn();
    best = Math.min(best, performance.now() - start);
  }
  const nsPerOp = (best * 1e6) / iterations;
  return { name, iterations, totalMs: round(best), nsPerOp: round(nsPerOp), opsPerSec: Math.round(1e9 / nsPerOp) };
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Prints the benchmark's result as one JSON line. */
export function report(bench: string, result: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ bench, node: process.versions.node, ...result }) + '\n');
}
