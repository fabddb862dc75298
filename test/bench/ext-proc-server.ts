/**
 * A server under test for ext-proc.bench.ts, run in its own process so its CPU time can be read
 * from /proc: `node ext-proc-server.js KIND SOCKET_PATH` (compiled by the bench; from source,
 * `node --import tsx ext-proc-server.ts …`), binding the Unix socket and 127.0.0.1:0, then printing
 * `READY <tcp port>`.
 *
 * KIND:
 * - `bare`: the baseline, a bare grpc-js + @grpc/proto-loader server answering every message with
 *   the matching empty CONTINUE (reference/ext-proc.md §14 "Server A", `opt` codec options);
 * - `passthrough`: the envext framework with a handler that returns nothing;
 * - `mutate`: the framework with a handler that sets a header on request and response headers.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../common/log.js';
import { createExtProcServer } from '../../ext-proc/index.js';
import { includeDirs } from '../../proto/index.js';

const [kind, socketPath] = process.argv.slice(2);
if (kind === undefined || socketPath === undefined) {
  process.stderr.write('usage: ext-proc-server.ts bare|passthrough|mutate SOCKET_PATH\n');
  process.exit(2);
}

async function bare(): Promise<number> {
  // @grpc/proto-loader comes with @grpc/grpc-js-xds; it is what a hand-written grpc-js server uses.
  const require = createRequire(import.meta.url);
  const loader = require('@grpc/proto-loader') as { loadSync(file: string, options: Record<string, unknown>): unknown };
  const def = loader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: includeDirs(),
  });
  const pkg = grpc.loadPackageDefinition(def as Parameters<typeof grpc.loadPackageDefinition>[0]) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: { service: grpc.ServiceDefinition } } } } };
  };
  const ANSWER: Record<string, object> = {
    request_headers: { request_headers: {} },
    response_headers: { response_headers: {} },
    request_body: { request_body: {} },
    response_body: { response_body: {} },
    request_trailers: { request_trailers: {} },
    response_trailers: { response_trailers: {} },
  };
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 4096 });
  server.addService(pkg.envoy.service.ext_proc.v3.ExternalProcessor.service, {
    Process(call: grpc.ServerDuplexStream<{ request?: string }, object>) {
      call.on('data', (req: { request?: string }) => {
        const answer = req.request === undefined ? undefined : ANSWER[req.request];
        if (answer !== undefined) call.write(answer);
      });
      call.on('end', () => call.end());
    },
  });
  const bind = (addr: string): Promise<number> =>
    new Promise((resolve, reject) =>
      server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e, port) =>
        e === null ? resolve(port) : reject(e),
      ),
    );
  await bind(`unix://${socketPath}`);
  return bind('127.0.0.1:0');
}

async function framework(mutate: boolean): Promise<number> {
  const server = createExtProcServer({
    logger: createLogger({ level: 'warn' }),
    grpcOptions: { 'grpc.max_concurrent_streams': 4096 },
    handler: mutate
      ? {
          onRequestHeaders: () => ({ headers: { set: { 'x-envext-bench': 'request' } } }),
          onResponseHeaders: () => ({ headers: { set: { 'x-envext-bench': 'response' } } }),
        }
      : {},
  });
  await server.listen(`unix://${socketPath}`);
  const tcp = await server.listen('127.0.0.1:0');
  return Number(tcp.slice(tcp.lastIndexOf(':') + 1));
}

const port = kind === 'bare' ? await bare() : await framework(kind === 'mutate');
process.stdout.write(`READY ${port}\n`);
process.on('SIGTERM', () => process.exit(0));
