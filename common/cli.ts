/**
 * Command declarations shared by every component's `cli.ts`.
 *
 * A component exports one `CommandGroup` (e.g. `wasm` with `inspect`, `run`, `bench`) or a
 * top-level `Command` (e.g. `translate`); `bin/commands.ts` lists them and `bin/dispatch.ts`
 * parses argv with `node:util.parseArgs`, renders `--help` at every level and maps errors to
 * exit codes. Components never touch `process.argv` or `process.exit` themselves.
 */
import type { Logger } from './log.js';

/** One flag. `type` and `multiple` are passed to `node:util.parseArgs` as they are. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Shown in help: `--format FORMAT`. Defaults to the upper-cased flag name. */
  readonly valueName?: string;
  readonly description: string;
  /** Shown in help only; the command applies its own default. */
  readonly defaultText?: string;
}

export interface PositionalSpec {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
  /** Takes every remaining argument (only the last positional). */
  readonly variadic?: boolean;
}

/** What a command's `run` receives. */
export interface CommandContext {
  /** Flag values by long name: `string`, `boolean`, or `string[]` for `multiple`. Absent when not given. */
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** Positional arguments in order (after the command path). */
  readonly positionals: readonly string[];
  /** The process-wide logger, already configured from `--log-level`/`--log-format`. */
  readonly log: Logger;
  /** Command output (stdout). Logs go to stderr through `log`. */
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted on SIGINT/SIGTERM; long-running commands stop gracefully when it fires. */
  readonly signal: AbortSignal;
  /** The full command path, e.g. `envext oci push`, for messages. */
  readonly commandPath: string;
}

interface CommandBase {
  readonly name: string;
  /** One line, lower-case start, no full stop: shown in the parent's command list. */
  readonly summary: string;
  /** Longer text shown in the command's own help. */
  readonly description?: string;
  readonly examples?: readonly string[];
}

/** A runnable command. `run` returns the exit code (0 when it returns nothing). */
export interface Command extends CommandBase {
  readonly options?: Readonly<Record<string, OptionSpec>>;
  readonly positionals?: readonly PositionalSpec[];
  run(ctx: CommandContext): Promise<number | void> | number | void;
}

/** A group of subcommands (`envext oci …`). Running it without a subcommand prints its help. */
export interface CommandGroup extends CommandBase {
  readonly subcommands: readonly CommandEntry[];
}

export type CommandNode = Command | CommandGroup;

/**
 * A command whose module is imported only when it is chosen (or its help is asked for), so
 * `envext --help` and every other command do not pay for loading grpc-js, client-node or the
 * AssemblyScript compiler. `name` and `summary` must equal those of the loaded node (a test in
 * bin/ checks it).
 */
export interface LazyCommand {
  readonly name: string;
  readonly summary: string;
  load(): Promise<CommandNode>;
}

export type CommandEntry = CommandNode | LazyCommand;

export function isGroup(node: CommandEntry): node is CommandGroup {
  return 'subcommands' in node;
}

export function isLazy(entry: CommandEntry): entry is LazyCommand {
  return 'load' in entry;
}

/** The node behind an entry, importing its module if it is lazy. */
export async function loadEntry(entry: CommandEntry): Promise<CommandNode> {
  return isLazy(entry) ? entry.load() : entry;
}

/** Reads a string flag, or `undefined`. */
export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.options[name];
  return typeof v === 'string' ? v : undefined;
}

/** Reads a boolean flag (false when absent). */
export function booleanOption(ctx: CommandContext, name: string): boolean {
  return ctx.options[name] === true;
}

/** Reads a repeatable string flag (empty when absent). */
export function stringsOption(ctx: CommandContext, name: string): readonly string[] {
  const v = ctx.options[name];
  if (Array.isArray(v)) return v;
  return typeof v === 'string' ? [v] : [];
}
