/**
 * The ext_proc hot-path codec, built on the shared protobufjs Root (`proto/`) but skipping the
 * generic `encode`/`decode` layers:
 *
 * - requests are decoded to protobufjs message instances (no `toObject` copy); the `oneof request`
 *   discriminator is protobufjs's virtual `request` property;
 * - answers are encoded from objects already in protobufjs's internal shape (enum numbers, bytes as
 *   Buffer), and the six empty CONTINUE answers are encoded once at load time and written as bytes.
 *
 * The strict generic codec in `proto/codec.ts` is still what the test client uses, so the two check
 * each other.
 */
import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { messageType, serviceType } from '../../proto/index.js';
import { encodeAnswerFast } from './fast-encode.js';
import { BODY_SEND_MODES, type BodySendMode, type Phase, type StructObject, type StructValue } from './types.js';

export const SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';
export const REQUEST = 'envoy.service.ext_proc.v3.ProcessingRequest';
export const RESPONSE = 'envoy.service.ext_proc.v3.ProcessingResponse';

/** A decoded `ProcessingRequest` (protobufjs message instance, .proto field names). */
export interface WireRequest {
  /** The `oneof request` member that is set. */
  readonly request?: Phase;
  readonly request_headers?: WireHttpHeaders;
  readonly response_headers?: WireHttpHeaders;
  readonly request_body?: WireHttpBody;
  readonly response_body?: WireHttpBody;
  readonly request_trailers?: { readonly trailers?: { readonly headers?: readonly WireHeader[] } };
  readonly response_trailers?: { readonly trailers?: { readonly headers?: readonly WireHeader[] } };
  readonly metadata_context?: { readonly filter_metadata?: Readonly<Record<string, WireStruct>> };
  readonly attributes?: Readonly<Record<string, WireStruct>>;
  readonly observability_mode?: boolean;
  readonly protocol_config?: {
    readonly request_body_mode?: number;
    readonly response_body_mode?: number;
    readonly send_body_without_waiting_for_header_response?: boolean;
  };
}

export interface WireHeader {
  readonly key: string;
  readonly value?: string;
  readonly raw_value?: Uint8Array;
}
export interface WireHttpHeaders {
  readonly headers?: { readonly headers?: readonly WireHeader[] };
  readonly end_of_stream?: boolean;
}
export interface WireHttpBody {
  readonly body?: Uint8Array;
  readonly end_of_stream?: boolean;
  readonly end_of_stream_without_message?: boolean;
  readonly grpc_message_compressed?: boolean;
}
export interface WireStruct {
  readonly fields?: Readonly<Record<string, WireValue>>;
}
export interface WireValue {
  readonly kind?: string;
  readonly null_value?: number;
  readonly number_value?: number;
  readonly string_value?: string;
  readonly bool_value?: boolean;
  readonly struct_value?: WireStruct;
  readonly list_value?: { readonly values?: readonly WireValue[] };
}

/** Sentinel the deserializer returns for a message over the configured limit. */
export interface TooLarge {
  readonly tooLarge: number;
}

let requestType: protobuf.Type | undefined;
let responseType: protobuf.Type | undefined;

export function requestMessageType(): protobuf.Type {
  return (requestType ??= messageType(REQUEST));
}
export function responseMessageType(): protobuf.Type {
  return (responseType ??= messageType(RESPONSE));
}

/** Encodes an answer given in protobufjs's internal shape with protobufjs's generic encoder. */
export function encodeResponseGeneric(value: object): Buffer {
  return responseMessageType().encode(value).finish() as Buffer;
}

/**
 * Encodes an answer given in protobufjs's internal shape: the common answers with the direct
 * encoder (same bytes, see fast-encode.ts), anything else with protobufjs.
 */
export function encodeResponse(value: object): Buffer {
  return encodeAnswerFast(value, encodeResponseGeneric) ?? encodeResponseGeneric(value);
}

let continues: Readonly<Record<Phase, Buffer>> | undefined;

/** The six "continue unchanged" answers, encoded once. */
export function continueAnswers(): Readonly<Record<Phase, Buffer>> {
  if (continues === undefined) {
    continues = {
      request_headers: encodeResponse({ request_headers: {} }),
      response_headers: encodeResponse({ response_headers: {} }),
      request_body: encodeResponse({ request_body: {} }),
      response_body: encodeResponse({ response_body: {} }),
      request_trailers: encodeResponse({ request_trailers: {} }),
      response_trailers: encodeResponse({ response_trailers: {} }),
    };
  }
  return continues;
}

export function bodyModeName(n: number | undefined): BodySendMode {
  return BODY_SEND_MODES[n ?? 0] ?? 'NONE';
}

/**
 * The grpc-js definition of `ExternalProcessor` for the server: requests decoded to message
 * instances, answers passed through when they are already bytes.
 */
export function serverDefinition(maxMessageBytes: number): grpc.ServiceDefinition {
  const req = requestMessageType();
  const service = serviceType(SERVICE);
  const method = service.methods['Process'];
  if (method === undefined) throw new Error(`${SERVICE} has no Process method`);
  return {
    Process: {
      path: `/${SERVICE}/Process`,
      requestStream: true,
      responseStream: true,
      requestSerialize: (v: object): Buffer => req.encode(v).finish() as Buffer,
      requestDeserialize: (bytes: Buffer): WireRequest | TooLarge =>
        bytes.length > maxMessageBytes ? { tooLarge: bytes.length } : (req.decode(bytes) as WireRequest),
      responseSerialize: (v: Buffer | object): Buffer => (Buffer.isBuffer(v) ? v : encodeResponse(v)),
      responseDeserialize: (bytes: Buffer): unknown => responseMessageType().decode(bytes),
      originalName: 'process',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// google.protobuf.Struct <-> plain objects

/** Thrown for a value that does not fit in a Struct. */
export class StructError extends Error {
  override readonly name = 'StructError';
}

/** A plain object to a `Struct` in protobufjs shape. */
export function toWireStruct(obj: StructObject, path: string): { fields: Record<string, object> } {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new StructError(
      `${path}: expected an object, got ${obj === null ? 'null' : Array.isArray(obj) ? 'a list' : typeof obj}`,
    );
  }
  const fields: Record<string, object> = {};
  for (const key of Object.keys(obj)) fields[key] = toWireValue(obj[key], `${path}.${key}`);
  return { fields };
}

function toWireValue(v: StructValue | undefined, path: string): object {
  if (v === null) return { null_value: 0 };
  switch (typeof v) {
    case 'string':
      return { string_value: v };
    case 'boolean':
      return { bool_value: v };
    case 'number':
      if (!Number.isFinite(v)) throw new StructError(`${path}: ${v} is not a finite number`);
      return { number_value: v };
    case 'object':
      if (Array.isArray(v)) {
        return { list_value: { values: (v as readonly StructValue[]).map((x, i) => toWireValue(x, `${path}[${i}]`)) } };
      }
      return { struct_value: toWireStruct(v as StructObject, path) };
    default:
      throw new StructError(`${path}: ${typeof v} cannot be stored in a google.protobuf.Struct`);
  }
}

/** A decoded `Struct` to a plain object. */
export function fromWireStruct(s: WireStruct | undefined): Record<string, StructValue> {
  const out: Record<string, StructValue> = {};
  const fields = s?.fields;
  if (fields === undefined) return out;
  for (const key of Object.keys(fields)) out[key] = fromWireValue(fields[key]);
  return out;
}

function fromWireValue(v: WireValue | undefined): StructValue {
  if (v === undefined) return null;
  switch (v.kind) {
    case 'number_value':
      return v.number_value ?? 0;
    case 'string_value':
      return v.string_value ?? '';
    case 'bool_value':
      return v.bool_value ?? false;
    case 'struct_value':
      return fromWireStruct(v.struct_value);
    case 'list_value':
      return (v.list_value?.values ?? []).map(fromWireValue);
    default:
      return null;
  }
}
