// Encoding a RouteConfiguration by parts must give the message that encoding it whole gives.
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { decode, encode, type ProtoObject } from '../../../proto/index.js';
import { caseSnapshot } from '../../gatewayapi/conformance.js';
import { translateGatewayApi } from '../../gatewayapi/translate.js';
import { DeterministicWasmResolver } from '../../gatewayapi/wasm-modules.js';
import { translateXds } from '../translator/translate.js';
import { encodeRouteConfiguration } from './route-config.js';

const RC = 'envoy.config.route.v3.RouteConfiguration';
const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const here = dirname(fileURLToPath(import.meta.url));
const inputs = [
  ...globSync('*.in.yaml', { cwd: join(here, '..', '..', 'gatewayapi', 'testdata'), absolute: true }),
  ...globSync('*.in.yaml', { cwd: join(here, '..', '..', 'testdata', 'envoy-gateway', 'gatewayapi'), absolute: true }),
].sort();

function routeConfigurations(file: string): ProtoObject[] {
  const snapshot = caseSnapshot(readFileSync(file, 'utf8'), basename(file, '.in.yaml'));
  const { ir } = translateGatewayApi(snapshot, { wasmModules: new DeterministicWasmResolver() });
  return [...ir.values()].flatMap((x) => translateXds(x)[ROUTE_TYPE].map((r) => r.resource));
}

describe('encodeRouteConfiguration', () => {
  it('decodes to what the whole-message encoding decodes to, for every golden input', () => {
    let checked = 0;
    for (const file of inputs) {
      for (const rc of routeConfigurations(file)) {
        const whole = decode(RC, encode(RC, rc));
        expect(decode(RC, encodeRouteConfiguration(rc)), basename(file)).toEqual(whole);
        // Again, with every route's bytes from the memo.
        expect(decode(RC, encodeRouteConfiguration(rc)), basename(file)).toEqual(whole);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('frames long records (multi-byte lengths) and many hosts', () => {
    const route = (i: number): ProtoObject => ({
      name: `r${i}`,
      match: { prefix: `/${'x'.repeat(200)}/${i}` },
      direct_response: { status: 200, body: { inline_string: 'y'.repeat(300) } },
    });
    const rc: ProtoObject = {
      name: 'big',
      virtual_hosts: Array.from({ length: 3 }, (_, h) => ({
        name: `h${h}`,
        domains: [`h${h}.example.com`],
        routes: Array.from({ length: 400 }, (_, i) => route(h * 1000 + i)),
      })),
      ignore_port_in_host_matching: true,
    };
    expect(decode(RC, encodeRouteConfiguration(rc))).toEqual(decode(RC, encode(RC, rc)));
  });

  it('stays strict: an unknown field in a route throws, naming it', () => {
    const rc = {
      name: 'x',
      virtual_hosts: [{ name: 'h', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, nope: 1 }] }],
    };
    expect(() => encodeRouteConfiguration(rc)).toThrow(/nope/);
  });
});
