// ratelimit: a token bucket per client key, kept in shared data (shared by every worker of the
// VM) and updated with compare-and-swap; buckets are refilled on the root's tick.
//
// Configuration (JSON):
//   { "requests_per_second": 10,     // refill rate
//     "burst": 20,                   // bucket size
//     "key_header": "x-client-id",   // client key (default: x-forwarded-for; "" → one bucket)
//     "tick_ms": 100 }               // refill period
// Over the limit → 429 with `retry-after` (seconds until the next token) and a JSON body.
//
// Bucket value (16 bytes little-endian): f64 tokens, u64 last refill time in ns.
import {
  Counter,
  FilterHeadersStatus,
  Header,
  HttpContext,
  RootContext,
  WasmResult,
  currentTimeNanoseconds,
  decimal,
  getSharedData,
  logError,
  registerRootContext,
  setSharedData,
  toLowerAscii,
} from 'envext/assembly';
import { jsonError, parseJsonObject } from 'envext/assembly/json';

const CAS_RETRIES = 8;

function bucketKey(client: string): string {
  return 'envext.ratelimit:' + client;
}

function encodeBucket(tokens: f64, refilledNs: u64): ArrayBuffer {
  const b = new ArrayBuffer(16);
  store<f64>(changetype<usize>(b), tokens);
  store<u64>(changetype<usize>(b), refilledNs, 8);
  return b;
}

class RateLimitRoot extends RootContext {
  rate: f64 = 10;
  burst: f64 = 20;
  keyHeader: string = 'x-forwarded-for';
  /** Keys this VM has seen, refilled on tick (other workers refill the ones they saw). */
  known: Array<string> = new Array<string>();
  readonly limited: Counter = new Counter('envext_ratelimit_limited');

  onConfigure(size: usize): bool {
    const cfg = parseJsonObject(this.getPluginConfigurationString());
    if (cfg == null) {
      logError('ratelimit: configuration must be a JSON object: ' + jsonError());
      return false;
    }
    const rate = cfg.getNumber('requests_per_second', 10);
    const burst = cfg.getNumber('burst', rate);
    if (!(rate > 0) || !(burst >= 1)) {
      logError('ratelimit: requests_per_second must be > 0 and burst >= 1');
      return false;
    }
    this.rate = rate;
    this.burst = burst;
    this.keyHeader = toLowerAscii(cfg.getString('key_header', 'x-forwarded-for')!);
    this.setTickPeriod(<u32>cfg.getNumber('tick_ms', 100));
    return true;
  }

  /** Adds the tokens earned since the last refill to every bucket this VM knows. */
  onTick(): void {
    const now = currentTimeNanoseconds();
    for (let i = 0; i < this.known.length; i++) {
      const key = bucketKey(this.known[i]);
      for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
        const cur = getSharedData(key);
        if (cur == null || cur.value.byteLength != 16) break;
        const tokens = load<f64>(changetype<usize>(cur.value));
        const last = load<u64>(changetype<usize>(cur.value), 8);
        if (now <= last) break;
        const earned = (<f64>(now - last) / 1e9) * this.rate;
        const next = Math.min(this.burst, tokens + earned);
        if (setSharedData(key, encodeBucket(next, now), cur.cas) != WasmResult.CasMismatch) break;
      }
    }
  }

  /** Takes one token for `client`; returns false when the bucket is empty. */
  take(client: string): bool {
    const key = bucketKey(client);
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const cur = getSharedData(key);
      let r: WasmResult;
      if (cur == null) {
        if (!this.known.includes(client)) this.known.push(client);
        r = setSharedData(key, encodeBucket(this.burst - 1, currentTimeNanoseconds()), 0);
        // cas 0 writes unconditionally: another worker may have created it meanwhile, which
        // at worst grants one extra request at start.
        if (r == WasmResult.Ok) return true;
        continue;
      }
      if (!this.known.includes(client)) this.known.push(client);
      const tokens = load<f64>(changetype<usize>(cur.value));
      const last = load<u64>(changetype<usize>(cur.value), 8);
      if (tokens < 1) return false;
      r = setSharedData(key, encodeBucket(tokens - 1, last), cur.cas);
      if (r == WasmResult.Ok) return true;
      if (r != WasmResult.CasMismatch) return true; // fail open on host errors
    }
    return true; // heavy contention: fail open rather than reject
  }

  createHttpContext(id: u32): HttpContext | null {
    return new RateLimitFilter(id, this);
  }
}

class RateLimitFilter extends HttpContext {
  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const cfg = changetype<RateLimitRoot>(this.root);
    let client: string | null = cfg.keyHeader.length == 0 ? '' : this.getRequestHeader(cfg.keyHeader);
    if (client == null) client = '';
    if (cfg.take(client)) return FilterHeadersStatus.Continue;
    cfg.limited.increment();
    const retryAfter = <u64>Math.max(1, Math.ceil(1 / cfg.rate));
    const headers = new Array<Header>();
    headers.push(new Header('retry-after', decimal(retryAfter)));
    headers.push(new Header('content-type', 'application/json'));
    this.sendLocalResponseString(
      429,
      'envext_rate_limited',
      '{"error":"rate limit exceeded","retry_after_seconds":' + decimal(retryAfter) + '}',
      headers,
    );
    return FilterHeadersStatus.StopIteration;
  }
}

registerRootContext((id: u32): RootContext => new RateLimitRoot(id));
