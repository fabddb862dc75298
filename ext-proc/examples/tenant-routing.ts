/**
 * Routing by header: requests of tenants listed in `EXT_PROC_CANARY_TENANTS` (default `beta`) get
 * `x-route-to: canary`, and `/api/v1/…` paths are rewritten to `/api/v2/…`; either change asks
 * Envoy to recompute the route (`clear_route_cache`), so a route matching `x-route-to` or the new
 * path takes effect.
 *
 * Envoy: request headers SEND; routes that match on `x-route-to` / the `/api/v2/` prefix.
 */
import type { ExtProcHandler, HeadersDecision } from '../index.js';

const canary = new Set((process.env['EXT_PROC_CANARY_TENANTS'] ?? 'beta').split(',').map((s) => s.trim()));

export const handler: ExtProcHandler = {
  onRequestHeaders(_ctx, { headers }): HeadersDecision | undefined {
    const set: Record<string, string> = {};
    const tenant = headers.get('x-tenant');
    if (tenant !== undefined && canary.has(tenant)) set['x-route-to'] = 'canary';
    const path = headers.get(':path') ?? '';
    if (path.startsWith('/api/v1/')) set[':path'] = `/api/v2/${path.slice('/api/v1/'.length)}`;
    if (Object.keys(set).length === 0) return undefined;
    return { headers: { set }, clearRouteCache: true };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
