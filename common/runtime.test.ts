// Every way envext is started runs Node with the same flags and environment (runtime.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from './package-root.js';
import { NODE_ENV, NODE_FLAGS, shebang } from './runtime.js';

const read = (path: string): string => readFileSync(join(packageRoot(), path), 'utf8');

describe('the Node runtime envext starts with', () => {
  it('is the shebang of bin/envext.js', () => {
    expect(read('bin/envext.js').split('\n')[0]).toBe(shebang());
  });

  it('applies when a file with that shebang runs (flags and environment reach the process)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'envext-runtime-'));
    try {
      const probe = join(dir, 'probe.cjs');
      writeFileSync(
        probe,
        `${shebang()}\nconsole.log(JSON.stringify({ argv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX }));\n`,
        { mode: 0o755 },
      );
      const seen = JSON.parse(execFileSync(probe, { encoding: 'utf8' })) as { argv: string[]; arena: string };
      expect(seen.argv).toEqual([...NODE_FLAGS]);
      expect(seen.arena).toBe(NODE_ENV['MALLOC_ARENA_MAX']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what npm start uses', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['start'] ?? '';
    for (const [k, v] of Object.entries(NODE_ENV)) expect(start).toContain(`${k}=${v} `);
    expect(start).toContain(`node ${NODE_FLAGS.join(' ')} `);
  });

  it('is what the container image uses', () => {
    const dockerfile = read('controlplane/deploy/Dockerfile');
    for (const [k, v] of Object.entries(NODE_ENV)) expect(dockerfile).toContain(`${k}=${v}`);
    expect(dockerfile).toContain(`ENTRYPOINT ${JSON.stringify(['node', ...NODE_FLAGS, '/app/bin/envext.js'])}`);
  });
});
