// Two root implementations in one module, selected by the plugin's root_id.
import { FilterHeadersStatus, HttpContext, RootContext, logInfo, registerRootContext } from "envext/assembly";

class Tag extends HttpContext {
  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.addRequestHeader("x-root", this.root.rootId);
    return FilterHeadersStatus.Continue;
  }
}

class Alpha extends RootContext {
  onConfigure(size: usize): bool {
    logInfo("alpha configured");
    return true;
  }
  createHttpContext(id: u32): HttpContext | null {
    return new Tag(id, this);
  }
}

class Beta extends RootContext {
  onConfigure(size: usize): bool {
    logInfo("beta configured");
    return true;
  }
  createHttpContext(id: u32): HttpContext | null {
    return new Tag(id, this);
  }
}

registerRootContext((id: u32): RootContext => new Alpha(id), "alpha");
registerRootContext((id: u32): RootContext => new Beta(id), "beta");
