/**
 * `envext init filter demo` in a temp dir, then the generated project's own `npm test` (which runs
 * `envext build` and vitest). The project resolves envext from this checkout through a
 * node_modules symlink, as `npm install` of a `file:` dependency would, so the test is offline.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvextError, UsageError } from '../../common/errors.js';
import { packageRoot } from '../../common/package-root.js';
import { initFilter } from './init.js';

const root = packageRoot();
const tmp = mkdtempSync(join(tmpdir(), 'envext-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('envext init filter', () => {
  it('writes a project whose npm test builds the filter and passes', () => {
    expect(existsSync(join(root, 'dist', 'extensions', 'host', 'index.js'))).toBe(true); // npm run build first
    const dir = join(tmp, 'demo');
    const files = initFilter({ name: 'demo', dir, envextSpec: `file:${root}` });
    expect(files).toEqual([
      'package.json',
      'asconfig.json',
      'assembly/index.ts',
      'assembly/tsconfig.json',
      'demo.test.ts',
      'envoy.yaml',
      'README.md',
      '.gitignore',
    ]);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(pkg.devDependencies.envext).toBe(`file:${root}`);
    expect(readFileSync(join(dir, 'envoy.yaml'), 'utf8')).toContain('filename: build/demo.wasm');
    // What `npm install` would leave: envext linked, plus the tools the scripts call.
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(root, join(dir, 'node_modules', 'envext'));
    symlinkSync(join(root, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'));
    symlinkSync(join(root, 'bin', 'envext.js'), join(dir, 'node_modules', '.bin', 'envext'));
    symlinkSync(join(root, 'node_modules', 'vitest', 'vitest.mjs'), join(dir, 'node_modules', '.bin', 'vitest'));
    const r = spawnSync('npm', ['test', '--offline', '--no-update-notifier'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 240_000,
      env: {
        ...process.env,
        CI: '1',
        NO_COLOR: '1',
        VITEST_POOL_ID: undefined,
        VITEST: undefined,
        VITEST_WORKER_ID: undefined,
      },
    });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out).toMatch(/built build\/demo\.wasm: \d+ bytes/);
    expect(out).toMatch(/Tests\s+1 passed/);
    expect(r.status).toBe(0);
    expect(existsSync(join(dir, 'build', 'demo.wasm'))).toBe(true);
  }, 300_000);

  it.each([
    { name: 'Demo', error: UsageError },
    { name: '1st', error: UsageError },
    { name: 'a', error: UsageError },
    { name: 'has space', error: UsageError },
  ])('rejects the name $name', ({ name, error }) => {
    expect(() => initFilter({ name, dir: join(tmp, 'x') })).toThrow(error);
  });

  it('refuses a non-empty directory', () => {
    const dir = join(tmp, 'taken');
    initFilter({ name: 'taken', dir });
    const err = (() => {
      try {
        initFilter({ name: 'taken', dir });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(EnvextError);
    expect((err as EnvextError).code).toBe('SDK_INIT_DIR_NOT_EMPTY');
  });
});
