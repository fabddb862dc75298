/** `envext build` and `envext init filter` through the real CLI dispatcher. */
import { runEnvext, type CliRun } from '../../test/cli.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'envext-cli-'));
const cwd = process.cwd();
afterAll(() => {
  process.chdir(cwd);
  rmSync(tmp, { recursive: true, force: true });
});

const cli = (...argv: string[]): Promise<CliRun> => runEnvext(argv);

describe('envext init filter + envext build', () => {
  it('scaffolds a project and builds it from its asconfig.json, printing size and imports', async () => {
    process.chdir(tmp);
    const init = await cli('init', 'filter', 'cli-demo');
    expect(init.code).toBe(0);
    expect(init.out).toContain('created cli-demo/ (8 files)');
    process.chdir(join(tmp, 'cli-demo'));
    const build = await cli('build', '--json');
    expect(build.err).toBe('');
    expect(build.code).toBe(0);
    const r = JSON.parse(build.out) as { outFile: string; size: number; runtime: string; imports: string[] };
    expect(r.outFile).toBe('build/cli-demo.wasm');
    expect(readFileSync(join(tmp, 'cli-demo', r.outFile)).length).toBe(r.size);
    expect(r.runtime).toBe('minimal');
    expect(r.imports).toContain('env.proxy_add_header_map_value');
  }, 180_000);

  it.each([
    {
      name: 'an unknown runtime',
      argv: ['build', '--runtime', 'stub'],
      code: 2,
      err: /--runtime stub is not supported \(use one of: minimal, incremental\)/,
    },
    { name: 'a missing entry', argv: ['build', 'nope.ts'], code: 1, err: /filter entry nope\.ts does not exist/ },
    {
      name: 'a bad project name',
      argv: ['init', 'filter', 'Bad_Name'],
      code: 2,
      err: /filter name "Bad_Name" is not valid/,
    },
  ])('fails on $name with a one-line error', async ({ argv, code, err }) => {
    process.chdir(tmp);
    const r = await cli(...argv);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(err);
  });

  it('reports an invalid asconfig.json', async () => {
    const dir = mkdtempSync(join(tmp, 'bad-'));
    writeFileSync(join(dir, 'asconfig.json'), '{ nope');
    process.chdir(dir);
    const r = await cli('build');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/asconfig\.json is not valid JSON/);
  });
});
