// Small string helpers that avoid the standard library's large paths: `String#toLowerCase`
// carries the full Unicode case tables (~4 KB) and number `toString` carries radix tables.

/** ASCII-only lower-casing (header names are ASCII); other characters are kept. */
export function toLowerAscii(s: string): string {
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
    i++;
  }
  if (i == n) return s; // already lower-case: no copy
  const out = changetype<string>(__new((<usize>n) << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(s), (<usize>i) << 1);
  for (; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    store<u16>(changetype<usize>(out) + ((<usize>i) << 1), <u16>c);
  }
  return out;
}

/** Decimal text of an unsigned integer. */
export function decimal(n: u64): string {
  let s = '';
  do {
    s = String.fromCharCode(48 + <i32>(n % 10)) + s;
    n /= 10;
  } while (n != 0);
  return s;
}

/** Parses a non-negative decimal integer; -1 when `s` is empty or has a non-digit. */
export function parseDecimal(s: string): i64 {
  if (s.length == 0 || s.length > 18) return -1;
  let v: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}
