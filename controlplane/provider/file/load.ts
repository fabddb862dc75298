/**
 * Reading Kubernetes YAML into a ResourceSnapshot: multi-document files, `kind: List`, and Envoy
 * Gateway's test-bundle format (a mapping of resource lists such as `gateways:`, `httpRoutes:`,
 * `envoyextensionpolicies:`, whose keys match case-insensitively, as `egctl` and Envoy
 * Gateway's golden tests accept them).
 *
 * Every object carries its source as `file:line`, so a problem names where to look.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { glob } from 'tinyglobby';
import { EnvextError, type Problem } from '../../../common/errors.js';
import type { ValidateOptions } from '../../api/schema.js';
import { parseResource, type ParsedResource } from '../../api/validate.js';
import type { ResourceKind } from '../../api/types.js';
import { SnapshotBuilder, type ResourceSnapshot } from '../snapshot.js';
import { parseYaml, type LoadResult, type SourcedObject } from './documents.js';

export { parseYaml, parseYamlStream, relaxQuotedIndentation, YamlDocuments } from './documents.js';
export type { LoadResult, SourcedObject } from './documents.js';

const YAML_GLOB = ['**/*.yaml', '**/*.yml', '**/*.json'];

/**
 * The YAML files under `paths` (files as given, directories recursively), sorted. Hidden files
 * and editor backups (`~`) are skipped, as Envoy Gateway's file provider does.
 */
export async function yamlFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (e: unknown) {
      throw new EnvextError('CONTROLPLANE_INPUT_NOT_FOUND', `cannot read ${p}: no such file or directory`, {
        hint: 'pass existing YAML files or directories with -f',
        cause: e,
      });
    }
    if (st.isDirectory()) {
      const found = await glob(YAML_GLOB, { cwd: p, dot: false, ignore: ['**/node_modules/**', '**/*~'] });
      out.push(...found.sort().map((f) => join(p, f)));
    } else {
      out.push(p);
    }
  }
  return [...new Set(out)];
}

/** Reads files into objects (no validation yet). */
export function loadFiles(files: readonly string[], cwd = process.cwd()): LoadResult {
  const objects: SourcedObject[] = [];
  const problems: Problem[] = [];
  for (const f of files) {
    const name = relative(cwd, f) || f;
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e: unknown) {
      problems.push({
        resource: name,
        field: '',
        message: `cannot read file: ${e instanceof Error ? e.message : String(e)}`,
      });
      continue;
    }
    const r = f.endsWith('.json') ? parseJson(text, name) : parseYaml(text, name);
    objects.push(...r.objects);
    problems.push(...r.problems);
  }
  return { objects, problems };
}

function parseJson(text: string, file: string): LoadResult {
  // JSON is YAML; the YAML parser gives line numbers for free.
  return parseYaml(text, file);
}

/** The raw identity of an object as written (before defaults), to find its previous version. */
function rawIdentity(o: SourcedObject): string | undefined {
  const v = o.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const r = v as Record<string, unknown>;
  const meta = r['metadata'];
  const m = typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : {};
  const str = (x: unknown): string => (typeof x === 'string' ? x : '');
  return `${str(r['kind']) || (o.defaultKind ?? '')}\0${str(m['namespace'])}\0${str(m['name'])}`;
}

interface MemoEntry {
  readonly value: unknown;
  /**
   * The first value seen with this content: what a rejected object is reported as, so that the
   * snapshot's `rejected[].value` stays the same object (the TranslationCache compares rejected
   * values by identity).
   */
  readonly canonical: unknown;
  /** rawIdentity of the value. */
  readonly name: string | undefined;
  readonly defaultKind: ResourceKind | undefined;
  readonly parsed: ParsedResource;
  /** JSON of the value, computed when first compared. */
  json?: string;
}

/**
 * Validated resources kept across reads by a provider, so that an object that did not change
 * gives the same resource object again and a TranslationCache (keyed by object identity) reuses
 * its translation. An object is found by identity of its value (a document whose text did not
 * change keeps its value objects, even when it moved to another line) or, failing that, by
 * content: the previous read's object of the same kind, namespace and name, if equal as JSON (a
 * re-parsed document whose resource did not change, such as the other items of an edited
 * `kind: List`). Only what the last read used is kept. Use one memo with one set of ValidateOptions.
 */
export class ValidationMemo {
  private byValue = new WeakMap<object, MemoEntry>();
  private byName = new Map<string, MemoEntry>();
  private next = new Map<string, MemoEntry>();
  /** Validations done (cache misses) since the memo was made. */
  validations = 0;

  parse(o: SourcedObject, options: ValidateOptions): ParsedResource {
    return this.resolve(o, options).parsed;
  }

  /** The validated resource of `o`, and the value to report it as when it was rejected. */
  resolve(
    o: SourcedObject,
    options: ValidateOptions,
  ): { readonly parsed: ParsedResource; readonly canonical: unknown } {
    const value = o.value;
    const isObject = typeof value === 'object' && value !== null;
    const known = isObject ? this.byValue.get(value) : undefined;
    if (known !== undefined && known.defaultKind === o.defaultKind) {
      if (known.name !== undefined) this.next.set(known.name, known);
      return known;
    }
    const name = rawIdentity(o);
    let entry: MemoEntry | undefined;
    const previous = name === undefined ? undefined : (this.byName.get(name) ?? this.next.get(name));
    if (previous !== undefined && previous.defaultKind === o.defaultKind) {
      previous.json ??= JSON.stringify(previous.value);
      const json = JSON.stringify(value);
      if (json === previous.json) {
        const { parsed, canonical } = previous;
        entry = { value, canonical, name, defaultKind: o.defaultKind, parsed, json };
      }
    }
    if (entry === undefined) {
      this.validations++;
      const parsed = parseResource(value, o.source, o.defaultKind, 'default', options);
      entry = { value, canonical: value, name, defaultKind: o.defaultKind, parsed };
    }
    if (isObject) this.byValue.set(value, entry);
    if (name !== undefined) this.next.set(name, entry);
    return entry;
  }

  /** Ends a read: what was seen in it is what the next read can reuse by content. */
  endRead(): void {
    this.byName = this.next;
    this.next = new Map();
  }
}

/**
 * Builds a snapshot from loaded objects; validation problems end up in `snapshot.rejected`.
 * With a `memo`, unchanged objects give the same resource objects as in the previous read.
 */
export function snapshotFromObjects(
  objects: readonly SourcedObject[],
  revision = 0,
  options: ValidateOptions = {},
  memo?: ValidationMemo,
): { snapshot: ResourceSnapshot; duplicates: string[] } {
  const b = new SnapshotBuilder(options);
  for (const o of objects) {
    const known = memo?.resolve(o, options);
    // Rejected objects go through the builder again (it records them with their source); they are rare.
    if (known?.parsed.ok === true) b.put(known.parsed.kind, known.parsed.resource, o.source);
    else b.add(known === undefined ? o.value : known.canonical, o.source, o.defaultKind);
  }
  memo?.endRead();
  return { snapshot: b.build(revision), duplicates: b.duplicates };
}
