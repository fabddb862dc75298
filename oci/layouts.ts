/**
 * The five ways a Wasm module travels in a registry (reference oci.md §1), how to build them and
 * how to find the module in what a registry returns.
 *
 * | layout          | manifest        | module is in                                   | Istio / EG pull |
 * |-----------------|-----------------|------------------------------------------------|-----------------|
 * | `oci`           | OCI image       | layer `vnd.module.wasm.content.layer.v1+wasm`, | yes             |
 * |                 |                 | config duplicated as first of exactly 2 layers |                 |
 * | `compat`        | OCI image       | `plugin.wasm` in the last layer (tar+gzip)     | yes             |
 * | `compat-docker` | Docker schema 2 | `plugin.wasm` in the last layer (tar.gzip)     | yes             |
 * | `cncf`          | OCI image       | the `application/wasm` layer, config           | no              |
 * |                 |                 | `application/vnd.wasm.config.v0+json`          |                 |
 * | `oras`          | OCI image 1.1   | the single layer, raw bytes                    | no              |
 *
 * solo.io's naming trap: the **"oci" variant** has the custom media types; the **"compat"
 * variant** is the ordinary image. Detection follows Istio/EG's order (Docker manifest → compat →
 * oci), then the CNCF and plain-ORAS extensions.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { assertDigest, sha256Digest } from './digest.js';
import { OciError } from './errors.js';
import { ANNOTATION_TITLE, EMPTY_CONFIG, MediaType } from './media-types.js';
import type { Descriptor, FetchedManifest } from './registry-client.js';
import { createTar, findInTar } from './tar.js';
import { proxyWasmAbiVersions, validateModule } from './wasm.js';

/** Every layout, in the order `--help` lists them. */
export const WASM_LAYOUTS = ['oci', 'compat', 'compat-docker', 'cncf', 'oras'] as const;
/** A Wasm image layout; also the values of `envext oci push --format`. */
export type WasmLayout = (typeof WASM_LAYOUTS)[number];
/** The default push format: the solo "oci" variant, pullable by both Envoy Gateway and Istio. */
export const DEFAULT_LAYOUT: WasmLayout = 'oci';

/** Layouts Envoy Gateway and Istio can pull. */
export function envoyGatewayCompatible(layout: WasmLayout): boolean {
  return layout === 'oci' || layout === 'compat' || layout === 'compat-docker';
}

/** Narrows a `--format` value. */
export function isWasmLayout(value: string): value is WasmLayout {
  return (WASM_LAYOUTS as readonly string[]).includes(value);
}

/** A blob to upload. */
export interface Blob {
  readonly digest: string;
  readonly mediaType: string;
  readonly data: Buffer;
}

/** An image ready to push: blobs first, then the manifest bytes. */
export interface BuiltImage {
  readonly layout: WasmLayout;
  readonly manifest: Buffer;
  readonly manifestMediaType: string;
  readonly manifestDigest: string;
  /** sha256 of the module itself (what Envoy's `RemoteDataSource.sha256` checks). */
  readonly moduleDigest: string;
  readonly blobs: readonly Blob[];
}

/** Options of `buildImage`. */
export interface BuildOptions {
  /** Manifest annotations (`--annotation k=v`). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** File name recorded in layer titles (oras, cncf). Default `plugin.wasm`. */
  readonly title?: string;
  /** `created` of the cncf config; default `SOURCE_DATE_EPOCH` when set, else now. */
  readonly created?: Date;
  /** Module size cap; default 256 MiB. */
  readonly maxBytes?: number;
  /**
   * The module's `sha256:` digest when the caller already computed it (e.g. while reading the
   * file). Not re-checked here; a wrong value makes the registry refuse the upload.
   */
  readonly moduleDigest?: string;
}

/** A blob; pass `digest` when it is already known (hashing 32 MiB costs ~35 ms). */
function blob(mediaType: string, data: Buffer, digest?: string): Blob {
  return { digest: digest ?? sha256Digest(data), mediaType, data };
}

function descriptor(b: Blob, annotations?: Record<string, string>): Record<string, unknown> {
  return {
    mediaType: b.mediaType,
    digest: b.digest,
    size: b.data.length,
    ...(annotations === undefined ? {} : { annotations }),
  };
}

function createdTime(options: BuildOptions): string {
  if (options.created !== undefined) return options.created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const epoch = process.env['SOURCE_DATE_EPOCH'];
  const d = epoch !== undefined && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Builds the manifest and blobs of `layout` for a module. Refuses non-wasm or over-size input. */
export function buildImage(module: Buffer, layout: WasmLayout, options: BuildOptions = {}): BuiltImage {
  validateModule(module, 'the module to push', options.maxBytes);
  const moduleDigest = options.moduleDigest ?? sha256Digest(module);
  const title = options.title ?? 'plugin.wasm';
  const userAnnotations = { ...(options.annotations ?? {}) };
  const abi = proxyWasmAbiVersions(module);
  let manifest: Record<string, unknown>;
  let blobs: Blob[];
  let manifestMediaType: string = MediaType.ociManifest;
  switch (layout) {
    case 'oci': {
      // As wasme builds it: the runtime config is the manifest config AND the first of exactly
      // two layers, because Istio/EG only look at `layers` and demand two.
      const config = blob(
        MediaType.soloWasmConfig,
        Buffer.from(JSON.stringify({ type: 'envoy_proxy', abiVersions: abi, config: { rootIds: [] } })),
      );
      const wasm = blob(MediaType.soloWasmLayer, module, moduleDigest);
      const configDesc = descriptor(config, { [ANNOTATION_TITLE]: 'runtime-config.json' });
      manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: configDesc,
        layers: [configDesc, descriptor(wasm, { [ANNOTATION_TITLE]: 'filter.wasm' })],
        annotations: {
          'module.wasm.runtime/type': 'envoy_proxy',
          'module.wasm.runtime/abi_version': abi.join(','),
          ...userAnnotations,
        },
      };
      blobs = [config, wasm];
      break;
    }
    case 'compat':
    case 'compat-docker': {
      const docker = layout === 'compat-docker';
      const tar = createTar([{ name: 'plugin.wasm', data: module }]);
      // Node's gzip header carries mtime 0 and no file name: the layer is reproducible.
      const layer = blob(
        docker ? MediaType.dockerLayerTarGzip : MediaType.ociLayerTarGzip,
        gzipSync(tar, { level: 6 }),
      );
      // A real image config (rootfs.diff_ids = sha256 of the uncompressed tar) so generic image
      // tools (skopeo inspect, crane, docker) accept it. Platform wasm/wasip1: nothing runs it.
      const config = blob(
        docker ? MediaType.dockerImageConfig : MediaType.ociImageConfig,
        Buffer.from(
          JSON.stringify({
            architecture: 'wasm',
            os: 'wasip1',
            config: {},
            rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
            history: [{ created_by: 'envext oci push --format ' + layout }],
          }),
        ),
      );
      manifestMediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
      manifest = {
        schemaVersion: 2,
        mediaType: manifestMediaType,
        config: descriptor(config),
        layers: [descriptor(layer)],
      };
      // Docker schema 2 manifests have no annotations field.
      if (!docker) manifest['annotations'] = { 'module.wasm.image/variant': 'compat', ...userAnnotations };
      else if (Object.keys(userAnnotations).length > 0) {
        throw new OciError(
          'OCI_MANIFEST_INVALID',
          'Docker schema 2 manifests (--format compat-docker) cannot carry annotations',
          {
            hint: 'drop --annotation, or use --format compat',
          },
        );
      }
      blobs = [config, layer];
      break;
    }
    case 'cncf': {
      const wasm = blob(MediaType.wasm, module, moduleDigest);
      const config = blob(
        MediaType.cncfWasmConfig,
        Buffer.from(
          JSON.stringify({
            created: createdTime(options),
            architecture: 'wasm',
            os: 'wasip1',
            layerDigests: [wasm.digest],
          }),
        ),
      );
      manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptor(config),
        layers: [descriptor(wasm, { [ANNOTATION_TITLE]: title })],
        ...(Object.keys(userAnnotations).length > 0 ? { annotations: userAnnotations } : {}),
      };
      blobs = [config, wasm];
      break;
    }
    case 'oras': {
      // image-spec 1.1 artifact: empty config, artifactType, one titled layer (what
      // `oras push --artifact-type application/wasm REF plugin.wasm:application/wasm` writes).
      const empty = blob(EMPTY_CONFIG.mediaType, Buffer.from('{}'));
      const wasm = blob(MediaType.wasm, module, moduleDigest);
      manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: MediaType.wasm,
        config: descriptor(empty),
        layers: [descriptor(wasm, { [ANNOTATION_TITLE]: title })],
        ...(Object.keys(userAnnotations).length > 0 ? { annotations: userAnnotations } : {}),
      };
      blobs = [empty, wasm];
      break;
    }
  }
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { layout, manifest: bytes, manifestMediaType, manifestDigest: sha256Digest(bytes), moduleDigest, blobs };
}

/** A manifest understood as a Wasm image. */
export interface WasmImage {
  readonly layout: WasmLayout;
  /** The blob holding the module (raw for oci/cncf/oras, tar+gzip for compat). */
  readonly layer: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations: Readonly<Record<string, string>>;
  readonly artifactType?: string;
  /** The module's sha256 when the manifest shows it (raw layers); compat needs the layer unpacked. */
  readonly moduleDigest?: string;
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  const v = value as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown } | null;
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.mediaType !== 'string' ||
    typeof v.digest !== 'string' ||
    typeof v.size !== 'number'
  ) {
    throw new OciError('OCI_MANIFEST_INVALID', `${where} is not a descriptor (needs mediaType, digest, size)`);
  }
  assertDigest(v.digest, `${where}.digest`);
  if (!Number.isSafeInteger(v.size) || v.size < 0)
    throw new OciError('OCI_MANIFEST_INVALID', `${where}.size is not a byte count`);
  const annotations =
    v.annotations !== null && typeof v.annotations === 'object' ? (v.annotations as Record<string, string>) : undefined;
  return {
    mediaType: v.mediaType,
    digest: v.digest,
    size: v.size,
    ...(annotations === undefined ? {} : { annotations }),
  };
}

/**
 * Works out which layout a manifest is and where its module is. Throws `OCI_INDEX_NOT_SUPPORTED`
 * for an index, `OCI_UNSUPPORTED_MEDIA_TYPE` for other manifest types, `OCI_NOT_WASM` when no
 * layout fits (the message lists why each failed, as Istio/EG do).
 */
export function detectLayout(m: FetchedManifest, subject: string): WasmImage {
  if (m.mediaType === MediaType.ociIndex || m.mediaType === MediaType.dockerManifestList) {
    throw new OciError(
      'OCI_INDEX_NOT_SUPPORTED',
      `${subject} is an image index (${m.mediaType}), not a single manifest`,
      {
        hint: 'reference the Wasm manifest itself by tag or @sha256: digest; Envoy Gateway and Istio would pick the linux/amd64 child, which a Wasm module does not have',
      },
    );
  }
  if (m.mediaType !== MediaType.ociManifest && m.mediaType !== MediaType.dockerManifest) {
    throw new OciError(
      'OCI_UNSUPPORTED_MEDIA_TYPE',
      `${subject} has manifest media type ${m.mediaType}, which is not an image manifest`,
      {
        hint: `push it again as ${MediaType.ociManifest} (envext oci push)`,
      },
    );
  }
  const parsed = JSON.parse(m.bytes.toString('utf8')) as {
    config?: unknown;
    layers?: unknown;
    annotations?: unknown;
    artifactType?: unknown;
  };
  if (!Array.isArray(parsed.layers))
    throw new OciError('OCI_MANIFEST_INVALID', `${subject}: manifest has no layers array`);
  const config = parseDescriptor(parsed.config, `${subject}: config`);
  const layers = parsed.layers.map((l, i) => parseDescriptor(l, `${subject}: layers[${i}]`));
  const annotations =
    parsed.annotations !== null && typeof parsed.annotations === 'object'
      ? (parsed.annotations as Record<string, string>)
      : {};
  const artifactType = typeof parsed.artifactType === 'string' ? parsed.artifactType : undefined;
  const base = { config, layers, annotations, ...(artifactType === undefined ? {} : { artifactType }) };
  const last = layers[layers.length - 1];
  const why: string[] = [];

  if (m.mediaType === MediaType.dockerManifest) {
    if (last?.mediaType === MediaType.dockerLayerTarGzip) return { ...base, layout: 'compat-docker', layer: last };
    throw new OciError(
      'OCI_NOT_WASM',
      `${subject} is a Docker image whose last layer is ${last?.mediaType ?? 'missing'}, not ${MediaType.dockerLayerTarGzip} holding plugin.wasm`,
      {
        hint: 'push the module with envext oci push',
      },
    );
  }
  if (last?.mediaType === MediaType.ociLayerTarGzip) return { ...base, layout: 'compat', layer: last };
  why.push(
    `could not parse as compat variant: last layer is ${last?.mediaType ?? 'missing'}, not ${MediaType.ociLayerTarGzip}`,
  );
  const solo = layers.find((l) => l.mediaType === MediaType.soloWasmLayer);
  if (layers.length === 2 && solo !== undefined)
    return { ...base, layout: 'oci', layer: solo, moduleDigest: solo.digest };
  why.push(
    `could not parse as oci variant: needs exactly 2 layers with one ${MediaType.soloWasmLayer}, has ${layers.length}`,
  );
  const wasmLayers = layers.filter((l) => l.mediaType === MediaType.wasm);
  if (config.mediaType === MediaType.cncfWasmConfig && wasmLayers.length === 1 && wasmLayers[0] !== undefined) {
    return { ...base, layout: 'cncf', layer: wasmLayers[0], moduleDigest: wasmLayers[0].digest };
  }
  why.push(`not a CNCF Wasm artifact: needs config ${MediaType.cncfWasmConfig} and one ${MediaType.wasm} layer`);
  if (layers.length === 1 && last !== undefined && last.mediaType !== MediaType.dockerLayerTarGzip) {
    return { ...base, layout: 'oras', layer: last, moduleDigest: last.digest };
  }
  why.push(`not a single-layer ORAS artifact: has ${layers.length} layers`);
  throw new OciError('OCI_NOT_WASM', `${subject} is not a Wasm image: ${why.join('; ')}`, {
    hint: 'push the module with envext oci push',
  });
}

/**
 * Gets the module out of the layer blob (already verified against its digest) and validates it.
 * compat layers are gunzipped with an output cap and searched for `plugin.wasm` (any directory).
 */
export function extractModule(image: WasmImage, layerBlob: Buffer, subject: string, maxBytes: number): Buffer {
  let module: Buffer;
  if (image.layout === 'compat' || image.layout === 'compat-docker') {
    let tar: Buffer;
    try {
      // The tar adds headers and padding: allow a little more than the module cap.
      tar = gunzipSync(layerBlob, { maxOutputLength: maxBytes + 1024 * 1024 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new OciError('OCI_TOO_LARGE', `${subject}: the compat layer unpacks to more than ${maxBytes} bytes`, {
          cause: e,
        });
      }
      throw new OciError('OCI_NOT_WASM', `${subject}: the compat layer is not valid gzip (${(e as Error).message})`, {
        cause: e,
      });
    }
    const found = findInTar(tar, 'plugin.wasm', `${subject} layer ${image.layer.digest}`);
    if (found === undefined) {
      throw new OciError('OCI_NOT_WASM', `${subject}: the compat layer has no plugin.wasm`, {
        hint: 'the compat variant needs plugin.wasm in its last layer',
      });
    }
    module = found;
  } else {
    module = layerBlob;
  }
  validateModule(module, `module in ${subject}`, maxBytes);
  return module;
}
