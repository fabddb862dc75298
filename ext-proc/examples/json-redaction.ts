/**
 * Buffered JSON body redaction: in a JSON request body, the values of `password`, `ssn` and
 * `card_number` (at any depth) become "[REDACTED]", and `content-length` is set to the new length
 * (Envoy keeps the old one in BUFFERED mode with headers SEND and rejects a mismatch; the framework
 * would also fix it on its own). Non-JSON bodies pass through.
 *
 * Envoy: request_body_mode BUFFERED, request headers SEND.
 */
import type { ExtProcHandler } from '../index.js';

const SECRET_KEYS = new Set(['password', 'ssn', 'card_number']);

function redact(v: unknown): { value: unknown; changed: boolean } {
  if (Array.isArray(v)) {
    let changed = false;
    const value = v.map((x) => {
      const r = redact(x);
      changed ||= r.changed;
      return r.value;
    });
    return { value, changed };
  }
  if (typeof v === 'object' && v !== null) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (SECRET_KEYS.has(k.toLowerCase())) {
        out[k] = '[REDACTED]';
        changed = true;
      } else {
        const r = redact(x);
        changed ||= r.changed;
        out[k] = r.value;
      }
    }
    return { value: out, changed };
  }
  return { value: v, changed: false };
}

interface State {
  json: boolean;
}

export const handler: ExtProcHandler<State> = {
  createState: () => ({ json: false }),
  onRequestHeaders(ctx, { headers }) {
    ctx.state.json = (headers.get('content-type') ?? '').includes('json');
  },
  onRequestBody(ctx, { body }) {
    if (!ctx.state.json || body.length === 0) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined; // not JSON after all: forward unchanged
    }
    const r = redact(parsed);
    if (!r.changed) return undefined;
    const out = Buffer.from(JSON.stringify(r.value));
    return { body: { replace: out }, headers: { set: { 'content-length': String(out.length) } } };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
