/**
 * `npm run build` step: builds every example filter into `extensions/examples/<name>/build/`
 * (reusing up-to-date outputs) and prints one line per module.
 */
import { relative } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { buildCached, exampleEntries } from './build-cache.js';

let failed = 0;
for (const ex of exampleEntries()) {
  try {
    const r = await buildCached(ex.entry, { outFile: ex.outFile });
    process.stdout.write(
      `example ${ex.name}: ${relative(process.cwd(), r.outFile)} ${r.binary.length} bytes${r.built ? '' : ' (up to date)'}\n`,
    );
  } catch (e) {
    failed++;
    process.stderr.write(`error: example ${ex.name}: ${errorMessage(e)}\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
