/**
 * Argument parsing and dispatch for `envext`.
 *
 * `envext [global flags] <group> [<subcommand>…] [flags] [args]`
 *
 * 1. The command path is found from the leading positionals: each one must name a subcommand of
 *    the group reached so far; the first that is not is an unknown command (exit 2).
 * 2. The remaining arguments are parsed strictly by `node:util.parseArgs` with the global flags
 *    plus the command's own, so a misspelt flag is a usage error, not silently ignored.
 * 3. The command runs with a configured logger and an AbortSignal tied to SIGINT/SIGTERM.
 *
 * Exit codes: 0 ok, 1 failure, 2 usage error. Errors print as one line on stderr; the stack
 * trace only with `--log-level debug`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  isGroup,
  loadEntry,
  type Command,
  type CommandEntry,
  type CommandContext,
  type CommandGroup,
  type CommandNode,
  type OptionSpec,
} from '../common/cli.js';
import { EnvextError, UsageError, errorMessage } from '../common/errors.js';
import {
  LOG_FORMATS,
  LOG_LEVELS,
  configureLogging,
  isLogFormat,
  isLogLevel,
  rootLogger,
  type LogFormat,
  type LogLevel,
} from '../common/log.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Flags accepted at every level. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
  version: { type: 'boolean', description: 'print the envext version and exit' },
  'log-level': {
    type: 'string',
    valueName: 'LEVEL',
    description: `log level: ${LOG_LEVELS.join('|')}`,
    defaultText: 'info',
  },
  'log-format': {
    type: 'string',
    valueName: 'FORMAT',
    description: `log format: ${LOG_FORMATS.join('|')}`,
    defaultText: 'text',
  },
};

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted when the process is asked to stop; commands that serve watch it. */
  readonly signal?: AbortSignal;
}

export interface CliProgram {
  readonly root: CommandGroup;
  readonly version: string;
}

type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Runs one invocation and returns the exit code. Never throws. */
export async function runCli(program: CliProgram, argv: readonly string[], io: CliIo): Promise<number> {
  let debug = argv.some((a, i) => a === '--log-level=debug' || (a === '--log-level' && argv[i + 1] === 'debug'));
  let pathNames: string[] = [program.root.name];
  try {
    const { node, path, rest } = await findCommand(program.root, argv);
    pathNames = path.map((n) => n.name);
    const options = { ...GLOBAL_OPTIONS, ...(isGroup(node) ? {} : node.options) };
    const { values, positionals } = strictParse(options, rest);

    const level = values['log-level'];
    const format = values['log-format'];
    if (typeof level === 'string' && !isLogLevel(level)) {
      throw new UsageError(`invalid --log-level "${level}"`, `use one of ${LOG_LEVELS.join(', ')}`);
    }
    if (typeof format === 'string' && !isLogFormat(format)) {
      throw new UsageError(`invalid --log-format "${format}"`, `use one of ${LOG_FORMATS.join(', ')}`);
    }
    configureLogging({
      level: (level as LogLevel | undefined) ?? 'info',
      format: (format as LogFormat | undefined) ?? 'text',
      sink: io.stderr,
    });
    debug = level === 'debug';

    if (values['help'] === true) {
      io.stdout.write(renderHelp(path));
      return EXIT_OK;
    }
    if (values['version'] === true) {
      io.stdout.write(`envext ${program.version}\n`);
      return EXIT_OK;
    }
    if (isGroup(node)) {
      // Like cobra: a group without a subcommand shows what it offers. Extra words were already
      // rejected by findCommand, so this is a plain `envext oci`.
      io.stdout.write(renderHelp(path));
      return EXIT_OK;
    }
    checkPositionals(node, positionals, pathNames.join(' '));
    const ctx: CommandContext = {
      options: values as CommandContext['options'],
      positionals,
      log: rootLogger,
      stdout: io.stdout,
      stderr: io.stderr,
      signal: io.signal ?? new AbortController().signal,
      commandPath: pathNames.join(' '),
    };
    const code = await node.run(ctx);
    return code ?? EXIT_OK;
  } catch (e: unknown) {
    const usage = e instanceof UsageError;
    io.stderr.write(formatError(e, usage ? pathNames.join(' ') : undefined) + '\n');
    if (debug && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
    return usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/** One line: `error: <what and where> (<what to do>)`. */
export function formatError(e: unknown, usagePath?: string): string {
  let msg = `error: ${errorMessage(e).replace(/\s*\n\s*/g, ' ')}`;
  const hint = e instanceof EnvextError ? e.hint : undefined;
  if (hint !== undefined) msg += ` (${hint})`;
  else if (usagePath !== undefined) msg += ` (run '${usagePath} --help' for usage)`;
  return msg;
}

async function findCommand(
  root: CommandGroup,
  argv: readonly string[],
): Promise<{ node: CommandNode; path: CommandNode[]; rest: string[] }> {
  // A lenient first pass only to see which tokens are positionals; the strict parse comes later.
  const { tokens } = parseArgs({
    args: [...argv],
    options: toParseArgsOptions(GLOBAL_OPTIONS),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const path: CommandNode[] = [root];
  const consumed = new Set<number>();
  let node: CommandNode = root;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') break;
    if (token.kind !== 'positional') continue;
    if (!isGroup(node)) break;
    const entry: CommandEntry | undefined = node.subcommands.find((c) => c.name === token.value);
    if (entry === undefined) {
      const names = path.map((n) => n.name).join(' ');
      throw new UsageError(
        `unknown command "${token.value}" for "${names}"`,
        `run '${names} --help' to see the commands${suggest(token.value, node.subcommands)}`,
      );
    }
    const next = await loadEntry(entry);
    consumed.add(token.index);
    path.push(next);
    node = next;
  }
  return { node, path, rest: argv.filter((_, i) => !consumed.has(i)) };
}

function suggest(word: string, candidates: readonly CommandEntry[]): string {
  const close = candidates.find((c) => editDistance(word, c.name) <= 2);
  return close ? `; did you mean "${close.name}"?` : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

function toParseArgsOptions(options: Readonly<Record<string, OptionSpec>>): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(options)) {
    out[name] = {
      type: spec.type,
      ...(spec.short === undefined ? {} : { short: spec.short }),
      ...(spec.multiple === undefined ? {} : { multiple: spec.multiple }),
    };
  }
  return out;
}

function strictParse(
  options: Readonly<Record<string, OptionSpec>>,
  args: string[],
): { values: ParsedValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: toParseArgsOptions(options),
      strict: true,
      allowPositionals: true,
    });
    return { values, positionals };
  } catch (e: unknown) {
    // parseArgs messages are already specific ("Unknown option '--fromat'"); keep the first sentence.
    const text = errorMessage(e).split('. ')[0]?.replace(/\.$/, '') ?? 'invalid arguments';
    throw new UsageError(text.charAt(0).toLowerCase() + text.slice(1));
  }
}

function checkPositionals(cmd: Command, positionals: readonly string[], path: string): void {
  const specs = cmd.positionals ?? [];
  const required = specs.filter((p) => p.required === true).length;
  const variadic = specs.some((p) => p.variadic === true);
  if (positionals.length < required) {
    const missing = specs.filter((p) => p.required === true)[positionals.length];
    throw new UsageError(`${path}: missing argument ${missing?.name ?? ''}`.trimEnd());
  }
  if (!variadic && positionals.length > specs.length) {
    throw new UsageError(`${path}: unexpected argument "${positionals[specs.length] ?? ''}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// Help

function flagLabel(name: string, spec: OptionSpec): string {
  const short = spec.short === undefined ? '    ' : `-${spec.short}, `;
  const value = spec.type === 'string' ? ` ${spec.valueName ?? name.toUpperCase()}` : '';
  return `${short}--${name}${value}`;
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.min(32, Math.max(...rows.map(([l]) => l.length)));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join('\n') + '\n';
}

function optionRows(options: Readonly<Record<string, OptionSpec>>): [string, string][] {
  return Object.entries(options).map(([name, spec]) => [
    flagLabel(name, spec),
    spec.description +
      (spec.defaultText === undefined ? '' : ` (default ${spec.defaultText})`) +
      (spec.multiple === true ? ' (repeatable)' : ''),
  ]);
}

/** Help text for the node at the end of `path`. */
export function renderHelp(path: readonly CommandNode[]): string {
  const node = path[path.length - 1];
  if (node === undefined) return '';
  const name = path.map((n) => n.name).join(' ');
  let out = `${name} - ${node.summary}\n\n`;
  if (node.description !== undefined) out += `${node.description.trim()}\n\n`;
  if (isGroup(node)) {
    out += `Usage:\n  ${name} <command> [flags]\n\n`;
    out += `Commands:\n${table(node.subcommands.map((c) => [c.name, c.summary]))}\n`;
  } else {
    const args = (node.positionals ?? [])
      .map((p) => {
        const label = p.variadic === true ? `${p.name}...` : p.name;
        return p.required === true ? label : `[${label}]`;
      })
      .join(' ');
    out += `Usage:\n  ${name} [flags]${args ? ' ' + args : ''}\n\n`;
    if (node.positionals !== undefined && node.positionals.length > 0) {
      out += `Arguments:\n${table(node.positionals.map((p) => [p.name, p.description]))}\n`;
    }
    if (node.options !== undefined && Object.keys(node.options).length > 0) {
      out += `Flags:\n${table(optionRows(node.options))}\n`;
    }
  }
  out += `Global flags:\n${table(optionRows(GLOBAL_OPTIONS))}`;
  if (node.examples !== undefined && node.examples.length > 0) {
    out += `\nExamples:\n${node.examples.map((e) => `  ${e}`).join('\n')}\n`;
  }
  if (isGroup(node)) out += `\nRun '${name} <command> --help' for more about a command.\n`;
  return out;
}
