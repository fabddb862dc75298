/**
 * Prometheus metrics of one ext_proc server (prom-client, in a registry of its own so that several
 * servers in one process, as in tests, do not collide). Children with fixed labels are bound once,
 * so the per-message cost is an increment, not a label lookup.
 */
import client from 'prom-client';
import { PHASES, type Phase } from './types.js';

/** Kinds of failure counted in `envext_ext_proc_errors_total{kind}`. */
export const ERROR_KINDS = [
  'handler_exception',
  'handler_timeout',
  'invalid_decision',
  'message_too_large',
  'protocol',
  'stream_error',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export class ExtProcMetrics {
  readonly registry: client.Registry;
  readonly streamsStarted: client.Counter;
  readonly activeStreams: client.Gauge;
  readonly streamsEnded: client.Counter<'how'>;
  readonly messages: Readonly<Record<Phase, client.Counter.Internal>>;
  readonly handlerSeconds: Readonly<Record<Phase, client.Histogram.Internal<string>>>;
  readonly errors: Readonly<Record<ErrorKind, client.Counter.Internal>>;
  readonly immediateResponses: client.Counter<'status'>;
  readonly droppedMutations: client.Counter.Internal;

  constructor(registry = new client.Registry()) {
    this.registry = registry;
    this.streamsStarted = new client.Counter({
      name: 'envext_ext_proc_streams_total',
      help: 'ext_proc streams opened by Envoy (one per HTTP request)',
      registers: [registry],
    });
    this.activeStreams = new client.Gauge({
      name: 'envext_ext_proc_active_streams',
      help: 'ext_proc streams currently open',
      registers: [registry],
    });
    this.streamsEnded = new client.Counter({
      name: 'envext_ext_proc_streams_ended_total',
      help: 'ext_proc streams ended, by how: ok, cancelled (by Envoy), error (closed with a gRPC error)',
      labelNames: ['how'],
      registers: [registry],
    });
    const messages = new client.Counter({
      name: 'envext_ext_proc_messages_total',
      help: 'ProcessingRequest messages received, by phase',
      labelNames: ['phase'],
      registers: [registry],
    });
    const handler = new client.Histogram({
      name: 'envext_ext_proc_handler_duration_seconds',
      help: 'Time from receiving a message to having its decision, by phase',
      labelNames: ['phase'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers: [registry],
    });
    const errors = new client.Counter({
      name: 'envext_ext_proc_errors_total',
      help: 'Failures by kind: handler_exception, handler_timeout, invalid_decision, message_too_large, protocol, stream_error',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.immediateResponses = new client.Counter({
      name: 'envext_ext_proc_immediate_responses_total',
      help: 'Immediate responses sent, by HTTP status',
      labelNames: ['status'],
      registers: [registry],
    });
    this.droppedMutations = new client.Counter({
      name: 'envext_ext_proc_dropped_mutations_total',
      help: 'Parts of answers left out because Envoy would ignore them (disallowed headers and the like)',
      registers: [registry],
    }).labels();
    const m = {} as Record<Phase, client.Counter.Internal>;
    const h = {} as Record<Phase, client.Histogram.Internal<string>>;
    for (const p of PHASES) {
      m[p] = messages.labels(p);
      h[p] = handler.labels(p);
    }
    const e = {} as Record<ErrorKind, client.Counter.Internal>;
    for (const k of ERROR_KINDS) e[k] = errors.labels(k);
    this.messages = m;
    this.handlerSeconds = h;
    this.errors = e;
  }
}
