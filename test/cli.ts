/**
 * Runs `envext` in-process for tests: the real dispatcher over the real command list (or a
 * given program), with stdout and stderr captured as text.
 */
import { PassThrough } from 'node:stream';
import { program as envextProgram } from '../bin/commands.js';
import { runCli, type CliProgram } from '../bin/dispatch.js';

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export async function runEnvext(argv: readonly string[], program: CliProgram = envextProgram): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  stdout.on('data', (c: Buffer) => o.push(c));
  stderr.on('data', (c: Buffer) => e.push(c));
  const code = await runCli(program, argv, { stdout, stderr });
  return { code, out: Buffer.concat(o).toString('utf8'), err: Buffer.concat(e).toString('utf8') };
}
