/**
 * Public API of the TypeScript proxy-wasm host (`envext/extensions/host`):
 *
 * - `HostEmulator`: load a module as Envoy would and drive/inspect it (tests, `envext wasm run`).
 * - `checkModule`, `ENV_IMPORTS`, `WASI_IMPORTS`, `envoyImportsFor`, `detectAbiVersion`: what
 *   Envoy provides and whether it would load a module.
 * - `readWasmBinary`, `capMemory`: module introspection; `compileWat`: WAT → Wasm.
 * - ABI enums (`WasmResult`, `HeadersStatus`, `DataStatus`, `MapType`, `BufferType`, …),
 *   `HeaderMap` and the pairs codec, property encoding, clocks and stores.
 */
export * from './abi.js';
export {
  HostEmulator,
  httpToGrpcStatus,
  translateDataStatus,
  translateHeadersStatus,
  translateNetworkStatus,
  translateTrailersStatus,
  type EmulatorOptions,
  type StreamAction,
  type TraceEntry,
} from './emulator.js';
export type { CalloutResponse, FailurePolicy, LocalResponse, PluginInfo } from './context.js';
export {
  checkModule,
  detectAbiVersion,
  ENV_IMPORTS,
  envoyImportsFor,
  formatSignature,
  WASI_IMPORTS,
  WASI_MODULES,
  type AbiVersion,
  type ImportSpec,
  type ModuleCheck,
  type ModuleProblem,
  type ModuleProblemCode,
} from './envoy-imports.js';
export { decodePairs, encodePairList, encodePairs, HeaderMap, PAIRS_MAX_BYTES, PAIRS_MAX_COUNT } from './pairs.js';
export type { HeaderInput, HeaderPair } from './pairs.js';
export { encodeProperty, type PropertyValue } from './properties.js';
export {
  MetricStore,
  SharedState,
  systemClock,
  VirtualClock,
  type Clock,
  type LogEntry,
  type Metric,
  type MetricKind,
} from './state.js';
export { BUILTIN_FOREIGN_FUNCTIONS, grpcServiceCluster, type Callout, type ForeignFunction } from './vm.js';
export { capMemory, readWasmBinary, type WasmBinaryInfo } from './wasm-binary.js';
export { compileWat } from './wat.js';
