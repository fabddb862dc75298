// grpc-callout: asks a gRPC decision service (decision.proto) about every request; the answer
// decides whether the request continues or is denied.
//
// Configuration (JSON):
//   { "cluster": "decision",       // Envoy cluster of the service (HTTP/2)
//     "timeout_ms": 200,
//     "fail_open": false }         // when the call fails: continue (true) or 503 (false)
// Flow: onRequestHeaders sends CheckRequest{method, path, authority} and holds the request;
// onGrpcReceive decodes CheckResponse{allow, reason} and continues the request or answers 403;
// onGrpcClose (only called when the call failed) answers 503 unless fail_open.
import {
  FilterHeadersStatus,
  GrpcStatus,
  Header,
  HttpContext,
  RootContext,
  decimal,
  logError,
  logWarn,
  registerRootContext,
} from 'envext/assembly';
import { jsonQuote, parseJsonObject } from 'envext/assembly/json';

const SERVICE = 'envext.examples.decision.v1.Decision';
const METHOD = 'Check';

// ---- minimal protobuf wire format: strings (wire type 2) and bools (wire type 0)

class Writer {
  bytes: Array<u8> = new Array<u8>();
  varint(v: u64): void {
    while (v >= 0x80) {
      this.bytes.push(<u8>(v | 0x80));
      v >>= 7;
    }
    this.bytes.push(<u8>v);
  }
  string(field: u32, s: string): void {
    if (s.length == 0) return; // proto3 default: omitted
    const utf8 = Uint8Array.wrap(String.UTF8.encode(s));
    this.varint(((<u64>field) << 3) | 2);
    this.varint(<u64>utf8.length);
    for (let i = 0; i < utf8.length; i++) this.bytes.push(utf8[i]);
  }
  finish(): ArrayBuffer {
    const out = new ArrayBuffer(this.bytes.length);
    for (let i = 0; i < this.bytes.length; i++) store<u8>(changetype<usize>(out) + i, this.bytes[i]);
    return out;
  }
}

class CheckResponse {
  allow: bool = false;
  reason: string = '';
}

/** Decodes CheckResponse; null if the bytes are not a valid message. */
function decodeCheckResponse(buf: ArrayBuffer): CheckResponse | null {
  const p = changetype<usize>(buf);
  const end = p + <usize>buf.byteLength;
  let at = p;
  const out = new CheckResponse();
  while (at < end) {
    // varint tag
    let tag: u64 = 0;
    let shift: u64 = 0;
    for (;;) {
      if (at >= end || shift > 63) return null;
      const b = load<u8>(at++);
      tag |= (<u64>(b & 0x7f)) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    const field = <u32>(tag >> 3);
    const wire = <u32>(tag & 7);
    if (wire == 0) {
      let v: u64 = 0;
      shift = 0;
      for (;;) {
        if (at >= end || shift > 63) return null;
        const b = load<u8>(at++);
        v |= (<u64>(b & 0x7f)) << shift;
        if (b < 0x80) break;
        shift += 7;
      }
      if (field == 1) out.allow = v != 0;
    } else if (wire == 2) {
      let len: u64 = 0;
      shift = 0;
      for (;;) {
        if (at >= end || shift > 63) return null;
        const b = load<u8>(at++);
        len |= (<u64>(b & 0x7f)) << shift;
        if (b < 0x80) break;
        shift += 7;
      }
      if (<u64>(end - at) < len) return null;
      if (field == 2) out.reason = String.UTF8.decodeUnsafe(at, <usize>len);
      at += <usize>len;
    } else if (wire == 5) {
      at += 4;
    } else if (wire == 1) {
      at += 8;
    } else {
      return null;
    }
  }
  return at == end ? out : null;
}

class GrpcCalloutRoot extends RootContext {
  cluster: string = '';
  timeoutMs: u32 = 200;
  failOpen: bool = false;

  onConfigure(size: usize): bool {
    const cfg = parseJsonObject(this.getPluginConfigurationString());
    if (cfg == null || cfg.getString('cluster', '')!.length == 0) {
      logError('grpc-callout: configuration must be a JSON object with "cluster"');
      return false;
    }
    this.cluster = cfg.getString('cluster', '')!;
    this.timeoutMs = <u32>cfg.getNumber('timeout_ms', 200);
    this.failOpen = cfg.getBool('fail_open', false);
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new GrpcCalloutFilter(id, this);
  }
}

class GrpcCalloutFilter extends HttpContext {
  reply(status: u32, message: string): void {
    const headers = new Array<Header>();
    headers.push(new Header('content-type', 'application/json'));
    this.sendLocalResponseString(
      status,
      status == 403 ? 'envext_decision_denied' : 'envext_decision_unavailable',
      '{"error":' + jsonQuote(message) + ',"status":' + decimal(status) + '}',
      headers,
    );
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const cfg = changetype<GrpcCalloutRoot>(this.root);
    const w = new Writer();
    const method = this.getRequestHeader(':method');
    const path = this.getRequestHeader(':path');
    const authority = this.getRequestHeader(':authority');
    w.string(1, method == null ? '' : method);
    w.string(2, path == null ? '' : path);
    w.string(3, authority == null ? '' : authority);
    const token = this.grpcCall(cfg.cluster, SERVICE, METHOD, null, w.finish(), cfg.timeoutMs);
    if (token == 0) {
      logWarn('grpc-callout: could not call cluster ' + cfg.cluster);
      if (cfg.failOpen) return FilterHeadersStatus.Continue;
      this.reply(503, 'decision service unavailable');
      return FilterHeadersStatus.StopIteration;
    }
    return FilterHeadersStatus.StopAllIterationAndWatermark;
  }

  /** A unary call that succeeds delivers exactly one message and no close. */
  onGrpcReceive(token: u32, messageSize: usize): void {
    const msg = this.getGrpcReceiveBuffer();
    let d: CheckResponse | null = null;
    if (msg != null) d = decodeCheckResponse(msg);
    if (d == null) {
      this.failed('an answer that is not a CheckResponse');
      return;
    }
    if (d.allow) this.continueRequest();
    else this.reply(403, d.reason.length > 0 ? d.reason : 'denied');
  }

  /** Only reached when the call failed (error status, timeout, reset). */
  onGrpcClose(token: u32, statusCode: u32): void {
    this.failed('grpc-status ' + decimal(statusCode) + ' ' + this.getStatus().message);
  }

  failed(why: string): void {
    logWarn('grpc-callout: decision call failed: ' + why);
    if (changetype<GrpcCalloutRoot>(this.root).failOpen) this.continueRequest();
    else this.reply(503, 'decision service unavailable');
  }
}

registerRootContext((id: u32): RootContext => new GrpcCalloutRoot(id));
