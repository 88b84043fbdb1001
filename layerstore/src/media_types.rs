//! Media types of the OCI image spec and of Docker's image manifest v2 schema 2.

/// An OCI image manifest: one config and its layers.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index: a list of manifests, usually one per platform.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// An uncompressed OCI layer that registries may not redistribute (deprecated in OCI 1.1); fetched from its descriptor's `urls`.
pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// A gzip-compressed non-distributable OCI layer (deprecated in OCI 1.1).
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// The OCI empty descriptor's content, `{}` (OCI 1.1), used as the config of artifacts that have none.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list, Docker's counterpart of the OCI index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image config (same content as the OCI one, plus Docker's extensions).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A gzip-compressed Docker layer tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A gzip-compressed Docker foreign layer (Windows base layers), fetched from its descriptor's `urls`.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker 25's `docker save` writes uncompressed layers with this type.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// A zstd layer in a Docker manifest (containerd's and BuildKit's name; Docker's schema has none).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// A zstd-compressed non-distributable OCI layer (deprecated in OCI 1.1).
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Is this the media type of a single-image manifest?
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Is this the media type of an index or manifest list?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Is this the media type of an image config?
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// A gzip-compressed tar.
    Gzip,
    /// A zstd-compressed tar.
    Zstd,
}

impl Compression {
    /// How the compression is named in messages: `uncompressed`, `gzip`, `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The compression of a layer media type, or `None` when it is not a layer type we can read.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER | OCI_LAYER_NONDISTRIBUTABLE | DOCKER_LAYER_TAR => Some(Compression::None),
        OCI_LAYER_GZIP
        | OCI_LAYER_NONDISTRIBUTABLE_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_FOREIGN_GZIP => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | OCI_LAYER_NONDISTRIBUTABLE_ZSTD | DOCKER_LAYER_ZSTD => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}
