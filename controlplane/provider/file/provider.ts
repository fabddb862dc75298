/**
 * The file provider (standalone mode, the embedded default): reads Kubernetes YAML from files
 * and directories, watches them, and publishes a new ResourceSnapshot after each burst of
 * changes (debounced). Like Envoy Gateway's file provider, hidden files and editor backups are
 * ignored and every change re-reads everything, so the snapshot is always the whole truth. A
 * file whose text did not change is not parsed again, and in a changed file only the YAML
 * documents whose text changed are (documents.ts): the others give the same objects, so their
 * validated resources (ValidationMemo) and translations (TranslationCache) are reused.
 *
 * A file with a YAML syntax error keeps its last good content (the error is reported with
 * file:line:column), so a half-saved edit never deletes routes from Envoy.
 *
 * Statuses have nowhere to go in files: `writeStatuses` logs them and, when a status file is
 * configured, writes them there as YAML (atomically).
 */
import { readFileSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { stringify } from 'yaml';
import { errorMessage, type Problem } from '../../../common/errors.js';
import { rootLogger, type Logger } from '../../../common/log.js';
import type { ResourceStatus } from '../../gatewayapi/status.js';
import type { ResourceSnapshot } from '../snapshot.js';
import { YamlDocuments, type DocumentsStats } from './documents.js';
import { ValidationMemo, snapshotFromObjects, yamlFiles, type SourcedObject } from './load.js';

export interface FileProviderOptions {
  /** Files and directories to read (directories recursively). */
  readonly paths: readonly string[];
  /** Quiet time after the last change before re-reading (default 200 ms). */
  readonly debounceMs?: number;
  /** Where `writeStatuses` writes the statuses as YAML; none by default. */
  readonly statusFile?: string;
  readonly logger?: Logger;
  /** Relative paths in sources are shown relative to this directory (default: cwd). */
  readonly cwd?: string;
  /**
   * A file whose status last changed at least this long before a read, and is unchanged since,
   * is not read again (default 3000 ms: more than any filesystem's timestamp granularity).
   */
  readonly settledMs?: number;
}

export interface SnapshotUpdate {
  readonly snapshot: ResourceSnapshot;
  /** YAML problems of this read (files keeping their last good content). */
  readonly problems: readonly Problem[];
}

interface FileState {
  /** The text last read (good or not), to skip a file that did not change. */
  readonly text: string;
  /**
   * The file's stat when `text` was read, if it had last changed `settledMs` before: any later
   * write changes the ctime (which no one can set back), so the same device, inode, size, mtime
   * and ctime mean the same text and the file is not read again. Undefined otherwise: a write
   * within the same timestamp tick as the read could leave the stat as it was (git's "racy" case).
   */
  readonly settled: Stats | undefined;
  /** Changes with every new text (the watch's "did anything change" digest). */
  readonly version: number;
  /** The objects of the last text that parsed without YAML errors. */
  readonly objects: readonly SourcedObject[];
  /** The file's documents, so that an edit re-parses only the documents it touched. */
  readonly documents: YamlDocuments;
}

/** What the last `load` did, for tests and benchmarks. */
export interface ReadStats {
  /** Files read (the others had not changed since they settled; see `settledMs`). */
  readonly readFiles: number;
  /** Files whose text changed (and were parsed). */
  readonly changedFiles: number;
  /** Documents of the changed files, parsed or reused. */
  readonly documents: number;
  readonly parsedDocuments: number;
  /** Unchanged documents that moved to another line (new sources, same values). */
  readonly movedDocuments: number;
}

export class FileProvider {
  private readonly log: Logger;
  private readonly files = new Map<string, FileState>();
  private readonly watchers = new Map<string, FSWatcher>();
  /** Validated resources of unchanged objects, so they keep their identity across reads (TranslationCache). */
  private readonly validated = new ValidationMemo();
  private revision = 0;
  private versions = 0;
  private lastDigest = '';
  /** What the last `load` parsed. */
  lastRead: ReadStats = { readFiles: 0, changedFiles: 0, documents: 0, parsedDocuments: 0, movedDocuments: 0 };
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private pending = false;
  private closed = false;

  constructor(private readonly options: FileProviderOptions) {
    this.log = (options.logger ?? rootLogger).child({ component: 'provider-file' });
  }

  /** Reads everything once and returns the snapshot (and YAML problems). */
  async load(): Promise<SnapshotUpdate> {
    const list = await yamlFiles(this.options.paths);
    const problems: Problem[] = [];
    const seen = new Set<string>();
    const stats = { readFiles: 0, changedFiles: 0, documents: 0, parsedDocuments: 0, movedDocuments: 0 };
    const settledBefore = Date.now() - (this.options.settledMs ?? 3000);
    for (const file of list) {
      seen.add(file);
      const previous = this.files.get(file);
      let text: string;
      let settled: Stats | undefined;
      try {
        const st = statSync(file);
        if (previous?.settled !== undefined && sameStat(previous.settled, st)) continue;
        const regular = st.isFile();
        if (regular && st.ctimeMs < settledBefore) settled = st;
        // Regular files synchronously: each await costs a trip through libuv's thread pool, 0.2 ms
        // per file, which made a directory of 1,000 one-route files take 200 ms to read; sync,
        // 4 ms. A pipe given as a path (`--config <(kustomize build)`) may wait for its writer:
        // read it asynchronously, never blocking the process.
        text = regular ? readFileSync(file, 'utf8') : await readFile(file, 'utf8');
        stats.readFiles++;
      } catch (e: unknown) {
        // Deleted between listing and reading: treat as gone.
        this.log.debug('file vanished while reading', { file, error: errorMessage(e) });
        seen.delete(file);
        continue;
      }
      if (previous?.text === text) {
        if (previous.settled !== settled) this.files.set(file, { ...previous, settled });
        continue;
      }
      const name = relative(this.options.cwd ?? process.cwd(), file) || file;
      const documents = previous?.documents ?? new YamlDocuments();
      const parsed = documents.read(text, name);
      addStats(stats, documents.stats);
      const version = ++this.versions;
      if (parsed.problems.length > 0) {
        problems.push(...parsed.problems);
        // Keep the last good content, under the new text so the broken text is not re-read.
        if (previous !== undefined) {
          this.files.set(file, { text, settled, version, objects: previous.objects, documents });
          continue;
        }
      }
      this.files.set(file, { text, settled, version, objects: parsed.objects, documents });
    }
    this.lastRead = stats;
    for (const f of [...this.files.keys()]) if (!seen.has(f)) this.files.delete(f);
    const objects: SourcedObject[] = [];
    for (const f of [...this.files.keys()].sort()) for (const o of this.files.get(f)?.objects ?? []) objects.push(o);
    const { snapshot, duplicates } = snapshotFromObjects(objects, ++this.revision, {}, this.validated);
    for (const d of duplicates)
      this.log.warn('resource defined more than once; the last definition wins', { resource: d });
    for (const p of problems) this.log.error('cannot read YAML', { where: p.resource, problem: p.message });
    for (const r of snapshot.rejected) {
      this.log.warn(r.unsupported ? 'resource kind not supported' : 'invalid resource', {
        resource: `${r.kind} ${r.namespace === '' ? '' : `${r.namespace}/`}${r.name}`,
        source: r.source,
        problems: r.problems.map((p) => (p.field === '' ? p.message : `${p.field}: ${p.message}`)).join('; '),
      });
    }
    return { snapshot, problems };
  }

  /**
   * Publishes the first snapshot, then a new one after every burst of changes, until `signal`
   * aborts. `onSnapshot` errors are logged; they never stop the watch.
   */
  async watch(onSnapshot: (update: SnapshotUpdate) => void | Promise<void>, signal: AbortSignal): Promise<void> {
    const publish = async (): Promise<void> => {
      const update = await this.load();
      const digest = [...this.files.values()].map((f) => f.version).join(',');
      if (digest === this.lastDigest && this.revision > 1) return; // nothing changed (e.g. touch)
      const first = this.lastDigest === '';
      this.lastDigest = digest;
      this.log.info(first ? 'configuration loaded' : 'configuration changed', {
        files: this.files.size,
        revision: update.snapshot.revision,
      });
      try {
        await onSnapshot(update);
      } catch (e: unknown) {
        this.log.error('snapshot subscriber failed', { error: errorMessage(e) });
      }
    };
    const trigger = (): void => {
      if (this.closed) return;
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // One read at a time; a change during a read schedules exactly one more.
        if (this.reading !== undefined) {
          this.pending = true;
          return;
        }
        const run = async (): Promise<void> => {
          do {
            this.pending = false;
            await publish();
            await this.rewatch();
          } while (this.pending && !this.closed);
        };
        this.reading = run()
          .catch((e: unknown) => this.log.error('reload failed', { error: errorMessage(e) }))
          .finally(() => {
            this.reading = undefined;
          });
      }, this.options.debounceMs ?? 200);
    };
    // Watch before the first read, so a change made while it is being published is not missed.
    this.onChange = trigger;
    await this.rewatch();
    // A first read that fails (a path that does not exist) is the caller's error, not a log line.
    const first = publish();
    this.reading = first.then(
      () => undefined,
      () => undefined,
    );
    try {
      await first;
    } catch (e: unknown) {
      await this.close();
      throw e;
    } finally {
      this.reading = undefined;
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.close();
  }

  private onChange: () => void = () => undefined;

  /** Watches every directory that holds input (new subdirectories are picked up on reload). */
  private async rewatch(): Promise<void> {
    const dirs = new Set<string>();
    for (const p of this.options.paths) {
      let st;
      try {
        st = await stat(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        dirs.add(p);
        for (const d of await subdirectories(p)) dirs.add(d);
      } else {
        // Watch the parent: editors replace files by rename, which ends a watch on the file itself.
        dirs.add(dirname(p));
      }
    }
    for (const d of dirs) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, (_event, name) => {
          if (name !== null && (name.startsWith('.') || name.endsWith('~'))) return;
          this.onChange();
        });
        w.on('error', (e) => this.log.warn('watch failed', { dir: d, error: errorMessage(e) }));
        this.watchers.set(d, w);
      } catch (e: unknown) {
        this.log.warn('cannot watch directory', { dir: d, error: errorMessage(e) });
      }
    }
    for (const [d, w] of this.watchers) {
      if (!dirs.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
  }

  /**
   * Logs statuses (one line per resource at info, the full status at debug) and writes them to
   * the status file when one is configured.
   */
  async writeStatuses(statuses: readonly ResourceStatus[]): Promise<void> {
    for (const s of statuses) {
      const id = `${s.kind} ${'namespace' in s ? `${s.namespace}/` : ''}${s.name}`;
      this.log.info('status', { resource: id, summary: summarize(s) });
      this.log.debug('status detail', { resource: id, status: JSON.stringify(s.status) });
    }
    await this.writeStatusFile(statuses);
  }

  /** Writes the statuses as YAML to the status file (atomically: temp file + rename), if one is configured. */
  async writeStatusFile(statuses: readonly ResourceStatus[]): Promise<void> {
    const file = this.options.statusFile;
    if (file === undefined) return;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(
      tmp,
      stringify(
        statuses.map((s) => ({ ...s })),
        { lineWidth: 0 },
      ),
    );
    await rename(tmp, file);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.reading;
  }
}

function sameStat(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

function addStats(into: { -readonly [K in keyof ReadStats]: ReadStats[K] }, s: DocumentsStats): void {
  into.changedFiles++;
  into.documents += s.documents;
  into.parsedDocuments += s.parsed;
  into.movedDocuments += s.moved;
}

async function subdirectories(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 16) return; // bounded: symlink loops and absurd trees
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name === 'node_modules') continue;
      const full = join(d, e.name);
      out.push(full);
      await walk(full, depth + 1);
    }
  };
  await walk(dir, 0);
  return out;
}

/** `Accepted=True, Programmed=True` style one-liner of a status. */
function summarize(s: ResourceStatus): string {
  const conds = (c: readonly { type: string; status: string; reason: string }[]): string =>
    c.map((x) => `${x.type}=${x.status}${x.status === 'True' ? '' : `(${x.reason})`}`).join(', ');
  switch (s.kind) {
    case 'HTTPRoute':
    case 'GRPCRoute':
      return s.status.parents
        .map((p) => `${p.parentRef.namespace ?? ''}/${p.parentRef.name}: ${conds(p.conditions)}`)
        .join('; ');
    case 'EnvoyExtensionPolicy':
      return s.status.ancestors
        .map(
          (a) =>
            `${a.ancestorRef.kind ?? ''} ${a.ancestorRef.namespace ?? ''}/${a.ancestorRef.name}${a.ancestorRef.sectionName === undefined ? '' : `/${a.ancestorRef.sectionName}`}: ${conds(a.conditions)}`,
        )
        .join('; ');
    default:
      return conds(s.status.conditions);
  }
}
