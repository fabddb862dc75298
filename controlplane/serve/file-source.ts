/**
 * File resource source for `envext serve --provider file`: reads every YAML file under the
 * given paths (part 1's loader: multi-document YAML and Envoy Gateway test bundles, errors with
 * file and line), watches them, and publishes a new snapshot after a quiet period when any file
 * changed. Editors that replace files (rename over) are handled by watching directories and
 * comparing file contents, so a save that changes nothing publishes nothing.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { rootLogger, type Logger } from '../../common/log.js';
import { loadFiles, snapshotFromObjects, yamlFiles } from '../provider/file/load.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';

export interface FileSourceOptions {
  readonly paths: readonly string[];
  readonly debounceMs?: number;
  readonly log?: Logger;
}

export class FileSource {
  private readonly log: Logger;
  private readonly handlers = new Set<(s: ResourceSnapshot) => void>();
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private revision = 0;
  private fingerprint = '';
  private latest: ResourceSnapshot | undefined;
  /** Problems of the last load (YAML syntax errors, unreadable files), for printing. */
  problems: readonly string[] = [];

  constructor(private readonly options: FileSourceOptions) {
    this.log = options.log ?? rootLogger.child({ component: 'provider-file' });
  }

  async start(): Promise<ResourceSnapshot> {
    const snapshot = await this.load(true);
    for (const p of this.options.paths) {
      const isDir = (await stat(p)).isDirectory();
      // Watch directories (recursive for the config dir), so replaced files are seen too.
      const target = isDir ? p : dirname(p);
      const w = watch(target, { recursive: isDir, persistent: false }, () => this.schedule());
      w.on('error', (e) => this.log.warn('file watch failed', { path: target, error: e.message }));
      this.watchers.push(w);
    }
    return snapshot!;
  }

  subscribe(fn: (s: ResourceSnapshot) => void): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  current(): ResourceSnapshot | undefined {
    return this.latest;
  }

  stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    return Promise.resolve();
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.load(false).catch((e: unknown) =>
        this.log.error('reloading the configuration failed', { error: errorMessage(e) }),
      );
    }, this.options.debounceMs ?? 200);
  }

  private async load(initial: boolean): Promise<ResourceSnapshot | undefined> {
    const files = await yamlFiles(this.options.paths);
    const h = createHash('sha256');
    for (const f of files) {
      h.update(f).update('\0');
      h.update(await readFile(f).catch(() => Buffer.from('(unreadable)')));
      h.update('\0');
    }
    const fingerprint = h.digest('hex');
    if (!initial && fingerprint === this.fingerprint) return this.latest;
    this.fingerprint = fingerprint;
    const loaded = loadFiles(files);
    this.problems = loaded.problems.map((p) => `${p.resource}${p.field === '' ? '' : ` ${p.field}`}: ${p.message}`);
    for (const p of this.problems) this.log.warn('configuration problem', { problem: p });
    const { snapshot, duplicates } = snapshotFromObjects(loaded.objects, ++this.revision);
    for (const d of duplicates) this.log.warn('resource defined twice; the later one wins', { resource: d });
    this.latest = snapshot;
    this.log.info(initial ? 'configuration loaded' : 'configuration changed', {
      files: files.length,
      revision: this.revision,
    });
    if (!initial) for (const fn of this.handlers) fn(snapshot);
    return snapshot;
  }
}
