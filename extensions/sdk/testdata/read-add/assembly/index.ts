// The SDK twin of the host benchmark's hand-written extensions/host/testdata/add-header.wat:
// request: if "x-user" is present, log "user: <value>" at info and add "x-hello: <value>",
// otherwise add "x-hello: world"; response: add "x-filtered: true". The SDK benchmark runs both.
import { FilterHeadersStatus, HttpContext, RootContext, logInfo, registerRootContext } from "envext/assembly";

class ReadAdd extends HttpContext {
  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    const user = this.getRequestHeader("x-user");
    if (user != null) {
      logInfo("user: " + user);
      this.addRequestHeader("x-hello", user);
    } else {
      this.addRequestHeader("x-hello", "world");
    }
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.addResponseHeader("x-filtered", "true");
    return FilterHeadersStatus.Continue;
  }
}

class Root extends RootContext {
  createHttpContext(id: u32): HttpContext | null {
    return new ReadAdd(id, this);
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
