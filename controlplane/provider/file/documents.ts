/**
 * YAML streams read one document at a time, so that an edit to one document of a big file costs
 * the parse of that document only.
 *
 * `splitDocuments` cuts a stream where the `yaml` library's lexer does: at every line that
 * starts (column 0) with `---` or `...` followed by a space, tab, line break or the end of the
 * text. The lexer ends any scalar or collection there — a block scalar, a multi-line quoted
 * scalar (an error: "Missing closing quote") or a flow collection — so each piece parses alone
 * as it does inside the stream: the same objects, and for a text with errors, errors too. (One
 * difference, in errors only: a quote left open before a marker is reported on the marker's line;
 * the stream's lexer reports it at the end of the quote's line, or, when no quote character
 * follows anywhere later in the file, lets it swallow the rest of the file.) `...` ends its document: the
 * cut is after that line. Directives (`%YAML`, `%TAG`) are the exception: under `%YAML 1.1` they
 * carry over to the documents that follow, so a text with a line starting with `%` is parsed whole.
 *
 * `YamlDocuments` keeps, per file, the parsed objects of each document keyed by its text: a
 * document whose text did not change gives the same value objects again (and the same
 * `SourcedObject`s when it did not move either), so the validation memo and the translator's
 * cache, both keyed by identity, hit. Lines are kept relative to the document and turned into
 * `file:line` when the document is placed, so sources stay exact when documents move.
 */
import { parseAllDocuments, type Document } from 'yaml';
import type { Problem } from '../../../common/errors.js';
import type { ResourceKind } from '../../api/types.js';

/** Bundle keys (lower-cased) → the kind of the objects listed under them. */
export const BUNDLE_KEYS: Readonly<Record<string, ResourceKind | 'unsupported'>> = {
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

/** An object of a parsed text, its line counted from the text's first line (0). */
interface RelativeObject {
  readonly value: unknown;
  readonly line: number;
  /** Appended to `file:line` (` items[3]` for `kind: List`). */
  readonly suffix: string;
  readonly defaultKind?: ResourceKind;
}

/** A problem of a parsed text: at `file:line` (`col` undefined) or `file:line:col`. */
interface RelativeProblem {
  readonly line: number;
  readonly col?: number;
  readonly field: string;
  readonly message: string;
}

/** What a text (one document, or a whole stream) parses to, independent of where it sits. */
interface ParsedText {
  readonly objects: readonly RelativeObject[];
  readonly problems: readonly RelativeProblem[];
}

const OPTIONS = { prettyErrors: false, uniqueKeys: false, strict: false } as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Is this document an Envoy Gateway test bundle (a mapping of resource lists, no `kind`)? */
function isBundle(doc: Record<string, unknown>): boolean {
  if ('kind' in doc || 'apiVersion' in doc) return false;
  const keys = Object.keys(doc);
  return keys.length > 0 && keys.some((k) => k.toLowerCase() in BUNDLE_KEYS);
}

/** The yaml lexer's "empty" characters after a marker: space, tab, CR, LF, end of text. */
function endsMarker(code: number): boolean {
  return Number.isNaN(code) || code === 32 || code === 10 || code === 13 || code === 9;
}

/**
 * Cuts a YAML stream into its documents (see the module comment), or undefined when the text
 * has a directive line and must be parsed whole. Joining the pieces gives the text back.
 */
export function splitDocuments(text: string): string[] | undefined {
  const len = text.length;
  const pieces: string[] = [];
  let start = 0;
  // One pass over the text (a regular expression scans faster than a loop over lines).
  const markers = /\n(?:---|\.\.\.|%)/g;
  for (let at = 0; at !== -1;) {
    const c = text.charCodeAt(at);
    if (c === 37 || (at === 0 && c === 0xfeff && text.charCodeAt(1) === 37)) return undefined; // `%`: a directive
    if ((c === 45 || c === 46) && text.charCodeAt(at + 1) === c && text.charCodeAt(at + 2) === c) {
      if (endsMarker(text.charCodeAt(at + 3))) {
        if (c === 45) {
          // `---` starts a document: cut before it.
          if (at > start) pieces.push(text.slice(start, at));
          start = at;
        } else {
          // `...` ends one: cut after its line.
          const nl = text.indexOf('\n', at);
          const end = nl === -1 ? len : nl + 1;
          pieces.push(text.slice(start, end));
          start = end;
        }
      }
    }
    markers.lastIndex = Math.max(at, start - 1);
    const m = markers.exec(text);
    at = m === null ? -1 : m.index + 1;
  }
  if (start < len) pieces.push(text.slice(start));
  return pieces;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * A copy of `text` that does not keep the string it was sliced from alive (V8 keeps a slice's
 * parent): document texts outlive the file text they were cut from.
 */
function detached(text: string): string {
  return (' ' + text).slice(1);
}

/** 0-based line and 1-based column of offsets in a text (line starts found once, then binary search). */
function positions(text: string): (offset: number) => { line: number; col: number } {
  let starts: number[] | undefined;
  return (offset) => {
    if (starts === undefined) {
      starts = [0];
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', nl + 1)) starts.push(nl + 1);
    }
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, col: offset - (starts[lo] ?? 0) + 1 };
  };
}

function parseDocuments(text: string): Document.Parsed[] {
  const docs = parseAllDocuments(text, OPTIONS);
  return Array.isArray(docs) ? docs : [...docs];
}

/**
 * Parses a text (one document or a whole stream) into objects with lines relative to its start.
 * Go's YAML parser (used by kubectl and Envoy Gateway) accepts double-quoted scalars whose
 * continuation lines are indented less than the key; the YAML 1.2 parser does not. When the text
 * fails, it is retried with those lines indented (`relaxQuotedIndentation`), which changes no value.
 */
function parseText(text: string): ParsedText {
  let source = text;
  let docs = parseDocuments(text);
  if (docs.some((d) => d.errors.length > 0)) {
    const relaxed = relaxQuotedIndentation(text);
    if (relaxed !== source) {
      const retry = parseDocuments(relaxed);
      if (!retry.some((d) => d.errors.length > 0)) {
        docs = retry;
        source = relaxed;
      }
    }
  }
  const objects: RelativeObject[] = [];
  const problems: RelativeProblem[] = [];
  const position = positions(source);
  const lineOf = (offset: number): number => position(offset).line;
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        problems.push({
          ...position(e.pos[0]),
          field: '',
          message: `YAML syntax error: ${e.message.split('\n')[0] ?? e.message}`,
        });
      }
      continue;
    }
    const range = doc.contents?.range;
    const line = range === undefined ? 0 : lineOf(range[0]);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e: unknown) {
      // An alias without its anchor, or too many aliases (a "billion laughs" document).
      problems.push({
        ...position(range?.[0] ?? 0),
        field: '',
        message: `YAML error: ${e instanceof Error ? e.message : String(e)}`,
      });
      continue;
    }
    if (value === null || value === undefined) continue; // empty document
    if (isRecord(value) && value['kind'] === 'List' && Array.isArray(value['items'])) {
      for (const [i, item] of value['items'].entries()) objects.push({ value: item, line, suffix: ` items[${i}]` });
      continue;
    }
    if (isRecord(value) && isBundle(value)) {
      // Line of each listed object, from the YAML nodes.
      for (const [key, list] of Object.entries(value)) {
        const kind = BUNDLE_KEYS[key.toLowerCase()];
        if (kind === undefined) {
          problems.push({
            line,
            field: key,
            message: `unknown resource list "${key}" in test bundle; known: ${Object.keys(BUNDLE_KEYS).join(', ')}`,
          });
          continue;
        }
        const items = Array.isArray(list) ? list : [list];
        for (const [i, item] of items.entries()) {
          const node = doc.getIn([key, ...(Array.isArray(list) ? [i] : [])], true) as
            { range?: [number, number, number] } | undefined;
          objects.push({
            value: item,
            line: node?.range === undefined ? line : lineOf(node.range[0]),
            suffix: '',
            ...(kind === 'unsupported' ? {} : { defaultKind: kind }),
          });
        }
      }
      continue;
    }
    objects.push({ value, line, suffix: '' });
  }
  return { objects, problems };
}

function placeObjects(parsed: ParsedText, file: string, firstLine: number): SourcedObject[] {
  return parsed.objects.map((o) => ({
    value: o.value,
    source: `${file}:${firstLine + o.line}${o.suffix}`,
    ...(o.defaultKind === undefined ? {} : { defaultKind: o.defaultKind }),
  }));
}

function placeProblems(parsed: ParsedText, file: string, firstLine: number): Problem[] {
  return parsed.problems.map((p) => ({
    resource: `${file}:${firstLine + p.line}${p.col === undefined ? '' : `:${p.col}`}`,
    field: p.field,
    message: p.message,
  }));
}

/**
 * Parses one piece of a stream. A piece cut before a `---` marker is parsed with that marker
 * after it, so that a construct left open at its end (an unclosed quote or flow collection) is
 * ended, and reported, where the marker ends it in the whole stream; the empty document the
 * marker starts adds nothing.
 */
function parsePiece(text: string, followed: boolean): ParsedText {
  // Without a problem the marker changes nothing, so the piece is parsed as it is first: the
  // values' strings are then slices of the text the entry keeps anyway, not of a second copy.
  const alone = parseText(text);
  return followed && alone.problems.length > 0 ? parseText(`${text}---`) : alone;
}

/** Parses a YAML stream in one go (the reference the per-document reading must equal). */
export function parseYamlStream(text: string, file: string): LoadResult {
  const parsed = parseText(text);
  return { objects: placeObjects(parsed, file, 1), problems: placeProblems(parsed, file, 1) };
}

/** A document's text and parse, and its objects as last placed. */
interface DocumentEntry {
  /** The document's text (detached from the file text). */
  readonly text: string;
  /** Whether a `---` marker followed it (see `parsePiece`). */
  readonly followed: boolean;
  readonly newlines: number;
  readonly parsed: ParsedText;
  placedFile: string;
  placedLine: number;
  placed: readonly SourcedObject[];
}

export interface DocumentsStats {
  /** Documents in the last text. */
  readonly documents: number;
  /** Of those, the ones parsed (text not seen in the previous read). */
  readonly parsed: number;
  /** Of the reused ones, those whose objects were placed on a new line. */
  readonly moved: number;
  /** True when the last text was parsed whole, as one document (it has directives). */
  readonly whole: boolean;
}

/**
 * The documents of one file across reads. `read` returns what parsing the whole text would
 * return, parsing only documents whose text was not in the previous read. Unchanged documents
 * give the same value objects, and the same SourcedObjects when they start on the same line.
 *
 * A document is looked up by position first (same index, or same distance from the end: edits
 * above or below it), comparing texts, and only then by its text in a map: a read where few
 * documents changed hashes only those.
 */
export class YamlDocuments {
  private list: DocumentEntry[] = [];
  private index: Map<string, DocumentEntry> | undefined;
  stats: DocumentsStats = { documents: 0, parsed: 0, moved: 0, whole: false };

  read(text: string, file: string): LoadResult {
    const pieces = splitDocuments(text);
    if (pieces === undefined) {
      this.list = [];
      this.index = undefined;
      const r = parseYamlStream(text, file);
      this.stats = { documents: 1, parsed: 1, moved: 0, whole: true };
      return r;
    }
    const prev = this.list;
    const shift = pieces.length - prev.length;
    const list: DocumentEntry[] = [];
    const objects: SourcedObject[] = [];
    const problems: Problem[] = [];
    let parsed = 0;
    let moved = 0;
    let line = 1;
    // The marker after a piece changes only how an error at its end is reported.
    const same = (e: DocumentEntry | undefined, piece: string, followed: boolean): e is DocumentEntry =>
      e !== undefined && e.text === piece && (e.followed === followed || e.parsed.problems.length === 0);
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? '';
      const followed = i < pieces.length - 1;
      let entry = prev[i];
      if (!same(entry, piece, followed)) entry = prev[i - shift];
      if (!same(entry, piece, followed)) {
        // The last piece (the only one with no marker after it) is looked up on its own, so that
        // a text both last and elsewhere is found with either flag.
        this.index ??= new Map(prev.slice(0, -1).map((e) => [e.text, e]));
        entry = this.index.get(piece);
        if (!same(entry, piece, followed)) entry = prev.at(-1);
        if (!same(entry, piece, followed)) entry = undefined;
      }
      if (entry === undefined) {
        const own = detached(piece);
        entry = {
          text: own,
          followed,
          newlines: countNewlines(own),
          parsed: parsePiece(own, followed),
          placedFile: '',
          placedLine: 0,
          placed: [],
        };
        parsed++;
        // A document repeated in this text is parsed once.
        this.index?.set(own, entry);
      }
      list.push(entry);
      if (entry.placedLine !== line || entry.placedFile !== file) {
        if (entry.placedLine !== 0) moved++;
        entry.placed = placeObjects(entry.parsed, file, line);
        entry.placedFile = file;
        entry.placedLine = line;
      }
      for (const o of entry.placed) objects.push(o);
      if (entry.parsed.problems.length > 0) problems.push(...placeProblems(entry.parsed, file, line));
      line += entry.newlines;
    }
    this.list = list;
    this.index = undefined;
    this.stats = { documents: pieces.length, parsed, moved, whole: false };
    return { objects, problems };
  }
}

/** Parses YAML text (one or more documents) into objects. `file` names the source in messages. */
export function parseYaml(text: string, file: string): LoadResult {
  return new YamlDocuments().read(text, file);
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
      // A document marker ends the scalar (an error for Go's parser too): never indent it.
      if (/^(?:---|\.\.\.)(?:[ \t\r]|$)/u.test(line)) {
        inQuote = false;
        continue;
      }
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
