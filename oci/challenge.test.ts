import { describe, expect, it } from 'vitest';
import { parseChallenges } from './challenge.js';

describe('parseChallenges', () => {
  const cases: ReadonlyArray<{ name: string; header: string; want: unknown }> = [
    {
      name: 'distribution Bearer with error',
      header:
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope"',
      want: [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.example/token',
            service: 'registry.example',
            scope: 'repository:a/b:pull,push',
            error: 'insufficient_scope',
          },
        },
      ],
    },
    {
      name: 'Basic',
      header: 'Basic realm="Registry Realm"',
      want: [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
    },
    {
      name: 'two challenges, escaped quote, unquoted value',
      header: 'Basic realm="a, b", Bearer realm="x\\"y", service=s',
      want: [
        { scheme: 'basic', params: { realm: 'a, b' } },
        { scheme: 'bearer', params: { realm: 'x"y', service: 's' } },
      ],
    },
    {
      name: 'scheme without params then another',
      header: 'Negotiate, Basic realm=r',
      want: [
        { scheme: 'negotiate', params: {} },
        { scheme: 'basic', params: { realm: 'r' } },
      ],
    },
    { name: 'token68', header: 'Newauth abc==', want: [{ scheme: 'newauth', params: { '': 'abc==' } }] },
    {
      name: 'case-insensitive names',
      header: 'BEARER Realm="r",SERVICE="s"',
      want: [{ scheme: 'bearer', params: { realm: 'r', service: 's' } }],
    },
    { name: 'empty', header: '', want: [] },
  ];
  it.each(cases)('$name', ({ header, want }) => {
    expect(parseChallenges(header)).toEqual(want);
  });
});
