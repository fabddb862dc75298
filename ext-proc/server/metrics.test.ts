import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ExtProcMetrics } from './metrics.js';
import type { Phase } from './types.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1];

/** The handler histogram's exposition text, without the other series. */
async function histogramText(registry: client.Registry): Promise<string> {
  return (await registry.metrics())
    .split('\n')
    .filter((l) => l.includes('envext_ext_proc_handler_duration_seconds'))
    .join('\n');
}

describe('handler latency histogram', () => {
  it.each([
    { name: 'nothing observed', observations: [] as [Phase, number][] },
    { name: 'one phase', observations: [['request_headers', 0.00002]] as [Phase, number][] },
    {
      name: 'values on bucket bounds, between them and above the last one',
      observations: [
        ['request_headers', 0.0001],
        ['request_headers', 0.00011],
        ['request_headers', 0.003],
        ['response_headers', 1],
        ['response_headers', 2.5],
        ['request_body', 0],
        ['response_trailers', 0.2],
      ] as [Phase, number][],
    },
  ])('$name: the same text prom-client renders for a Histogram', async ({ observations }) => {
    const m = new ExtProcMetrics();
    const reference = new client.Registry();
    const h = new client.Histogram({
      name: 'envext_ext_proc_handler_duration_seconds',
      help: 'Time from receiving a message to having its decision, by phase (messages that reach a callback)',
      labelNames: ['phase'],
      buckets: BUCKETS,
      registers: [reference],
    });
    for (const [phase, seconds] of observations) {
      m.handlerSeconds.observe(phase, seconds);
      h.labels(phase).observe(seconds);
    }
    expect(await histogramText(m.registry)).toBe(await histogramText(reference));
    expect(m.handlerSeconds.count('request_headers')).toBe(
      observations.filter(([p]) => p === 'request_headers').length,
    );
  });

  it('is emptied by the registry reset', async () => {
    const m = new ExtProcMetrics();
    m.handlerSeconds.observe('request_headers', 0.001);
    m.registry.resetMetrics();
    expect(m.handlerSeconds.count('request_headers')).toBe(0);
    expect(await histogramText(m.registry)).not.toMatch(/_count/);
  });
});
