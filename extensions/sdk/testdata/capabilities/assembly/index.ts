// Exercises every ABI 0.2.1 capability through the SDK's public API; sdk.test.ts drives it
// through the host emulator. The request header `x-op` picks what a stream does; results are
// logged at info level ("<op>: …") or written into headers.
import {
  BufferType,
  Counter,
  FilterDataStatus,
  FilterHeadersStatus,
  FilterMetadataStatus,
  FilterTrailersStatus,
  Gauge,
  GrpcStatus,
  Header,
  Histogram,
  HttpContext,
  LogLevel,
  MapType,
  QUEUE_NOT_FOUND,
  RootContext,
  WasmResult,
  callForeignFunction,
  connection,
  currentTimeNanoseconds,
  decimal,
  dequeueSharedQueue,
  enqueueSharedQueue,
  getProperty,
  getPropertyMap,
  getPropertyString,
  getSharedData,
  hostcalls,
  lastResult,
  logDebug,
  logEnabled,
  logInfo,
  plugin,
  registerRootContext,
  request,
  resolveSharedQueue,
  setPropertyString,
  setSharedData,
} from 'envext/assembly';

function str(b: ArrayBuffer | null): string {
  return b == null ? '<null>' : String.UTF8.decode(b);
}
function orNull(s: string | null): string {
  return s == null ? '<null>' : s;
}
function headerList(h: Array<Header>): string {
  let out = '';
  for (let i = 0; i < h.length; i++) out += (i > 0 ? ',' : '') + h[i].key + '=' + h[i].value;
  return out;
}

class CapsRoot extends RootContext {
  queueId: u32 = 0;
  ticks: i64 = 0;
  finishing: bool = false;
  readonly requests: Counter = new Counter('caps_requests');
  readonly inflight: Gauge = new Gauge('caps_inflight');
  readonly sizes: Histogram = new Histogram('caps_sizes');

  onVmStart(size: usize): bool {
    logInfo('vm_start: ' + orNull(this.getVmConfigurationString()) + ' size ' + decimal(<u64>size));
    return true;
  }
  onValidateConfiguration(size: usize): bool {
    return orNull(this.getPluginConfigurationString()) != 'invalid';
  }
  onConfigure(size: usize): bool {
    logInfo('configure: ' + orNull(this.getPluginConfigurationString()) + ' root_id ' + this.rootId);
    this.queueId = this.registerSharedQueue('caps');
    this.setTickPeriod(50);
    return true;
  }
  onTick(): void {
    this.ticks++;
    this.inflight.set(this.ticks);
    if (this.finishing) {
      logInfo('tick: finishing, proxy_done ' + decimal(<u64>this.done()));
      this.finishing = false;
    }
  }
  onQueueReady(queueId: u32): void {
    const item = dequeueSharedQueue(queueId);
    const empty = dequeueSharedQueue(queueId);
    logInfo(
      'queue_ready: ' + str(item) + ' then ' + (empty == null && lastResult() == WasmResult.Empty ? 'empty' : '?'),
    );
  }
  onForeignFunction(functionId: u32, size: usize): void {
    logInfo('foreign_function ' + decimal(functionId) + ': ' + str(this.getForeignFunctionArguments()));
  }
  onDone(): bool {
    // Finish later, from a tick: exercises proxy_done.
    this.finishing = true;
    return false;
  }
  onDelete(): void {
    logInfo('root deleted');
  }
  createHttpContext(id: u32): HttpContext | null {
    return new Caps(id, this);
  }
}

class Caps extends HttpContext {
  op: string = '';

  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const root = changetype<CapsRoot>(this.root);
    root.requests.increment();
    const op = this.getRequestHeader('x-op');
    this.op = op == null ? '' : op;
    if (this.op == 'headers') {
      const all = this.getRequestHeaders();
      all.push(new Header('x-set-all', '1'));
      this.setRequestHeaders(all);
      this.addRequestHeaderBytes('x-bytes', String.UTF8.encode('b1'));
      this.replaceRequestHeaderBytes('x-replaced', String.UTF8.encode('r1'));
      this.removeRequestHeader('x-remove-me');
      logInfo(
        'headers: ' +
          decimal(numHeaders) +
          ' ' +
          str(this.getRequestHeaderBytes('x-op')) +
          ' missing ' +
          orNull(this.getRequestHeader('nope')),
      );
    } else if (this.op == 'props') {
      setPropertyString(['my_state'], 'v1');
      logInfo(
        'props: path ' +
          orNull(request.path()) +
          ' method ' +
          orNull(request.method()) +
          ' plugin ' +
          orNull(plugin.name()) +
          ' root ' +
          orNull(plugin.rootId()) +
          ' vm ' +
          orNull(plugin.vmId()) +
          ' source ' +
          orNull(connection.sourceAddress()) +
          ' port ' +
          decimal(<u64>connection.sourcePort()) +
          ' ua ' +
          orNull(getPropertyString(['request', 'headers', 'user-agent'])) +
          ' headers ' +
          decimal(<u64>getPropertyMap(['request', 'headers']).length) +
          ' state ' +
          str(getProperty(['my_state'])) +
          ' missing ' +
          (getProperty(['nope', 'x']) == null ? 'null' : '?'),
      );
    } else if (this.op == 'shared') {
      const key = 'caps.k';
      const first = setSharedData(key, String.UTF8.encode('one'));
      const cur = getSharedData(key)!;
      const stale = cur.cas;
      const second = setSharedData(key, String.UTF8.encode('two'), cur.cas);
      const conflict = setSharedData(key, String.UTF8.encode('three'), stale);
      logInfo(
        'shared: ' +
          decimal(first) +
          ' ' +
          decimal(second) +
          ' conflict ' +
          (conflict == WasmResult.CasMismatch ? 'cas_mismatch' : decimal(conflict)) +
          ' value ' +
          str(getSharedData(key)!.value) +
          ' missing ' +
          (getSharedData('caps.none') == null ? 'null' : '?'),
      );
    } else if (this.op == 'queue') {
      const q = resolveSharedQueue('', 'caps');
      const missing = resolveSharedQueue('', 'nope');
      logInfo(
        'queue: resolved ' +
          (q == root.queueId ? 'same' : 'different') +
          ' missing ' +
          (missing == QUEUE_NOT_FOUND ? 'not_found' : '?'),
      );
      enqueueSharedQueue(q, String.UTF8.encode('item-1'));
    } else if (this.op == 'metrics') {
      root.inflight.add(5);
      root.inflight.add(-2);
      root.sizes.record(42);
      root.sizes.record(7);
      logInfo('metrics: requests ' + decimal(root.requests.get()) + ' inflight ' + decimal(<u64>root.inflight.get()));
    } else if (this.op == 'http') {
      const h = new Array<Header>();
      h.push(new Header(':method', 'POST'));
      h.push(new Header(':path', '/lookup'));
      h.push(new Header(':authority', 'svc'));
      const t = new Array<Header>();
      t.push(new Header('x-trailer', 't1'));
      const token = this.httpCall('svc', h, String.UTF8.encode('question'), t, 1000);
      logInfo('http: token ' + (token != 0 ? 'ok' : 'failed ' + decimal(lastResult())));
      return FilterHeadersStatus.StopAllIterationAndWatermark;
    } else if (this.op == 'grpc-stream') {
      const md = new Array<Header>();
      md.push(new Header('x-md', 'm1'));
      const token = this.grpcStream('grpcsvc', 'pkg.Svc', 'Chat', md);
      this.grpcSend(token, String.UTF8.encode('ping'), false);
      this.grpcSend(token, String.UTF8.encode('last'), true);
      logInfo('grpc-stream: opened ' + (token != 0 ? 'ok' : 'failed'));
      return FilterHeadersStatus.StopAllIterationAndWatermark;
    } else if (this.op == 'grpc-cancel') {
      const token = this.grpcCall('grpcsvc', 'pkg.Svc', 'Get', null, String.UTF8.encode('q'), 100);
      logInfo('grpc-cancel: ' + decimal(this.grpcCancel(token)));
    } else if (this.op == 'foreign') {
      const r = callForeignFunction('echo', String.UTF8.encode('abc'));
      const missing = callForeignFunction('no_such_function', new ArrayBuffer(0));
      logInfo('foreign: ' + str(r) + ' missing ' + (missing == null ? decimal(lastResult()) : '?'));
    } else if (this.op == 'local') {
      const h = new Array<Header>();
      h.push(new Header('x-local', 'yes'));
      this.sendLocalResponseString(418, 'i am a teapot', 'short and stout', h, GrpcStatus.Unknown);
      return FilterHeadersStatus.StopIteration;
    } else if (this.op == 'close') {
      this.closeRequest();
      return FilterHeadersStatus.StopIteration;
    } else if (this.op == 'log') {
      if (logEnabled(LogLevel.Debug)) logDebug('log: debug was enabled');
      logInfo(
        'log: debug ' +
          (logEnabled(LogLevel.Debug) ? 'on' : 'off') +
          ' time ' +
          (currentTimeNanoseconds() > 0 ? 'set' : 'zero'),
      );
    } else if (this.op == 'sizes') {
      logInfo(
        'sizes: request headers ' + decimal(<u64>hostcalls.getHeaderMapSize(MapType.HttpRequestHeaders)) +
          ' body ' + (hostcalls.getBufferSize(BufferType.HttpRequestBody) < 0 ? 'unavailable' : '?') +
          ' effective ' + decimal(hostcalls.setEffectiveContext(this.contextId)),
      );
    } else if (this.op == 'throw') {
      throw new Error('boom');
    }
    return FilterHeadersStatus.Continue;
  }

  onRequestBody(bodySize: usize, endOfStream: bool): FilterDataStatus {
    if (this.op != 'body') return FilterDataStatus.Continue;
    if (!endOfStream) return FilterDataStatus.StopIterationAndBuffer;
    logInfo('body: ' + orNull(this.getRequestBodyString()) + ' slice ' + orNull(this.getRequestBodyString(1, 3)));
    this.setRequestBodyString('B');
    this.appendRequestBody(String.UTF8.encode('>'));
    this.prependRequestBody(String.UTF8.encode('<'));
    // The trailer map is created on demand in the last body callback.
    this.addRequestTrailer('x-added-trailer', 't');
    return FilterDataStatus.Continue;
  }

  onRequestTrailers(numTrailers: u32): FilterTrailersStatus {
    logInfo('request_trailers: ' + headerList(this.getRequestTrailers()));
    this.replaceRequestTrailer('x-t', 'changed');
    return FilterTrailersStatus.Continue;
  }

  onRequestMetadata(n: u32): FilterMetadataStatus {
    logInfo('request_metadata: ' + decimal(n));
    return FilterMetadataStatus.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.addResponseHeader('x-op-seen', this.op);
    return FilterHeadersStatus.Continue;
  }

  onResponseBody(bodySize: usize, endOfStream: bool): FilterDataStatus {
    if (this.op == 'body' && endOfStream) this.setResponseBodyString(orNull(this.getResponseBodyString()) + '!');
    return FilterDataStatus.Continue;
  }

  onResponseTrailers(numTrailers: u32): FilterTrailersStatus {
    this.addResponseTrailer('x-rt', 'added');
    return FilterTrailersStatus.Continue;
  }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {
    logInfo(
      'http_response: headers ' +
        headerList(this.getHttpCallResponseHeaders()) +
        ' body ' +
        orNull(this.getHttpCallResponseBodyString()) +
        ' trailers ' +
        headerList(this.getHttpCallResponseTrailers()),
    );
    this.addRequestHeader('x-lookup', orNull(this.getHttpCallResponseHeader('x-answer')));
    this.continueRequest();
  }

  onGrpcReceiveInitialMetadata(token: u32, n: u32): void {
    logInfo('grpc_initial_metadata: ' + headerList(this.getGrpcInitialMetadata()));
  }
  onGrpcReceive(token: u32, size: usize): void {
    logInfo('grpc_receive: ' + str(this.getGrpcReceiveBuffer()));
  }
  onGrpcReceiveTrailingMetadata(token: u32, n: u32): void {
    logInfo('grpc_trailing_metadata: ' + headerList(this.getGrpcTrailingMetadata()));
  }
  onGrpcClose(token: u32, status: u32): void {
    logInfo('grpc_close: ' + decimal(status) + ' ' + this.getStatus().message);
    this.continueRequest();
  }

  onLog(): void {
    logInfo('log_phase: ' + this.op + ' status ' + orNull(this.getResponseHeader(':status')));
  }
}

registerRootContext((id: u32): RootContext => new CapsRoot(id), 'caps');
