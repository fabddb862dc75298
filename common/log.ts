/**
 * The one logger every component uses.
 *
 * Logs go to stderr so that stdout stays for a command's own output (YAML, JSON, tables).
 * Two formats: `text` for people (`2026-11-22T02:40:00.000Z INFO  oci: pushed digest=sha256:…`)
 * and `json` for machines (one object per line, pino-compatible keys: `time`, `level`, `msg`).
 *
 * Hot paths call `isEnabled(level)` before building anything costly: a disabled level costs one
 * integer comparison (grpc-js `isTracerEnabled`).
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Structured fields attached to one record. Values are printed with `String()` (text) or as JSON. */
export type LogFields = Readonly<Record<string, unknown>>;

const SEVERITY: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogSink {
  write(line: string): unknown;
}

interface LoggerState {
  threshold: number;
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
  now: () => Date;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** True when a record at `level` would be written; check it before formatting costly fields. */
  isEnabled(level: Exclude<LogLevel, 'silent'>): boolean;
  /** A logger that adds `bindings` (e.g. `{ component: 'oci' }`) to every record; shares the configuration. */
  child(bindings: LogFields): Logger;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

class LoggerImpl implements Logger {
  constructor(
    private readonly state: LoggerState,
    private readonly bindings: LogFields,
  ) {}

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  isEnabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return SEVERITY[level] >= this.state.threshold;
  }

  child(bindings: LogFields): Logger {
    return new LoggerImpl(this.state, { ...this.bindings, ...bindings });
  }

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields: LogFields | undefined): void {
    if (SEVERITY[level] < this.state.threshold) return;
    const time = this.state.now().toISOString();
    const line =
      this.state.format === 'json'
        ? formatJson(time, level, msg, this.bindings, fields)
        : formatText(time, level, msg, this.bindings, fields);
    this.state.sink.write(line + '\n');
  }
}

function formatJson(
  time: string,
  level: string,
  msg: string,
  bindings: LogFields,
  fields: LogFields | undefined,
): string {
  const record: Record<string, unknown> = { time, level, ...bindings, msg };
  if (fields) for (const [k, v] of Object.entries(fields)) record[k] = v instanceof Error ? errorFields(v) : v;
  return JSON.stringify(record, jsonReplacer);
}

function formatText(
  time: string,
  level: string,
  msg: string,
  bindings: LogFields,
  fields: LogFields | undefined,
): string {
  const { component, ...rest } = bindings;
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${component === undefined ? '' : `${textValue(component)}: `}${msg}`;
  for (const [k, v] of Object.entries(rest)) line += ` ${k}=${textValue(v)}`;
  if (fields) for (const [k, v] of Object.entries(fields)) line += ` ${k}=${textValue(v)}`;
  return line;
}

function textValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v !== 'object') return String(v);
  return JSON.stringify(v, jsonReplacer);
}

function errorFields(e: Error): Record<string, unknown> {
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, ...(code === undefined ? {} : { code }), stack: e.stack };
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  readonly sink?: LogSink;
  /** Clock for timestamps; tests pass a fixed one. */
  readonly now?: () => Date;
}

/** Creates an independent logger (tests use this with their own sink). */
export function createLogger(options: LoggerOptions = {}, bindings: LogFields = {}): Logger {
  const level = options.level ?? 'info';
  return new LoggerImpl(
    {
      level,
      threshold: SEVERITY[level],
      format: options.format ?? 'text',
      sink: options.sink ?? process.stderr,
      now: options.now ?? (() => new Date()),
    },
    bindings,
  );
}

// The process-wide root. Components take `rootLogger.child({ component: 'oci' })` once at module
// load; `configureLogging` later changes level and format in place, so those children follow.
const rootState: LoggerState = {
  level: 'info',
  threshold: SEVERITY.info,
  format: 'text',
  sink: process.stderr,
  now: () => new Date(),
};

/** The process-wide logger; configured once by the CLI from `--log-level` and `--log-format`. */
export const rootLogger: Logger = new LoggerImpl(rootState, {});

/** Sets the process-wide level, format and sink (the CLI calls this before running a command). */
export function configureLogging(options: LoggerOptions): void {
  if (options.level !== undefined) {
    rootState.level = options.level;
    rootState.threshold = SEVERITY[options.level];
  }
  if (options.format !== undefined) rootState.format = options.format;
  if (options.sink !== undefined) rootState.sink = options.sink;
  if (options.now !== undefined) rootState.now = options.now;
}

/** The current process-wide level (the CLI uses it to decide whether to print stack traces). */
export function currentLogLevel(): LogLevel {
  return rootState.level;
}
