/**
 * The Envoy bootstrap that connects an Envoy to `envext serve`, shaped after Envoy Gateway's
 * `internal/xds/bootstrap/bootstrap.yaml.tpl` (reference controlplane.md §2.6):
 *
 * - `node.cluster` = the Gateway's `namespace/name`: it selects the snapshot (EG's IR key);
 * - ADS with `DELTA_GRPC` (as EG) or `GRPC` (state of the world), `set_node_on_first_message_only`;
 * - LDS and CDS over ADS with `initial_fetch_timeout: 0s` (wait for the control plane instead
 *   of starting empty after 15 s);
 * - `xds_cluster`: HTTP/2 with keepalive to the xDS address (STATIC for an IP, STRICT_DNS for a
 *   host name), optionally mTLS from files;
 * - an admin listener.
 *
 * The object is encoded with Envoy's real `envoy.config.bootstrap.v3.Bootstrap` proto and
 * rendered from those bytes, so every field name and type is checked.
 */
import { isIP } from 'node:net';
import { stringify } from 'yaml';
import { EnvextError } from '../../common/errors.js';
import { encode, pack, type ProtoObject } from '../../proto/index.js';
import { toEnvoyJson } from '../xds/translator/proto-json.js';

export interface BootstrapOptions {
  /** `namespace/name` of the Gateway; becomes `node.cluster`. */
  readonly gateway: string;
  /** `host:port` of envext's xDS server (default `127.0.0.1:18000`). */
  readonly xdsAddress?: string;
  /** Default: `envoy-<namespace>-<name>`. Must be unique per Envoy. */
  readonly nodeId?: string;
  /** `host:port` of Envoy's admin listener (default `127.0.0.1:19000`). */
  readonly adminAddress?: string;
  /** `delta` (default, as Envoy Gateway) or `sotw`. */
  readonly api?: 'delta' | 'sotw';
  /** mTLS to the xDS server: file paths as Envoy will see them. */
  readonly tls?: {
    readonly caFile: string;
    readonly certFile?: string;
    readonly keyFile?: string;
    readonly sni?: string;
  };
}

/** `host:port` (IPv6 in brackets). `allowZero` for listen addresses (0 = any free port). */
export function parseHostPort(value: string, what: string, allowZero = false): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !((port > 0 || (allowZero && port === 0)) && port < 65536)) {
    throw new EnvextError('BOOTSTRAP_BAD_ADDRESS', `${what} "${value}" is not host:port`, {
      hint: `give it as 127.0.0.1:18000 or envext.envext-system.svc:18000`,
    });
  }
  return { host: m[1]!, port };
}

export function parseGateway(value: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  if (m === null) {
    throw new EnvextError('BOOTSTRAP_BAD_GATEWAY', `--gateway "${value}" is not NAMESPACE/NAME`, {
      hint: 'e.g. --gateway default/eg (the Gateway whose config this Envoy serves)',
    });
  }
  return { namespace: m[1]!, name: m[3]! };
}

/** The bootstrap as a proto-form object (before encoding). */
export function bootstrapObject(o: BootstrapOptions): ProtoObject {
  const gw = parseGateway(o.gateway);
  const xds = parseHostPort(o.xdsAddress ?? '127.0.0.1:18000', '--xds-address');
  const admin = parseHostPort(o.adminAddress ?? '127.0.0.1:19000', '--admin-address');
  const ads = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 0 } };
  const xdsCluster: ProtoObject = {
    name: 'xds_cluster',
    type: isIP(xds.host) === 0 ? 'STRICT_DNS' : 'STATIC',
    connect_timeout: { seconds: 10 },
    load_assignment: {
      cluster_name: 'xds_cluster',
      endpoints: [
        { lb_endpoints: [{ endpoint: { address: { socket_address: { address: xds.host, port_value: xds.port } } } }] },
      ],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': pack(
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        {
          explicit_http_config: {
            http2_protocol_options: { connection_keepalive: { interval: { seconds: 30 }, timeout: { seconds: 5 } } },
          },
        },
      ),
    },
  };
  if (o.tls !== undefined) {
    const common: ProtoObject = { validation_context: { trusted_ca: { filename: o.tls.caFile } } };
    if (o.tls.certFile !== undefined && o.tls.keyFile !== undefined) {
      common.tls_certificates = [
        { certificate_chain: { filename: o.tls.certFile }, private_key: { filename: o.tls.keyFile } },
      ];
    }
    xdsCluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: pack('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
        common_tls_context: { ...common, alpn_protocols: ['h2'] },
        ...(o.tls.sni === undefined ? {} : { sni: o.tls.sni }),
      }),
    };
  }
  return {
    node: { id: o.nodeId ?? `envoy-${gw.namespace}-${gw.name}`, cluster: `${gw.namespace}/${gw.name}` },
    dynamic_resources: {
      ads_config: {
        api_type: o.api === 'sotw' ? 'GRPC' : 'DELTA_GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds_cluster' } }],
      },
      lds_config: ads,
      cds_config: ads,
    },
    static_resources: { clusters: [xdsCluster] },
    admin: { address: { socket_address: { address: admin.host, port_value: admin.port } } },
  };
}

/** The bootstrap rendered as Envoy reads it (proto3 JSON form): YAML or JSON text. */
export function renderBootstrap(o: BootstrapOptions, format: 'yaml' | 'json' = 'yaml'): string {
  const bytes = encode('envoy.config.bootstrap.v3.Bootstrap', bootstrapObject(o));
  const json = toEnvoyJson('envoy.config.bootstrap.v3.Bootstrap', bytes);
  return format === 'json' ? JSON.stringify(json, null, 2) + '\n' : stringify(json, { lineWidth: 0 });
}
