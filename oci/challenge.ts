/**
 * `WWW-Authenticate` parsing (RFC 7235 auth-params): several challenges in one header, quoted
 * strings with escaped quotes and commas inside quotes, token68 values.
 *
 * ```
 *   Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull,push",error="insufficient_scope"
 *   └─ scheme ─┘└──────────────────────────── params ─────────────────────────────────────────────┘
 * ```
 */

/** One challenge. Parameter names are lower-cased; values are unquoted. */
export interface Challenge {
  /** Lower-cased: `basic`, `bearer`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parses a `WWW-Authenticate` value into its challenges; unparseable tails are ignored. */
export function parseChallenges(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN.test(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    // at the opening quote
    i++;
    let v = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      v += header[i];
      i++;
    }
    i++; // closing quote
    return v;
  };
  while (i < n) {
    skipWs();
    while (i < n && header[i] === ',') {
      i++;
      skipWs();
    }
    const scheme = readToken();
    if (scheme === '') break;
    const challenge = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    out.push(challenge);
    skipWs();
    // Parameters until the next challenge (a token followed by a space, not by '=').
    for (;;) {
      skipWs();
      const save = i;
      const name = readToken();
      skipWs();
      if (name === '' || header[i] !== '=') {
        // token68 (`Basic abc==`) or the start of the next challenge.
        if (name !== '' && (i >= n || header[i] === ',') && Object.keys(challenge.params).length === 0) {
          challenge.params[''] = name;
          continue;
        }
        i = save;
        break;
      }
      // token68 (`Newauth abc==`): the name is followed only by '=' padding.
      let j = i;
      while (header[j] === '=') j++;
      if (Object.keys(challenge.params).length === 0 && (j >= n || header[j] === ',')) {
        challenge.params[''] = name + header.slice(i, j);
        i = j;
        continue;
      }
      i++; // '='
      skipWs();
      const value = header[i] === '"' ? readQuoted() : readToken();
      challenge.params[name.toLowerCase()] = value;
      skipWs();
      if (header[i] === ',') {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}
