/**
 * Error classes shared by every component.
 *
 * Runtime errors carry a stable `code` (`OCI_MANIFEST_NOT_FOUND`, `EXT_PROC_MESSAGE_TIMEOUT`)
 * that callers branch on, never the message text (undici `UND_ERR_*`). The message says what
 * failed and where (resource, field, file); `hint` says what to do about it. The CLI prints
 * `error: <message> (<hint>)` on one line.
 */
export class EnvextError extends Error {
  override readonly name: string = 'EnvextError';
  /** Stable, upper-snake-case identifier of the failure. */
  readonly code: string;
  /** What the user can do about it, when there is something to say. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

/** Wrong command line: unknown command or flag, missing argument. The CLI exits with status 2. */
export class UsageError extends EnvextError {
  override readonly name = 'UsageError';
  constructor(message: string, hint?: string) {
    super('USAGE', message, hint === undefined ? {} : { hint });
  }
}

/** Where failure is an expected outcome, return this rather than throw (STYLE.md §3). */
export type Result<T, E = Problem[]> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

/** One validation problem: which resource, which field, and why. */
export interface Problem {
  /** `Kind namespace/name`, or a file path with an optional `:line`. */
  readonly resource: string;
  /** Field path, e.g. `spec.wasm[0].code.image.url`. Empty for the whole resource. */
  readonly field: string;
  readonly message: string;
}

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function err<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}

/** Exhaustiveness check for `switch` over a discriminated union. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}

/** A readable one-line message for anything thrown. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : JSON.stringify(e);
}
