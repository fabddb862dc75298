/**
 * `inspect`: what a reference points at — layout, both digests, sizes, media types — without
 * writing anything. The module digest of a compat image needs the layer unpacked, so inspect
 * downloads that one layer (bounded by `maxBytes`).
 */
import type { Descriptor } from './registry-client.js';
import { digestHex } from './digest.js';
import { detectLayout, envoyGatewayCompatible, extractModule, type WasmLayout } from './layouts.js';
import { clientFor, type RegistryConnectionOptions } from './pull.js';
import { formatReference, parseReference } from './reference.js';
import { sha256Digest } from './digest.js';
import { DEFAULT_MAX_MODULE_BYTES } from './wasm.js';
import { proxyWasmAbiVersions } from './wasm.js';

/** What `inspectWasmImage` reports. */
export interface InspectResult {
  readonly reference: string;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly manifestSize: number;
  readonly layout: WasmLayout;
  readonly envoyGatewayCompatible: boolean;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations: Readonly<Record<string, string>>;
  readonly moduleDigest: string;
  readonly moduleSha256: string;
  readonly moduleSize: number;
  /** `proxy_abi_version_*` exports of the module, when it was downloaded (compat) or small enough. */
  readonly abiVersions?: readonly string[];
}

/**
 * Reads a reference's manifest and reports its layout, both digests, sizes and media types. Raw
 * layouts show the module digest in the manifest; compat images are downloaded and unpacked
 * (within `maxBytes`) to compute it.
 */
export async function inspectWasmImage(
  reference: string,
  opts: RegistryConnectionOptions & { maxBytes?: number } = {},
): Promise<InspectResult> {
  const ref = parseReference(reference);
  const subject = formatReference(ref);
  const { client, owned } = clientFor(opts);
  try {
    const manifest = await client.getManifest(ref);
    const image = detectLayout(manifest, subject);
    let moduleDigest = image.moduleDigest;
    let moduleSize = image.layer.size;
    let abiVersions: string[] | undefined;
    if (moduleDigest === undefined) {
      const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODULE_BYTES;
      const module = extractModule(image, await client.fetchBlob(ref, image.layer, { maxBytes }), subject, maxBytes);
      moduleDigest = sha256Digest(module);
      moduleSize = module.length;
      abiVersions = proxyWasmAbiVersions(module);
    }
    return {
      reference: subject,
      manifestDigest: manifest.digest,
      manifestMediaType: manifest.mediaType,
      manifestSize: manifest.bytes.length,
      layout: image.layout,
      envoyGatewayCompatible: envoyGatewayCompatible(image.layout),
      ...(image.artifactType === undefined ? {} : { artifactType: image.artifactType }),
      config: image.config,
      layers: image.layers,
      annotations: image.annotations,
      moduleDigest,
      moduleSha256: digestHex(moduleDigest),
      moduleSize,
      ...(abiVersions === undefined ? {} : { abiVersions }),
    };
  } finally {
    if (owned) await client.close();
  }
}
