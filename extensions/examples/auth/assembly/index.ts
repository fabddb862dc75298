// auth: API-key authentication.
//
// Configuration (JSON):
//   { "header": "x-api-key",                     // where the key is read (default x-api-key)
//     "keys": ["k-123", "k-456"],                // accepted keys, checked locally, or …
//     "cluster": "auth", "authority": "auth.internal", "path": "/check", "timeout_ms": 500 }
//                                                // … ask an auth service: GET <path> with the
//                                                // key in the same header; 2xx allows.
// Missing key → 401, wrong key → 403, auth service unreachable → 503; every reply has a JSON
// body. Metrics: counters `envext_auth_allowed` and `envext_auth_denied`.
import {
  Counter,
  FilterHeadersStatus,
  Header,
  HttpContext,
  RootContext,
  logError,
  logWarn,
  registerRootContext,
  toLowerAscii,
  decimal,
  parseDecimal,
} from 'envext/assembly';
import { jsonError, jsonQuote, parseJsonObject } from 'envext/assembly/json';

class AuthRoot extends RootContext {
  header: string = 'x-api-key';
  keys: Array<string> = new Array<string>();
  cluster: string = '';
  authority: string = '';
  path: string = '/check';
  timeoutMs: u32 = 500;
  readonly allowed: Counter = new Counter('envext_auth_allowed');
  readonly denied: Counter = new Counter('envext_auth_denied');

  onConfigure(size: usize): bool {
    const cfg = parseJsonObject(this.getPluginConfigurationString());
    if (cfg == null) {
      logError('auth: configuration must be a JSON object: ' + jsonError());
      return false;
    }
    const header = cfg.getString('header', 'x-api-key')!;
    const keys = cfg.getStrings('keys');
    const cluster = cfg.getString('cluster', '')!;
    if (keys.length == 0 && cluster.length == 0) {
      logError('auth: configure "keys" (a list of accepted keys) or "cluster" (an auth service)');
      return false;
    }
    this.header = toLowerAscii(header);
    this.keys = keys;
    this.cluster = cluster;
    this.authority = cfg.getString('authority', cluster)!;
    this.path = cfg.getString('path', '/check')!;
    this.timeoutMs = <u32>cfg.getNumber('timeout_ms', 500);
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new AuthFilter(id, this);
  }
}

class AuthFilter extends HttpContext {
  deny(status: u32, message: string): void {
    const cfg = changetype<AuthRoot>(this.root);
    cfg.denied.increment();
    const headers = new Array<Header>();
    headers.push(new Header('content-type', 'application/json'));
    if (status == 401) headers.push(new Header('www-authenticate', 'ApiKey header="' + cfg.header + '"'));
    const body = '{"error":' + jsonQuote(message) + ',"status":' + decimal(status) + '}';
    this.sendLocalResponseString(status, 'envext_auth_denied', body, headers);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const cfg = changetype<AuthRoot>(this.root);
    const key = this.getRequestHeader(cfg.header);
    if (key == null || key.length == 0) {
      this.deny(401, 'missing API key in header ' + cfg.header);
      return FilterHeadersStatus.StopIteration;
    }
    if (cfg.cluster.length == 0) {
      if (!cfg.keys.includes(key)) {
        this.deny(403, 'API key not accepted');
        return FilterHeadersStatus.StopIteration;
      }
      cfg.allowed.increment();
      return FilterHeadersStatus.Continue;
    }
    const headers = new Array<Header>();
    headers.push(new Header(':method', 'GET'));
    headers.push(new Header(':path', cfg.path));
    headers.push(new Header(':authority', cfg.authority));
    headers.push(new Header(cfg.header, key));
    const token = this.httpCall(cfg.cluster, headers, null, null, cfg.timeoutMs);
    if (token == 0) {
      logWarn('auth: could not call cluster ' + cfg.cluster);
      this.deny(503, 'auth service unavailable');
      return FilterHeadersStatus.StopIteration;
    }
    // Hold the request (and its body) until the answer arrives.
    return FilterHeadersStatus.StopAllIterationAndWatermark;
  }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {
    const cfg = changetype<AuthRoot>(this.root);
    if (numHeaders == 0) {
      this.deny(503, 'auth service unavailable');
      return;
    }
    const status = this.getHttpCallResponseHeader(':status');
    const code = status == null ? -1 : parseDecimal(status);
    if (code >= 200 && code < 300) {
      cfg.allowed.increment();
      this.continueRequest();
    } else if (code == 401 || code == 403) {
      this.deny(403, 'API key not accepted');
    } else {
      this.deny(503, 'auth service answered ' + (status == null ? 'without status' : status));
    }
  }
}

registerRootContext((id: u32): RootContext => new AuthRoot(id));
