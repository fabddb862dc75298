/**
 * FULL_DUPLEX_STREAMED: upper-cases the request body (ASCII letters). Input chunks are gathered
 * until 16 KiB are pending or the body ends, then sent as one output chunk: M input chunks, N
 * answers, which only this mode allows. The framework marks the last chunk end_of_stream.
 *
 * Envoy: request_body_mode FULL_DUPLEX_STREAMED, request_trailer_mode SEND.
 */
import type { ExtProcHandler } from '../index.js';

const FLUSH_AT = 16 * 1024;

interface State {
  pending: Buffer[];
  size: number;
}

function upper(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) {
    const c = out[i] as number;
    if (c >= 0x61 && c <= 0x7a) out[i] = c - 0x20;
  }
  return out;
}

export const handler: ExtProcHandler<State> = {
  createState: () => ({ pending: [], size: 0 }),
  onRequestBody(ctx, { body, endOfStream }) {
    const s = ctx.state;
    s.pending.push(body);
    s.size += body.length;
    if (s.size < FLUSH_AT && !endOfStream) return { chunks: [] };
    const out = upper(Buffer.concat(s.pending));
    s.pending = [];
    s.size = 0;
    return { chunks: [out] };
  },
  onRequestTrailers(ctx) {
    // With trailers the last body chunk is not end_of_stream: flush what is held before the
    // trailers answer.
    const s = ctx.state;
    const rest = s.size > 0 ? [upper(Buffer.concat(s.pending))] : [];
    s.pending = [];
    s.size = 0;
    return { chunks: rest };
  },
};

// The CLI (`envext ext-proc serve --handler`) loads a module's default export.
// eslint-disable-next-line no-restricted-syntax
export default handler;
