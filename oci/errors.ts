/**
 * Typed errors of the OCI client. Every failure has a stable `code` (STYLE.md §4); callers branch
 * on it, never on the message. Registry error JSON (`{"errors":[{code,message,detail}]}`) is
 * mapped onto these codes by `fromRegistryResponse` in `registry-client.ts`.
 */
import { EnvextError } from '../common/errors.js';

/** Every code an `OciError` can carry. */
export const OCI_ERROR_CODES = [
  'OCI_REFERENCE_INVALID',
  'OCI_DIGEST_INVALID',
  'OCI_UNAUTHORIZED',
  'OCI_DENIED',
  'OCI_INSUFFICIENT_SCOPE',
  'OCI_MANIFEST_NOT_FOUND',
  'OCI_BLOB_NOT_FOUND',
  'OCI_NAME_NOT_FOUND',
  'OCI_DIGEST_MISMATCH',
  'OCI_TRUNCATED',
  'OCI_UNSUPPORTED_MEDIA_TYPE',
  'OCI_INDEX_NOT_SUPPORTED',
  'OCI_NOT_WASM',
  'OCI_TOO_LARGE',
  'OCI_MANIFEST_INVALID',
  'OCI_REGISTRY_UNAVAILABLE',
  'OCI_REGISTRY_ERROR',
  'OCI_TLS',
  'OCI_CONNECTION',
  'OCI_CREDENTIALS',
  'OCI_CACHE_LOCKED',
] as const;
/** One of `OCI_ERROR_CODES`. */
export type OciErrorCode = (typeof OCI_ERROR_CODES)[number];

/** A failure talking to a registry or interpreting what it returned. */
export class OciError extends EnvextError {
  override readonly name = 'OciError';
  declare readonly code: OciErrorCode;
  /** HTTP status of the response that caused it, when there was one. */
  readonly status: number | undefined;
  /** The registry's own error code (`MANIFEST_UNKNOWN`…), when it sent one. */
  readonly registryCode: string | undefined;

  constructor(
    code: OciErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; status?: number; registryCode?: string } = {},
  ) {
    const base: { hint?: string; cause?: unknown } = {};
    if (options.hint !== undefined) base.hint = options.hint;
    if (options.cause !== undefined) base.cause = options.cause;
    super(code, message, base);
    this.status = options.status;
    this.registryCode = options.registryCode;
  }
}

/** True when `e` is an `OciError` (with `code`, when given). */
export function isOciError(e: unknown, code?: OciErrorCode): e is OciError {
  return e instanceof OciError && (code === undefined || e.code === code);
}
