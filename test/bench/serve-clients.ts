/**
 * Helper process of serve.bench.ts: N delta ADS clients that behave like Envoy on the wire
 * (wildcard CDS/LDS, RDS/EDS by name following what they received, one ACK per response) but
 * skip decoding what Envoy would not need to look at for that, so 50 of them fit on the second
 * core without slowing the control plane down. Usage: serve-clients.ts ADDRESS GROUP COUNT.
 * Prints "ready" once every client has ACKed a first listener.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { decode, messageType, type ProtoObject } from '../../proto/index.js';

const [address, group, countText] = process.argv.slice(2);
const count = Number(countText);
const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const ROUTE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const ENDPOINT = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

interface Light {
  typeUrl: string;
  nonce: string;
  names: string[];
  anys: Uint8Array[];
}

/** Reads a DeltaDiscoveryResponse's envelope and resource names without decoding resources. */
function light(buf: Buffer): Light {
  const r = protobuf.Reader.create(buf);
  const out: Light = { typeUrl: '', nonce: '', names: [], anys: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 4) out.typeUrl = r.string();
    else if (field === 5) out.nonce = r.string();
    else if (field === 2) {
      const rr = protobuf.Reader.create(r.bytes());
      while (rr.pos < rr.len) {
        const t = rr.uint32();
        if (t >>> 3 === 3) out.names.push(rr.string());
        else if (t >>> 3 === 2) out.anys.push(rr.bytes());
        else rr.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return out;
}

const Request = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const def: grpc.ServiceDefinition = {
  Delta: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (v: ProtoObject) => Buffer.from(Request.encode(Request.fromObject(v)).finish()),
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => light(b),
  },
};
const Client = grpc.makeGenericClientConstructor(def, 'Ads');

function rdsNames(any: Uint8Array): string[] {
  const a = decode('google.protobuf.Any', any) as { value: Uint8Array };
  const l = decode('envoy.config.listener.v3.Listener', a.value);
  const chains = [...((l.filter_chains as ProtoObject[] | undefined) ?? [])];
  if (l.default_filter_chain !== undefined) chains.push(l.default_filter_chain as ProtoObject);
  const out: string[] = [];
  for (const c of chains) {
    for (const f of (c.filters as ProtoObject[] | undefined) ?? []) {
      const tc = f.typed_config as { type_url: string; value: Uint8Array } | undefined;
      if (tc?.type_url.endsWith(HCM) !== true) continue;
      const name = (decode(HCM, tc.value).rds as ProtoObject | undefined)?.route_config_name;
      if (typeof name === 'string') out.push(name);
    }
  }
  return out;
}

let ready = 0;
const channel = new grpc.Channel(address!, grpc.credentials.createInsecure(), {});
for (let i = 0; i < count; i++) {
  const client = new Client(address!, grpc.credentials.createInsecure(), { channelOverride: channel });
  const call = (client as unknown as { Delta(): grpc.ClientDuplexStream<ProtoObject, Light> }).Delta();
  const subscribed = new Map<string, Set<string>>([
    [ROUTE, new Set()],
    [ENDPOINT, new Set()],
  ]);
  let first = true;
  let counted = false;
  const subscribe = (type: string, names: readonly string[]): void => {
    const set = subscribed.get(type)!;
    const fresh = names.filter((n) => !set.has(n));
    for (const n of fresh) set.add(n);
    if (fresh.length > 0) call.write({ type_url: type, resource_names_subscribe: fresh });
  };
  call.on('data', (res: Light) => {
    call.write({ type_url: res.typeUrl, response_nonce: res.nonce });
    if (res.typeUrl === CLUSTER) subscribe(ENDPOINT, res.names);
    if (res.typeUrl === LISTENER) {
      subscribe(ROUTE, res.anys.flatMap(rdsNames));
      if (!counted) {
        counted = true;
        if (++ready === count) process.stdout.write('ready\n');
      }
    }
  });
  call.on('error', () => undefined);
  const node = { id: `bench-${i}`, cluster: group };
  for (const type of [CLUSTER, LISTENER]) {
    call.write({ ...(first ? { node } : {}), type_url: type });
    first = false;
  }
}
process.on('disconnect', () => process.exit(0));
