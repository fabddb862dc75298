/**
 * Prometheus metrics of one ext_proc server (prom-client, in a registry of its own so that several
 * servers in one process, as in tests, do not collide).
 *
 * Hot-path counting costs one integer increment: streams, messages, errors and dropped mutations
 * are plain numbers here, and prom-client reads them only when scraped (each metric's `collect`).
 * The handler-latency histogram is kept the same way (`PhaseHistogram`: one bucket search and
 * three increments per observation) and rendered by the registry at scrape time; prom-client's own
 * `Histogram.observe` builds a label hash string and several objects per call (about 2 µs per
 * observation under load, two observations per request with a mutating handler).
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
  /** `envext_ext_proc_handler_duration_seconds{phase}`. */
  readonly handlerSeconds = new PhaseHistogram(
    'envext_ext_proc_handler_duration_seconds',
    'Time from receiving a message to having its decision, by phase (messages that reach a callback)',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1],
  );

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
    // The registry only calls get() and reset() (and reads name, help, type, aggregator) of a metric.
    registry.registerMetric(this.handlerSeconds as unknown as client.Metric);
  }

  immediate(status: number): void {
    this.immediateResponses.set(status, (this.immediateResponses.get(status) ?? 0) + 1);
  }
}

/** One value line of a metric, as prom-client's registry renders it. */
interface MetricValue {
  readonly value: number;
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly exemplar?: null;
}

/**
 * A Prometheus histogram with one label, `phase`, whose observations cost a bucket search and three
 * increments (no label hashing, no allocation). The registry renders it at scrape time exactly as
 * it renders a prom-client `Histogram` (same series, labels, order; phases never observed are left
 * out, as prom-client leaves out label sets never observed).
 */
export class PhaseHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per phase: counts per bucket (not cumulative), the last slot for +Inf. */
  private readonly counts: Record<Phase, Float64Array>;
  private readonly sums: Record<Phase, number>;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = {} as Record<Phase, Float64Array>;
    this.sums = {} as Record<Phase, number>;
    for (const p of PHASES) {
      this.counts[p] = new Float64Array(bounds.length + 1);
      this.sums[p] = 0;
    }
  }

  observe(phase: Phase, seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    const counts = this.counts[phase];
    counts[i] = (counts[i] as number) + 1;
    this.sums[phase] += seconds;
  }

  /** Observations of `phase` so far. */
  count(phase: Phase): number {
    let n = 0;
    for (const c of this.counts[phase]) n += c;
    return n;
  }

  reset(): void {
    for (const p of PHASES) {
      this.counts[p].fill(0);
      this.sums[p] = 0;
    }
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const phase of PHASES) {
      const counts = this.counts[phase];
      const total = this.count(phase);
      if (total === 0) continue;
      let acc = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        acc += counts[i] as number;
        values.push({
          value: acc,
          metricName: `${this.name}_bucket`,
          exemplar: null,
          labels: { le: i < this.bounds.length ? (this.bounds[i] as number) : '+Inf', phase },
        });
      }
      values.push({ value: this.sums[phase], metricName: `${this.name}_sum`, labels: { phase } });
      values.push({ value: total, metricName: `${this.name}_count`, labels: { phase } });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
