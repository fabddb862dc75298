/**
 * Golden files for the xDS translator (STYLE.md §6): `testdata/in/<case>.yaml` (an IR) →
 * `testdata/out/<case>.<type>.yaml`, one file per xDS type, rendered from the encoded bytes in
 * Envoy's own YAML form. Every emitted resource is encoded with Envoy's protos (strict: unknown
 * fields throw), decoded, re-encoded, and must come back byte-identical.
 * `npm run testdata:update` rewrites the outputs; an output no input produces fails the guard.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../../proto/index.js';
import type { XdsIr } from '../../ir/types.js';
import { orderFilters } from './http-filters.js';
import { formatDuration } from './proto-json.js';
import { renderXds, toYaml } from './render.js';
import { XDS_TYPES, XDS_TYPE_NAMES, encodeXds, messageName, translateXds } from './translate.js';

const testdata = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const cases = globSync('in/*.yaml', { cwd: testdata })
  .sort()
  .map((f) => basename(f, '.yaml'));

function loadIr(name: string): XdsIr {
  return parse(readFileSync(join(testdata, 'in', `${name}.yaml`), 'utf8')) as XdsIr;
}

describe('translateXds golden files', () => {
  it.each(cases)('%s', async (name) => {
    const rendered = renderXds(translateXds(loadIr(name)));
    for (const type of XDS_TYPES) {
      await expect(toYaml(rendered[type])).toMatchFileSnapshot(
        join(testdata, 'out', `${name}.${XDS_TYPE_NAMES[type]}.yaml`),
      );
    }
  });

  it('has no output without an input', () => {
    const known = new Set(cases.flatMap((c) => XDS_TYPES.map((t) => `${c}.${XDS_TYPE_NAMES[t]}.yaml`)));
    expect(
      globSync('out/*.yaml', { cwd: testdata })
        .map((f) => basename(f))
        .filter((f) => !known.has(f)),
    ).toEqual([]);
  });

  it.each(cases)('%s: every resource round-trips through Envoy protos', (name) => {
    const resources = translateXds(loadIr(name));
    const encoded = encodeXds(resources);
    let count = 0;
    for (const type of XDS_TYPES) {
      for (const r of encoded[type]) {
        const back = decode(messageName(type), r.bytes);
        expect(Buffer.from(encode(messageName(type), back)).equals(Buffer.from(r.bytes)), `${type} ${r.name}`).toBe(
          true,
        );
        count++;
      }
    }
    expect(count).toBeGreaterThan(0);
  });

  it('is deterministic', () => {
    for (const name of cases) expect(translateXds(loadIr(name))).toEqual(translateXds(loadIr(name)));
  });
});

describe('strict encoding', () => {
  it('names the path of a field Envoy does not have', () => {
    const ir = loadIr('quickstart');
    const resources = translateXds(ir);
    const listener = resources['type.googleapis.com/envoy.config.listener.v3.Listener'][0];
    expect(listener).toBeDefined();
    const bad = { ...listener!.resource, per_connection_buffer_limit: 1 };
    expect(() => encode('envoy.config.listener.v3.Listener', bad)).toThrow(
      /unknown field "per_connection_buffer_limit"/,
    );
  });
});

describe('orderFilters', () => {
  const names = (xs: { name: string }[]): string[] => xs.map((x) => x.name);
  const f = (name: string): { name: string } => ({ name });
  const cases: ReadonlyArray<{
    name: string;
    input: string[];
    order?: { name: string; before?: string; after?: string }[];
    want: string[];
  }> = [
    {
      name: 'default: ext_proc before wasm, index before policy name, router last',
      input: [
        'envoy.filters.http.router',
        'envoy.filters.http.wasm/p/b/wasm/1',
        'envoy.filters.http.wasm/p/a/wasm/0',
        'envoy.filters.http.ext_proc/p/z/extproc/0',
        'envoy.filters.http.wasm/p/b/wasm/0',
      ],
      want: [
        'envoy.filters.http.ext_proc/p/z/extproc/0',
        'envoy.filters.http.wasm/p/a/wasm/0',
        'envoy.filters.http.wasm/p/b/wasm/0',
        'envoy.filters.http.wasm/p/b/wasm/1',
        'envoy.filters.http.router',
      ],
    },
    {
      name: 'wasm before ext_proc',
      input: [
        'envoy.filters.http.ext_proc/x/extproc/0',
        'envoy.filters.http.wasm/x/wasm/0',
        'envoy.filters.http.wasm/x/wasm/1',
        'envoy.filters.http.router',
      ],
      order: [{ name: 'envoy.filters.http.wasm', before: 'envoy.filters.http.ext_proc' }],
      want: [
        'envoy.filters.http.wasm/x/wasm/0',
        'envoy.filters.http.wasm/x/wasm/1',
        'envoy.filters.http.ext_proc/x/extproc/0',
        'envoy.filters.http.router',
      ],
    },
    {
      name: "Envoy Gateway's custom-filter-order case: wasm before jwt_authn, cors after basic_auth",
      input: [
        'envoy.filters.http.cors',
        'envoy.filters.http.basic_auth',
        'envoy.filters.http.jwt_authn',
        'envoy.filters.http.wasm/a/wasm/0',
        'envoy.filters.http.wasm/a/wasm/1',
        'envoy.filters.http.router',
      ],
      order: [
        { name: 'envoy.filters.http.wasm', before: 'envoy.filters.http.jwt_authn' },
        { name: 'envoy.filters.http.cors', after: 'envoy.filters.http.basic_auth' },
      ],
      want: [
        'envoy.filters.http.basic_auth',
        'envoy.filters.http.cors',
        'envoy.filters.http.wasm/a/wasm/0',
        'envoy.filters.http.wasm/a/wasm/1',
        'envoy.filters.http.jwt_authn',
        'envoy.filters.http.router',
      ],
    },
    {
      name: 'an absent anchor changes nothing',
      input: ['envoy.filters.http.wasm/a/wasm/0', 'envoy.filters.http.router'],
      order: [{ name: 'envoy.filters.http.wasm', after: 'envoy.filters.http.rbac' }],
      want: ['envoy.filters.http.wasm/a/wasm/0', 'envoy.filters.http.router'],
    },
  ];
  it.each(cases)('$name', ({ input, order, want }) => {
    expect(names(orderFilters(input.map(f), order ?? []))).toEqual(want);
  });
});

describe('formatDuration', () => {
  it.each([
    [{ seconds: '10' }, '10s'],
    [{ seconds: '0', nanos: 200_000_000 }, '0.200s'],
    [{ seconds: '1', nanos: 1000 }, '1.000001s'],
    [{ nanos: 5 }, '0.000000005s'],
    [{}, '0s'],
  ])('%j → %s', (d, want) => {
    expect(formatDuration(d)).toBe(want);
  });
});
