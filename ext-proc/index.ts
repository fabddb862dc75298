/**
 * envext's ext_proc framework: write a handler, serve it with `createExtProcServer` (or
 * `envext ext-proc serve`), test it with `ExtProcTestClient`.
 */
export {
  createExtProcServer,
  ExtProcError,
  ExtProcServer,
  parseListenAddress,
  MAX_UNIX_PATH_BYTES,
} from './server/server.js';
export type { ExtProcServerOptions, ListenOptions, ListenAddress, TlsFiles } from './server/server.js';
export { Headers, InvalidMutationError, disallowedReason } from './server/headers.js';
export type { MutationRules, DroppedMutation } from './server/headers.js';
export { InvalidDecisionError, MAX_STREAMED_CHUNK } from './server/answers.js';
export { HandlerTimeoutError } from './server/stream.js';
export { ExtProcMetrics, ERROR_KINDS } from './server/metrics.js';
export type { ErrorKind } from './server/metrics.js';
export { HealthService, HEALTH_SERVICE } from './server/health.js';
export type { ServingStatus } from './server/health.js';
export { PHASES, BODY_SEND_MODES, HEADER_SEND_MODES } from './server/types.js';
export type * from './server/types.js';
export { ExtProcTestClient } from './testing/test-client.js';
export type {
  ExchangeOptions,
  ExchangeResult,
  ForwardedMessage,
  HeaderList,
  HttpMessageSpec,
} from './testing/test-client.js';
