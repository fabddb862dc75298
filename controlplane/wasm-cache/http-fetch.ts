/**
 * Downloads a module over HTTP(S) with what Envoy Gateway's fetcher has (reference
 * eg-extension-policy.md §e.4): a per-attempt timeout (15 s), retries with backoff (5) on
 * network errors and 5xx/429, an optional CA bundle, redirects (up to 5), and a size cap so a
 * wrong URL cannot fill the disk. 4xx other than 429 fails at once: retrying will not help.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { EnvextError, errorMessage } from '../../common/errors.js';

export interface HttpFetchOptions {
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** First retry delay (doubles per attempt). */
  readonly backoffMs?: number;
  /** PEM CA bundle trusted in addition to nothing else (as Envoy Gateway's `caCertificateRef`). */
  readonly ca?: string | Buffer;
  readonly maxBytes: number;
  readonly signal?: AbortSignal;
}

export class HttpFetchError extends EnvextError {
  override readonly name = 'HttpFetchError';
  constructor(
    code: string,
    message: string,
    readonly retryable: boolean,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

function once(url: URL, opts: HttpFetchOptions, redirects: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const req = get(
      url,
      {
        timeout: opts.timeoutMs ?? 15_000,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        headers: { 'user-agent': 'envext-wasm-cache', accept: 'application/wasm, */*' },
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location !== undefined) {
          res.resume();
          if (redirects >= 5) {
            reject(new HttpFetchError('WASM_HTTP_REDIRECTS', `too many redirects fetching ${url.href}`, false));
            return;
          }
          once(new URL(res.headers.location, url), opts, redirects + 1).then(resolve, reject);
          return;
        }
        if (status !== 200) {
          res.resume();
          const retryable = status >= 500 || status === 429;
          reject(new HttpFetchError('WASM_HTTP_STATUS', `GET ${url.href} returned HTTP ${status}`, retryable));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? '-1');
        if (declared > opts.maxBytes) {
          res.destroy();
          reject(
            new HttpFetchError(
              'WASM_TOO_LARGE',
              `module at ${url.href} is ${declared} bytes, over the ${opts.maxBytes}-byte limit`,
              false,
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > opts.maxBytes) {
            res.destroy();
            reject(
              new HttpFetchError(
                'WASM_TOO_LARGE',
                `module at ${url.href} is over the ${opts.maxBytes}-byte limit`,
                false,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', (e) =>
          reject(new HttpFetchError('WASM_HTTP_FAILED', `reading ${url.href}: ${e.message}`, true, { cause: e })),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${opts.timeoutMs ?? 15_000} ms`)));
    req.on('error', (e) => {
      const tls =
        /certificate|self.signed|CERT_|SSL/i.test(e.message) ||
        (e as { code?: string }).code?.startsWith('ERR_TLS') === true;
      reject(
        new HttpFetchError(tls ? 'WASM_HTTP_TLS' : 'WASM_HTTP_FAILED', `GET ${url.href} failed: ${e.message}`, !tls, {
          cause: e,
          ...(tls
            ? { hint: 'set http.tls.caCertificateRef in the policy to the CA that signed the server certificate' }
            : {}),
        }),
      );
    });
  });
}

/** GET with retries. Throws HttpFetchError. */
export async function httpFetch(url: string, opts: HttpFetchOptions): Promise<Buffer> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (e: unknown) {
    throw new HttpFetchError('WASM_URL_INVALID', `"${url}" is not a URL: ${errorMessage(e)}`, false);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new HttpFetchError('WASM_URL_INVALID', `"${url}" is not an http(s) URL`, false);
  }
  const retries = opts.retries ?? 5;
  let delay = opts.backoffMs ?? 200;
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(parsed, opts, 0);
    } catch (e: unknown) {
      if (!(e instanceof HttpFetchError) || !e.retryable || attempt >= retries || opts.signal?.aborted === true)
        throw e;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
