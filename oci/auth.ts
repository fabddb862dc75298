/**
 * Registry authentication: Basic, and the docker/distribution Bearer token flow (reference oci.md
 * §3) with an OAuth2 variant for identity tokens.
 *
 * One `Authenticator` per client. It remembers, per registry host, which scheme the registry
 * challenged with, and caches Bearer tokens per (host, sorted scope set) until `expires_in`
 * (default 60 s) minus a margin. It never loops: a request is retried at most once after a 401.
 */
import { rootLogger } from '../common/log.js';
import type { Challenge } from './challenge.js';
import type { Credential, CredentialProvider } from './credentials.js';
import { OciError } from './errors.js';

const log = rootLogger.child({ component: 'oci' });

/** Upper bound of a token response body (oras-go reads at most 128 KiB). */
const MAX_TOKEN_RESPONSE = 128 * 1024;
/** Tokens are dropped this long before they expire, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 5_000;

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

interface HostAuth {
  /** The challenge the registry answered with; undefined until the first 401. */
  challenge?: Challenge;
  credential?: Credential | undefined;
  credentialLoaded?: boolean;
  readonly tokens: Map<string, CachedToken>;
  /** A refresh token the token server handed out (OAuth2), reused for later scopes. */
  refreshToken?: string;
}

/** What the client needs to send one authenticated request. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Per-client authentication state. `learn()` records a registry's challenge; `authorization()`
 * returns the header for a request needing some scopes (fetching and caching a token when the
 * registry uses Bearer). Errors name the credential source.
 */
export class Authenticator {
  private readonly hosts = new Map<string, HostAuth>();
  /** Token fetches in flight, so concurrent requests for one scope share one token request. */
  private readonly inflight = new Map<string, Promise<string>>();

  private readonly doFetch: FetchLike;

  constructor(
    private readonly credentials: CredentialProvider | undefined,
    doFetch: FetchLike,
    private readonly now: () => number = Date.now,
    private readonly clientId = 'envext',
  ) {
    // A token server that cannot be reached is a connection problem, not a crash.
    this.doFetch = async (url, init) => {
      try {
        return await doFetch(url, init);
      } catch (e) {
        const origin = new URL(url).origin;
        throw new OciError('OCI_CONNECTION', `cannot reach token server ${origin}: ${(e as Error).message}`, {
          cause: e,
          hint: 'the registry names this token server in its WWW-Authenticate realm; check that it is reachable',
        });
      }
    };
  }

  private host(registry: string): HostAuth {
    let h = this.hosts.get(registry);
    if (h === undefined) {
      h = { tokens: new Map() };
      this.hosts.set(registry, h);
    }
    return h;
  }

  /** The credential for a registry (looked up once per client). */
  async credential(registry: string): Promise<Credential | undefined> {
    const h = this.host(registry);
    if (h.credentialLoaded !== true) {
      h.credential = this.credentials === undefined ? undefined : await this.credentials.get(registry);
      h.credentialLoaded = true;
    }
    return h.credential;
  }

  /** Describes where credentials for `registry` came from, for 401/403 messages. */
  async describeSource(registry: string): Promise<string> {
    const c = await this.credential(registry);
    if (c !== undefined) return `credentials from ${c.source}`;
    return this.credentials === undefined
      ? 'no credentials (anonymous)'
      : `no credentials for ${registry} in ${this.credentials.description} (anonymous)`;
  }

  /** Records a challenge from a 401 (or the `/v2/` ping). */
  learn(registry: string, challenges: readonly Challenge[]): Challenge | undefined {
    const chosen = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (chosen !== undefined) this.host(registry).challenge = chosen;
    return chosen;
  }

  /** True once the registry has challenged; before that requests go out without `Authorization`. */
  knowsScheme(registry: string): boolean {
    return this.host(registry).challenge !== undefined;
  }

  /**
   * The `Authorization` value for a request needing `scopes`, or undefined (anonymous). Uses the
   * cached token when one covers exactly this scope set; otherwise asks the token server.
   */
  async authorization(registry: string, scopes: readonly string[], force = false): Promise<string | undefined> {
    const h = this.host(registry);
    const challenge = h.challenge;
    if (challenge === undefined) return undefined;
    const credential = await this.credential(registry);
    if (challenge.scheme === 'basic') {
      if (credential === undefined) return undefined;
      if (credential.username === undefined || credential.password === undefined) {
        throw new OciError(
          'OCI_CREDENTIALS',
          `${registry} asks for Basic auth but ${credential.source} holds a token, not a password`,
          {
            hint: `run envext oci login ${registry} with a user name and password`,
          },
        );
      }
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.registryToken !== undefined) return `Bearer ${credential.registryToken}`;
    const all = [
      ...new Set([...scopes, ...(challenge.params['scope'] ?? '').split(' ').filter((s) => s !== '')]),
    ].sort();
    const key = all.join(' ');
    const cached = h.tokens.get(key);
    if (!force && cached !== undefined && cached.expiresAt > this.now()) return `Bearer ${cached.token}`;
    const flightKey = `${registry} ${key}`;
    let p = this.inflight.get(flightKey);
    if (p === undefined) {
      p = this.fetchToken(registry, h, challenge, all, credential).finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, p);
    }
    return `Bearer ${await p}`;
  }

  private async fetchToken(
    registry: string,
    h: HostAuth,
    challenge: Challenge,
    scopes: readonly string[],
    credential: Credential | undefined,
  ): Promise<string> {
    const realm = challenge.params['realm'];
    if (realm === undefined || realm === '') {
      throw new OciError('OCI_UNAUTHORIZED', `${registry} sent a Bearer challenge without a realm`);
    }
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch (e) {
      throw new OciError('OCI_UNAUTHORIZED', `${registry} sent a Bearer realm that is not a URL: ${realm}`, {
        cause: e,
      });
    }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') {
      throw new OciError('OCI_UNAUTHORIZED', `${registry} sent a Bearer realm with scheme ${realmUrl.protocol}`);
    }
    const service = challenge.params['service'];
    const refresh = credential?.identityToken ?? h.refreshToken;
    let res: Response | undefined;
    if (refresh !== undefined) {
      // OAuth2 refresh-token grant (docker's identitytoken). Token servers without OAuth2 support
      // answer 404/405: fall back to the GET flow, which then runs anonymously or with Basic.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refresh,
        client_id: this.clientId,
      });
      if (service !== undefined) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      res = await this.doFetch(realmUrl.toString(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      if (res.status === 404 || res.status === 405) {
        await res.body?.cancel();
        res = undefined;
      }
    }
    if (res === undefined) {
      const url = new URL(realmUrl);
      if (service !== undefined) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (credential?.username !== undefined && credential.password !== undefined) {
        headers['authorization'] =
          `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
      }
      res = await this.doFetch(url.toString(), { method: 'GET', headers });
    }
    const text = await readCapped(res, MAX_TOKEN_RESPONSE, `token response from ${realmUrl.origin}`);
    if (res.status === 401 || res.status === 403) {
      throw new OciError(
        'OCI_UNAUTHORIZED',
        `token server ${realmUrl.origin} rejected ${credential === undefined ? 'the anonymous request' : `credentials from ${credential.source}`} for ${registry} (HTTP ${res.status})`,
        { status: res.status, hint: `check the user name and password, or run envext oci login ${registry}` },
      );
    }
    if (!res.ok) {
      throw new OciError(
        'OCI_REGISTRY_ERROR',
        `token server ${realmUrl.origin} answered HTTP ${res.status}: ${text.slice(0, 200)}`,
        {
          status: res.status,
        },
      );
    }
    let body: {
      token?: unknown;
      access_token?: unknown;
      expires_in?: unknown;
      issued_at?: unknown;
      refresh_token?: unknown;
    };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (e) {
      throw new OciError('OCI_REGISTRY_ERROR', `token server ${realmUrl.origin} sent a reply that is not JSON`, {
        cause: e,
      });
    }
    const token =
      typeof body.access_token === 'string' && body.access_token !== ''
        ? body.access_token
        : typeof body.token === 'string'
          ? body.token
          : '';
    if (token === '') throw new OciError('OCI_REGISTRY_ERROR', `token server ${realmUrl.origin} sent no token`);
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') h.refreshToken = body.refresh_token;
    h.tokens.set(scopes.join(' '), { token, expiresAt: this.now() + expiresIn * 1000 - EXPIRY_MARGIN_MS });
    if (log.isEnabled('debug')) log.debug('token issued', { registry, scopes: scopes.join(' '), expiresIn });
    return token;
  }
}

/** Reads a response body as text, refusing more than `max` bytes. */
export async function readCapped(res: Response, max: number, what: string): Promise<string> {
  return (await readCappedBytes(res, max, what)).toString('utf8');
}

/** Reads a response body as exact bytes, refusing more than `max` bytes. */
export async function readCappedBytes(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? '-1');
  if (declared > max) {
    await res.body?.cancel();
    throw new OciError('OCI_TOO_LARGE', `${what} is ${declared} bytes, more than the ${max} allowed`);
  }
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const part of res.body) {
    const chunk = part as Uint8Array;
    total += chunk.byteLength;
    if (total > max) {
      // Throwing out of for-await cancels the stream.
      throw new OciError('OCI_TOO_LARGE', `${what} is more than the ${max} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
