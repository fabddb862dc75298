/**
 * The `envext` process: runs one command and exits with its code. `bin/envext.js` loads this
 * from `dist/` (or from source through tsx during development).
 */
import { program } from './commands.js';
import { runCli } from './dispatch.js';

/**
 * `envext … | head` closes the pipe early; like other Unix tools, stop quietly instead of dying
 * on an unhandled EPIPE. Other stream errors are reported as one line.
 */
function guardOutput(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    process.stderr.write(`error: cannot write output: ${e.message}\n`);
    process.exit(1);
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  guardOutput(process.stdout);
  // First SIGINT/SIGTERM asks the running command to stop (serve commands drain); a second one
  // exits at once.
  const controller = new AbortController();
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) process.exit(sig === 'SIGINT' ? 130 : 143);
    signalled = true;
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await runCli(program, argv, { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
