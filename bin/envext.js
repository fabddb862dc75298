#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node
// The `envext` executable. It runs the compiled CLI from dist/ (built by `npm run build`,
// which `npm ci` runs through the `prepare` script). The shebang sets the glibc environment
// envext runs with (common/runtime.ts says why; its test keeps the two in step).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/bin/main.js', import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write(
    "error: envext is not built (dist/bin/main.js is missing) (run 'npm run build' in the envext folder)\n",
  );
  process.exit(1);
}
const { main } = await import(compiled.href);
const code = await main(process.argv.slice(2));
// Let stdout drain before exiting: process.exit() can cut piped output short.
process.exitCode = code;
