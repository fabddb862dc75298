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
import { LineCounter, parseAllDocuments } from 'yaml';
import { EnvextError, type Problem } from '../../../common/errors.js';
import type { ValidateOptions } from '../../api/schema.js';
import { parseResource, type ParsedResource } from '../../api/validate.js';
import type { ResourceKind } from '../../api/types.js';
import { SnapshotBuilder, type ResourceSnapshot } from '../snapshot.js';

/** Bundle keys (lower-cased) → the kind of the objects listed under them. */
const BUNDLE_KEYS: Readonly<Record<string, ResourceKind | 'unsupported'>> = {
  gatewayclass: 'GatewayClass',
  gatewayclasses: 'GatewayClass',
  gateways: 'Gateway',
  httproutes: 'HTTPRoute',
  grpcroutes: 'GRPCRoute',
  referencegrants: 'ReferenceGrant',
  services: 'Service',
  endpointslices: 'EndpointSlice',
  secrets: 'Secret',
  configmaps: 'ConfigMap',
  namespaces: 'Namespace',
  envoyextensionpolicies: 'EnvoyExtensionPolicy',
  backends: 'Backend',
  envoyproxyforgatewayclass: 'EnvoyProxy',
  envoyproxiesforgateways: 'EnvoyProxy',
  envoyproxies: 'EnvoyProxy',
  // Kinds envext reads but does not translate yet; their objects carry `kind` and are reported.
  listenersets: 'unsupported',
  xlistenersets: 'unsupported',
  backendtlspolicies: 'unsupported',
  serviceimports: 'unsupported',
  tcproutes: 'unsupported',
  udproutes: 'unsupported',
  tlsroutes: 'unsupported',
  backendtrafficpolicies: 'unsupported',
  clienttrafficpolicies: 'unsupported',
  securitypolicies: 'unsupported',
  envoypatchpolicies: 'unsupported',
  httproutefilters: 'unsupported',
};

/** One object read from YAML, with where it came from. */
export interface SourcedObject {
  readonly value: unknown;
  /** `file:line`. */
  readonly source: string;
  /** Kind implied by a bundle key, when the object has none. */
  readonly defaultKind?: ResourceKind;
}

export interface LoadResult {
  readonly objects: SourcedObject[];
  /** YAML syntax errors and unknown bundle keys. */
  readonly problems: Problem[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Is this document an Envoy Gateway test bundle (a mapping of resource lists, no `kind`)? */
function isBundle(doc: Record<string, unknown>): boolean {
  if ('kind' in doc || 'apiVersion' in doc) return false;
  const keys = Object.keys(doc);
  return keys.length > 0 && keys.some((k) => k.toLowerCase() in BUNDLE_KEYS);
}

/** Parses YAML text (one or more documents) into objects. `file` names the source in messages. */
export function parseYaml(text: string, file: string): LoadResult {
  let lineCounter = new LineCounter();
  const options = { prettyErrors: false, uniqueKeys: false, strict: false } as const;
  let docs = parseAllDocuments(text, { ...options, lineCounter });
  const failed = (Array.isArray(docs) ? docs : [docs]).some((d) => d.errors.length > 0);
  if (failed) {
    // Go's YAML parser (used by kubectl and Envoy Gateway) accepts double-quoted scalars whose
    // continuation lines are indented less than the key; the YAML 1.2 parser does not. Retry
    // with those lines indented, which changes no value (folding trims leading spaces).
    const relaxed = relaxQuotedIndentation(text);
    if (relaxed !== text) {
      const retryCounter = new LineCounter();
      const retry = parseAllDocuments(relaxed, { ...options, lineCounter: retryCounter });
      if (!(Array.isArray(retry) ? retry : [retry]).some((d) => d.errors.length > 0)) {
        docs = retry;
        lineCounter = retryCounter;
      }
    }
  }
  const objects: SourcedObject[] = [];
  const problems: Problem[] = [];
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineCounter.linePos(e.pos[0]);
        problems.push({
          resource: `${file}:${pos.line}:${pos.col}`,
          field: '',
          message: `YAML syntax error: ${e.message.split('\n')[0] ?? e.message}`,
        });
      }
      continue;
    }
    const range = doc.contents?.range;
    const line = range === undefined ? 1 : lineCounter.linePos(range[0]).line;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // empty document
    const source = `${file}:${line}`;
    if (isRecord(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
      for (const [i, item] of value['items'].entries()) objects.push({ value: item, source: `${source} items[${i}]` });
      continue;
    }
    if (isRecord(value) && isBundle(value)) {
      // Line of each listed object, from the YAML nodes.
      for (const [key, list] of Object.entries(value)) {
        const kind = BUNDLE_KEYS[key.toLowerCase()];
        if (kind === undefined) {
          problems.push({
            resource: source,
            field: key,
            message: `unknown resource list "${key}" in test bundle; known: ${Object.keys(BUNDLE_KEYS).join(', ')}`,
          });
          continue;
        }
        const items = Array.isArray(list) ? list : [list];
        for (const [i, item] of items.entries()) {
          const node = doc.getIn([key, ...(Array.isArray(list) ? [i] : [])], true) as
            { range?: [number, number, number] } | undefined;
          const itemLine = node?.range === undefined ? line : lineCounter.linePos(node.range[0]).line;
          objects.push({
            value: item,
            source: `${file}:${itemLine}`,
            ...(kind === 'unsupported' ? {} : { defaultKind: kind }),
          });
        }
      }
      continue;
    }
    objects.push({ value, source });
  }
  return { objects, problems };
}

/**
 * Indents the continuation lines of a multi-line double-quoted scalar (`key: "text` … `more"`)
 * to one column past the key, so a YAML 1.2 parser reads what Go's parser reads.
 */
export function relaxQuotedIndentation(text: string): string {
  const lines = text.split('\n');
  let inQuote = false;
  let indent = 0;
  const unescapedQuotes = (s: string): number => {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '\\') i++;
      else if (s[i] === '"') n++;
    }
    return n;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (inQuote) {
      const lead = line.length - line.trimStart().length;
      if (lead <= indent && line.trim() !== '') lines[i] = ' '.repeat(indent + 1) + line.trimStart();
      if (unescapedQuotes(line) % 2 === 1) inQuote = false;
      continue;
    }
    const m = /^(\s*(?:- )?)[^\s:"'#][^:"]*:\s+"(.*)$/u.exec(line);
    if (m !== null && unescapedQuotes(m[2] ?? '') % 2 === 0) {
      inQuote = true;
      indent = (m[1] ?? '').length;
    }
  }
  return lines.join('\n');
}

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

/**
 * Validated resources kept across reads by a provider, so that an object that did not change
 * gives the same resource object again and a TranslationCache (keyed by object identity) reuses
 * its translation. An object is found by identity (a file whose text did not change keeps its
 * objects) or by content (another object of an edited file, even if its line moved). Only what
 * the last read used is kept. Use one memo with one set of ValidateOptions.
 */
export class ValidationMemo {
  private byObject = new WeakMap<SourcedObject, { readonly key: string; readonly parsed: ParsedResource }>();
  private byContent = new Map<string, ParsedResource>();
  private next = new Map<string, ParsedResource>();

  parse(o: SourcedObject, options: ValidateOptions): ParsedResource {
    const known = this.byObject.get(o);
    if (known !== undefined) {
      this.next.set(known.key, known.parsed);
      return known.parsed;
    }
    const key = `${o.defaultKind ?? ''}\0${JSON.stringify(o.value) ?? ''}`;
    const parsed =
      this.byContent.get(key) ??
      this.next.get(key) ??
      parseResource(o.value, o.source, o.defaultKind, 'default', options);
    this.byObject.set(o, { key, parsed });
    this.next.set(key, parsed);
    return parsed;
  }

  /** Ends a read: content seen in it is what the next read can reuse. */
  endRead(): void {
    this.byContent = this.next;
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
    const parsed = memo?.parse(o, options);
    // Rejected objects go through the builder again (it records them with their source); they are rare.
    if (parsed?.ok === true) b.put(parsed.kind, parsed.resource, o.source);
    else b.add(o.value, o.source, o.defaultKind);
  }
  memo?.endRead();
  return { snapshot: b.build(revision), duplicates: b.duplicates };
}
