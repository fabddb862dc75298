/**
 * Reading YAML one document at a time must give what parsing the whole stream gives: the same
 * objects with the same `file:line` sources, whatever edits happened before. The property test
 * applies random edits (insert, delete, change, move documents; separators, comments, CRLF,
 * block and quoted scalars, flow collections, lists, bundles, broken documents) and compares
 * every read with a full parse. Seeded and bounded: a failure names the seed and step.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../test/seeded-random.js';
import {
  YamlDocuments,
  parseYaml,
  parseYamlStream,
  relaxQuotedIndentation,
  splitDocuments,
  type LoadResult,
} from './documents.js';

// Fixed so CI is reproducible; ENVEXT_YAML_SEED / ENVEXT_YAML_RUNS explore further locally.
const SEED = Number(process.env['ENVEXT_YAML_SEED'] ?? 0x7a31_2026);
const RUNS = Number(process.env['ENVEXT_YAML_RUNS'] ?? 150);
const STEPS = 12;

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** Objects as plain data: value, source, default kind. */
function plain(r: LoadResult): unknown[] {
  return r.objects.map((o) => [o.value, o.source, o.defaultKind ?? null]);
}

describe('splitDocuments', () => {
  it.each<[string, string, string[] | undefined]>([
    ['no marker', 'a: 1\nb: 2\n', ['a: 1\nb: 2\n']],
    ['empty text', '', []],
    ['leading marker', '---\na: 1\n---\nb: 2\n', ['---\na: 1\n', '---\nb: 2\n']],
    ['comment before the first marker', '# c\n---\na: 1\n', ['# c\n', '---\na: 1\n']],
    ['document end marker', 'a: 1\n...\nb: 2\n', ['a: 1\n...\n', 'b: 2\n']],
    ['end then start', 'a: 1\n... # end\n---\nb: 2', ['a: 1\n... # end\n', '---\nb: 2']],
    ['marker with content', 'a: 1\n--- |\n  x\n', ['a: 1\n', '--- |\n  x\n']],
    ['marker followed by a tab', 'a: 1\n---\tb\n', ['a: 1\n', '---\tb\n']],
    ['marker at the end of the text', 'a: 1\n---', ['a: 1\n', '---']],
    ['not a marker: ---x', 'a: 1\n---x: 1\n', ['a: 1\n---x: 1\n']],
    ['not a marker: indented', 'a: |\n  ---\n', ['a: |\n  ---\n']],
    ['not a marker: after a lone CR', 'a: 1\r---\rb: 2\r', ['a: 1\r---\rb: 2\r']],
    ['CRLF', 'a: 1\r\n---\r\nb: 2\r\n', ['a: 1\r\n', '---\r\nb: 2\r\n']],
    ['marker inside a block scalar ends it', 'a: |\n  x\n---\nb: 1\n', ['a: |\n  x\n', '---\nb: 1\n']],
    ['marker inside a quoted scalar ends it', 'a: "x\n---\ny"\n', ['a: "x\n', '---\ny"\n']],
    ['marker inside a flow collection ends it', 'a: [1,\n---\n2]\n', ['a: [1,\n', '---\n2]\n']],
    ['directive: parsed whole', '%YAML 1.1\n---\na: yes\n', undefined],
    ['directive after a BOM', '\uFEFF%YAML 1.1\n---\na: yes\n', undefined],
    ['directive after a document', 'a: 1\n...\n%YAML 1.1\n---\nb: yes\n', undefined],
  ])('%s', (_name, text, want) => {
    const got = splitDocuments(text);
    expect(got).toEqual(want);
    if (got !== undefined) expect(got.join('')).toBe(text);
  });
});

describe('parseYaml (per document) equals parseYamlStream (whole stream)', () => {
  // [name, text, whether the problems are the same too]: see the quoted-scalar test below for
  // where they differ.
  it.each<[string, string]>([
    ['plain documents', 'a: 1\n---\nb: 2\n---\nc: 3\n'],
    ['block scalar ended by a marker', 'a: |\n  line\n---\nb: 1\n'],
    ['top-level block scalar', '--- |\nfoo\n---\nb: 1\n'],
    ['document end marker and a bare document', 'a: 1\n...\nb: 2\n'],
    ['comments and empty documents', '# hi\n---\n# c\n---\n---\na: 1\n---\n'],
    ['CRLF', 'a: 1\r\n---\r\nb:\r\n  c: 2\r\n'],
    ['BOM', '\uFEFFa: 1\n---\nb: 2\n'],
    ['marker followed by a tab (error)', 'a: 1\n---\tx: 1\n'],
    ['marker followed by content (error)', 'a: 1\n--- b: 2\n'],
    ['unclosed flow collection (error)', 'a: [1\n---\nb: 2\n'],
    ['unclosed flow collection at the top (error)', '[1,\n---\n2]\n'],
    ['junk after a document end (error)', 'a: 1\n...x\n'],
    ['directives (parsed whole)', '%YAML 1.1\n---\nb: yes\n---\nc: yes\n'],
    ['directive after content (error)', 'a: 1\n%YAML 1.1\n---\nb: yes\n'],
    ['kind: List', 'x: 1\n---\napiVersion: v1\nkind: List\nitems:\n  - {kind: A}\n  - {kind: B}\n'],
    ['test bundle', 'x: 1\n---\nhttpRoutes:\n  - metadata: {name: a}\n  -\n    metadata: {name: b}\nfoo: []\n'],
    ['Go-style quoted indentation', 'a: 1\n---\nspec:\n  lua:\n    - inline: "function f()\n  return 1\n  end"\n'],
    ['anchors and aliases', 'a: &x {b: 1}\nc: *x\n---\nd: 2\n'],
    ['alias without its anchor (error)', 'a: &x 1\n---\nc: *x\n'],
  ])('%s', (_name, text) => {
    const perDocument = parseYaml(text, 'f.yaml');
    const stream = parseYamlStream(text, 'f.yaml');
    expect(plain(perDocument)).toEqual(plain(stream));
    expect(perDocument.problems).toEqual(stream.problems);
  });

  it('reports a quote left open before a marker in its own document, at file:line:column', () => {
    // The marker ends the scalar (YAML forbids document markers inside scalars; Go's parser
    // fails the same way). The stream lexer of `yaml` reports the same error at another column
    // depending on whether a quote character follows anywhere later in the file; per document,
    // the error is where the document ends and later documents still parse.
    const text = 'a: 1\n---\nb: "x\n---\nc: 2\n';
    const r = parseYaml(text, 'f.yaml');
    expect(r.problems.map((p) => p.resource)).toEqual(['f.yaml:4:4']);
    expect(r.problems[0]?.message).toMatch(/Missing closing "quote/);
    expect(plain(r)).toEqual([
      [{ a: 1 }, 'f.yaml:1', null],
      [{ c: 2 }, 'f.yaml:5', null],
    ]);
    expect(parseYamlStream(text, 'f.yaml').problems.length).toBeGreaterThan(0);
  });

  it('reports an alias error as a problem instead of throwing', () => {
    const r = parseYaml('a: 1\n---\nb: [*nope]\n', 'f.yaml');
    expect(r.problems).toEqual([
      {
        resource: 'f.yaml:3:1',
        field: '',
        message: 'YAML error: Unresolved alias (the anchor must be set before the alias): nope',
      },
    ]);
    expect(plain(r)).toEqual([[{ a: 1 }, 'f.yaml:1', null]]);
  });

  it('does not indent a document marker inside a Go-style quoted scalar', () => {
    expect(relaxQuotedIndentation('a: "x\n---\ny"\n')).toBe('a: "x\n---\ny"\n');
    expect(relaxQuotedIndentation('a: "x\ny"\n')).toBe('a: "x\n y"\n');
  });
});

const route = (name: string, path = '/'): string =>
  `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: ${name}\nspec:\n  rules:\n    - matches: [{path: {value: "${path}"}}]\n`;

describe('YamlDocuments', () => {
  it.each<[string, string[], string[], { parsed: number; moved: number }, Record<string, 'same' | 'moved' | 'new'>]>([
    [
      'one document changed',
      ['a', 'b', 'c'],
      ['a', 'b*', 'c'],
      { parsed: 1, moved: 0 },
      { a: 'same', b: 'new', c: 'same' },
    ],
    ['one inserted above', ['a', 'b'], ['x', 'a', 'b'], { parsed: 2, moved: 1 }, { a: 'new', b: 'moved', x: 'new' }],
    ['one inserted below', ['a', 'b'], ['a', 'b', 'x'], { parsed: 1, moved: 0 }, { a: 'same', b: 'same', x: 'new' }],
    ['one deleted', ['a', 'b', 'c'], ['a', 'c'], { parsed: 0, moved: 1 }, { a: 'same', c: 'moved' }],
    ['two swapped', ['a', 'b', 'c'], ['a', 'c', 'b'], { parsed: 0, moved: 2 }, { a: 'same', b: 'moved', c: 'moved' }],
    ['nothing changed', ['a', 'b'], ['a', 'b'], { parsed: 0, moved: 0 }, { a: 'same', b: 'same' }],
  ])('%s', (_name, before, after, stats, want) => {
    // `b*` is b with another path. A document's text includes the `---` before it, so the
    // first document (which has none) is parsed again when another is inserted above it.
    const text = (docs: string[]): string =>
      docs.map((d) => route(d.replace('*', ''), d.endsWith('*') ? '/changed' : '/')).join('---\n');
    const docs = new YamlDocuments();
    const first = docs.read(text(before), 'f.yaml');
    const second = docs.read(text(after), 'f.yaml');
    expect(docs.stats).toMatchObject({ documents: after.length, ...stats });
    expect(plain(second)).toEqual(plain(parseYamlStream(text(after), 'f.yaml')));
    const byName = (r: LoadResult, n: string) =>
      r.objects.find((o) => (o.value as { metadata: { name: string } }).metadata.name === n);
    for (const [name, how] of Object.entries(want)) {
      const was = byName(first, name);
      const now = byName(second, name);
      expect(now, name).toBeDefined();
      if (how === 'same') expect(now, name).toBe(was);
      if (how === 'moved') {
        expect(now, name).not.toBe(was);
        expect(now?.value, name).toBe(was?.value);
        expect(now?.source, name).not.toBe(was?.source);
      }
      if (how === 'new' && was !== undefined) expect(now?.value, name).not.toBe(was.value);
    }
  });

  it('keeps reading the same file after a broken text', () => {
    const docs = new YamlDocuments();
    docs.read(`${route('a')}---\n${route('b')}`, 'f.yaml');
    const broken = docs.read(`${route('a')}---\nb: [\n---\n${route('b')}`, 'f.yaml');
    expect(broken.problems.map((p) => p.resource)).toEqual(['f.yaml:10:1']);
    const fixed = docs.read(`${route('a')}---\n${route('b')}`, 'f.yaml');
    expect(fixed.problems).toEqual([]);
    expect(docs.stats.parsed).toBe(0);
  });
});

// --- Property test -------------------------------------------------------------------------

/** Documents the generator draws from: valid resources and the constructs that meet markers. */
function randomDocument(r: Rand, id: number): string {
  const name = `r${id}-${int(r, 1000)}`;
  switch (int(r, 12)) {
    case 0:
      return `kind: List\napiVersion: v1\nitems:\n  - ${route(`${name}-a`).replaceAll('\n', '\n    ')}\n  - {kind: Service, metadata: {name: ${name}-s}}\n`;
    case 1:
      return `httpRoutes:\n  - metadata: {name: ${name}}\n  - metadata:\n      name: ${name}-2\nservices: {metadata: {name: ${name}}}\n`;
    case 2:
      return `kind: ConfigMap\nmetadata: {name: ${name}}\ndata:\n  script: |\n    line one\n\n    line ${int(r, 9)}\n`;
    case 3:
      return `kind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: "quoted\n  over lines", b: 'single\n  too'}\n`;
    case 4:
      // Go-style under-indented continuation (retried with relaxQuotedIndentation).
      return `kind: EnvoyProxy\nmetadata:\n  name: ${name}\nspec:\n  lua:\n    - inline: "function f()\n  return ${int(r, 9)}\n  end"\n`;
    case 5:
      return `# a comment about ${name}\nkind: Secret\nmetadata: {name: ${name}} # trailing\n`;
    case 6:
      return `{"kind": "Service", "metadata": {"name": "${name}"}, "spec": {"ports": [{"port": ${int(r, 65535)}}]}}\n`;
    case 7:
      return `anchor: &x {kind: Namespace, metadata: {name: ${name}}}\ncopy: *x\n`;
    case 8:
      // Broken: an unclosed flow collection, or a bad indentation.
      return pick(r, [`kind: Gateway\nmetadata: {name: [${name}\n`, `a: b\n c: d: e\n`, `key: "open\n`]);
    case 9:
      return pick(r, ['', '# only a comment\n', 'null\n', '~\n']);
    default:
      return route(name, `/p${int(r, 100)}`);
  }
}

/** What goes before a document (never before the first when `first`). */
function randomSeparator(r: Rand, first: boolean): string {
  const seps = ['---\n', '---\n', '---\n', '--- # doc\n', '...\n---\n', '...\n', '# between\n---\n', '\n---\n'];
  // Now and then a directive: the whole text is parsed in one go until it is edited away.
  if (r() < 0.03) return '...\n%YAML 1.2\n---\n';
  return first ? pick(r, ['', '', '---\n', '# head\n---\n']) : pick(r, seps);
}

interface Doc {
  readonly sep: string;
  readonly body: string;
}

function render(docs: readonly Doc[], crlf: boolean): string {
  const text = docs.map((d) => d.sep + d.body).join('');
  return crlf ? text.replaceAll('\n', '\r\n') : text;
}

function edit(r: Rand, docs: Doc[], next: () => number): string {
  const at = int(r, docs.length + 1);
  const fresh = (): Doc => ({ sep: randomSeparator(r, false), body: randomDocument(r, next()) });
  switch (docs.length === 0 ? 0 : int(r, 5)) {
    case 0:
      docs.splice(at, 0, fresh());
      return `insert at ${at}`;
    case 1:
      docs.splice(at % docs.length, 1);
      return `delete ${at % docs.length}`;
    case 2:
      docs[at % docs.length] = { sep: docs[at % docs.length]?.sep ?? '---\n', body: randomDocument(r, next()) };
      return `change ${at % docs.length}`;
    case 3: {
      const [moved] = docs.splice(at % docs.length, 1);
      const to = int(r, docs.length + 1);
      if (moved !== undefined) docs.splice(to, 0, moved);
      return `move ${at % (docs.length + 1)} to ${to}`;
    }
    default:
      docs[at % docs.length] = { sep: randomSeparator(r, false), body: docs[at % docs.length]?.body ?? '' };
      return `separator of ${at % docs.length}`;
  }
}

describe('YamlDocuments property: random edits read like a full parse', () => {
  it(`${RUNS} runs of ${STEPS} edits (seed ${SEED})`, () => {
    for (let run = 0; run < RUNS; run++) {
      const r = seededRandom(SEED + run);
      let id = 0;
      const next = (): number => id++;
      const crlf = r() < 0.2;
      const docs: Doc[] = Array.from({ length: 1 + int(r, 8) }, () => ({
        sep: randomSeparator(r, false),
        body: randomDocument(r, next()),
      }));
      const reader = new YamlDocuments();
      let before: LoadResult | undefined;
      let beforeText = '';
      for (let step = 0; step <= STEPS; step++) {
        const what = step === 0 ? 'initial' : edit(r, docs, next);
        const text = render(
          docs.map((d, i) => (i === 0 ? { sep: d.sep.startsWith('---') ? d.sep : '', body: d.body } : d)),
          crlf,
        );
        const where = `seed ${SEED + run}, step ${step} (${what}):\n${text}`;
        const got = reader.read(text, 'f.yaml');
        // Exactly what reading the text cold gives (incremental state changes nothing) …
        const cold = parseYaml(text, 'f.yaml');
        expect(plain(got), where).toEqual(plain(cold));
        expect(got.problems, where).toEqual(cold.problems);
        // … and, for a text without errors, what a full parse of the stream gives.
        const stream = parseYamlStream(text, 'f.yaml');
        expect(got.problems.length > 0, where).toBe(stream.problems.length > 0);
        if (stream.problems.length === 0) expect(plain(got), where).toEqual(plain(stream));
        // Only documents whose text is new were parsed; an object whose document text and line
        // did not change is the same object.
        if (before !== undefined) {
          // (A piece is its text and whether a `---` follows it, which matters for errors.)
          const keys = (t: string): string[] =>
            (splitDocuments(t) ?? []).map((p, i, all) => `${p}\0${i < all.length - 1}`);
          const known = new Set(keys(beforeText));
          const fresh = new Set(keys(text).filter((k) => !known.has(k)));
          if (splitDocuments(text) === undefined) expect(reader.stats, where).toMatchObject({ whole: true, parsed: 1 });
          else expect(reader.stats.parsed, where).toBeLessThanOrEqual(fresh.size);
          const old = new Map(before.objects.map((o) => [o.source, o]));
          for (const o of got.objects) {
            const was = old.get(o.source);
            if (was !== undefined && was.value === o.value) expect(o, where).toBe(was);
          }
          if (text === beforeText) expect(got.objects, where).toEqual(before.objects);
        }
        before = got;
        beforeText = text;
      }
    }
  });
});
