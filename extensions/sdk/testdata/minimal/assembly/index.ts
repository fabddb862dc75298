// The smallest useful filter: adds one response header. Benchmarks and the leak test use it.
import { RootContext, HttpContext, registerRootContext, FilterHeadersStatus } from 'envext/assembly';

class AddHeader extends HttpContext {
  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.addResponseHeader('x-hello', 'world');
    return FilterHeadersStatus.Continue;
  }
}
class Root extends RootContext {
  createHttpContext(id: u32): HttpContext | null {
    return new AddHeader(id, this);
  }
}
registerRootContext((id: u32): RootContext => new Root(id));
