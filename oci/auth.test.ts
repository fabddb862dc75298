/**
 * Token-server misbehaviour, against a real HTTP server on 127.0.0.1: each case is a clear,
 * typed error naming the token server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from './auth.js';
import { parseChallenges } from './challenge.js';
import { staticCredentials } from './credentials.js';
import { isOciError, type OciErrorCode } from './errors.js';

describe('Authenticator against a misbehaving token server', () => {
  let server: Server;
  let base: string;
  let closedPort: number;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/not-json') return void res.end('<html>oops</html>');
      if (path === '/no-token') return void res.end('{"expires_in":60}');
      if (path === '/huge') return void res.end('{"token":"' + 'x'.repeat(200 * 1024) + '"}');
      if (path === '/denied') {
        res.writeHead(401);
        return void res.end('{}');
      }
      if (path === '/oops') {
        res.writeHead(500);
        return void res.end('internal');
      }
      res.end('{"access_token":"at","token":"t","expires_in":120}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const cases: ReadonlyArray<{ name: string; challenge: () => string; code: OciErrorCode; message: RegExp }> = [
    { name: 'no realm', challenge: () => 'Bearer service="s"', code: 'OCI_UNAUTHORIZED', message: /without a realm/ },
    {
      name: 'realm not a URL',
      challenge: () => 'Bearer realm="not a url"',
      code: 'OCI_UNAUTHORIZED',
      message: /not a URL/,
    },
    {
      name: 'realm with another scheme',
      challenge: () => 'Bearer realm="file:///etc/passwd"',
      code: 'OCI_UNAUTHORIZED',
      message: /scheme file:/,
    },
    {
      name: 'unreachable token server',
      challenge: () => `Bearer realm="http://127.0.0.1:${closedPort}/token"`,
      code: 'OCI_CONNECTION',
      message: /cannot reach token server/,
    },
    {
      name: 'reply not JSON',
      challenge: () => `Bearer realm="${base}/not-json"`,
      code: 'OCI_REGISTRY_ERROR',
      message: /not JSON/,
    },
    {
      name: 'reply without token',
      challenge: () => `Bearer realm="${base}/no-token"`,
      code: 'OCI_REGISTRY_ERROR',
      message: /sent no token/,
    },
    {
      name: 'reply over 128 KiB',
      challenge: () => `Bearer realm="${base}/huge"`,
      code: 'OCI_TOO_LARGE',
      message: /token response/,
    },
    {
      name: 'credentials rejected',
      challenge: () => `Bearer realm="${base}/denied"`,
      code: 'OCI_UNAUTHORIZED',
      message: /rejected credentials from test creds/,
    },
    {
      name: 'token server error',
      challenge: () => `Bearer realm="${base}/oops"`,
      code: 'OCI_REGISTRY_ERROR',
      message: /HTTP 500/,
    },
  ];
  it.each(cases)('$name → $code', async ({ challenge, code, message }) => {
    const auth = new Authenticator(staticCredentials({ username: 'u', password: 'p', source: 'test creds' }), (u, i) =>
      fetch(u, i),
    );
    auth.learn('reg.example', parseChallenges(challenge()));
    const err = await auth.authorization('reg.example', ['repository:a:pull']).catch((e: unknown) => e);
    expect(isOciError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toMatch(message);
  });

  it('prefers access_token over token', async () => {
    const auth = new Authenticator(undefined, (u, i) => fetch(u, i));
    auth.learn('reg.example', parseChallenges(`Bearer realm="${base}/ok",service="svc"`));
    expect(await auth.authorization('reg.example', ['repository:a:pull'])).toBe('Bearer at');
  });

  it('refuses Basic auth with a token-only credential', async () => {
    const auth = new Authenticator(staticCredentials({ identityToken: 'rt', source: 'id creds' }), (u, i) =>
      fetch(u, i),
    );
    auth.learn('reg.example', parseChallenges('Basic realm="r"'));
    const err = await auth.authorization('reg.example', []).catch((e: unknown) => e);
    expect(isOciError(err, 'OCI_CREDENTIALS')).toBe(true);
    expect((err as Error).message).toMatch(/id creds holds a token/);
  });
});
