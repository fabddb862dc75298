/**
 * Serves cached modules to Envoy over HTTP or HTTPS on their own port (18002 by default, as
 * Envoy Gateway). Only the unguessable paths the cache handed out answer; everything else is
 * 404, so the server cannot be used to list or probe modules.
 */
import { createReadStream } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { EnvextError } from '../../common/errors.js';
import { rootLogger, type Logger } from '../../common/log.js';
import type { WasmModuleCache } from './module-cache.js';

export interface ModuleServerOptions {
  readonly cache: WasmModuleCache;
  readonly host?: string;
  readonly port?: number;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly log?: Logger;
}

export class ModuleServer {
  private server: Server | undefined;
  private readonly log: Logger;
  /** Requests answered, by status code (tests and metrics). */
  readonly served = new Map<number, number>();

  constructor(private readonly options: ModuleServerOptions) {
    this.log = options.log ?? rootLogger.child({ component: 'wasm-cache' });
  }

  async listen(): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    const tls = this.options.tls;
    const server =
      tls === undefined ? createHttpServer(handler) : createHttpsServer({ cert: tls.cert, key: tls.key }, handler);
    const host = this.options.host ?? '127.0.0.1';
    const port = this.options.port ?? 18002;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) =>
        reject(
          new EnvextError('WASM_SERVER_LISTEN_FAILED', `cannot serve Wasm modules on ${host}:${port}: ${e.message}`, {
            hint: 'pick another --wasm-port or stop what holds the port',
            cause: e,
          }),
        ),
      );
      server.listen(port, host, resolve);
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private count(code: number): void {
    this.served.set(code, (this.served.get(code) ?? 0) + 1);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const found = req.method === 'GET' || req.method === 'HEAD' ? this.options.cache.lookupPath(path) : undefined;
    if (found === undefined) {
      this.count(404);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    this.count(200);
    res.writeHead(200, {
      'content-type': 'application/wasm',
      'content-length': found.size,
      etag: `"${found.sha256}"`,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(found.file);
    stream.on('error', (e) => {
      this.log.warn('cannot read a cached module', { file: found.file, error: e.message });
      res.destroy();
    });
    stream.pipe(res);
  }
}
