// Every way envext is started runs Node with what runtime.ts says.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { packageRoot } from './package-root.js';
import { CONTROL_PLANE_NODE_FLAGS, NODE_ENV, shebang } from './runtime.js';

const read = (path: string): string => readFileSync(join(packageRoot(), path), 'utf8');
const envText = Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`);

describe('the Node runtime envext starts with', () => {
  it('is the shebang of bin/envext.js', () => {
    expect(read('bin/envext.js').split('\n')[0]).toBe(shebang());
  });

  it('applies when a file with that shebang runs (the environment reaches the process, V8 keeps its defaults)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'envext-runtime-'));
    try {
      const probe = join(dir, 'probe.cjs');
      writeFileSync(
        probe,
        `${shebang()}\nconsole.log(JSON.stringify({ argv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX, mmap: process.env.MALLOC_MMAP_THRESHOLD_ }));\n`,
        { mode: 0o755 },
      );
      const seen = JSON.parse(execFileSync(probe, { encoding: 'utf8' })) as Record<string, unknown>;
      expect(seen).toEqual({
        argv: [],
        arena: NODE_ENV['MALLOC_ARENA_MAX'],
        mmap: NODE_ENV['MALLOC_MMAP_THRESHOLD_'],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what npm start uses, with the control plane flags', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['start'] ?? '';
    expect(start).toBe(
      `${envText.join(' ')} node ${CONTROL_PLANE_NODE_FLAGS.join(' ')} dist/controlplane/serve/quickstart.js`,
    );
  });

  it('is what the container image uses (the environment; V8 defaults, as for the ext_proc sidecar)', () => {
    const dockerfile = read('controlplane/deploy/Dockerfile');
    expect(dockerfile).toContain(`ENV ${envText.join(' ')}\n`);
    expect(dockerfile).toContain(`ENTRYPOINT ${JSON.stringify(['node', '/app/bin/envext.js'])}`);
  });

  it('gives the control plane Deployment its flags through NODE_OPTIONS', () => {
    const docs = parseAllDocuments(read('controlplane/deploy/controlplane.yaml')).map((d) => d.toJS() as unknown);
    const deployment = docs.find((d) => (d as { kind?: string }).kind === 'Deployment') as {
      spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
    };
    const env = deployment.spec.template.spec.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(CONTROL_PLANE_NODE_FLAGS.join(' '));
  });
});
