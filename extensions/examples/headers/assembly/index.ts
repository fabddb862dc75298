// headers: add, set and remove request and response headers from the plugin configuration.
//
// Configuration (JSON; a google.protobuf.Struct in Envoy arrives as JSON):
//   {
//     "request":  { "add": { "x-via": "envext" }, "set": { "x-env": "prod" }, "remove": ["x-debug"] },
//     "response": { "add": { "x-served-by": "envext" }, "set": {}, "remove": ["server"] }
//   }
// `add` appends a value (keeps existing ones), `set` replaces every value, `remove` deletes.
import {
  FilterHeadersStatus,
  Header,
  HttpContext,
  RootContext,
  logError,
  registerRootContext,
  toLowerAscii,
} from 'envext/assembly';
import { JsonObject, jsonError, parseJsonObject } from 'envext/assembly/json';

/** The edits for one direction, decoded once at configure time. */
class Edits {
  add: Array<Header> = new Array<Header>();
  replace: Array<Header> = new Array<Header>();
  remove: Array<string> = new Array<string>();

  isEmpty(): bool {
    return this.add.length == 0 && this.replace.length == 0 && this.remove.length == 0;
  }
}

function pairs(obj: JsonObject | null, into: Array<Header>, where: string): bool {
  if (obj == null) return true;
  for (let i = 0; i < obj.keys.length; i++) {
    const value = obj.values[i].string();
    if (value == null) {
      logError('headers: ' + where + '.' + obj.keys[i] + ' must be a string');
      return false;
    }
    into.push(new Header(toLowerAscii(obj.keys[i]), value));
  }
  return true;
}

function parseEdits(root: JsonObject, direction: string, into: Edits): bool {
  const o = root.getObject(direction);
  if (o == null) return true;
  if (!pairs(o.getObject('add'), into.add, direction + '.add')) return false;
  if (!pairs(o.getObject('set'), into.replace, direction + '.set')) return false;
  const remove = o.getStrings('remove');
  for (let i = 0; i < remove.length; i++) into.remove.push(toLowerAscii(remove[i]));
  return true;
}

function apply(ctx: HttpContext, edits: Edits, request: bool): void {
  for (let i = 0; i < edits.remove.length; i++) {
    if (request) ctx.removeRequestHeader(edits.remove[i]);
    else ctx.removeResponseHeader(edits.remove[i]);
  }
  for (let i = 0; i < edits.replace.length; i++) {
    const h = edits.replace[i];
    if (request) ctx.replaceRequestHeader(h.key, h.value);
    else ctx.replaceResponseHeader(h.key, h.value);
  }
  for (let i = 0; i < edits.add.length; i++) {
    const h = edits.add[i];
    if (request) ctx.addRequestHeader(h.key, h.value);
    else ctx.addResponseHeader(h.key, h.value);
  }
}

class HeadersRoot extends RootContext {
  request: Edits = new Edits();
  response: Edits = new Edits();

  onConfigure(size: usize): bool {
    const obj = parseJsonObject(this.getPluginConfigurationString());
    if (obj == null) {
      logError('headers: configuration must be a JSON object: ' + jsonError());
      return false;
    }
    const request = new Edits();
    const response = new Edits();
    if (!parseEdits(obj, 'request', request) || !parseEdits(obj, 'response', response)) return false;
    this.request = request;
    this.response = response;
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new HeadersFilter(id, this);
  }
}

class HeadersFilter extends HttpContext {
  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const edits = changetype<HeadersRoot>(this.root).request;
    if (!edits.isEmpty()) apply(this, edits, true);
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const edits = changetype<HeadersRoot>(this.root).response;
    if (!edits.isEmpty()) apply(this, edits, false);
    return FilterHeadersStatus.Continue;
  }
}

registerRootContext((id: u32): RootContext => new HeadersRoot(id));
