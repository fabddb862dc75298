/**
 * sha256 digests as OCI writes them (`sha256:` + 64 lowercase hex).
 */
import { createHash } from 'node:crypto';
import { OciError } from './errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** `sha256:<hex>` of `data`. */
export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Hex part of a digest (`sha256:abc…` → `abc…`). */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

/** True for `sha256:` + 64 lowercase hex. */
export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/**
 * Checks that `value` is a sha256 digest before it goes into a URL or a file path. Only sha256
 * is accepted: it is what every registry and Envoy uses, and it keeps cache paths simple.
 */
export function assertDigest(value: string, what: string): string {
  if (!DIGEST_RE.test(value)) {
    throw new OciError('OCI_DIGEST_INVALID', `${what}: "${value}" is not a sha256 digest`, {
      hint: 'a digest is "sha256:" followed by 64 lowercase hex characters',
    });
  }
  return value;
}
