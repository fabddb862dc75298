/**
 * A raw `Process` stream for protocol tests: send exactly the messages given (plain objects, strict
 * codec) and collect every answer and the final status, with no Envoy model in between. Use the
 * `ExtProcTestClient` for realistic exchanges and this to poke at edge cases.
 */
import * as grpc from '@grpc/grpc-js';
import { decode, encode, type ProtoObject } from '../../proto/index.js';
import { REQUEST, RESPONSE, SERVICE } from '../server/codec.js';

export interface RawResult {
  readonly answers: ProtoObject[];
  readonly status: { readonly code: number; readonly details: string };
}

export class RawStreamClient {
  private readonly client: grpc.Client;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Process: {
          path: `/${SERVICE}/Process`,
          requestStream: true,
          responseStream: true,
          requestSerialize: (v: ProtoObject) => Buffer.from(encode(REQUEST, v)),
          requestDeserialize: (b: Buffer) => decode(REQUEST, b),
          responseSerialize: (v: ProtoObject) => Buffer.from(encode(RESPONSE, v)),
          responseDeserialize: (b: Buffer) => decode(RESPONSE, b),
        },
      },
      SERVICE,
    );
    this.client = new Ctor(target, credentials, { 'grpc.max_send_message_length': -1 });
  }

  /** Opens a stream (for tests that drive it step by step). */
  open(metadata = new grpc.Metadata()): grpc.ClientDuplexStream<ProtoObject, ProtoObject> {
    const method = (
      this.client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<ProtoObject, ProtoObject>>
    )['Process'];
    if (method === undefined) throw new Error('no Process method');
    return method.call(this.client, metadata);
  }

  /**
   * Writes `messages`, half-closes after `halfCloseAfterMs` (default at once), and resolves with
   * every answer and the status.
   */
  run(messages: readonly ProtoObject[], halfCloseAfterMs = 0): Promise<RawResult> {
    const call = this.open();
    const answers: ProtoObject[] = [];
    return new Promise((resolve) => {
      call.on('data', (m: ProtoObject) => answers.push(m));
      call.on('error', () => undefined);
      call.on('status', (s: grpc.StatusObject) => resolve({ answers, status: { code: s.code, details: s.details } }));
      for (const m of messages) call.write(m);
      if (halfCloseAfterMs === 0) call.end();
      else setTimeout(() => call.end(), halfCloseAfterMs);
    });
  }

  close(): void {
    this.client.close();
  }
}
