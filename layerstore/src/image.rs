//! An image read from the store: its manifest and config, both kept as the exact bytes they were stored as.

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, ManifestError, ManifestKind};
use crate::media_types;
use crate::store::{Store, StoreError};

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading a blob from the store failed, or the blob is missing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest blob is not a valid manifest.
    #[error("manifest {digest}: {source}")]
    Manifest {
        /// The manifest's digest.
        digest: Digest,
        /// Why its bytes were refused.
        source: ManifestError,
    },
    /// The digest names an index or manifest list, where a single-platform image manifest was needed.
    #[error("manifest {0} is an index, not an image manifest")]
    NotAnImage(Digest),
    /// The digest names an image manifest, where an index was needed.
    #[error("manifest {0} is an image manifest, not an index")]
    NotAnIndex(Digest),
    /// An index in the store lists no image.
    #[error("index {0} lists no images")]
    EmptyIndex(Digest),
    /// An index in the store lists an index, which the store does not resolve.
    #[error("index {0} lists an index: nested indexes are not supported")]
    NestedIndex(Digest),
    /// A multi-platform image in the store has no image for the platform asked for.
    #[error("index {index} has no image for {platform} (it has {available})")]
    NoPlatform {
        /// The index's digest.
        index: Digest,
        /// The platform asked for, `os/arch[/variant]`.
        platform: String,
        /// The platforms it has, comma-separated.
        available: String,
    },
    /// The config blob is not valid JSON of an image config.
    #[error("config {digest}: invalid JSON: {source}")]
    Config {
        /// The config's digest.
        digest: Digest,
        /// What the JSON parser reported.
        source: serde_json::Error,
    },
    /// The manifest's config descriptor has a media type other than an image config's.
    #[error("config {digest} has media type {media_type:?}, which is not an image config")]
    ConfigMediaType {
        /// The config's digest.
        digest: Digest,
        /// The media type the manifest gives the config.
        media_type: String,
    },
    /// The manifest lists a different number of layers than the config has DiffIDs.
    #[error("image {manifest} has {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCount {
        /// The manifest's digest.
        manifest: Digest,
        /// The number of layers in the manifest.
        layers: usize,
        /// The number of DiffIDs in the config's `rootfs`.
        diff_ids: usize,
    },
}

/// A single-platform image: manifest and config, parsed and raw.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor: its media type, digest and size.
    pub descriptor: Descriptor,
    /// The manifest exactly as stored, the bytes its digest is computed from.
    pub manifest_bytes: Vec<u8>,
    /// The manifest, parsed.
    pub manifest: Manifest,
    /// The config exactly as stored, the bytes whose digest is the image ID.
    pub config_bytes: Vec<u8>,
    /// The config, parsed.
    pub config: ImageConfig,
}

impl Image {
    /// Reads and checks the image whose manifest `descriptor` names.
    pub fn read(store: &Store, descriptor: &Descriptor) -> Result<Image, ImageError> {
        let manifest_bytes = store.read_blob(&descriptor.digest)?;
        let manifest = match ManifestKind::parse(&manifest_bytes, &descriptor.media_type) {
            Ok(ManifestKind::Image(manifest)) => manifest,
            Ok(ManifestKind::Index(_)) => {
                return Err(ImageError::NotAnImage(descriptor.digest.clone()))
            }
            Err(source) => {
                return Err(ImageError::Manifest {
                    digest: descriptor.digest.clone(),
                    source,
                })
            }
        };
        let (config_bytes, config) = read_config(store, &manifest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::LayerCount {
                manifest: descriptor.digest.clone(),
                layers: manifest.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        Ok(Image {
            descriptor: descriptor.clone(),
            manifest_bytes,
            manifest: *manifest,
            config_bytes,
            config,
        })
    }

    /// Docker's image ID: the digest of the config.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The digest of the manifest.
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    /// Total stored size of config and layers.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// Reads, verifies and parses the config a manifest points at.
pub fn read_config(
    store: &Store,
    manifest: &Manifest,
) -> Result<(Vec<u8>, ImageConfig), ImageError> {
    let descriptor = &manifest.config;
    if !media_types::is_config(&descriptor.media_type) {
        return Err(ImageError::ConfigMediaType {
            digest: descriptor.digest.clone(),
            media_type: descriptor.media_type.clone(),
        });
    }
    let bytes = store.read_blob(&descriptor.digest)?;
    let config = serde_json::from_slice(&bytes).map_err(|source| ImageError::Config {
        digest: descriptor.digest.clone(),
        source,
    })?;
    Ok((bytes, config))
}
