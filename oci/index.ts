/**
 * Public API of `oci/`: a registry client for Wasm modules.
 *
 * The control plane's module cache uses `pullWasmModule` / `resolveWasmModule` with
 * `dockerConfigJsonCredentials` (a Kubernetes pull secret) and a `ModuleCache`; see `pull.ts`
 * for the contract (pull policies, the two digests, size cap). Errors are `OciError`s with a
 * stable `code` (`errors.ts`).
 */
export { pullWasmModule, resolveWasmModule, PULL_POLICIES } from './pull.js';
export type { PullOptions, PullPolicy, PulledModule, ResolvedModule, RegistryConnectionOptions } from './pull.js';
export { HashedModule, ModuleFile, openModuleFile, pushWasmModule, readModuleFile } from './push.js';
export type { PushOptions, PushResult } from './push.js';
export { inspectWasmImage } from './inspect.js';
export type { InspectResult } from './inspect.js';
export { ModuleCache, DEFAULT_CACHE_MAX_BYTES } from './cache.js';
export type { CachedModule, CachedModuleRecord, ModuleCacheOptions } from './cache.js';
export {
  chainCredentials,
  defaultDockerConfigPath,
  dockerConfigCredentials,
  dockerConfigJsonCredentials,
  staticCredentials,
} from './credentials.js';
export type { Credential, CredentialProvider } from './credentials.js';
export { OciError, isOciError, OCI_ERROR_CODES } from './errors.js';
export type { OciErrorCode } from './errors.js';
export { parseReference, formatReference } from './reference.js';
export type { Reference } from './reference.js';
export { RegistryClient } from './registry-client.js';
export type {
  Descriptor,
  FetchedManifest,
  IncomingBlob,
  RegistryClientOptions,
  ProgressFn,
} from './registry-client.js';
export { WASM_LAYOUTS, DEFAULT_LAYOUT, buildImage, detectLayout, envoyGatewayCompatible } from './layouts.js';
export type { WasmLayout, WasmImage, BuiltImage } from './layouts.js';
export { DEFAULT_MAX_MODULE_BYTES } from './wasm.js';
