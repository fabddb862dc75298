/**
 * API-key authentication: a request without `x-api-key` gets 401 (with `www-authenticate`), an
 * unknown key 403, both as immediate responses; a known key is replaced by `x-user` so the
 * upstream never sees the secret. Keys come from `EXT_PROC_API_KEYS` (`key=user,key2=user2`).
 *
 * Envoy: request headers SEND (response headers may be SKIP).
 */
import type { ExtProcHandler } from '../index.js';

function keysFromEnv(text: string | undefined): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const pair of (text ?? 'demo-key-1=alice,demo-key-2=bob').split(',')) {
    const [key, user] = pair.split('=');
    if (key !== undefined && key !== '' && user !== undefined) out.set(key.trim(), user.trim());
  }
  return out;
}

const keys = keysFromEnv(process.env['EXT_PROC_API_KEYS']);

export const handler: ExtProcHandler = {
  onRequestHeaders(_ctx, { headers }) {
    const key = headers.get('x-api-key');
    if (key === undefined || key === '') {
      return {
        immediate: {
          status: 401,
          headers: { set: { 'www-authenticate': 'ApiKey realm="envext"', 'content-type': 'application/json' } },
          body: '{"error":"missing x-api-key"}',
          details: 'api_key_missing',
        },
      };
    }
    const user = keys.get(key);
    if (user === undefined) {
      return {
        immediate: {
          status: 403,
          headers: { set: { 'content-type': 'application/json' } },
          body: '{"error":"unknown api key"}',
          details: 'api_key_unknown',
        },
      };
    }
    return { headers: { set: { 'x-user': user }, remove: ['x-api-key'] } };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
