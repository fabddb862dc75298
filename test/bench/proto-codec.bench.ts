// Cost of envext's strict encode (unknown-field check + encode) against protobufjs's own
// fromObject + encode on the same Listener, and of decode, in the same run.
import type protobuf from 'protobufjs';
import { DECODE_OPTIONS, encode, decode, messageType, pack } from '../../proto/index.js';
import { measure, report, round } from './lib.js';

const LISTENER = 'envoy.config.listener.v3.Listener';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const listener = {
  name: 'default/eg/http',
  address: { socket_address: { address: '0.0.0.0', port_value: 10080 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: pack(HCM, {
            stat_prefix: 'http-10080',
            rds: { route_config_name: 'default/eg/http', config_source: { ads: {}, resource_api_version: 'V3' } },
            http_filters: Array.from({ length: 4 }, (_, i) => ({ name: `filter-${i}`, disabled: i > 0 })),
          }),
        },
      ],
    },
  ],
};

const type: protobuf.Type = messageType(LISTENER);
const bytes = encode(LISTENER, listener);

const baselineEncode = measure('protobufjs fromObject+encode', () => type.encode(type.fromObject(listener)).finish());
const strictEncode = measure('envext encode (strict)', () => encode(LISTENER, listener));
const baselineDecode = measure('protobufjs decode+toObject', () => type.toObject(type.decode(bytes), DECODE_OPTIONS));
const envextDecode = measure('envext decode', () => decode(LISTENER, bytes));

report('proto-codec', {
  bytes: bytes.length,
  results: [baselineEncode, strictEncode, baselineDecode, envextDecode],
  ratios: {
    encodeVsBaseline: round(strictEncode.nsPerOp / baselineEncode.nsPerOp),
    decodeVsBaseline: round(envextDecode.nsPerOp / baselineDecode.nsPerOp),
  },
});
