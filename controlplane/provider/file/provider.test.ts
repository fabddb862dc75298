import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createLogger } from '../../../common/log.js';
import { TranslationCache, translateGatewayApi } from '../../gatewayapi/translate.js';
import { ResolvedWasmModules } from '../../gatewayapi/wasm-modules.js';
import { FileProvider, type SnapshotUpdate } from './provider.js';
import { parseYaml, relaxQuotedIndentation, snapshotFromObjects } from './load.js';
import { seededRandom } from '../../../test/seeded-random.js';

const silent = createLogger({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'envext-file-provider-'));
  dirs.push(d);
  return d;
}

const gateway = (name: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default}
spec:
  gatewayClassName: envext
  listeners: [{name: http, protocol: HTTP, port: 80}]
`;

/**
 * Collects updates; `until(pred)` waits (bounded: 10 s) for the first update after the previous
 * match that satisfies `pred`. Under load a burst may arrive as more than one update, so tests
 * wait for the state they expect rather than count updates.
 */
function collector(): {
  updates: SnapshotUpdate[];
  until: (pred: (u: SnapshotUpdate) => boolean, what: string) => Promise<SnapshotUpdate>;
} {
  const updates: SnapshotUpdate[] = [];
  let from = 0;
  return {
    updates,
    async until(pred, what) {
      for (let i = 0; i < 400; i++) {
        const idx = updates.findIndex((u, j) => j >= from && pred(u));
        const u = updates[idx];
        if (u !== undefined) {
          from = idx + 1;
          return u;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no snapshot update with ${what} after ${updates.length} updates`);
    },
  };
}

describe('parseYaml', () => {
  it('reads multi-document YAML, kind: List and test bundles with file:line sources', () => {
    const text = `${gateway('a')}---\napiVersion: v1\nkind: List\nitems:\n  - ${'{'}apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: 80}]}}\n---\nHTTPRoutes:\n  - apiVersion: gateway.networking.k8s.io/v1\n    metadata: {name: r}\n    spec: {}\n`;
    const r = parseYaml(text, 'x.yaml');
    expect(r.problems).toEqual([]);
    expect(r.objects.map((o) => o.source)).toEqual(['x.yaml:1', 'x.yaml:8 items[0]', 'x.yaml:14']);
    expect(r.objects[2]?.defaultKind).toBe('HTTPRoute');
  });

  it.each([
    ['a: [1, 2', /x\.yaml:1:\d+: YAML syntax error/],
    ['a: b\n c: d: e', /x\.yaml:2:\d+/],
  ])('reports syntax errors with file:line:column: %j', (text, want) => {
    const r = parseYaml(text, 'x.yaml');
    expect(r.problems.map((p) => `${p.resource}: ${p.message}`).join('\n')).toMatch(want);
  });

  it("accepts Go YAML's under-indented quoted continuation lines", () => {
    const text = 'spec:\n  lua:\n    - inline: "function f()\n  return 1\n  end"\n';
    expect(relaxQuotedIndentation(text)).not.toBe(text);
    const r = parseYaml(text, 'x.yaml');
    expect(r.problems).toEqual([]);
    expect(r.objects[0]?.value).toEqual({ spec: { lua: [{ inline: 'function f() return 1 end' }] } });
  });

  it('names the resource, field and source of schema problems', () => {
    const { snapshot } = snapshotFromObjects(
      parseYaml(
        'kind: Gateway\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: g}\nspec: {listeners: []}\n',
        'gw.yaml',
      ).objects,
    );
    expect(snapshot.rejected[0]?.problems.map((p) => `${p.resource} ${p.field}: ${p.message}`)).toEqual([
      'Gateway g (gw.yaml:1) spec.listeners: should have at least 1 items',
      'Gateway g (gw.yaml:1) spec.gatewayClassName: Required value',
    ]);
  });
});

describe('FileProvider', () => {
  it('publishes a snapshot, then one per burst of changes; a syntax error keeps the last good content', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), gateway('a'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'b.yaml'), gateway('b'));
    writeFileSync(join(dir, '.hidden.yaml'), gateway('hidden'));
    const provider = new FileProvider({ paths: [dir], debounceMs: 50, logger: silent });
    const c = collector();
    const ac = new AbortController();
    const done = provider.watch((u) => void c.updates.push(u), ac.signal);
    try {
      const gateways = (u: SnapshotUpdate): string[] => [...u.snapshot.resources.Gateway.keys()].sort();
      const first = await c.until(() => true, 'the first snapshot');
      expect(gateways(first)).toEqual(['default/a', 'default/b']);
      expect(c.updates).toHaveLength(1); // the hidden file is ignored, nothing else happened

      // A burst of writes: new snapshots (normally one) end with both changes.
      writeFileSync(join(dir, 'a.yaml'), gateway('a2'));
      writeFileSync(join(dir, 'sub', 'c.yaml'), gateway('c'));
      const second = await c.until((u) => gateways(u).join() === 'default/a2,default/b,default/c', 'a2, b and c');
      expect(second.snapshot.revision).toBeGreaterThan(first.snapshot.revision);

      // Broken YAML: reported, and a2 stays.
      writeFileSync(join(dir, 'a.yaml'), 'kind: Gateway\nmetadata: {name: [broken\n');
      const third = await c.until((u) => u.problems.length > 0, 'a YAML problem');
      expect(third.problems[0]?.resource).toMatch(/a\.yaml:\d+:\d+/);
      expect(third.snapshot.resources.Gateway.has('default/a2')).toBe(true);

      // Deleting a file removes its resources.
      unlinkSync(join(dir, 'sub', 'c.yaml'));
      await c.until((u) => !u.snapshot.resources.Gateway.has('default/c'), 'c removed');
    } finally {
      ac.abort();
      await done;
    }
  });

  it('writes statuses to the status file', async () => {
    const dir = tempDir();
    const file = join(dir, 'status.yaml');
    const provider = new FileProvider({ paths: [dir], statusFile: file, logger: silent });
    await provider.writeStatuses([
      {
        kind: 'GatewayClass',
        name: 'envext',
        status: {
          conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Valid GatewayClass' }],
        },
      },
    ]);
    expect(parse(readFileSync(file, 'utf8'))).toEqual([
      {
        kind: 'GatewayClass',
        name: 'envext',
        status: {
          conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'Valid GatewayClass' }],
        },
      },
    ]);
  });

  it('keeps the resource objects of unchanged resources across reads (for the TranslationCache)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), gateway('a'));
    writeFileSync(join(dir, 'b.yaml'), gateway('b'));
    const provider = new FileProvider({ paths: [dir], logger: silent });
    const first = (await provider.load()).snapshot.resources.Gateway;
    writeFileSync(join(dir, 'b.yaml'), gateway('b').replace('port: 80', 'port: 8080'));
    const second = (await provider.load()).snapshot.resources.Gateway;
    expect(second.get('default/a')).toBe(first.get('default/a'));
    expect(second.get('default/b')).not.toBe(first.get('default/b'));
    expect(second.get('default/b')?.spec.listeners[0]?.port).toBe(8080);
    // One object edited in a multi-document file: the others keep their objects, even moved down a line.
    writeFileSync(join(dir, 'a.yaml'), `# edited\n${gateway('a')}---\n${gateway('c')}`);
    const third = (await provider.load()).snapshot.resources.Gateway;
    expect(third.get('default/a')).toBe(first.get('default/a'));
    expect(third.get('default/b')).toBe(second.get('default/b'));
    writeFileSync(join(dir, 'a.yaml'), `${gateway('a').replace('port: 80', 'port: 81')}---\n${gateway('c')}`);
    const fourth = (await provider.load()).snapshot.resources.Gateway;
    expect(fourth.get('default/a')).not.toBe(third.get('default/a'));
    expect(fourth.get('default/c')).toBe(third.get('default/c'));
  });

  describe('one big file, edited document by document', () => {
    const route = (i: number, path = `/r${i}`): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r${i}, namespace: default}
spec:
  parentRefs: [{name: a}]
  rules: [{matches: [{path: {type: PathPrefix, value: ${path}}}]}]
`;
    const bad = (i: number): string => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bad${i}, namespace: default}
spec: {listeners: []}
`;
    const file = (docs: string[]): string => docs.join('---\n');
    const routes = (n: number): string[] => Array.from({ length: n }, (_, i) => route(i));

    // [name, before, after, documents parsed, documents moved, routes whose resource object is new]
    it.each<[string, string[], string[], number, number, number[]]>([
      ['one route changed', routes(50), routes(50).map((d, i) => (i === 7 ? route(7, '/new') : d)), 1, 0, [7]],
      ['one route inserted above the rest', routes(50), [route(99), ...routes(50)], 1, 50, [99]],
      ['one route deleted', routes(50), routes(50).filter((_, i) => i !== 3), 0, 46, []],
      ['a comment added at the top', routes(50), [`# note\n${route(0)}`, ...routes(50).slice(1)], 1, 49, []],
      ['nothing changed but the file was rewritten', routes(50), routes(50), 0, 0, []],
    ])('%s', async (_name, before, after, parsed, moved, changed) => {
      const dir = tempDir();
      writeFileSync(join(dir, 'routes.yaml'), file([gateway('a'), ...before]));
      const provider = new FileProvider({ paths: [dir], logger: silent, cwd: dir });
      const first = (await provider.load()).snapshot;
      writeFileSync(join(dir, 'routes.yaml'), file([gateway('a'), ...after]));
      const second = (await provider.load()).snapshot;
      const rewrittenOnly = before.join() === after.join();
      expect(provider.lastRead).toEqual(
        rewrittenOnly
          ? { readFiles: 1, changedFiles: 0, documents: 0, parsedDocuments: 0, movedDocuments: 0 }
          : {
              readFiles: 1,
              changedFiles: 1,
              documents: after.length + 1,
              parsedDocuments: parsed,
              movedDocuments: moved,
            },
      );
      for (const [key, resource] of second.resources.HTTPRoute) {
        const i = Number(key.slice('default/r'.length));
        if (changed.includes(i)) expect(resource, key).not.toBe(first.resources.HTTPRoute.get(key));
        else expect(resource, key).toBe(first.resources.HTTPRoute.get(key));
      }
      expect(second.resources.Gateway.get('default/a')).toBe(first.resources.Gateway.get('default/a'));
    });

    it("lets the translator's TranslationCache translate a one-route change incrementally, with an invalid object around", async () => {
      const dir = tempDir();
      const path = join(dir, 'routes.yaml');
      const cls = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: envext}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
`;
      writeFileSync(path, file([cls, gateway('a'), bad(1), ...routes(20)]));
      const provider = new FileProvider({ paths: [dir], logger: silent, cwd: dir });
      const cache = new TranslationCache();
      const translate = async (): Promise<void> =>
        void translateGatewayApi((await provider.load()).snapshot, { wasmModules: new ResolvedWasmModules(), cache });
      await translate();
      // One route changed; then changed back with a comment above everything (every document moves).
      writeFileSync(
        path,
        file([cls, gateway('a'), bad(1), ...routes(20).map((d, i) => (i === 4 ? route(4, '/x') : d))]),
      );
      await translate();
      writeFileSync(path, `# routes\n${file([cls, gateway('a'), bad(1), ...routes(20)])}`);
      await translate();
      expect(provider.lastRead).toMatchObject({ parsedDocuments: 2, movedDocuments: 21 });
      expect(cache.stats).toEqual({ full: 1, incremental: 2 });
    });

    it('names the new line of a moved document, and the line and column of a YAML error below moved ones', async () => {
      const dir = tempDir();
      const path = join(dir, 'routes.yaml');
      writeFileSync(path, file([gateway('a'), route(1), bad(1), route(2)]));
      const provider = new FileProvider({ paths: [dir], logger: silent, cwd: dir });
      const first = await provider.load();
      expect(first.snapshot.rejected.map((r) => r.source)).toEqual(['routes.yaml:15']);
      // Two routes inserted above: the invalid Gateway is reused (same text) but now on line 29.
      writeFileSync(path, file([gateway('a'), route(3), route(4), route(1), bad(1), route(2)]));
      const second = await provider.load();
      expect(second.snapshot.rejected.map((r) => r.source)).toEqual(['routes.yaml:29']);
      expect(second.snapshot.rejected[0]?.problems[0]?.resource).toContain('(routes.yaml:29)');
      expect(provider.lastRead.parsedDocuments).toBe(2);
      // A syntax error in the last document (an unclosed flow sequence, reported where the text
      // ends, as a full parse reports it), and the file
      // keeps its last good content (route r2 is still there, nothing from the broken text).
      writeFileSync(path, file([gateway('a'), route(3), route(4), route(1), bad(1), 'spec: [unclosed\n']));
      const third = await provider.load();
      expect(third.problems.map((p) => p.resource)).toEqual(['routes.yaml:35:1']);
      expect([...third.snapshot.resources.HTTPRoute.keys()].sort()).toEqual([
        'default/r1',
        'default/r2',
        'default/r3',
        'default/r4',
      ]);
      expect(third.snapshot.resources.HTTPRoute.get('default/r1')).toBe(
        second.snapshot.resources.HTTPRoute.get('default/r1'),
      );
      // Fixed again: only the fixed document is parsed.
      writeFileSync(path, file([gateway('a'), route(3), route(4), route(1), bad(1), route(5)]));
      const fourth = await provider.load();
      expect(fourth.problems).toEqual([]);
      expect(provider.lastRead.parsedDocuments).toBe(1);
      expect(fourth.snapshot.resources.HTTPRoute.has('default/r5')).toBe(true);
      expect(fourth.snapshot.resources.HTTPRoute.has('default/r2')).toBe(false);
    });

    it('warns about a resource defined twice with both sources, and reads JSON files', async () => {
      const dir = tempDir();
      const lines: string[] = [];
      const logger = createLogger({
        level: 'warn',
        format: 'json',
        sink: { write: (l: string) => void lines.push(l) },
      });
      writeFileSync(join(dir, 'a.yaml'), file([route(1), route(2), route(1, '/again')]));
      writeFileSync(
        join(dir, 'b.json'),
        JSON.stringify({
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: 'j' },
          spec: {},
        }),
      );
      const provider = new FileProvider({ paths: [dir], logger, cwd: dir });
      const { snapshot } = await provider.load();
      expect([...snapshot.resources.HTTPRoute.keys()].sort()).toEqual(['default/j', 'default/r1', 'default/r2']);
      expect(lines.join('')).toContain('HTTPRoute default/r1 (a.yaml:1 and a.yaml:15)');
      // The JSON file is edited: read again, the YAML file is not.
      writeFileSync(
        join(dir, 'b.json'),
        JSON.stringify({
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: 'k' },
          spec: {},
        }),
      );
      const second = await provider.load();
      expect(provider.lastRead).toEqual({
        readFiles: 2,
        changedFiles: 1,
        documents: 1,
        parsedDocuments: 1,
        movedDocuments: 0,
      });
      expect(second.snapshot.resources.HTTPRoute.has('default/k')).toBe(true);
      expect(second.snapshot.resources.HTTPRoute.get('default/r2')).toBe(
        snapshot.resources.HTTPRoute.get('default/r2'),
      );
    });
  });

  it('reads a settled file again only when its stat changes, and a recently changed file every time', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), gateway('a'));
    writeFileSync(join(dir, 'b.yaml'), gateway('b'));
    await new Promise((r) => setTimeout(r, 20)); // so that both changed before the first read
    // settledMs 0: a file that changed before a read counts as settled at the next.
    const provider = new FileProvider({ paths: [dir], logger: silent, settledMs: 0 });
    const first = await provider.load();
    expect(provider.lastRead.readFiles).toBe(2);
    const second = await provider.load();
    expect(provider.lastRead.readFiles).toBe(0);
    expect(second.snapshot.resources.Gateway.get('default/a')).toBe(first.snapshot.resources.Gateway.get('default/a'));
    writeFileSync(join(dir, 'b.yaml'), gateway('b2'));
    const third = await provider.load();
    expect(provider.lastRead).toMatchObject({ readFiles: 1, changedFiles: 1 });
    expect([...third.snapshot.resources.Gateway.keys()].sort()).toEqual(['default/a', 'default/b2']);
    // The default (3 s): files changed just now are read at every load, even with the same stat.
    const recent = new FileProvider({ paths: [dir], logger: silent });
    await recent.load();
    await recent.load();
    expect(recent.lastRead).toMatchObject({ readFiles: 2, changedFiles: 0 });
  });

  it('reads a named pipe given as a path without blocking the process on its writer', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'config.yaml');
    execFileSync('mkfifo', [fifo]);
    const provider = new FileProvider({ paths: [fifo], logger: silent });
    const loading = provider.load();
    // The writer runs in this process: a blocking read of the pipe would wait for it forever.
    await new Promise<void>((resolve, reject) => {
      const w = createWriteStream(fifo);
      w.on('error', reject);
      w.end(gateway('piped'), resolve);
    });
    const { snapshot } = await loading;
    expect([...snapshot.resources.Gateway.keys()]).toEqual(['default/piped']);
  });

  it('fails clearly on a path that does not exist', async () => {
    const provider = new FileProvider({ paths: [join(tempDir(), 'nope')], logger: silent });
    await expect(provider.load()).rejects.toMatchObject({ code: 'CONTROLPLANE_INPUT_NOT_FOUND' });
  });
});

describe('FileProvider property: a provider that read every edit equals one that reads the result cold', () => {
  const SEED = Number(process.env['ENVEXT_FILE_SEED'] ?? 0xf11e_2026);
  const RUNS = Number(process.env['ENVEXT_FILE_RUNS'] ?? 25);
  // Valid and invalid resources with few names, so that edits collide (duplicates, moves, equal content).
  const resource = (r: () => number): string => {
    const name = `n${Math.floor(r() * 4)}`;
    const path = `/p${Math.floor(r() * 3)}`;
    switch (Math.floor(r() * 5)) {
      case 0:
        return gateway(name);
      case 1:
        return `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: default}\nspec: {listeners: []}\n`;
      case 2:
        return `# a comment\napiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Service, metadata: {name: ${name}}, spec: {ports: [{port: 80}]}}\n`;
      default:
        return `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ${name}, namespace: default}\nspec:\n  rules: [{matches: [{path: {type: PathPrefix, value: ${path}}}]}]\n`;
    }
  };
  const view = (u: SnapshotUpdate): unknown => ({
    resources: Object.fromEntries(Object.entries(u.snapshot.resources).map(([k, m]) => [k, [...m].sort()])),
    rejected: u.snapshot.rejected.map((x) => [x.kind, x.namespace, x.name, x.source, x.problems]),
    problems: u.problems,
  });

  it(`${RUNS} runs of 8 edits over two files (seed ${SEED})`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const r = seededRandom(SEED + run);
      const dir = tempDir();
      const files: string[][] = [[resource(r)], [resource(r), resource(r)]];
      const write = (): void =>
        files.forEach((docs, i) =>
          writeFileSync(join(dir, `f${i}.yaml`), docs.join(r() < 0.5 ? '---\n' : '---\n# x\n')),
        );
      write();
      const provider = new FileProvider({ paths: [dir], logger: silent, cwd: dir });
      await provider.load();
      for (let step = 0; step < 8; step++) {
        const docs = files[Math.floor(r() * files.length)] ?? [];
        const at = Math.floor(r() * (docs.length + 1));
        const op = Math.floor(r() * 4);
        if (op === 0 || docs.length === 0) docs.splice(at, 0, resource(r));
        else if (op === 1) docs.splice(at % docs.length, 1);
        else if (op === 2) docs[at % docs.length] = resource(r);
        else docs.splice(Math.floor(r() * docs.length), 0, ...docs.splice(at % docs.length, 1));
        write();
        const got = await provider.load();
        const cold = await new FileProvider({ paths: [dir], logger: silent, cwd: dir }).load();
        expect(view(got), `seed ${SEED + run}, step ${step}`).toEqual(view(cold));
      }
    }
  });
});
