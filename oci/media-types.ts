/**
 * Media types of the manifests and layers the Wasm layouts use (reference oci.md §1).
 */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociImageConfig: 'application/vnd.oci.image.config.v1+json',
  dockerImageConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerLayerTarGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  /** solo "oci" variant. */
  soloWasmConfig: 'application/vnd.module.wasm.config.v1+json',
  soloWasmLayer: 'application/vnd.module.wasm.content.layer.v1+wasm',
  /** CNCF TAG-Runtime Wasm artifact. */
  cncfWasmConfig: 'application/vnd.wasm.config.v0+json',
  wasm: 'application/wasm',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Every manifest type the client can parse, for `Accept` on manifest GET/HEAD. */
export const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
].join(', ');

/** Annotation that names a layer's file (oras, wasme). */
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';

/** The empty JSON descriptor of image-spec 1.1 (`{}`). */
export const EMPTY_CONFIG = {
  mediaType: MediaType.ociEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;
