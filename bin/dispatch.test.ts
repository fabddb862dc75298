import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isGroup, isLazy, loadEntry, type CommandEntry, type CommandGroup } from '../common/cli.js';
import { EnvextError } from '../common/errors.js';
import { rootLogger } from '../common/log.js';
import { program } from './commands.js';
import { runCli } from './dispatch.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function run(argv: string[], prog = program): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(prog, argv, { stdout: out.stream, stderr: err.stream });
  return { code, out: out.text(), err: err.text() };
}

// A small tree to exercise every level: root → group → group → command.
const seen: { options?: unknown; positionals?: unknown } = {};
const fixture: CommandGroup = {
  name: 'envext',
  summary: 'test root',
  subcommands: [
    {
      name: 'oci',
      summary: 'registry things',
      subcommands: [
        {
          name: 'push',
          summary: 'push a module',
          options: {
            format: { type: 'string', description: 'layout', defaultText: 'compat' },
            annotation: { type: 'string', multiple: true, description: 'k=v' },
          },
          positionals: [
            { name: 'REF', description: 'reference', required: true },
            { name: 'FILE', description: 'module', required: true },
          ],
          examples: ['envext oci push localhost:5000/f:v1 f.wasm'],
          run(ctx) {
            seen.options = ctx.options;
            seen.positionals = ctx.positionals;
            ctx.log.info('pushing', { ref: ctx.positionals[0] });
            ctx.log.debug('details');
          },
        },
        {
          name: 'fail',
          summary: 'always fails',
          run() {
            throw new EnvextError('OCI_MANIFEST_NOT_FOUND', 'manifest localhost:5000/f:v9 not found', {
              hint: "check the tag with 'envext oci inspect'",
            });
          },
        },
        {
          name: 'crash',
          summary: 'throws a plain error',
          run() {
            throw new TypeError('boom\nsecond line');
          },
        },
        { name: 'exit3', summary: 'returns 3', run: () => 3 },
      ],
    },
  ],
};
const fixtureProgram = { root: fixture, version: '9.9.9' };

describe('envext CLI dispatch', () => {
  it.each([
    { argv: ['--help'], has: ['envext - test root', 'Commands:', 'oci', 'Global flags:', '--log-level LEVEL'] },
    { argv: ['oci', '--help'], has: ['envext oci - registry things', 'Commands:', 'push', 'fail'] },
    {
      argv: ['oci', 'push', '--help'],
      has: [
        'Usage:\n  envext oci push [flags] REF FILE',
        '--format FORMAT',
        '(default compat)',
        '(repeatable)',
        'Examples:',
      ],
    },
    { argv: ['oci', 'push', '-h'], has: ['envext oci push - push a module'] },
    { argv: ['oci'], has: ['envext oci - registry things'] },
  ])('prints help for $argv', async ({ argv, has }) => {
    const r = await run(argv, fixtureProgram);
    expect(r.code).toBe(0);
    for (const h of has) expect(r.out).toContain(h);
    expect(r.err).toBe('');
  });

  it('prints the version', async () => {
    expect(await run(['--version'], fixtureProgram)).toEqual({ code: 0, out: 'envext 9.9.9\n', err: '' });
  });

  it.each([
    {
      argv: ['nope'],
      err: /^error: unknown command "nope" for "envext" \(run 'envext --help' to see the commands\)\n$/,
    },
    { argv: ['oci', 'psuh'], err: /unknown command "psuh" for "envext oci" .*did you mean "push"\?\)\n$/ },
    {
      argv: ['oci', 'push', 'a', 'b', '--fromat', 'x'],
      err: /^error: unknown option '--fromat' \(run 'envext oci push --help' for usage\)\n$/,
    },
    { argv: ['oci', 'push', 'a'], err: /^error: envext oci push: missing argument FILE/ },
    { argv: ['oci', 'push', 'a', 'b', 'c'], err: /unexpected argument "c"/ },
    {
      argv: ['oci', 'push', 'a', 'b', '--log-level', 'loud'],
      err: /invalid --log-level "loud" \(use one of debug, info, warn, error, silent\)/,
    },
    { argv: ['--log-format', 'xml', 'oci'], err: /invalid --log-format "xml"/ },
  ])('usage error for $argv: exit 2, one line', async ({ argv, err }) => {
    const r = await run(argv, fixtureProgram);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(err);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });

  it('passes flags and positionals to the command, global flags anywhere', async () => {
    const r = await run(
      [
        '--log-level',
        'warn',
        'oci',
        'push',
        '--format',
        'oci',
        'reg/f:v1',
        'f.wasm',
        '--annotation',
        'a=1',
        '--annotation',
        'b=2',
      ],
      fixtureProgram,
    );
    expect(r.code).toBe(0);
    expect(seen.positionals).toEqual(['reg/f:v1', 'f.wasm']);
    expect(seen.options).toMatchObject({ format: 'oci', annotation: ['a=1', 'b=2'], 'log-level': 'warn' });
    expect(r.err).toBe(''); // info is below warn
  });

  it('logs as JSON with --log-format json', async () => {
    const r = await run(['oci', 'push', 'r', 'f', '--log-format', 'json', '--log-level', 'debug'], fixtureProgram);
    const lines = r.err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['level'], l['msg']])).toEqual([
      ['info', 'pushing'],
      ['debug', 'details'],
    ]);
    expect(lines[0]?.['ref']).toBe('r');
    rootLogger.info('reset'); // configured sink is the captured stream; nothing else to restore
  });

  it('prints a failure as one line with its hint, exit 1, no stack', async () => {
    const r = await run(['oci', 'fail'], fixtureProgram);
    expect(r.code).toBe(1);
    expect(r.err).toBe("error: manifest localhost:5000/f:v9 not found (check the tag with 'envext oci inspect')\n");
  });

  it('folds a multi-line message into one line, and shows the stack only at debug', async () => {
    const plain = await run(['oci', 'crash'], fixtureProgram);
    expect(plain).toEqual({ code: 1, out: '', err: 'error: boom second line\n' });
    const debug = await run(['oci', 'crash', '--log-level', 'debug'], fixtureProgram);
    expect(debug.code).toBe(1);
    expect(debug.err).toMatch(/^error: boom second line\nTypeError: boom\n[\s\S]*at /);
  });

  it('returns the exit code a command gives', async () => {
    expect((await run(['oci', 'exit3'], fixtureProgram)).code).toBe(3);
  });
});

describe('the real envext program', () => {
  it('lists its command groups in --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of program.root.subcommands) expect(r.out).toContain(`  ${c.name}`);
  });

  it('has --help at every level and a summary everywhere', async () => {
    const walk = async (path: string[], entry: CommandEntry): Promise<void> => {
      const node = await loadEntry(entry);
      // A lazy entry must announce the same name and summary as the command it loads.
      expect([node.name, node.summary], path.join(' ')).toEqual([entry.name, entry.summary]);
      const r = await run([...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      expect(r.out).toContain(`${['envext', ...path].join(' ')} - ${node.summary}`);
      if (isGroup(node)) for (const c of node.subcommands) await walk([...path, c.name], c);
    };
    await walk([], program.root);
  });

  it('imports component modules lazily: only version is eager', () => {
    const eager = program.root.subcommands.filter((e) => !isLazy(e)).map((e) => e.name);
    expect(eager).toEqual(['version']);
  });

  it('version --json reports envext and the proto source', async () => {
    const r = await run(['version', '--json']);
    const info = JSON.parse(r.out) as Record<string, string>;
    expect(info['envext']).toBe(program.version);
    expect(info['proxyWasmAbi']).toBe('0.2.1');
    expect(info['envoyApiProtos']).toMatch(/^@grpc\/grpc-js-xds \d+\.\d+\.\d+$/);
  });
});
