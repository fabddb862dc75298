/**
 * Locates the envext package root, both when running from source (tests, tsx) and from `dist/`.
 * The proto loader needs it to find `proto/`, the CLI to read its version.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | undefined;

function find(): { root: string; version: string } {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'envext') {
        cached = { root: dir, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0' };
        return cached;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`envext package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Absolute path of the folder holding envext's package.json. */
export function packageRoot(): string {
  return find().root;
}

/** The `version` field of envext's package.json. */
export function packageVersion(): string {
  return find().version;
}
