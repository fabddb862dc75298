import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createLogger } from '../../../common/log.js';
import { FileProvider, type SnapshotUpdate } from './provider.js';
import { parseYaml, relaxQuotedIndentation, snapshotFromObjects } from './load.js';

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

  it('fails clearly on a path that does not exist', async () => {
    const provider = new FileProvider({ paths: [join(tempDir(), 'nope')], logger: silent });
    await expect(provider.load()).rejects.toMatchObject({ code: 'CONTROLPLANE_INPUT_NOT_FOUND' });
  });
});
