/**
 * Streamed body transform (STREAMED): masks every ASCII digit of the response body with `#`,
 * chunk by chunk, as Envoy streams it. Each chunk gets exactly one answer, in order; the length
 * never changes, so no chunk boundary matters.
 *
 * Envoy: response_body_mode STREAMED.
 */
import type { ExtProcHandler } from '../index.js';

export const handler: ExtProcHandler = {
  onResponseBody(_ctx, { body }) {
    let changed = false;
    const out = Buffer.from(body);
    for (let i = 0; i < out.length; i++) {
      const c = out[i] as number;
      if (c >= 0x30 && c <= 0x39) {
        out[i] = 0x23; // '#'
        changed = true;
      }
    }
    return changed ? { body: { replace: out } } : undefined;
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
