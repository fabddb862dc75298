import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ENVOY_FILES,
  ProtoError,
  clientConstructor,
  decode,
  encode,
  messageType,
  pack,
  protoRoot,
  serviceDefinition,
  toJsonObject,
  unpack,
} from './index.js';

const LISTENER = 'envoy.config.listener.v3.Listener';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';

function listenerWithHcm(): Record<string, unknown> {
  const hcm = pack(HCM, {
    stat_prefix: 'http-10080',
    codec_type: 'AUTO',
    rds: { route_config_name: 'default/eg/http', config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: pack(ROUTER, { suppress_envoy_headers: true }) }],
  });
  return {
    name: 'default/eg/http',
    address: { socket_address: { address: '0.0.0.0', port_value: 10080 } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
}

describe('proto loader', () => {
  it('loads every default Envoy entry file once and reuses the Root', () => {
    const root = protoRoot();
    expect(protoRoot()).toBe(root);
    for (const file of DEFAULT_ENVOY_FILES) {
      expect(root.files.some((f) => f.endsWith(file))).toBe(true);
    }
  });

  it('round-trips a Listener with an HttpConnectionManager packed in Any', () => {
    const bytes = encode(LISTENER, listenerWithHcm());
    const listener = decode(LISTENER, bytes);
    expect(listener['name']).toBe('default/eg/http');

    const chains = listener['filter_chains'] as { filters: { name: string; typed_config: never }[] }[];
    const filter = chains[0]?.filters[0];
    expect(filter?.name).toBe('envoy.filters.network.http_connection_manager');
    const { typeName, message: hcm } = unpack(filter!.typed_config, HCM);
    expect(typeName).toBe(HCM);
    expect(hcm['stat_prefix']).toBe('http-10080');
    expect(hcm['codec_type']).toBe('AUTO');
    expect(hcm['rds']).toEqual({
      route_config_name: 'default/eg/http',
      config_source: { ads: {}, resource_api_version: 'V3' },
    });
    const router = (hcm['http_filters'] as { typed_config: never }[])[0]!.typed_config;
    expect(unpack(router, ROUTER).message).toEqual({ suppress_envoy_headers: true });

    // Re-encoding the decoded object gives the same bytes: nothing was lost on the way.
    expect(Buffer.from(encode(LISTENER, listener))).toEqual(Buffer.from(bytes));
  });

  it('renders Any in @type form and encodes that form back', () => {
    const bytes = encode(LISTENER, listenerWithHcm());
    const json = toJsonObject(LISTENER, bytes);
    const typed = (json['filter_chains'] as { filters: { typed_config: Record<string, unknown> }[] }[])[0]!.filters[0]!
      .typed_config;
    expect(typed['@type']).toBe(`type.googleapis.com/${HCM}`);
    expect(typed['stat_prefix']).toBe('http-10080');
    expect(Buffer.from(encode(LISTENER, json))).toEqual(Buffer.from(bytes));
  });

  it.each([
    { name: 'top-level typo', value: { nmae: 'x' }, error: /Listener: unknown field "nmae"/ },
    {
      name: 'nested typo',
      value: { address: { socket_address: { adress: '0.0.0.0' } } },
      error: /SocketAddress at address\.socket_address: unknown field "adress"/,
    },
    {
      name: 'typo inside an @type Any',
      value: {
        filter_chains: [
          { filters: [{ name: 'hcm', typed_config: { '@type': `type.googleapis.com/${HCM}`, stat_prefx: 'x' } }] },
        ],
      },
      error: /HttpConnectionManager at filter_chains\[0\]\.filters\[0\]\.typed_config: unknown field "stat_prefx"/,
    },
    { name: 'wrong shape', value: { address: 'localhost' }, error: /Address at address: expected an object/ },
  ])('encode rejects $name, naming the field', ({ value, error }) => {
    expect(() => encode(LISTENER, value)).toThrow(error);
  });

  it('names unknown types and wrong Any types with stable codes', () => {
    expect(() => messageType('envoy.config.listener.v3.Listner')).toThrow(ProtoError);
    try {
      messageType('envoy.config.listener.v3.Listner');
    } catch (e) {
      expect((e as ProtoError).code).toBe('PROTO_UNKNOWN_TYPE');
    }
    const any = pack(ROUTER, {});
    expect(() => unpack(any, HCM)).toThrow(/holds envoy\.extensions\.filters\.http\.router\.v3\.Router, expected/);
  });

  it('reports truncated bytes as PROTO_DECODE_FAILED', () => {
    const bytes = encode(LISTENER, listenerWithHcm());
    expect(() => decode(LISTENER, bytes.subarray(0, bytes.length - 5))).toThrow(
      expect.objectContaining({ code: 'PROTO_DECODE_FAILED' }),
    );
  });

  it('spells google.protobuf.Value fields as the .proto does, like every other field', () => {
    const struct = {
      fields: {
        s: { string_value: 'x' },
        n: { number_value: 1.5 },
        b: { bool_value: true },
        l: { list_value: { values: [{ null_value: 'NULL_VALUE' }] } },
        o: { struct_value: { fields: { k: { string_value: 'v' } } } },
      },
    };
    const bytes = encode('google.protobuf.Struct', struct);
    expect(decode('google.protobuf.Struct', bytes)).toEqual(struct);
    expect(() => encode('google.protobuf.Struct', { fields: { s: { stringValue: 'x' } } })).toThrow(
      /unknown field "stringValue"/,
    );
    // The oneof names the set member with the new spelling on decoded message instances too.
    const decoded = messageType('google.protobuf.Value').decode(encode('google.protobuf.Value', { bool_value: true }));
    expect((decoded as unknown as { kind: string }).kind).toBe('bool_value');
    // The wire format is the standard one: field 3 (string_value), length-delimited.
    expect(Buffer.from(encode('google.protobuf.Value', { string_value: 'x' }))).toEqual(Buffer.from([0x1a, 1, 0x78]));
  });

  it('builds grpc-js service definitions for ADS', () => {
    const def = serviceDefinition('envoy.service.discovery.v3.AggregatedDiscoveryService');
    const sotw = def['StreamAggregatedResources'];
    expect(sotw?.path).toBe('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    expect(sotw?.requestStream).toBe(true);
    expect(sotw?.responseStream).toBe(true);
    expect(def['DeltaAggregatedResources']).toBeDefined();
    const req = { type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', resource_names: ['a'] };
    expect(sotw!.requestDeserialize(sotw!.requestSerialize(req))).toEqual(req);
    expect(typeof clientConstructor('envoy.service.discovery.v3.AggregatedDiscoveryService')).toBe('function');
  });
});
