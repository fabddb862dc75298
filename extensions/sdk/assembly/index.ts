// envext's AssemblyScript proxy-wasm SDK (ABI 0.2.1). Import from "envext/assembly":
//
//   import { RootContext, HttpContext, registerRootContext, FilterHeadersStatus } from "envext/assembly";
//
// Layers: abi/ (enums, imports) → hostcalls.ts (safe wrappers) → context.ts (this API) →
// dispatch.ts (the `proxy_on_*` exports, added to the module by `envext build`).
export * from './abi/enums';
export * from './context';
export { Header, SharedData, CallStatus, QUEUE_NOT_FOUND, serializePairs, deserializePairs } from './hostcalls';
export { setCollectInterval } from './dispatch';
export { toLowerAscii, decimal, parseDecimal } from './util';
import * as hostcalls from './hostcalls';
export { hostcalls };
