/**
 * Envoy Gateway's IR → xDS golden cases for wasm and ext_proc (testdata/envoy-gateway/xds-ir):
 * their IR is mapped onto envext's IR, translated, and the Envoy shapes that matter are compared
 * with Envoy Gateway's expected output: every extension HTTP filter (name, `disabled`, full
 * typed_config), the filter order in each HCM, and which routes enable which filters
 * (`typed_per_filter_config`). Envoy Gateway's YAML uses JSON (camelCase) names; they are
 * converted to proto names first.
 *
 * Known, stated difference: ExternalProcessor `status_on_error` is newer than the Envoy API protos
 * envext encodes with, so it is not emitted (the gatewayapi translator warns when a policy sets it).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type {
  DestinationSetting,
  EnvoyExtensions,
  ExtProc,
  ExtProcSide,
  HttpRoute,
  Wasm,
  XdsIr,
} from '../../ir/types.js';
import { renderXds } from './render.js';
import { LISTENER_TYPE, ROUTE_TYPE, translateXds } from './translate.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'testdata', 'envoy-gateway', 'xds-ir');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** camelCase JSON names → proto names, recursively (map keys such as filter names are left alone). */
function snake(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snake);
  if (!isObj(v)) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [
      /^[a-z][A-Za-z0-9]*$/u.test(k) ? k.replace(/[A-Z]/gu, (c) => `_${c.toLowerCase()}`) : k,
      snake(x),
    ]),
  );
}

function ms(d: unknown): number | undefined {
  const m = /^(\d+)(ms|s)$/u.exec(str(d));
  return m === null ? undefined : Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

const BODY: Obj = {
  Streamed: 'STREAMED',
  Buffered: 'BUFFERED',
  BufferedPartial: 'BUFFERED_PARTIAL',
  FullDuplexStreamed: 'FULL_DUPLEX_STREAMED',
};

function settings(v: unknown): DestinationSetting[] {
  return arr(v)
    .filter(isObj)
    .map((s) => ({
      name: str(s['name']),
      weight: typeof s['weight'] === 'number' ? s['weight'] : 1,
      priority: 0,
      protocol: (str(s['protocol']) || 'HTTP') as DestinationSetting['protocol'],
      addressType: (str(s['addressType']) || 'IP') as DestinationSetting['addressType'],
      endpoints: arr(s['endpoints'])
        .filter(isObj)
        .map((e) =>
          typeof e['path'] === 'string' ? { path: e['path'] } : { host: str(e['host']), port: Number(e['port']) },
        ),
      metadata: { kind: '', namespace: '', name: '' },
    }));
}

function side(e: Obj, prefix: 'request' | 'response'): ExtProcSide {
  const body = BODY[str(e[`${prefix}BodyProcessingMode`])];
  return {
    headers: e[`${prefix}HeaderProcessing`] === true,
    ...(typeof body === 'string' ? { body: body as ExtProcSide['body'] & string } : {}),
    attributes: arr(e[`${prefix}Attributes`]).map(str),
  };
}

function extensions(v: unknown): EnvoyExtensions | undefined {
  if (!isObj(v)) return undefined;
  const wasms: Wasm[] = arr(v['wasms'])
    .filter(isObj)
    .map((w) => {
      const code = isObj(w['httpWasmCode']) ? w['httpWasmCode'] : {};
      return {
        name: str(w['name']),
        wasmName: str(w['wasmName']),
        ...(typeof w['rootID'] === 'string' ? { rootId: w['rootID'] } : {}),
        ...(w['config'] === undefined || w['config'] === null ? {} : { config: JSON.stringify(w['config']) }),
        failOpen: w['failOpen'] === true,
        code: {
          servingUrl: str(code['servingURL']),
          sha256: str(code['sha256']),
          originalUrl: str(code['originalDownloadingURL']),
        },
        hostEnvKeys: arr(isObj(w['hostKeys']) ? [] : w['hostKeys']).map(str),
      };
    });
  const extProcs: ExtProc[] = arr(v['extProcs'])
    .filter(isObj)
    .map((e) => {
      const dest = isObj(e['destination']) ? e['destination'] : {};
      const timeout = ms(e['messageTimeout']);
      return {
        name: str(e['name']),
        destination: {
          name: str(dest['name']),
          metadata: { kind: '', namespace: '', name: '' },
          settings: settings(dest['settings']),
        },
        authority: str(e['authority']),
        ...(timeout === undefined ? {} : { messageTimeoutMs: timeout }),
        ...(typeof e['failOpen'] === 'boolean' ? { failOpen: e['failOpen'] } : {}),
        request: side(e, 'request'),
        response: side(e, 'response'),
        allowModeOverride: e['allowModeOverride'] === true,
        ...(typeof e['shadowMode'] === 'boolean' ? { observabilityMode: e['shadowMode'] } : {}),
        forwardingNamespaces: arr(e['forwardingMetadataNamespaces']).map(str),
        receivingNamespaces: arr(e['receivingMetadataNamespaces']).map(str),
      };
    });
  return { wasms, extProcs };
}

/** Envoy Gateway's IR (the subset these cases use) as envext's IR. */
function fromEnvoyGatewayIr(doc: Obj): XdsIr {
  return {
    name: 'envoy-gateway/gateway-1',
    filterOrder: arr(doc['filterOrder'])
      .filter(isObj)
      .map((p) => ({
        name: str(p['name']),
        ...(typeof p['before'] === 'string' ? { before: p['before'] } : {}),
        ...(typeof p['after'] === 'string' ? { after: p['after'] } : {}),
      })),
    http: arr(doc['http'])
      .filter(isObj)
      .map((l) => ({
        name: str(l['name']),
        metadata: { kind: 'Gateway', namespace: '', name: '' },
        address: str(l['address']),
        port: Number(l['port']),
        externalPort: Number(l['port']),
        hostnames: arr(l['hostnames']).map(str),
        routes: arr(l['routes'])
          .filter(isObj)
          .map((r): HttpRoute => {
            const pm = isObj(r['pathMatch']) ? r['pathMatch'] : {};
            const dest = isObj(r['destination']) ? r['destination'] : undefined;
            const ext = extensions(r['envoyExtensions']);
            return {
              name: str(r['name']),
              metadata: { kind: 'HTTPRoute', namespace: '', name: '' },
              hostname: str(r['hostname']),
              ...(typeof pm['prefix'] === 'string'
                ? { pathMatch: { prefix: pm['prefix'] } }
                : typeof pm['exact'] === 'string'
                  ? { pathMatch: { exact: pm['exact'] } }
                  : {}),
              headerMatches: [],
              queryParamMatches: [],
              mirrors: [],
              ...(dest === undefined
                ? {}
                : {
                    destination: {
                      name: str(dest['name']),
                      metadata: { kind: '', namespace: '', name: '' },
                      settings: settings(dest['settings']),
                    },
                  }),
              ...(ext === undefined ? {} : { envoyExtensions: ext }),
              isHttp2: false,
            };
          }),
      })),
  };
}

/** HCM extension filters (router excluded) of every listener, by filter name, in order. */
function hcmFilters(listeners: unknown[]): { order: string[]; configs: Map<string, unknown> } {
  const order: string[] = [];
  const configs = new Map<string, unknown>();
  for (const l of listeners.filter(isObj)) {
    const chain = isObj(l['default_filter_chain']) ? l['default_filter_chain'] : {};
    for (const f of arr(chain['filters']).filter(isObj)) {
      const hcm = isObj(f['typed_config']) ? f['typed_config'] : {};
      for (const h of arr(hcm['http_filters']).filter(isObj)) {
        const name = str(h['name']);
        if (!name.includes('/')) continue; // router and other global filters
        order.push(name);
        configs.set(name, { disabled: h['disabled'], typed_config: h['typed_config'] });
      }
    }
  }
  return { order, configs };
}

/** Route name → sorted filter names it enables. */
function perRouteFilters(routeConfigs: unknown[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const rc of routeConfigs.filter(isObj)) {
    for (const vh of arr(rc['virtual_hosts']).filter(isObj)) {
      for (const r of arr(vh['routes']).filter(isObj)) {
        const tpf = isObj(r['typed_per_filter_config']) ? r['typed_per_filter_config'] : {};
        out[str(r['name'])] = Object.keys(tpf).sort();
      }
    }
  }
  return out;
}

function withoutStatusOnError(v: unknown): unknown {
  if (!isObj(v)) return v;
  const tc = isObj(v['typed_config']) ? { ...v['typed_config'] } : undefined;
  if (tc !== undefined) delete tc['status_on_error'];
  return tc === undefined ? v : { ...v, typed_config: tc };
}

describe("Envoy Gateway's xds-ir golden cases (wasm, ext_proc)", () => {
  it.each(['wasm', 'ext-proc'])('%s: HTTP filters, their order and per-route enablement match', (name) => {
    const ir = fromEnvoyGatewayIr(parse(readFileSync(join(dir, 'in', `${name}.yaml`), 'utf8')) as Obj);
    const ours = renderXds(translateXds(ir));
    const expectedListeners = arr(snake(parse(readFileSync(join(dir, 'out', `${name}.listeners.yaml`), 'utf8'))));
    const expectedRoutes = arr(snake(parse(readFileSync(join(dir, 'out', `${name}.routes.yaml`), 'utf8'))));

    const want = hcmFilters(expectedListeners);
    const got = hcmFilters(ours[LISTENER_TYPE]);
    expect(got.order).toEqual(want.order);
    expect(want.order.length).toBeGreaterThan(0);
    for (const filter of want.order) {
      expect(withoutStatusOnError(got.configs.get(filter)), filter).toEqual(
        withoutStatusOnError(want.configs.get(filter)),
      );
    }
    expect(perRouteFilters(ours[ROUTE_TYPE])).toEqual(perRouteFilters(expectedRoutes));
  });
});
