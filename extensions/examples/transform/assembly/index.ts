// transform: redacts fields of JSON response bodies.
//
// Configuration (JSON):
//   { "fields": ["password", "ssn"],        // object keys whose values are replaced, at any depth
//     "replacement": "[redacted]" }         // default "[redacted]"
//
// Only responses with a JSON content type are touched. The body is buffered until the end of
// the stream (onResponseBody returns StopIterationAndBuffer), parsed, redacted and written back
// in one piece. Response headers have left by the time the body is complete, so the old
// `content-length` is removed up front (Envoy then frames the new body itself) and the header
// `x-envext-redacted: pending` marks responses that went through the filter. A body that is not
// valid JSON is passed on unchanged.
import {
  FilterDataStatus,
  FilterHeadersStatus,
  HttpContext,
  RootContext,
  logDebug,
  logEnabled,
  LogLevel,
  logError,
  registerRootContext,
  toLowerAscii,
  decimal,
} from 'envext/assembly';
import {
  JsonKind,
  JsonObject,
  JsonString,
  JsonValue,
  jsonError,
  parseJson,
  parseJsonObject,
} from 'envext/assembly/json';

class TransformRoot extends RootContext {
  fields: Array<string> = new Array<string>();
  replacement: string = '[redacted]';

  onConfigure(size: usize): bool {
    const cfg = parseJsonObject(this.getPluginConfigurationString());
    if (cfg == null) {
      logError('transform: configuration must be a JSON object: ' + jsonError());
      return false;
    }
    this.fields = cfg.getStrings('fields');
    this.replacement = cfg.getString('replacement', '[redacted]')!;
    if (this.fields.length == 0) {
      logError('transform: "fields" must list at least one key to redact');
      return false;
    }
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new TransformFilter(id, this);
  }
}

/** Replaces, in place, the values of `fields` at any depth; returns how many were replaced. */
function redact(v: JsonValue, fields: Array<string>, replacement: string): i32 {
  let n = 0;
  if (v.kind == JsonKind.Object) {
    const o = changetype<JsonObject>(v);
    for (let i = 0; i < o.keys.length; i++) {
      if (fields.includes(o.keys[i])) {
        o.values[i] = new JsonString(replacement);
        n++;
      } else {
        n += redact(o.values[i], fields, replacement);
      }
    }
  } else if (v.kind == JsonKind.Array) {
    const items = v.array()!;
    for (let i = 0; i < items.length; i++) n += redact(items[i], fields, replacement);
  }
  return n;
}

class TransformFilter extends HttpContext {
  json: bool = false;

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const type = this.getResponseHeader('content-type');
    this.json = !endOfStream && type != null && toLowerAscii(type).includes('json');
    if (this.json) {
      this.removeResponseHeader('content-length');
      this.replaceResponseHeader('x-envext-redacted', 'pending');
    }
    return FilterHeadersStatus.Continue;
  }

  onResponseBody(bodySize: usize, endOfStream: bool): FilterDataStatus {
    if (!this.json) return FilterDataStatus.Continue;
    if (!endOfStream) return FilterDataStatus.StopIterationAndBuffer;
    const cfg = changetype<TransformRoot>(this.root);
    const body = this.getResponseBodyString(0, <u32>bodySize);
    if (body == null) return FilterDataStatus.Continue;
    const doc = parseJson(body);
    if (doc == null) return FilterDataStatus.Continue;
    const n = redact(doc, cfg.fields, cfg.replacement);
    if (n > 0) this.setResponseBodyString(doc.stringify());
    if (logEnabled(LogLevel.Debug)) logDebug('transform: redacted ' + decimal(<u64>n) + ' field(s)');
    return FilterDataStatus.Continue;
  }
}

registerRootContext((id: u32): RootContext => new TransformRoot(id));
