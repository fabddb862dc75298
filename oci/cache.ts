/**
 * The on-disk module cache: a content-addressed blob store plus a reference index.
 *
 * ```
 *   <dir>/blobs/sha256/<hex>        module bytes and manifest bytes, named by their sha256
 *   <dir>/manifests/<hex>.json      what a manifest digest resolved to (layout, module digest…)
 *   <dir>/refs/<sha256(ref)>.json   the manifest digest a tag reference last resolved to
 *   <dir>/tmp/                      downloads in progress (never read)
 *   <dir>/locks/<hex>.lock          held by the process downloading that manifest
 * ```
 *
 * Nothing partial is ever visible: every file is written to `tmp/` and renamed into place, blobs
 * before the manifest record that names them, the record before the reference. Readers treat a
 * record whose blob is missing as a miss. One download per digest runs at a time: within a
 * process through `singleFlight`, across processes through a lock file (`withLock`: created with
 * O_EXCL, kept fresh while held, taken over when its holder died or stopped refreshing it).
 * Eviction is least-recently-used (record mtime, touched on every hit) once the blobs exceed
 * `maxBytes`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { rootLogger } from '../common/log.js';
import { digestHex } from './digest.js';
import { OciError } from './errors.js';
import type { WasmLayout } from './layouts.js';

const log = rootLogger.child({ component: 'oci' });

/** Envoy Gateway's cache cap: 1 GiB. */
export const DEFAULT_CACHE_MAX_BYTES = 1024 * 1024 * 1024;

/** What the cache remembers about one manifest. */
export interface CachedModuleRecord {
  /** `registry/repository` the manifest was pulled from (the first time). */
  readonly repository: string;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly layout: WasmLayout;
  /** `sha256:` of the module bytes. */
  readonly moduleDigest: string;
  readonly size: number;
}

/** A cache hit: the record and where the module bytes are. */
export interface CachedModule extends CachedModuleRecord {
  /** Absolute path of the module file (content-addressed, never rewritten). */
  readonly path: string;
}

/** Options of `ModuleCache`. */
export interface ModuleCacheOptions {
  /** Upper bound of the blob store; least recently used modules are evicted above it. Default 1 GiB. */
  readonly maxBytes?: number;
}

/** A held lock is refreshed this often, and counts as stale after `LOCK_STALE_MS` without it. */
const LOCK_REFRESH_MS = 5_000;
const LOCK_STALE_MS = 30_000;

/** Stale: its holder on this host is gone, or it has not been refreshed for `LOCK_STALE_MS`. */
async function lockIsStale(path: string): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (Date.now() - st.mtimeMs > LOCK_STALE_MS) return true;
    const [pid, host] = text.trim().split(' ');
    if (host === hostname() && pid !== undefined && /^\d+$/.test(pid)) {
      try {
        process.kill(Number(pid), 0);
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ESRCH';
      }
    }
    return false;
  } catch {
    // Released (or half-written) while we looked: try again.
    return false;
  }
}

/**
 * The module cache on disk (layout and guarantees in the file comment). One instance per
 * directory per process is enough; several processes may share a directory.
 */
export class ModuleCache {
  readonly maxBytes: number;
  private readonly inflight = new Map<string, Promise<unknown>>();
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    options: ModuleCacheOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      for (const d of ['blobs/sha256', 'manifests', 'refs', 'tmp', 'locks'])
        await mkdir(join(this.dir, d), { recursive: true });
    })();
    return this.ready;
  }

  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  private recordPath(manifestDigest: string): string {
    return join(this.dir, 'manifests', `${digestHex(manifestDigest)}.json`);
  }

  private refPath(reference: string): string {
    return join(this.dir, 'refs', `${createHash('sha256').update(reference).digest('hex')}.json`);
  }

  /** The module a manifest digest resolved to, or undefined. Marks it recently used. */
  async lookupDigest(manifestDigest: string): Promise<CachedModule | undefined> {
    const recordFile = this.recordPath(manifestDigest);
    let record: CachedModuleRecord;
    try {
      record = JSON.parse(await readFile(recordFile, 'utf8')) as CachedModuleRecord;
    } catch {
      return undefined;
    }
    const path = this.blobPath(record.moduleDigest);
    try {
      const now = new Date();
      // Touching the record is the LRU clock; it also proves the file still exists.
      await Promise.all([utimes(recordFile, now, now), stat(path)]);
    } catch {
      return undefined;
    }
    return { ...record, path };
  }

  /** The manifest digest a (tag) reference last resolved to, or undefined. */
  async lookupReference(reference: string): Promise<string | undefined> {
    try {
      const r = JSON.parse(await readFile(this.refPath(reference), 'utf8')) as { manifestDigest?: unknown };
      return typeof r.manifestDigest === 'string' ? r.manifestDigest : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A fresh path in `tmp/` for a module being downloaded (`store`'s `moduleFile`). Nothing reads
   * `tmp/`; the caller renames the file through `store` or deletes it.
   */
  async temporaryPath(): Promise<string> {
    await this.init();
    return join(this.dir, 'tmp', `${randomBytes(8).toString('hex')}.tmp`);
  }

  private async writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
    const tmp = join(this.dir, 'tmp', `${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, data);
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Stores a verified module and its manifest, then (optionally) points `reference` at it.
   * Evicts least recently used modules afterwards if the store is over `maxBytes`. With
   * `moduleFile` (a `temporaryPath` already holding exactly `module`, written while it
   * downloaded) that file is renamed into place instead of writing the bytes again.
   */
  async store(
    record: CachedModuleRecord,
    module: Uint8Array,
    manifest: Uint8Array,
    reference?: string,
    options: { moduleFile?: string } = {},
  ): Promise<CachedModule> {
    if (module.length > this.maxBytes) {
      throw new OciError(
        'OCI_TOO_LARGE',
        `module ${record.moduleDigest} (${module.length} bytes) does not fit the ${this.maxBytes}-byte cache`,
        {
          hint: 'raise the cache size limit',
        },
      );
    }
    await this.init();
    const path = this.blobPath(record.moduleDigest);
    await this.writeAtomic(this.blobPath(record.manifestDigest), manifest);
    if (options.moduleFile === undefined) await this.writeAtomic(path, module);
    else await rename(options.moduleFile, path);
    await this.writeAtomic(this.recordPath(record.manifestDigest), JSON.stringify(record));
    if (reference !== undefined) await this.setReference(reference, record.manifestDigest);
    await this.evict(record.manifestDigest);
    return { ...record, path };
  }

  /** Points a reference at a manifest digest (after a registry lookup). */
  async setReference(reference: string, manifestDigest: string): Promise<void> {
    await this.init();
    await this.writeAtomic(this.refPath(reference), JSON.stringify({ reference, manifestDigest }));
  }

  /**
   * Runs `fn` unless a call with the same key is running, in which case it waits for that one.
   * Used so concurrent pulls of one manifest download it once.
   */
  singleFlight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running !== undefined) return running as Promise<T>;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /**
   * Runs `fn` while holding the cross-process lock for `digest`. If another process holds it,
   * waits (polling every `pollMs`) until it is released or goes stale, up to `timeoutMs`; the
   * caller re-checks the cache inside `fn`, since the other process has usually stored the module.
   */
  async withLock<T>(
    digest: string,
    fn: () => Promise<T>,
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<T> {
    await this.init();
    const path = join(this.dir, 'locks', `${digestHex(digest)}.lock`);
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    const pollMs = options.pollMs ?? 50;
    for (;;) {
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(`${process.pid} ${hostname()}\n`);
        await fh.close();
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (await lockIsStale(path)) {
        log.warn('taking over a stale cache lock', { path });
        await rm(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new OciError('OCI_CACHE_LOCKED', `cache lock ${path} is held by another process`, {
          hint: 'another envext is downloading this module; if none is running, delete the lock file',
        });
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
    // Keep the lock fresh so a long download is not mistaken for a dead holder.
    const refresh = setInterval(() => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    }, LOCK_REFRESH_MS);
    refresh.unref();
    try {
      return await fn();
    } finally {
      clearInterval(refresh);
      await rm(path, { force: true });
    }
  }

  /** Every record with its last use, oldest first. */
  async entries(): Promise<{ record: CachedModuleRecord; usedAt: number }[]> {
    await this.init();
    const out: { record: CachedModuleRecord; usedAt: number }[] = [];
    for (const f of await readdir(join(this.dir, 'manifests'))) {
      if (!f.endsWith('.json')) continue;
      const p = join(this.dir, 'manifests', f);
      try {
        const [text, st] = await Promise.all([readFile(p, 'utf8'), stat(p)]);
        out.push({ record: JSON.parse(text) as CachedModuleRecord, usedAt: st.mtimeMs });
      } catch {
        // removed concurrently
      }
    }
    return out.sort((a, b) => a.usedAt - b.usedAt);
  }

  /** Total bytes of the blob store. */
  async size(): Promise<number> {
    await this.init();
    let total = 0;
    const dir = join(this.dir, 'blobs', 'sha256');
    for (const f of await readdir(dir)) {
      try {
        total += (await stat(join(dir, f))).size;
      } catch {
        // removed concurrently
      }
    }
    return total;
  }

  /** Evicts least recently used modules until the store fits `maxBytes`; never `keep`. */
  async evict(keep?: string): Promise<string[]> {
    let total = await this.size();
    if (total <= this.maxBytes) return [];
    const evicted: string[] = [];
    const entries = await this.entries();
    const stillUsed = new Set(entries.map((e) => e.record.moduleDigest));
    for (const { record } of entries) {
      if (total <= this.maxBytes) break;
      if (record.manifestDigest === keep) continue;
      // Record first, so no record ever points at a deleted blob.
      await rm(this.recordPath(record.manifestDigest), { force: true });
      stillUsed.delete(record.moduleDigest);
      const others = entries.some(
        (e) =>
          e.record.manifestDigest !== record.manifestDigest &&
          e.record.moduleDigest === record.moduleDigest &&
          !evicted.includes(e.record.manifestDigest),
      );
      for (const d of others ? [record.manifestDigest] : [record.manifestDigest, record.moduleDigest]) {
        const p = this.blobPath(d);
        try {
          total -= (await stat(p)).size;
          await rm(p, { force: true });
        } catch {
          // already gone
        }
      }
      evicted.push(record.manifestDigest);
      log.info('evicted module from cache', {
        manifestDigest: record.manifestDigest,
        moduleDigest: record.moduleDigest,
      });
    }
    return evicted;
  }

  /** Files in `tmp/` (downloads in progress); tests use it to prove nothing partial is left. */
  async temporaryFiles(): Promise<string[]> {
    await this.init();
    return readdir(join(this.dir, 'tmp'));
  }
}
