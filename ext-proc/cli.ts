/**
 * `envext ext-proc serve`: runs a handler module as an ext_proc sidecar on Unix sockets and/or TCP
 * until SIGTERM/SIGINT, then drains.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  booleanOption,
  stringOption,
  stringsOption,
  type Command,
  type CommandContext,
  type CommandGroup,
} from '../common/cli.js';
import { clientConstructor, type ProtoObject } from '../proto/index.js';
import { ExtProcTestClient, type ExchangeResult, type HeaderList } from './testing/test-client.js';
import { errorMessage, UsageError } from '../common/errors.js';
import { createExtProcServer, ExtProcError, type ListenOptions } from './server/server.js';
import {
  BODY_SEND_MODES,
  HANDLER_KEYS,
  type BodySendMode,
  type ExtProcHandler,
  type FailurePolicy,
} from './server/types.js';

/** Finds the handler file: as given, or with .js/.ts/.mjs, or as a folder's index. */
export function resolveHandlerPath(spec: string, cwd: string = process.cwd()): string {
  const base = resolve(cwd, spec);
  const candidates = [base, `${base}.js`, `${base}.mjs`, `${base}.ts`, `${base}/index.js`, `${base}/index.ts`];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  throw new ExtProcError(
    'EXT_PROC_HANDLER_NOT_FOUND',
    `handler module "${spec}" not found (looked for ${candidates.map((c) => c.slice(cwd.length + 1) || c).join(', ')})`,
    {
      hint: 'pass the path of a module whose default export is the handler object',
    },
  );
}

/** Imports a handler module (TypeScript through tsx) and checks its default export. */
export async function loadHandler(spec: string, cwd?: string): Promise<ExtProcHandler<unknown>> {
  const path = resolveHandlerPath(spec, cwd);
  let mod: unknown;
  try {
    if (/\.[cm]?ts$/.test(path)) {
      const apiName = 'tsx/esm/api';
      const api = (await import(apiName).catch((e: unknown) => {
        throw new ExtProcError(
          'EXT_PROC_HANDLER_LOAD',
          `${path} is TypeScript and tsx is not installed: ${errorMessage(e)}`,
          {
            hint: 'npm install tsx, or compile the handler to JavaScript',
          },
        );
      })) as { tsImport: (s: string, parent: string) => Promise<unknown> };
      mod = await api.tsImport(pathToFileURL(path).href, import.meta.url);
    } else {
      mod = await import(pathToFileURL(path).href);
    }
  } catch (e: unknown) {
    if (e instanceof ExtProcError) throw e;
    throw new ExtProcError('EXT_PROC_HANDLER_LOAD', `cannot load handler ${path}: ${errorMessage(e)}`, {
      hint: 'fix the error in the module (run it with node to see the stack)',
      cause: e,
    });
  }
  const m = mod as { default?: unknown; handler?: unknown };
  const h = m.default ?? m.handler;
  if (typeof h !== 'object' || h === null) {
    throw new ExtProcError(
      'EXT_PROC_BAD_HANDLER',
      `${path} exports no handler (neither a default export nor \`handler\`)`,
      {
        hint: 'export default { onRequestHeaders(ctx, msg) { … } }',
      },
    );
  }
  const callbacks = Object.keys(h).filter((k) => HANDLER_KEYS.includes(k));
  if (callbacks.length === 0) {
    throw new ExtProcError(
      'EXT_PROC_BAD_HANDLER',
      `the default export of ${path} has none of ${HANDLER_KEYS.join(', ')}`,
      {
        hint: 'export default { onRequestHeaders(ctx, msg) { … } }',
      },
    );
  }
  return h;
}

function intOption(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} ${v}: expected an integer from ${min} to ${max}`);
  return n;
}

function policyOption(ctx: CommandContext, name: string): FailurePolicy | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return undefined;
  if (v === 'continue' || v === 'error') return v;
  const n = Number(v);
  if (Number.isInteger(n) && n >= 200 && n <= 599) return n;
  throw new UsageError(`--${name} ${v}: expected continue, error, or an HTTP status such as 500 or 504`);
}

function bodyModeOption(ctx: CommandContext, name: string): BodySendMode | undefined {
  const v = stringOption(ctx, name);
  if (v === undefined) return undefined;
  const up = v.toUpperCase() as BodySendMode;
  if (!BODY_SEND_MODES.includes(up))
    throw new UsageError(`--${name} ${v}: expected one of ${BODY_SEND_MODES.join(', ')}`);
  return up;
}

function headerOptions(ctx: CommandContext, name: string): [string, string][] {
  return stringsOption(ctx, name).map((h) => {
    const i = h.indexOf(':', h.startsWith(':') ? 1 : 0);
    if (i <= 0) throw new UsageError(`--${name} ${JSON.stringify(h)}: expected "name: value"`);
    return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
  });
}

function targetOf(ctx: CommandContext): string {
  const t = ctx.positionals[0];
  if (t === undefined) throw new UsageError('give the server address (unix:///path.sock or host:port)');
  return t.startsWith('/') ? `unix://${t}` : t;
}

function printHeaders(out: NodeJS.WritableStream, list: HeaderList): void {
  for (const [k, v] of list) out.write(`  ${k}: ${v}\n`);
}

function printResult(out: NodeJS.WritableStream, r: ExchangeResult): void {
  out.write(`outcome: ${r.outcome}\n`);
  if (r.immediateResponse !== undefined) {
    out.write(
      `immediate response: ${r.immediateResponse.status}${r.immediateResponse.details === '' ? '' : ` (${r.immediateResponse.details})`}\n`,
    );
    printHeaders(out, r.immediateResponse.headers);
    if (r.immediateResponse.body.length > 0) out.write(`  body: ${r.immediateResponse.body.toString()}\n`);
  }
  if (r.localReply !== undefined) out.write(`local reply: ${r.localReply.status}: ${r.localReply.reason}\n`);
  for (const [name, m] of [
    ['request forwarded upstream', r.request],
    ['response sent downstream', r.response],
  ] as const) {
    if (m === undefined) continue;
    out.write(`${name}:\n`);
    printHeaders(out, m.headers);
    if (m.body.length > 0) out.write(`  body: ${m.body.toString()}\n`);
  }
  if (Object.keys(r.dynamicMetadata).length > 0) out.write(`dynamic metadata: ${JSON.stringify(r.dynamicMetadata)}\n`);
  if (r.clearRouteCache) out.write('clear_route_cache: true\n');
}

const probeCommand: Command = {
  name: 'probe',
  summary: 'send one HTTP request through a running ext_proc server the way Envoy would, and print the result',
  positionals: [{ name: 'TARGET', description: 'unix:///path.sock or host:port', required: true }],
  options: {
    method: { type: 'string', description: 'request :method', defaultText: 'GET' },
    path: { type: 'string', description: 'request :path', defaultText: '/' },
    authority: { type: 'string', description: 'request :authority', defaultText: 'example.com' },
    header: { type: 'string', multiple: true, valueName: 'NAME: VALUE', description: 'request header; repeatable' },
    body: { type: 'string', description: 'request body' },
    'request-body-mode': { type: 'string', valueName: 'MODE', description: 'request_body_mode', defaultText: 'NONE' },
    status: { type: 'string', description: 'upstream response :status', defaultText: '200' },
    'response-header': {
      type: 'string',
      multiple: true,
      valueName: 'NAME: VALUE',
      description: 'upstream response header; repeatable',
    },
    'response-body': { type: 'string', description: 'upstream response body' },
    'response-body-mode': { type: 'string', valueName: 'MODE', description: 'response_body_mode', defaultText: 'NONE' },
    'message-timeout': { type: 'string', valueName: 'MS', description: "Envoy's message_timeout", defaultText: '200' },
    json: { type: 'boolean', description: 'print the full result as JSON' },
  },
  examples: ["envext ext-proc probe unix:///tmp/x.sock --header 'x-api-key: demo-key-1'"],
  async run(ctx) {
    const target = targetOf(ctx);
    const requestBodyMode = bodyModeOption(ctx, 'request-body-mode');
    const responseBodyMode = bodyModeOption(ctx, 'response-body-mode');
    const messageTimeoutMs = intOption(ctx, 'message-timeout', 0, 3_600_000);
    const body = stringOption(ctx, 'body');
    const responseBody = stringOption(ctx, 'response-body');
    const client = new ExtProcTestClient(target);
    try {
      const r = await client.exchange({
        mode: {
          ...(requestBodyMode === undefined ? {} : { request_body_mode: requestBodyMode }),
          ...(responseBodyMode === undefined ? {} : { response_body_mode: responseBodyMode }),
        },
        ...(messageTimeoutMs === undefined ? {} : { messageTimeoutMs }),
        request: {
          headers: [
            [':method', stringOption(ctx, 'method') ?? 'GET'],
            [':path', stringOption(ctx, 'path') ?? '/'],
            [':authority', stringOption(ctx, 'authority') ?? 'example.com'],
            [':scheme', 'http'],
            ...(body === undefined
              ? []
              : ([['content-length', String(Buffer.byteLength(body))]] as [string, string][])),
            ...headerOptions(ctx, 'header'),
          ],
          ...(body === undefined ? {} : { body }),
        },
        response: {
          headers: [[':status', stringOption(ctx, 'status') ?? '200'], ...headerOptions(ctx, 'response-header')],
          ...(responseBody === undefined ? {} : { body: responseBody }),
        },
      });
      if (booleanOption(ctx, 'json'))
        ctx.stdout.write(
          JSON.stringify(r, (_k, v: unknown) => (isBufferJson(v) ? Buffer.from(v.data).toString() : v), 2) + '\n',
        );
      else printResult(ctx.stdout, r);
      return r.outcome === 'local_reply' ? 1 : 0;
    } finally {
      await client.close();
    }
  },
};

function isBufferJson(v: unknown): v is { type: 'Buffer'; data: number[] } {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((v as { data?: unknown }).data)
  );
}

const healthCommand: Command = {
  name: 'health',
  summary: 'ask a running ext_proc server for its grpc.health.v1 status (exit 0 only when SERVING)',
  positionals: [{ name: 'TARGET', description: 'unix:///path.sock or host:port', required: true }],
  options: { service: { type: 'string', description: 'service name', defaultText: '"" (the whole server)' } },
  examples: ['envext ext-proc health unix:///tmp/x.sock'],
  async run(ctx) {
    const Ctor = clientConstructor('grpc.health.v1.Health');
    const c = new Ctor(targetOf(ctx), grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      check(req: ProtoObject, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: ProtoObject) => void): void;
    };
    try {
      const r = await new Promise<ProtoObject>((resolve, reject) =>
        c.check({ service: stringOption(ctx, 'service') ?? '' }, { deadline: Date.now() + 5000 }, (e, res) =>
          e === null ? resolve(res ?? {}) : reject(e),
        ),
      );
      const status = typeof r['status'] === 'string' ? r['status'] : 'UNKNOWN';
      ctx.stdout.write(`${status}\n`);
      return status === 'SERVING' ? 0 : 1;
    } catch (e: unknown) {
      throw new ExtProcError('EXT_PROC_HEALTH_FAILED', `health check of ${targetOf(ctx)} failed: ${errorMessage(e)}`, {
        hint: 'is the server running on that address?',
      });
    } finally {
      c.close();
    }
  },
};

export const extProcCommand: CommandGroup = {
  name: 'ext-proc',
  summary: 'run an ext_proc handler as a sidecar for Envoy (Unix socket or TCP)',
  subcommands: [
    {
      name: 'serve',
      summary: 'serve a handler module over Envoy’s External Processing gRPC protocol',
      description:
        'Loads the handler (the default export of MODULE) and serves envoy.service.ext_proc.v3.ExternalProcessor ' +
        'plus grpc.health.v1.Health on every --uds and --listen address. SIGTERM/SIGINT: health goes ' +
        'NOT_SERVING, new streams are refused, in-flight requests get --drain-grace to finish, exit 0.',
      options: {
        uds: {
          type: 'string',
          multiple: true,
          valueName: 'PATH',
          description: 'listen on a Unix socket (unix:///path or /path); repeatable',
        },
        listen: { type: 'string', multiple: true, valueName: 'HOST:PORT', description: 'listen on TCP; repeatable' },
        handler: {
          type: 'string',
          valueName: 'MODULE',
          description: 'handler module (.js, or .ts through tsx); extension optional',
        },
        'tls-cert': {
          type: 'string',
          valueName: 'FILE',
          description: 'PEM certificate chain for TCP listeners (enables TLS)',
        },
        'tls-key': { type: 'string', valueName: 'FILE', description: 'PEM private key for --tls-cert' },
        'tls-ca': {
          type: 'string',
          valueName: 'FILE',
          description: 'PEM CA bundle: require client certificates (mTLS)',
        },
        'socket-mode': {
          type: 'string',
          valueName: 'OCTAL',
          description: 'file mode of Unix sockets',
          defaultText: '0660',
        },
        'metrics-port': {
          type: 'string',
          valueName: 'N',
          description: 'serve /metrics and /healthz over HTTP on this port (0: any)',
        },
        'metrics-host': {
          type: 'string',
          valueName: 'HOST',
          description: 'address for --metrics-port',
          defaultText: '127.0.0.1',
        },
        'message-timeout': {
          type: 'string',
          valueName: 'MS',
          description: "Envoy's message_timeout for this filter",
          defaultText: '200',
        },
        'handler-timeout': {
          type: 'string',
          valueName: 'MS',
          description: 'per-message handler deadline',
          defaultText: '80% of --message-timeout',
        },
        'on-timeout': {
          type: 'string',
          valueName: 'POLICY',
          description: 'continue | error | HTTP status',
          defaultText: '504',
        },
        'on-error': {
          type: 'string',
          valueName: 'POLICY',
          description: 'continue | error | HTTP status (handler exceptions, invalid answers)',
          defaultText: 'error',
        },
        'request-body-mode': {
          type: 'string',
          valueName: 'MODE',
          description: "the filter's request_body_mode, for Envoy versions that do not send protocol_config",
        },
        'response-body-mode': {
          type: 'string',
          valueName: 'MODE',
          description: "the filter's response_body_mode, likewise",
        },
        'max-message-bytes': {
          type: 'string',
          valueName: 'N',
          description: 'largest message accepted (buffered bodies)',
          defaultText: '16777216',
        },
        'drain-grace': {
          type: 'string',
          valueName: 'MS',
          description: 'how long in-flight requests may take after SIGTERM',
          defaultText: '10000',
        },
      },
      examples: [
        'envext ext-proc serve --uds /var/run/envext/ext-proc.sock --handler ./handler.js',
        'envext ext-proc serve --uds /tmp/x.sock --listen 127.0.0.1:50051 --handler ext-proc/examples/header-injection --metrics-port 9464',
        'envext ext-proc serve --listen 0.0.0.0:50051 --tls-cert tls.crt --tls-key tls.key --tls-ca ca.crt --handler ./auth.js',
      ],
      async run(ctx) {
        const uds = stringsOption(ctx, 'uds');
        const tcp = stringsOption(ctx, 'listen');
        if (uds.length === 0 && tcp.length === 0)
          throw new UsageError('give at least one --uds PATH or --listen HOST:PORT');
        const handlerSpec = stringOption(ctx, 'handler');
        if (handlerSpec === undefined) throw new UsageError('--handler MODULE is required');
        const cert = stringOption(ctx, 'tls-cert');
        const key = stringOption(ctx, 'tls-key');
        const ca = stringOption(ctx, 'tls-ca');
        if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
        if (ca !== undefined && cert === undefined)
          throw new UsageError('--tls-ca (mTLS) needs --tls-cert and --tls-key');
        if (cert !== undefined && tcp.length === 0)
          throw new UsageError('--tls-cert applies to --listen addresses; there is none');
        const modeText = stringOption(ctx, 'socket-mode');
        let socketMode: number | undefined;
        if (modeText !== undefined) {
          if (!/^0?[0-7]{3}$/.test(modeText))
            throw new UsageError(`--socket-mode ${modeText}: expected an octal mode such as 0660`);
          socketMode = parseInt(modeText, 8);
        }
        const messageTimeoutMs = intOption(ctx, 'message-timeout', 0, 3_600_000);
        const handlerTimeoutMs = intOption(ctx, 'handler-timeout', 0, 3_600_000);
        const maxMessageBytes = intOption(ctx, 'max-message-bytes', 1024, 2 ** 31 - 1);
        const metricsPort = intOption(ctx, 'metrics-port', 0, 65535);
        const drainGrace = intOption(ctx, 'drain-grace', 0, 3_600_000) ?? 10_000;
        const onTimeout = policyOption(ctx, 'on-timeout');
        const onError = policyOption(ctx, 'on-error');
        const requestBodyMode = bodyModeOption(ctx, 'request-body-mode');
        const responseBodyMode = bodyModeOption(ctx, 'response-body-mode');

        const handler = await loadHandler(handlerSpec);
        const log = ctx.log.child({ component: 'ext-proc' });
        const server = createExtProcServer({
          handler,
          logger: log,
          ...(messageTimeoutMs === undefined ? {} : { messageTimeoutMs }),
          ...(handlerTimeoutMs === undefined ? {} : { handlerTimeoutMs }),
          ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
          ...(onTimeout === undefined ? {} : { onTimeout }),
          ...(onError === undefined ? {} : { onError }),
          ...(requestBodyMode === undefined && responseBodyMode === undefined
            ? {}
            : {
                processingMode: {
                  ...(requestBodyMode === undefined ? {} : { request_body_mode: requestBodyMode }),
                  ...(responseBodyMode === undefined ? {} : { response_body_mode: responseBodyMode }),
                },
              }),
        });
        try {
          for (const p of uds)
            await server.listen(
              p.startsWith('unix:') ? p : `unix://${resolve(p)}`,
              socketMode === undefined ? {} : { socketMode },
            );
          const tls: ListenOptions =
            cert !== undefined && key !== undefined ? { tls: { cert, key, ...(ca === undefined ? {} : { ca }) } } : {};
          for (const a of tcp) await server.listen(a, tls);
          if (metricsPort !== undefined)
            await server.serveMetrics(metricsPort, stringOption(ctx, 'metrics-host') ?? '127.0.0.1', true);
        } catch (e: unknown) {
          await server.close();
          throw e;
        }
        log.info('serving', { handler: resolveHandlerPath(handlerSpec) });
        await new Promise<void>((r) => {
          if (ctx.signal.aborted) r();
          else ctx.signal.addEventListener('abort', () => r(), { once: true });
        });
        const { inFlightAtStart, forced } = await server.drain(drainGrace);
        log.info('stopped', { inFlightAtDrain: inFlightAtStart, cancelled: forced });
        return 0;
      },
    },
    probeCommand,
    healthCommand,
  ],
};
