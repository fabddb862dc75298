// The minimal filter with the SDK's collections switched off: the leak test's control case,
// showing that its memory check does detect growth.
import { FilterHeadersStatus, HttpContext, RootContext, registerRootContext, setCollectInterval } from 'envext/assembly';

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

setCollectInterval(u32.MAX_VALUE);
registerRootContext((id: u32): RootContext => new Root(id));
