/**
 * `npm run bench`: runs every `test/bench/*.bench.ts` in its own process, one after the other
 * (so they do not compete for the two cores), and passes through the JSON line each prints.
 * `npm run bench -- NAME` runs only the benchmarks whose file name contains NAME.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts') && (filter === undefined || f.includes(filter)))
  .sort();
let failed = 0;
for (const file of files) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(dir, file)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`error: benchmark ${file} exited with ${r.status ?? r.signal} (see its output above)\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
