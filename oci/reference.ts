/**
 * Image references, parsed and normalised the way docker and go-containerregistry do:
 *
 * ```
 *   [oci://] [registry[:port]/] repository [:tag] [@sha256:<64 hex>]
 *   nginx                    → docker.io/library/nginx:latest
 *   localhost:5000/f/x@sha256:… → localhost:5000/f/x@sha256:…   (digest wins over any tag)
 * ```
 *
 * The first path component is a registry when it contains `.` or `:` or is `localhost`
 * (reference oci.md §2.1). `oci://` is stripped because Envoy Gateway and Istio write it.
 */
import { OciError } from './errors.js';

/** A parsed, normalised reference. */
export interface Reference {
  /** Registry host as written, with port: `docker.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path, lowercase: `library/nginx`, `filters/auth`. */
  readonly repository: string;
  /** Tag; `latest` when neither tag nor digest was given. Absent when only a digest was given. */
  readonly tag?: string;
  /** `sha256:<hex>` when the reference pins one. */
  readonly digest?: string;
}

const COMPONENT_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function invalid(input: string, at: number, why: string): OciError {
  const pos = Math.max(0, Math.min(at, input.length));
  return new OciError(
    'OCI_REFERENCE_INVALID',
    // One line (the CLI prints errors on one line): the position and the character found there.
    `invalid image reference "${input}": ${why} at position ${pos + 1} (${pos < input.length ? JSON.stringify(input[pos]) : 'end of input'})`,
    { hint: 'write [registry[:port]/]repository[:tag][@sha256:<64 hex>], repository in lowercase' },
  );
}

/** Index of the first character of `s` that cannot appear in a repository path component. */
function badComponentChar(s: string): number {
  for (let i = 0; i < s.length; i++) if (!/[a-z0-9._-]/.test(s[i] ?? '')) return i;
  // Every character is allowed: the separators are misplaced; point at the first one.
  const m = /^[a-z0-9]*/.exec(s);
  return m === null ? 0 : m[0].length;
}

/** Parses and normalises an image reference; throws `OCI_REFERENCE_INVALID` pointing at the bad character. */
export function parseReference(input: string): Reference {
  let s = input.trim();
  let offset = input.indexOf(s);
  if (s.startsWith('oci://')) {
    s = s.slice(6);
    offset += 6;
  }
  if (s === '') throw invalid(input, offset, 'empty reference');

  let digest: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    digest = s.slice(at + 1);
    if (!DIGEST_RE.test(digest)) {
      let bad = 0;
      if (digest.startsWith('sha256:')) {
        const hex = digest.slice(7);
        const i = [...hex].findIndex((c) => !/[a-f0-9]/.test(c));
        bad = 7 + (i >= 0 ? i : Math.min(hex.length, 64));
      }
      throw invalid(input, offset + at + 1 + bad, 'a digest must be sha256: followed by 64 lowercase hex characters');
    }
    s = s.slice(0, at);
  }

  let tag: string | undefined;
  const lastSlash = s.lastIndexOf('/');
  const tagColon = s.indexOf(':', lastSlash + 1);
  if (tagColon >= 0) {
    tag = s.slice(tagColon + 1);
    if (!TAG_RE.test(tag)) {
      const bad = tag === '' ? 0 : [...tag].findIndex((c, i) => !(i === 0 ? /[A-Za-z0-9_]/ : /[A-Za-z0-9._-]/).test(c));
      throw invalid(input, offset + tagColon + 1 + Math.max(bad, tag.length > 128 ? 128 : 0), 'invalid tag');
    }
    s = s.slice(0, tagColon);
  }

  let registry = 'docker.io';
  let path = s;
  let pathOffset = offset;
  const firstSlash = s.indexOf('/');
  if (firstSlash > 0) {
    const first = s.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!HOST_RE.test(first)) throw invalid(input, offset, `invalid registry host "${first}"`);
      registry = first;
      path = s.slice(firstSlash + 1);
      pathOffset = offset + firstSlash + 1;
    }
  }
  if (path === '') throw invalid(input, pathOffset, 'missing repository name');

  let pos = pathOffset;
  for (const component of path.split('/')) {
    if (!COMPONENT_RE.test(component)) {
      const why =
        component === ''
          ? 'empty path component'
          : /[A-Z]/.test(component)
            ? 'repository names must be lowercase'
            : 'invalid character in repository name';
      throw invalid(input, pos + (component === '' ? 0 : badComponentChar(component)), why);
    }
    pos += component.length + 1;
  }

  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > 255)
    throw invalid(input, offset + 255, 'registry and repository longer than 255 characters');

  const ref: { registry: string; repository: string; tag?: string; digest?: string } = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  else if (tag === undefined) ref.tag = 'latest';
  return ref;
}

/** `registry/repository[:tag][@digest]`, the canonical spelling. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** What a manifest request names: the digest when pinned (digest wins), else the tag. */
export function referenceTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The host that serves the registry API (`docker.io` is served by `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/** `registry/repository`, without tag or digest (Istio/EG's "module name"). */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/**
 * True for hosts that may be spoken to over plain HTTP without `--plain-http`: `localhost`,
 * 127.0.0.0/8 and `::1`, as go-containerregistry allows (reference oci.md §3.4).
 */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
