/**
 * Prometheus metrics of one ext_proc server (prom-client, in a registry of its own so that several
 * servers in one process, as in tests, do not collide).
 *
 * Hot-path counting costs one integer increment: streams, messages, errors and dropped mutations
 * are plain numbers here, and prom-client reads them only when scraped (each metric's `collect`).
 * Only the handler-latency histogram goes through prom-client per observation, and only for
 * messages that reach a handler callback.
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
  'internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export type StreamEnd = 'ok' | 'cancelled' | 'error';

export class ExtProcMetrics {
  readonly registry: client.Registry;
  // Plain counters, read at scrape time.
  streamsStarted = 0;
  activeStreams = 0;
  readonly streamsEnded: Record<StreamEnd, number> = { ok: 0, cancelled: 0, error: 0 };
  readonly messages: Record<Phase, number>;
  readonly errors: Record<ErrorKind, number>;
  readonly immediateResponses = new Map<number, number>();
  droppedMutations = 0;
  readonly handlerSeconds: Readonly<Record<Phase, client.Histogram.Internal<string>>>;

  constructor(registry = new client.Registry()) {
    this.registry = registry;
    this.messages = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    this.errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read by prom-client's collect callbacks, where `this` is the metric
    const m = this;
    new client.Counter({
      name: 'envext_ext_proc_streams_total',
      help: 'ext_proc streams opened by Envoy (one per HTTP request)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(m.streamsStarted);
      },
    });
    new client.Gauge({
      name: 'envext_ext_proc_active_streams',
      help: 'ext_proc streams currently open',
      registers: [registry],
      collect() {
        this.set(m.activeStreams);
      },
    });
    new client.Counter({
      name: 'envext_ext_proc_streams_ended_total',
      help: 'ext_proc streams ended, by how: ok, cancelled (by Envoy), error (closed with a gRPC error)',
      labelNames: ['how'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [how, n] of Object.entries(m.streamsEnded)) this.labels(how).inc(n);
      },
    });
    new client.Counter({
      name: 'envext_ext_proc_messages_total',
      help: 'ProcessingRequest messages received, by phase',
      labelNames: ['phase'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [phase, n] of Object.entries(m.messages)) this.labels(phase).inc(n);
      },
    });
    new client.Counter({
      name: 'envext_ext_proc_errors_total',
      help: 'Failures by kind: handler_exception, handler_timeout, invalid_decision, message_too_large, protocol, stream_error, internal',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(m.errors)) this.labels(kind).inc(n);
      },
    });
    new client.Counter({
      name: 'envext_ext_proc_immediate_responses_total',
      help: 'Immediate responses sent, by HTTP status',
      labelNames: ['status'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [status, n] of m.immediateResponses) this.labels(String(status)).inc(n);
      },
    });
    new client.Counter({
      name: 'envext_ext_proc_dropped_mutations_total',
      help: 'Parts of answers left out because Envoy would ignore them (disallowed headers and the like)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(m.droppedMutations);
      },
    });
    const handler = new client.Histogram({
      name: 'envext_ext_proc_handler_duration_seconds',
      help: 'Time from receiving a message to having its decision, by phase (messages that reach a callback)',
      labelNames: ['phase'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
      registers: [registry],
    });
    const h = {} as Record<Phase, client.Histogram.Internal<string>>;
    for (const p of PHASES) h[p] = handler.labels(p);
    this.handlerSeconds = h;
  }

  immediate(status: number): void {
    this.immediateResponses.set(status, (this.immediateResponses.get(status) ?? 0) + 1);
  }
}
