/**
 * Dynamic metadata for access logs: writes namespace `envext.access_log` with the caller's
 * client id, the request's route class and, on the response, the status class and how long the
 * upstream took as seen from here. Envoy logs it with `%DYNAMIC_METADATA(envext.access_log:client)%`
 * once the filter lists the namespace in `metadata_options.receiving_namespaces.untyped`.
 *
 * Envoy: request and response headers SEND; `request_attributes: [source.address]` optional.
 */
import type { ExtProcHandler } from '../index.js';

interface State {
  started: number;
}

const NS = 'envext.access_log';

export const handler: ExtProcHandler<State> = {
  createState: () => ({ started: 0 }),
  onRequestHeaders(ctx, { headers }) {
    ctx.state.started = performance.now();
    const path = headers.get(':path') ?? '/';
    const source = ctx.attributes['source.address'];
    return {
      dynamicMetadata: {
        [NS]: {
          client: headers.get('x-client-id') ?? 'anonymous',
          route_class: path.startsWith('/api/') ? 'api' : 'web',
          ...(typeof source === 'string' ? { source } : {}),
        },
      },
    };
  },
  onResponseHeaders(ctx, { headers }) {
    const status = Number(headers.get(':status') ?? '0');
    return {
      dynamicMetadata: {
        [NS]: {
          status_class: `${Math.floor(status / 100)}xx`,
          upstream_ms: Math.round((performance.now() - ctx.state.started) * 1000) / 1000,
        },
      },
    };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
