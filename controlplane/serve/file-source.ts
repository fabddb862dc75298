/**
 * `envext serve --provider file`: part 1's `FileProvider` (debounced watch of files and
 * directories, a broken file keeps its last good content, YAML errors with file:line:column,
 * unchanged saves publish nothing) behind serve's `ResourceSource` interface. This is only an
 * adapter: every file behaviour lives in `provider/file/provider.ts`.
 */
import type { ResourceStatus } from '../gatewayapi/status.js';
import { FileProvider, type FileProviderOptions, type SnapshotUpdate } from '../provider/file/provider.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { ResourceSource } from './control-plane.js';

export class FileSource implements ResourceSource {
  readonly provider: FileProvider;
  private readonly handlers = new Set<(s: ResourceSnapshot) => void>();
  private abort: AbortController | undefined;
  private watching: Promise<void> | undefined;
  private latest: SnapshotUpdate | undefined;

  constructor(options: FileProviderOptions) {
    this.provider = new FileProvider(options);
  }

  /** Reads the files, starts watching, and resolves with the first snapshot. */
  start(): Promise<ResourceSnapshot> {
    if (this.abort !== undefined) throw new Error('FileSource already started');
    const abort = new AbortController();
    this.abort = abort;
    return new Promise<ResourceSnapshot>((resolve, reject) => {
      let first = true;
      this.watching = this.provider.watch((update) => {
        this.latest = update;
        if (first) {
          first = false;
          resolve(update.snapshot);
          return;
        }
        for (const fn of this.handlers) fn(update.snapshot);
      }, abort.signal);
      // A first read that fails (e.g. a path that vanished) rejects start(); later errors are logged by the provider.
      this.watching.catch((e: unknown) => {
        if (first) reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  subscribe(fn: (s: ResourceSnapshot) => void): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  /** The last snapshot and its YAML problems (files keeping their last good content). */
  current(): SnapshotUpdate | undefined {
    return this.latest;
  }

  /** Writes statuses to the provider's status file (when one is configured). */
  writeStatusFile(statuses: readonly ResourceStatus[]): Promise<void> {
    return this.provider.writeStatusFile(statuses);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    await this.watching?.catch(() => undefined);
  }
}
