/**
 * Prometheus metrics of the ADS server (prom-client). Names follow Envoy Gateway's where one
 * exists (`xds_nack_total` in EG 1.9 is `xdsNACKTotal{nodeID,typeURL}`); we label NACKs by node
 * group instead of node id to keep the series count bounded.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface XdsMetrics {
  readonly clients: Gauge<'mode'>;
  readonly pushes: Counter<'type'>;
  readonly acks: Counter<'type'>;
  readonly nacks: Counter<'type' | 'group'>;
  readonly pushLatency: Histogram<'type'>;
  readonly snapshots: Counter<'group'>;
}

export function createXdsMetrics(registry: Registry): XdsMetrics {
  return {
    clients: new Gauge({
      name: 'envext_xds_connected_clients',
      help: 'ADS streams open now, by mode (sotw or delta)',
      labelNames: ['mode'],
      registers: [registry],
    }),
    pushes: new Counter({
      name: 'envext_xds_pushes_total',
      help: 'xDS responses sent, by resource type',
      labelNames: ['type'],
      registers: [registry],
    }),
    acks: new Counter({
      name: 'envext_xds_acks_total',
      help: 'xDS responses acknowledged by clients, by resource type',
      labelNames: ['type'],
      registers: [registry],
    }),
    nacks: new Counter({
      name: 'envext_xds_nacks_total',
      help: 'xDS responses rejected by clients (NACK), by resource type and node group',
      labelNames: ['type', 'group'],
      registers: [registry],
    }),
    pushLatency: new Histogram({
      name: 'envext_xds_push_latency_seconds',
      help: 'time from publishing a snapshot to a client acknowledging it, by resource type',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    snapshots: new Counter({
      name: 'envext_xds_snapshots_total',
      help: 'snapshots published, by node group',
      labelNames: ['group'],
      registers: [registry],
    }),
  };
}
