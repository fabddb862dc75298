/**
 * Header injection and removal: tags every request with `x-envext-processed` and the request id,
 * strips an internal header before it reaches the upstream, and hides `server` and
 * `x-powered-by` from clients while adding `x-content-type-options`.
 *
 * Envoy: processing_mode defaults (request and response headers SEND).
 */
import type { ExtProcHandler } from '../index.js';

export const handler: ExtProcHandler = {
  onRequestHeaders(_ctx, { headers }) {
    const id = headers.get('x-request-id');
    return {
      headers: {
        set: { 'x-envext-processed': 'true', ...(id === undefined ? {} : { 'x-envext-request-id': id }) },
        remove: ['x-internal-debug'],
      },
    };
  },
  onResponseHeaders() {
    return {
      headers: {
        set: { 'x-content-type-options': 'nosniff' },
        remove: ['server', 'x-powered-by'],
      },
    };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
