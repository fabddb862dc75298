/**
 * Starts a real ext_proc server on a Unix socket in a fresh temp dir or on 127.0.0.1 port 0, with a
 * test client and a raw stream client for it. Used by the framework's own tests for both
 * transports; handy for users' tests too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../common/log.js';
import { createExtProcServer, type ExtProcServer, type ExtProcServerOptions } from '../server/server.js';
import { RawStreamClient } from './raw-stream.js';
import { ExtProcTestClient } from './test-client.js';

export type Transport = 'uds' | 'tcp';
export const TRANSPORTS: readonly Transport[] = ['uds', 'tcp'];

export interface Harness {
  readonly server: ExtProcServer;
  readonly address: string;
  readonly client: ExtProcTestClient;
  readonly raw: RawStreamClient;
  /** Log lines the server wrote (warn and above unless `options.logger` is given). */
  readonly logs: string[];
  close(): Promise<void>;
}

export async function startHarness<S>(transport: Transport, options: ExtProcServerOptions<S>): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'envext-xp-'));
  const logs: string[] = [];
  const logger = createLogger(
    { level: 'warn', sink: { write: (line: string) => logs.push(line) } },
    { component: 'ext-proc' },
  );
  const server = createExtProcServer({ logger, ...options });
  const address = await server.listen(transport === 'uds' ? `unix://${join(dir, 's.sock')}` : '127.0.0.1:0');
  const client = new ExtProcTestClient(address);
  const raw = new RawStreamClient(address);
  return {
    server,
    address,
    client,
    raw,
    logs,
    async close() {
      raw.close();
      await client.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
