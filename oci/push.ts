/**
 * Pushing a module: build the layout, upload blobs (skipping what exists), then the manifest
 * under the tag (or by digest). Always a single image manifest, never an index.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { rootLogger } from '../common/log.js';
import { OciError } from './errors.js';
import { buildImage, DEFAULT_LAYOUT, envoyGatewayCompatible, type BuiltImage, type WasmLayout } from './layouts.js';
import { clientFor, type RegistryConnectionOptions } from './pull.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import type { IncomingBlob, ProgressFn, RegistryClient } from './registry-client.js';
import { digestHex } from './digest.js';
import { validateModule } from './wasm.js';

const log = rootLogger.child({ component: 'oci' });

/** Options of `pushWasmModule`. */
export interface PushOptions extends RegistryConnectionOptions {
  /** Layout; default `oci` (solo "oci" variant), pullable by Envoy Gateway and Istio. */
  readonly format?: WasmLayout;
  /** Manifest annotations. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Layer title for cncf/oras. Default `plugin.wasm`. */
  readonly title?: string;
  /** Another repository on the same registry that may already hold the blobs (cross-repo mount). */
  readonly mountFrom?: string;
  /** Module size cap; default 256 MiB. */
  readonly maxBytes?: number;
  /** Bytes uploaded of all blobs. */
  readonly onProgress?: ProgressFn;
}

/** What a push did, with both digests. */
export interface PushResult {
  /** `registry/repository@sha256:…` — the pinned reference to give to Envoy Gateway. */
  readonly reference: string;
  readonly tag?: string;
  readonly layout: WasmLayout;
  readonly envoyGatewayCompatible: boolean;
  /** `sha256:` of the manifest — EG's `code.image.sha256` (without the prefix). */
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  /** `sha256:` of the module. */
  readonly moduleDigest: string;
  /** Hex sha256 of the module — Envoy's `RemoteDataSource.sha256`. */
  readonly moduleSha256: string;
  readonly size: number;
  /** What happened to each blob. */
  readonly blobs: readonly {
    digest: string;
    mediaType: string;
    size: number;
    result: 'exists' | 'mounted' | 'uploaded';
  }[];
}

/**
 * Pushes a module to `reference` in the chosen layout (default `oci`) and returns both digests.
 * Refuses non-wasm or over-size input before any network call. A reference with `@sha256:`
 * must match the manifest that would be built.
 *
 * The module is bytes, a `HashedModule` (`readModuleFile`), or a `ModuleFile` (`openModuleFile`,
 * what `envext oci push` uses). With a `ModuleFile` and a raw layout (`oci`, `cncf`, `oras`) a
 * module above the client's chunk threshold is uploaded while it is still being read and hashed,
 * and the `HEAD` that skips an existing blob runs as soon as the digest is known (a hit cancels
 * the upload). With bytes or a `HashedModule` the digest is known up front, so that `HEAD`
 * comes first and nothing is sent for a blob the registry has.
 */
export async function pushWasmModule(
  reference: string,
  input: Buffer | HashedModule | ModuleFile,
  opts: PushOptions = {},
): Promise<PushResult> {
  const ref = parseReference(reference);
  const layout = opts.format ?? DEFAULT_LAYOUT;
  if (input instanceof ModuleFile) {
    // Raw layers stream while the file is read; a pinned push must build its manifest first,
    // and compat layers need the whole module to make their tar+gzip.
    if (ref.digest === undefined && STREAMABLE.has(layout)) return pushStreaming(ref, input, layout, opts);
    return pushWasmModule(reference, await input.hashed(), opts);
  }
  const hashed = input instanceof HashedModule ? input : undefined;
  const module = hashed === undefined ? (input as Buffer) : hashed.data;
  const built = buildImage(module, layout, {
    ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
    ...(opts.title === undefined ? {} : { title: opts.title }),
    ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }),
    ...(hashed === undefined ? {} : { moduleDigest: hashed.digest }),
  });
  if (ref.digest !== undefined && ref.digest !== built.manifestDigest) {
    throw new OciError(
      'OCI_DIGEST_MISMATCH',
      `${formatReference(ref)} pins ${ref.digest}, but the built manifest is ${built.manifestDigest}`,
      {
        hint: 'push by tag, or drop the @sha256: part',
      },
    );
  }
  const { client, owned } = clientFor(opts);
  try {
    // Distinct blobs only (the solo "oci" variant lists its config twice).
    const blobs = [...new Map(built.blobs.map((b) => [b.digest, b])).values()];
    const total = blobs.reduce((n, b) => n + b.data.length, 0);
    const done = new Map<string, number>();
    const report = (digest: string, n: number): void => {
      done.set(digest, n);
      let sum = 0;
      for (const v of done.values()) sum += v;
      opts.onProgress?.(sum, total);
    };
    const results = await Promise.all(
      blobs.map(async (b) => ({
        digest: b.digest,
        mediaType: b.mediaType,
        size: b.data.length,
        result: await client.pushBlob(ref, b.data, {
          digest: b.digest,
          ...(opts.mountFrom === undefined ? {} : { mountFrom: opts.mountFrom }),
          onProgress: (n) => report(b.digest, n),
        }),
      })),
    );
    return await finishPush(client, ref, built, module.length, results);
  } finally {
    if (owned) await client.close();
  }
}

/** Puts the manifest once every blob is in, and describes the push. */
async function finishPush(
  client: RegistryClient,
  ref: Reference,
  built: BuiltImage,
  size: number,
  blobs: PushResult['blobs'],
): Promise<PushResult> {
  const target = ref.digest ?? ref.tag ?? 'latest';
  const manifestDigest = await client.putManifest(ref, target, built.manifest, built.manifestMediaType);
  log.debug('pushed module', { reference: formatReference(ref), manifestDigest, layout: built.layout });
  return {
    reference: `${ref.registry}/${ref.repository}@${manifestDigest}`,
    ...(ref.tag === undefined ? {} : { tag: ref.tag }),
    layout: built.layout,
    envoyGatewayCompatible: envoyGatewayCompatible(built.layout),
    manifestDigest,
    manifestMediaType: built.manifestMediaType,
    moduleDigest: built.moduleDigest,
    moduleSha256: digestHex(built.moduleDigest),
    size,
    blobs,
  };
}

/** Layouts whose module layer is the raw file, so it can be uploaded while being read. */
const STREAMABLE: ReadonlySet<WasmLayout> = new Set<WasmLayout>(['oci', 'cncf', 'oras']);

async function pushStreaming(
  ref: Reference,
  file: ModuleFile,
  layout: WasmLayout,
  opts: PushOptions,
): Promise<PushResult> {
  // The same checks as buildImage, on the size and the first bytes, before any request.
  validateModule(
    file.data.subarray(0, await file.ready(Math.min(8, file.size))),
    'the module to push',
    opts.maxBytes,
    file.size,
  );
  const { client, owned } = clientFor(opts);
  const stop = new AbortController();
  try {
    const done = new Map<string, number>();
    let total = file.size;
    const report = (key: string, n: number): void => {
      done.set(key, n);
      let sum = 0;
      for (const v of done.values()) sum += v;
      opts.onProgress?.(sum, total);
    };
    const upload = client.pushBlobFrom(ref, file, {
      ...(opts.mountFrom === undefined ? {} : { mountFrom: opts.mountFrom }),
      onProgress: (n) => report('module', n),
      signal: stop.signal,
    });
    // Awaited below; a failure while the file is still being read is not unhandled meanwhile.
    upload.catch(() => undefined);
    let hashed: HashedModule;
    try {
      // The upload asks for the digest once its session is open (so the hashing does not delay
      // that first request); if the upload ends first (a failure, or the file changed under it),
      // ask here. A failed upload is reported below, once the manifest would need it.
      hashed = await Promise.race([file.whenHashed(), upload.catch(() => undefined).then(() => file.hashed())]);
    } catch (e) {
      stop.abort(e);
      await upload.catch(() => undefined);
      throw e;
    }
    if (hashed.data !== file.data) {
      // The file changed size while it was read: the streamed upload stops on its own (its
      // digest fails); push what the re-read returned, as bytes.
      await upload.catch(() => undefined);
      return await pushWasmModule(formatReference(ref), hashed, { ...opts, client });
    }
    let built: BuiltImage;
    try {
      built = buildImage(hashed.data, layout, {
        ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
        ...(opts.title === undefined ? {} : { title: opts.title }),
        ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }),
        moduleDigest: hashed.digest,
      });
    } catch (e) {
      stop.abort(e);
      await upload.catch(() => undefined);
      throw e;
    }
    const others = [
      ...new Map(built.blobs.filter((b) => b.digest !== hashed.digest).map((b) => [b.digest, b])).values(),
    ];
    total += others.reduce((n, b) => n + b.data.length, 0);
    const results = new Map<string, PushResult['blobs'][number]['result']>();
    try {
      await Promise.all([
        upload.then((r) => results.set(hashed.digest, r)),
        ...others.map(async (b) =>
          results.set(
            b.digest,
            await client.pushBlob(ref, b.data, {
              digest: b.digest,
              ...(opts.mountFrom === undefined ? {} : { mountFrom: opts.mountFrom }),
              onProgress: (n) => report(b.digest, n),
            }),
          ),
        ),
      ]);
    } catch (e) {
      stop.abort(e);
      await upload.catch(() => undefined);
      throw e;
    }
    const blobs = [...new Map(built.blobs.map((b) => [b.digest, b])).values()].map((b) => ({
      digest: b.digest,
      mediaType: b.mediaType,
      size: b.data.length,
      result: results.get(b.digest) ?? ('uploaded' as const),
    }));
    return await finishPush(client, ref, built, hashed.data.length, blobs);
  } finally {
    if (owned) await client.close();
  }
}

/**
 * Module bytes with their sha256, computed by `readModuleFile` from those very bytes. Only this
 * module can make one (private constructor), so a push never trusts a digest from elsewhere: a
 * wrong digest naming a blob the registry already has would publish a broken image.
 */
export class HashedModule {
  private constructor(
    readonly data: Buffer,
    /** `sha256:` of `data`. */
    readonly digest: string,
  ) {}

  /** @internal Used by `readModuleFile` only. */
  static fromVerified(data: Buffer, digest: string): HashedModule {
    return new HashedModule(data, digest);
  }
}

/** Read size of module files: large enough that each read is cheap, small enough to overlap. */
const READ_CHUNK = 4 * 1024 * 1024;
const FIRST_READ = 64 * 1024;

/** Hashed between turns of the event loop: ~1 ms of sha256 each. */
const HASH_SLICE = 1024 * 1024;

/** The file changed size while it was read; its bytes are read again as a stream. */
class FileChangedError extends Error {
  constructor(path: string) {
    super(`${path} changed size while it was read`);
  }
}

/**
 * A module file being read in the background (`openModuleFile`) and hashed on demand. A regular
 * file is read straight into one buffer of its size (no chunk list, no concatenation copy) in
 * 4 MiB reads on the thread pool; `pushWasmModule` uploads the bytes as they become final
 * (`ready`) instead of waiting for the digest. The sha256 starts when someone asks for it
 * (`digest`, `hashed()`), so a streamed upload can get its session first, and runs in 1 MiB
 * slices between turns of the event loop, so the upload's socket writes and responses are never
 * queued behind 30 ms of hashing. A file that changes size while it is read is read again as a
 * stream: `digest` then fails and `hashed()` returns the re-read bytes.
 */
export class ModuleFile implements IncomingBlob {
  /** Bytes of `data` that are read and final. */
  private filled = 0;
  private failure: Error | undefined;
  private waiters: { n: number; resolve: (filled: number) => void; reject: (e: Error) => void }[] = [];
  private startHash: () => void = () => undefined;
  private readonly digestPromise: Promise<string>;
  private readonly result: Promise<HashedModule>;

  private constructor(
    readonly path: string,
    /** Size from `fstat` when the read began. */
    readonly size: number,
    /** The buffer being filled; see `ready`. */
    readonly data: Buffer,
    source: FileHandle | HashedModule,
  ) {
    if (source instanceof HashedModule) {
      this.filled = size;
      this.digestPromise = Promise.resolve(source.digest);
      this.result = Promise.resolve(source);
    } else {
      const reading = this.readAll(source);
      reading.catch(() => undefined);
      const asked = new Promise<void>((resolve) => (this.startHash = resolve));
      this.digestPromise = asked.then(() => this.hashAll(reading));
      this.result = this.digestPromise.then(
        (digest) => HashedModule.fromVerified(this.data, digest),
        async (e: unknown) => {
          if (e instanceof FileChangedError) return readStreaming(path);
          throw e;
        },
      );
    }
    // Both are awaited by whoever uses them; unused, their failure is not an unhandled rejection.
    this.digestPromise.catch(() => undefined);
    this.result.catch(() => undefined);
  }

  /** @internal Used by `openModuleFile`. */
  static start(path: string, size: number, fh: FileHandle): ModuleFile {
    return new ModuleFile(path, size, Buffer.allocUnsafe(size), fh);
  }

  /** @internal Used by `openModuleFile` for what is not a regular file (read whole first). */
  static complete(path: string, hashed: HashedModule): ModuleFile {
    return new ModuleFile(path, hashed.data.length, hashed.data, hashed);
  }

  /** `sha256:` of `data` once it is all read (asking starts the hashing); fails when the read fails or the file changed. */
  get digest(): Promise<string> {
    this.startHash();
    return this.digestPromise;
  }

  /** Resolves with the count of final bytes of `data` once there are at least `n` (capped at `size`). */
  ready(n: number): Promise<number> {
    if (this.filled >= Math.min(n, this.size)) return Promise.resolve(this.filled);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ n: Math.min(n, this.size), resolve, reject }));
  }

  /** The whole module with its digest (the re-read bytes if the file changed while read). */
  hashed(): Promise<HashedModule> {
    this.startHash();
    return this.result;
  }

  /** What `hashed()` returns, without starting the hashing: settles once someone else asked. */
  whenHashed(): Promise<HashedModule> {
    return this.result;
  }

  private advance(filled: number): void {
    this.filled = filled;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (filled >= w.n) w.resolve(filled);
      else this.waiters.push(w);
    }
  }

  private fail(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    this.failure = error;
    for (const w of this.waiters) w.reject(error);
    this.waiters = [];
  }

  /** Fills `data`, one read in flight at a time; fails when the file changed size meanwhile. */
  private async readAll(fh: FileHandle): Promise<void> {
    try {
      const { size, data } = this;
      let off = 0;
      // A small first read: the wasm header check (and so the first request) need not wait for 4 MiB.
      let next = Math.min(FIRST_READ, size);
      while (off < size) {
        const { bytesRead } = await fh.read(data, off, next, off);
        if (bytesRead === 0) break;
        off += bytesRead;
        next = Math.min(READ_CHUNK, size - off);
        this.advance(off);
      }
      // Shrunk (short) or grown (one more byte readable) while we read.
      if (off !== size || (await fh.read(Buffer.alloc(1), 0, 1, size)).bytesRead !== 0) {
        throw new FileChangedError(this.path);
      }
    } catch (e) {
      this.fail(e);
      throw e;
    } finally {
      await fh.close();
    }
  }

  /** sha256 of `data`, following the read; its failure (or the file's change) is the digest's. */
  private async hashAll(reading: Promise<void>): Promise<string> {
    const hash = createHash('sha256');
    for (let pos = 0; pos < this.size;) {
      const end = await this.ready(pos + 1);
      for (; pos < end; pos = Math.min(pos + HASH_SLICE, end)) {
        // Network callbacks first (the upload of these bytes, its responses).
        await new Promise<void>((resolve) => setImmediate(resolve));
        hash.update(this.data.subarray(pos, Math.min(pos + HASH_SLICE, end)));
      }
    }
    await reading;
    return `sha256:${hash.digest('hex')}`;
  }
}

/**
 * Opens a module file and starts reading it (hashing starts when asked for), for
 * `pushWasmModule(ref, await openModuleFile(path))` (which uploads while it reads) or
 * `(await openModuleFile(path)).hashed()`. Fails here when the file cannot be opened. Pipes,
 * devices and other non-regular files are read whole as a stream before this returns.
 */
export async function openModuleFile(path: string): Promise<ModuleFile> {
  const fh = await open(path, 'r');
  let started = false;
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) return ModuleFile.complete(path, await readStreaming(path));
    started = true;
    return ModuleFile.start(path, stat.size, fh);
  } finally {
    if (!started) await fh.close();
  }
}

/**
 * Reads a module file and hashes it in the same pass (see `ModuleFile`), for
 * `pushWasmModule(ref, await readModuleFile(path))` when the digest should be known before any
 * request: the skip of an existing blob then costs one `HEAD` and sends nothing.
 */
export async function readModuleFile(path: string): Promise<HashedModule> {
  return (await openModuleFile(path)).hashed();
}

async function readStreaming(path: string): Promise<HashedModule> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const b = chunk as Buffer;
    hash.update(b);
    chunks.push(b);
  }
  return HashedModule.fromVerified(Buffer.concat(chunks), `sha256:${hash.digest('hex')}`);
}
