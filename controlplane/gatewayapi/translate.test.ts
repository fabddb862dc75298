/**
 * Golden files for the Gateway API translator (STYLE.md §6): every `testdata/<case>.in.yaml`
 * (and the quickstart example) is loaded the way the file provider loads it, Wasm sources go
 * through Envoy Gateway's deterministic mock, and the statuses plus the IR are compared with
 * `testdata/<case>.out.yaml`. `npm run testdata:update` rewrites the outputs.
 */
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { toYaml } from '../xds/translator/render.js';
import { translateInput } from './golden.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const testdata = join(here, 'testdata');

const cases: { name: string; input: string }[] = [
  ...globSync('*.in.yaml', { cwd: testdata })
    .sort()
    .map((f) => ({ name: basename(f, '.in.yaml'), input: join(testdata, f) })),
  { name: 'quickstart', input: join(root, 'examples', 'quickstart') },
];

describe('translateGatewayApi golden files', () => {
  it.each(cases)('$name', async ({ name, input }) => {
    const doc = await translateInput(input, root);
    await expect(toYaml(doc)).toMatchFileSnapshot(join(testdata, `${name}.out.yaml`));
  });

  it('has no output without an input', () => {
    const names = new Set(cases.map((c) => c.name));
    const orphans = globSync('*.out.yaml', { cwd: testdata }).filter((f) => !names.has(basename(f, '.out.yaml')));
    expect(orphans).toEqual([]);
  });
});
