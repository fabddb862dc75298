export {
  DEFAULT_ENVOY_FILES,
  ProtoError,
  TYPE_URL_PREFIX,
  includeDirs,
  messageType,
  ownProtoFiles,
  protoRoot,
  serviceType,
} from './loader.js';
export { DECODE_OPTIONS, decode, encode, pack, toJsonObject, typeNameOf, unpack } from './codec.js';
export type { AnyMessage, ProtoObject } from './codec.js';
export { clientConstructor, serviceDefinition } from './grpc.js';
