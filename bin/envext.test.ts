// Runs the installed executable the way a user does (`npx envext …`), from dist/.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('./envext.js', import.meta.url));
const dist = fileURLToPath(new URL('../dist/bin/main.js', import.meta.url));

function envext(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr });
    });
  });
}

describe('bin/envext.js', () => {
  it('is built (npm ci runs the build through "prepare")', () => {
    expect(existsSync(dist), `${dist} is missing: run 'npm run build'`).toBe(true);
  });

  it('--version prints the package version', async () => {
    const r = await envext(['--version']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^envext \d+\.\d+\.\d+\n$/);
  });

  it('--help lists command groups', async () => {
    const r = await envext(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage:\n  envext <command> [flags]');
  });

  it('unknown command exits 2 with one line on stderr', async () => {
    const r = await envext(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error: unknown command "frobnicate" for "envext" (run 'envext --help' to see the commands)\n`,
    );
  });
});

describe('bin/envext.js --help', () => {
  it('loads no component: grpc-js, client-node, prom-client and assemblyscript stay unloaded', async () => {
    // A module-resolution hook (module.register, Node ≥ 20.6) that reports heavy packages on fd 2.
    const hooks = [
      'import { writeSync } from "node:fs";',
      'export async function resolve(s, c, next) {',
      '  const r = await next(s, c);',
      '  if (/@grpc|client-node|assemblyscript|prom-client/.test(r.url)) writeSync(2, "HEAVY " + r.url + "\\n");',
      '  return r;',
      '}',
    ].join('\n');
    const probe = `import { register } from "node:module"; register(${JSON.stringify(
      `data:text/javascript,${encodeURIComponent(hooks)}`,
    )});`;
    const r = await new Promise<{ stderr: string; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', `data:text/javascript,${encodeURIComponent(probe)}`, bin, '--help'],
        (_e, stdout, stderr) => resolve({ stdout, stderr }),
      );
    });
    expect(r.stdout).toContain('Commands:');
    expect(r.stderr).toBe('');
  });
});

describe('bin/envext.js output to a closed pipe', () => {
  it('exits quietly on EPIPE (envext … | head)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [bin, 'version', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader goes away before envext writes
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at /);
    expect(code).toBe(0);
  });
});
