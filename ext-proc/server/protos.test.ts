// The project's own ext_proc protos (proto/envoy/service/ext_proc/v3, processing_mode.proto) carry
// every field number reference/ext-proc.md names, replace the older grpc-js-xds copy everywhere,
// and the upstream filter config that imports processing_mode.proto still loads and encodes.
import { describe, expect, it } from 'vitest';
import { decode, encode, messageType, protoRoot } from '../../proto/index.js';

const cases: ReadonlyArray<{ type: string; field: string; id: number }> = [
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'request_headers', id: 2 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'response_headers', id: 3 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'request_body', id: 4 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'response_body', id: 5 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'request_trailers', id: 6 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'response_trailers', id: 7 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'metadata_context', id: 8 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'attributes', id: 9 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'observability_mode', id: 10 },
  { type: 'envoy.service.ext_proc.v3.ProcessingRequest', field: 'protocol_config', id: 11 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'request_headers', id: 1 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'response_headers', id: 2 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'request_body', id: 3 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'response_body', id: 4 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'request_trailers', id: 5 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'response_trailers', id: 6 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'immediate_response', id: 7 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'dynamic_metadata', id: 8 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'mode_override', id: 9 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'override_message_timeout', id: 10 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'streamed_immediate_response', id: 11 },
  { type: 'envoy.service.ext_proc.v3.ProcessingResponse', field: 'request_drain', id: 12 },
  { type: 'envoy.service.ext_proc.v3.ProtocolConfiguration', field: 'request_body_mode', id: 1 },
  { type: 'envoy.service.ext_proc.v3.ProtocolConfiguration', field: 'response_body_mode', id: 2 },
  {
    type: 'envoy.service.ext_proc.v3.ProtocolConfiguration',
    field: 'send_body_without_waiting_for_header_response',
    id: 3,
  },
  { type: 'envoy.service.ext_proc.v3.HttpHeaders', field: 'headers', id: 1 },
  { type: 'envoy.service.ext_proc.v3.HttpHeaders', field: 'attributes', id: 2 },
  { type: 'envoy.service.ext_proc.v3.HttpHeaders', field: 'end_of_stream', id: 3 },
  { type: 'envoy.service.ext_proc.v3.HttpBody', field: 'body', id: 1 },
  { type: 'envoy.service.ext_proc.v3.HttpBody', field: 'end_of_stream', id: 2 },
  { type: 'envoy.service.ext_proc.v3.HttpBody', field: 'end_of_stream_without_message', id: 3 },
  { type: 'envoy.service.ext_proc.v3.HttpBody', field: 'grpc_message_compressed', id: 4 },
  { type: 'envoy.service.ext_proc.v3.HttpTrailers', field: 'trailers', id: 1 },
  { type: 'envoy.service.ext_proc.v3.HeadersResponse', field: 'response', id: 1 },
  { type: 'envoy.service.ext_proc.v3.BodyResponse', field: 'response', id: 1 },
  { type: 'envoy.service.ext_proc.v3.TrailersResponse', field: 'header_mutation', id: 1 },
  { type: 'envoy.service.ext_proc.v3.CommonResponse', field: 'status', id: 1 },
  { type: 'envoy.service.ext_proc.v3.CommonResponse', field: 'header_mutation', id: 2 },
  { type: 'envoy.service.ext_proc.v3.CommonResponse', field: 'body_mutation', id: 3 },
  { type: 'envoy.service.ext_proc.v3.CommonResponse', field: 'trailers', id: 4 },
  { type: 'envoy.service.ext_proc.v3.CommonResponse', field: 'clear_route_cache', id: 5 },
  { type: 'envoy.service.ext_proc.v3.ImmediateResponse', field: 'status', id: 1 },
  { type: 'envoy.service.ext_proc.v3.ImmediateResponse', field: 'headers', id: 2 },
  { type: 'envoy.service.ext_proc.v3.ImmediateResponse', field: 'body', id: 3 },
  { type: 'envoy.service.ext_proc.v3.ImmediateResponse', field: 'grpc_status', id: 4 },
  { type: 'envoy.service.ext_proc.v3.ImmediateResponse', field: 'details', id: 5 },
  { type: 'envoy.service.ext_proc.v3.GrpcStatus', field: 'status', id: 1 },
  { type: 'envoy.service.ext_proc.v3.HeaderMutation', field: 'set_headers', id: 1 },
  { type: 'envoy.service.ext_proc.v3.HeaderMutation', field: 'remove_headers', id: 2 },
  { type: 'envoy.service.ext_proc.v3.BodyMutation', field: 'body', id: 1 },
  { type: 'envoy.service.ext_proc.v3.BodyMutation', field: 'clear_body', id: 2 },
  { type: 'envoy.service.ext_proc.v3.BodyMutation', field: 'streamed_response', id: 3 },
  { type: 'envoy.service.ext_proc.v3.StreamedBodyResponse', field: 'body', id: 1 },
  { type: 'envoy.service.ext_proc.v3.StreamedBodyResponse', field: 'end_of_stream', id: 2 },
  { type: 'envoy.service.ext_proc.v3.StreamedImmediateResponse', field: 'headers_response', id: 1 },
  { type: 'envoy.service.ext_proc.v3.StreamedImmediateResponse', field: 'body_response', id: 2 },
  { type: 'envoy.service.ext_proc.v3.StreamedImmediateResponse', field: 'trailers_response', id: 3 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'request_header_mode', id: 1 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'response_header_mode', id: 2 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'request_body_mode', id: 3 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'response_body_mode', id: 4 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'request_trailer_mode', id: 5 },
  { type: 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode', field: 'response_trailer_mode', id: 6 },
];

describe('ext_proc protos', () => {
  it.each(cases)('$type.$field = $id', ({ type, field, id }) => {
    expect(messageType(type).fields[field]?.id).toBe(id);
  });

  it('has the body and header send modes with upstream numbers', () => {
    const body = protoRoot().lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode').values;
    expect(body).toEqual({ NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3, FULL_DUPLEX_STREAMED: 4, GRPC: 5 });
    const header = protoRoot().lookupEnum(
      'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode',
    ).values;
    expect(header).toEqual({ DEFAULT: 0, SEND: 1, SKIP: 2 });
    const status = protoRoot().lookupEnum('envoy.service.ext_proc.v3.CommonResponse.ResponseStatus').values;
    expect(status).toEqual({ CONTINUE: 0, CONTINUE_AND_REPLACE: 1 });
  });

  it('replaces the grpc-js-xds copy (field 1 of ProcessingRequest is reserved, not async_mode)', () => {
    const file = messageType('envoy.service.ext_proc.v3.ProcessingRequest').filename ?? '';
    expect(file).toMatch(/\/proto\/envoy\/service\/ext_proc\/v3\/external_processor\.proto$/);
    expect(file).not.toContain('grpc-js-xds');
    expect(messageType('envoy.service.ext_proc.v3.ProcessingRequest').fields['async_mode']).toBeUndefined();
  });

  it('round-trips a FULL_DUPLEX_STREAMED answer through the strict codec', () => {
    const value = {
      request_body: {
        response: { body_mutation: { streamed_response: { body: Buffer.from('x'), end_of_stream: true } } },
      },
    };
    const back = decode(
      'envoy.service.ext_proc.v3.ProcessingResponse',
      encode('envoy.service.ext_proc.v3.ProcessingResponse', value),
    );
    expect(back).toEqual(value);
  });

  it('keeps the upstream filter config (ExternalProcessor) loading and encoding with the new modes', () => {
    const name = 'envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor';
    const config = {
      grpc_service: { envoy_grpc: { cluster_name: 'ext-proc-sidecar' } },
      processing_mode: {
        request_body_mode: 'FULL_DUPLEX_STREAMED',
        request_trailer_mode: 'SEND',
        response_body_mode: 'GRPC',
      },
      allow_mode_override: true,
      message_timeout: { seconds: '0', nanos: 200_000_000 },
    };
    expect(decode(name, encode(name, config))).toEqual(config);
  });
});
