/** `envext serve --provider file` as a command: prints where it serves, the bootstrap command and statuses; stops on the signal. */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { program } from '../../bin/commands.js';
import { runCli } from '../../bin/dispatch.js';

const sink = (): Writable & { text: string } => {
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
};

describe('envext serve --provider file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'envext-serve-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the quickstart, prints statuses and the bootstrap command, and stops on the signal', async () => {
    // The quickstart without the launcher: its Wasm origin is not started here, so the policy's
    // status says whether the module could be fetched; serving goes on either way.
    cpSync('examples/quickstart', join(dir, 'config'), { recursive: true });
    const out = sink();
    const err = sink();
    const abort = new AbortController();
    const run = runCli(
      program,
      [
        '--log-level',
        'error',
        'serve',
        '--config',
        join(dir, 'config'),
        '--xds-address',
        '127.0.0.1:0',
        '--wasm-address',
        '127.0.0.1:0',
        '--admin-address',
        '127.0.0.1:0',
        '--wasm-cache-dir',
        join(dir, 'cache'),
        '--status-file',
        join(dir, 'status.yaml'),
      ],
      { stdout: out, stderr: err, signal: abort.signal },
    );
    const deadline = Date.now() + 30_000;
    while (!out.text.includes('envext serve is running') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(out.text).toMatch(/xDS \(ADS, SotW \+ delta\):\s+127\.0\.0\.1:\d+/);
    expect(out.text).toMatch(/npx envext bootstrap --gateway default\/eg --xds-address 127\.0\.0\.1:\d+/);
    expect(out.text).toContain('Gateway default/eg\n  Accepted=True');
    expect(out.text).toMatch(
      /EnvoyExtensionPolicy default\/shop-extensions\n {2}ancestor Gateway default\/eg#http: Accepted=(True|False)/,
    );
    abort.abort();
    expect(await run).toBe(0);
  });
});
