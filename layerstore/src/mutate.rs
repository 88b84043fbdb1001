//! Making and changing images, as go-containerregistry's `mutate`: every manifest and config lade writes is made
//! here, as exact bytes with their digest and descriptor.
//!
//! The operations are pure (bytes in, bytes out) except [`compress_layer`], which streams a stored layer into a new
//! compressed blob. Serialization is `serde_json::to_vec` of the model types, whose field order is the one Docker and
//! BuildKit write, so the bytes — and image IDs with `SOURCE_DATE_EPOCH` — are the same as before this module.

use std::io;

use serde::Serialize;
use serde_json::Map;

use crate::config::{History, ImageConfig};
use crate::digest::{Algorithm, Digest};
use crate::image::Image;
use crate::layer::compress::CompressingWriter;
use crate::manifest::{Descriptor, Flavour, Manifest};
use crate::media_types::{self, Compression};
use crate::progress::{Progress, ProgressReader};
use crate::store::{Store, StoreError};

/// Why an image could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum MutateError {
    /// Reading or writing a blob failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Compressing a layer failed.
    #[error("compressing layer {digest}: {source}")]
    Compress {
        /// The layer's digest.
        digest: Digest,
        /// What the compressor or the I/O under it reported.
        source: io::Error,
    },
    /// A stored layer's content is not what its digest says.
    #[error("layer {digest} in the store: its content hashes to {actual}")]
    LayerContent {
        /// The digest the layer is stored under.
        digest: Digest,
        /// The digest its content hashes to.
        actual: Digest,
    },
    /// A layer's media type has no equivalent in the flavour asked for.
    #[error("{manifest}: {}", no_equivalent(*.flavour))]
    NoMediaType {
        /// The digest of the manifest being converted.
        manifest: Digest,
        /// The flavour asked for.
        flavour: Flavour,
    },
}

/// Why an image has no manifest in `flavour`.
fn no_equivalent(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Docker => {
            "the image has zstd layers, which Docker's manifest format cannot describe"
        }
        Flavour::Oci => "a layer has a media type with no OCI equivalent",
    }
}

/// A document as written: its exact bytes and the descriptor naming them.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The document's exact bytes, as stored and sent.
    pub bytes: Vec<u8>,
    /// Its media type, sha256 digest and size.
    pub descriptor: Descriptor,
}

/// Serializes a model type. The model types (string-keyed maps, no custom serializers that fail) always serialize.
fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("image model types always serialize to JSON")
}

/// `bytes` with a sha256 descriptor of `media_type`.
pub fn encoded(bytes: Vec<u8>, media_type: &str) -> Encoded {
    let descriptor = Descriptor::new(media_type, Digest::sha256_of(&bytes), bytes.len() as u64);
    Encoded { bytes, descriptor }
}

/// The config's bytes and descriptor, with the config media type of `flavour`.
pub fn encode_config(config: &ImageConfig, flavour: Flavour) -> Encoded {
    encoded(to_json(config), flavour.config_type())
}

/// The manifest's bytes and descriptor; the descriptor's media type is the manifest's own `mediaType` (OCI when it
/// has none).
pub fn encode_manifest(manifest: &Manifest) -> Encoded {
    let media_type = manifest
        .media_type
        .as_deref()
        .unwrap_or(media_types::OCI_MANIFEST);
    encoded(to_json(manifest), media_type)
}

/// A schema 2 manifest of `flavour` over `config` and `layers`.
pub fn new_manifest(flavour: Flavour, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(flavour.manifest_type().to_string()),
        artifact_type: None,
        config,
        layers,
        subject: None,
        annotations: None,
        extra: Map::new(),
    }
}

/// Appends a layer to an image being made: its descriptor to `layers`, its diff ID to the config's rootfs and
/// `history` to the config's history.
pub fn append_layer(
    config: &mut ImageConfig,
    layers: &mut Vec<Descriptor>,
    layer: Descriptor,
    diff_id: Digest,
    history: History,
) {
    layers.push(layer);
    config.rootfs.diff_ids.push(diff_id);
    config.history.push(history);
}

/// A new image: `config` (with the flavour's config media type) and a manifest of `flavour` over it and `layers`.
/// Returns the config and the manifest as written.
pub fn make_image(
    config: &ImageConfig,
    layers: Vec<Descriptor>,
    flavour: Flavour,
) -> (Encoded, Encoded) {
    let config = encode_config(config, flavour);
    let manifest = new_manifest(flavour, config.descriptor.clone(), layers);
    (config, encode_manifest(&manifest))
}

/// `image` with `manifest` in place of its manifest (re-encoded); the config and the descriptor's platform stay.
pub fn replace_manifest(image: &Image, manifest: Manifest) -> Image {
    let Encoded {
        bytes,
        mut descriptor,
    } = encode_manifest(&manifest);
    descriptor.platform = image.descriptor.platform.clone();
    Image {
        descriptor,
        manifest_bytes: bytes,
        manifest,
        config_bytes: image.config_bytes.clone(),
        config: image.config.clone(),
    }
}

/// `image` with the media types of `flavour` (manifest, config, layers); no blob's bytes change, so the image ID
/// stays (and the manifest digest changes, unless the image was in that flavour already).
pub fn set_flavour(image: &Image, flavour: Flavour) -> Result<Image, MutateError> {
    let manifest = image
        .manifest
        .to_flavour(flavour)
        .ok_or_else(|| MutateError::NoMediaType {
            manifest: image.digest().clone(),
            flavour,
        })?;
    Ok(replace_manifest(image, manifest))
}

/// The media type of `media_type` (an uncompressed layer type) compressed with `compression`, or `None` when the
/// layer is compressed already or `compression` is none.
pub fn compressed_layer_type(media_type: &str, compression: Compression) -> Option<&'static str> {
    use media_types::*;
    match (media_type, compression) {
        (_, Compression::None) => None,
        (OCI_LAYER, Compression::Gzip) => Some(OCI_LAYER_GZIP),
        (OCI_LAYER, Compression::Zstd) => Some(OCI_LAYER_ZSTD),
        (DOCKER_LAYER_TAR, Compression::Gzip) => Some(DOCKER_LAYER_GZIP),
        (DOCKER_LAYER_TAR, Compression::Zstd) => Some(DOCKER_LAYER_ZSTD),
        (OCI_LAYER_NONDISTRIBUTABLE, Compression::Gzip) => Some(OCI_LAYER_NONDISTRIBUTABLE_GZIP),
        (OCI_LAYER_NONDISTRIBUTABLE, Compression::Zstd) => Some(OCI_LAYER_NONDISTRIBUTABLE_ZSTD),
        _ => None,
    }
}

/// Re-compresses the stored uncompressed layer `layer` with `compression` into a new blob of `store` and returns its
/// descriptor (annotations kept), or `None` when the layer is not an uncompressed one. The layer's content is checked
/// against its digest (its diff ID) on the way.
pub fn compress_layer(
    store: &Store,
    layer: &Descriptor,
    compression: Compression,
    progress: &dyn Progress,
) -> Result<Option<Descriptor>, MutateError> {
    let Some(media_type) = compressed_layer_type(&layer.media_type, compression) else {
        return Ok(None);
    };
    let failed = |source| MutateError::Compress {
        digest: layer.digest.clone(),
        source,
    };
    let item = layer.digest.to_string();
    progress.start(&item, layer.size);
    progress.status(&item, "compressing");
    let mut source = ProgressReader::new(store.open_blob(&layer.digest)?, &item, progress);
    let mut writer = CompressingWriter::new(store.blob_writer(Algorithm::Sha256)?, compression)
        .map_err(failed)?;
    io::copy(&mut source, &mut writer).map_err(failed)?;
    let (blob, digests) = writer.finish().map_err(failed)?;
    if digests.diff_id != layer.digest {
        return Err(MutateError::LayerContent {
            digest: layer.digest.clone(),
            actual: digests.diff_id,
        });
    }
    blob.commit(Some(&digests.digest))?;
    progress.finish(&item, "compressed");
    let mut compressed = Descriptor::new(media_type, digests.digest, digests.size);
    compressed.annotations = layer.annotations.clone();
    Ok(Some(compressed))
}

/// `image` with every uncompressed layer compressed with `compression` (new blobs in `store`) and a new manifest,
/// or `image` itself when no layer needs it. The config, and so the image ID and diff IDs, stay.
pub fn compress_layers(
    store: &Store,
    image: &Image,
    compression: Compression,
    progress: &dyn Progress,
) -> Result<Image, MutateError> {
    if !image
        .manifest
        .layers
        .iter()
        .any(|l| compressed_layer_type(&l.media_type, compression).is_some())
    {
        return Ok(image.clone());
    }
    let mut manifest = image.manifest.clone();
    for layer in &mut manifest.layers {
        if let Some(compressed) = compress_layer(store, layer, compression, progress)? {
            *layer = compressed;
        }
    }
    let mut compressed = replace_manifest(image, manifest);
    // The descriptor keeps the media type it was read with (a manifest without `mediaType` keeps its own).
    compressed.descriptor.media_type = image.descriptor.media_type.clone();
    Ok(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RootFs;

    fn layer(content: &[u8], media_type: &str) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(content), content.len() as u64)
    }

    #[test]
    fn made_images_have_exact_bytes_and_digests() {
        let mut config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..ImageConfig::default()
        };
        let mut layers = Vec::new();
        let tar = layer(b"tar", media_types::OCI_LAYER);
        append_layer(
            &mut config,
            &mut layers,
            tar.clone(),
            tar.digest.clone(),
            History {
                comment: Some("c".into()),
                ..History::default()
            },
        );
        assert_eq!(
            config.rootfs,
            RootFs {
                diff_ids: vec![tar.digest.clone()],
                ..RootFs::default()
            }
        );
        let (config_doc, manifest_doc) = make_image(&config, layers, Flavour::Oci);
        let expected_config = format!(
            r#"{{"architecture":"amd64","history":[{{"comment":"c"}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            tar.digest
        );
        assert_eq!(
            String::from_utf8(config_doc.bytes.clone()).unwrap(),
            expected_config
        );
        assert_eq!(config_doc.descriptor.media_type, media_types::OCI_CONFIG);
        let expected_manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            media_types::OCI_MANIFEST,
            media_types::OCI_CONFIG,
            config_doc.descriptor.digest,
            config_doc.bytes.len(),
            media_types::OCI_LAYER,
            tar.digest
        );
        assert_eq!(
            String::from_utf8(manifest_doc.bytes.clone()).unwrap(),
            expected_manifest
        );
        assert_eq!(
            manifest_doc.descriptor,
            Descriptor::new(
                media_types::OCI_MANIFEST,
                Digest::sha256_of(expected_manifest.as_bytes()),
                expected_manifest.len() as u64
            )
        );
    }

    fn stored_image(store: &Store, content: &[u8], media_type: &str) -> Image {
        let digest = store.write_blob(content).unwrap();
        let mut config = ImageConfig::default();
        let mut layers = Vec::new();
        let descriptor = Descriptor::new(media_type, digest.clone(), content.len() as u64);
        append_layer(
            &mut config,
            &mut layers,
            descriptor,
            digest,
            History::default(),
        );
        let (config_doc, manifest_doc) = make_image(&config, layers, Flavour::Oci);
        store.write_blob(&config_doc.bytes).unwrap();
        store.write_blob(&manifest_doc.bytes).unwrap();
        Image::read(store, &manifest_doc.descriptor).unwrap()
    }

    #[test]
    fn flavours_change_media_types_and_keep_the_image_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let image = stored_image(&store, b"layer", media_types::OCI_LAYER_GZIP);
        let docker = set_flavour(&image, Flavour::Docker).unwrap();
        assert_eq!(docker.descriptor.media_type, media_types::DOCKER_MANIFEST);
        assert_eq!(docker.id(), image.id());
        assert_ne!(docker.digest(), image.digest());
        assert_eq!(docker.digest(), &Digest::sha256_of(&docker.manifest_bytes));
        let back = set_flavour(&docker, Flavour::Oci).unwrap();
        assert_eq!(back.manifest_bytes, image.manifest_bytes);
        assert_eq!(
            set_flavour(&back, Flavour::Oci).unwrap().manifest_bytes,
            back.manifest_bytes
        );
        let zstd = stored_image(&store, b"z", media_types::OCI_LAYER_ZSTD);
        assert!(matches!(
            set_flavour(&zstd, Flavour::Docker),
            Err(MutateError::NoMediaType { .. })
        ));
    }

    #[test]
    fn compressing_rewrites_descriptors_and_checks_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_mode(0o644);
        tar.append_data(&mut header, "hello", &b"hello"[..])
            .unwrap();
        let content = tar.into_inner().unwrap();
        let image = stored_image(&store, &content, media_types::OCI_LAYER);
        let compressed = compress_layers(
            &store,
            &image,
            Compression::Gzip,
            &crate::progress::NoProgress,
        )
        .unwrap();
        let layer = &compressed.manifest.layers[0];
        assert_eq!(layer.media_type, media_types::OCI_LAYER_GZIP);
        assert!(store.has_blob(&layer.digest));
        assert_eq!(compressed.id(), image.id());
        assert_eq!(
            compressed.digest(),
            &Digest::sha256_of(&compressed.manifest_bytes)
        );
        // Compressed layers are left alone.
        let again = compress_layers(
            &store,
            &compressed,
            Compression::Zstd,
            &crate::progress::NoProgress,
        )
        .unwrap();
        assert_eq!(again.manifest_bytes, compressed.manifest_bytes);
        // A stored layer whose content is not its digest is refused.
        std::fs::write(store.blob_path(&image.manifest.layers[0].digest), b"other").unwrap();
        assert!(matches!(
            compress_layers(
                &store,
                &image,
                Compression::Gzip,
                &crate::progress::NoProgress
            ),
            Err(MutateError::LayerContent { .. })
        ));
    }
}
