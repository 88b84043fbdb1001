//! Compress-on-push: an image whose layers are stored uncompressed (loaded or imported: valid OCI, but large on the
//! wire, and some clients expect compressed layers) is rewritten with gzip- or zstd-compressed copies of those layers
//! and a new manifest, both added to the store, so that the push sends the compressed image, as `docker push` does.
//! The config (and so the image ID and diff IDs) stays the same; the manifest digest changes.

use std::io;

use layerstore::layer::compress::CompressingWriter;
use layerstore::media_types::{self, Compression};
use layerstore::progress::Progress;
use layerstore::{Algorithm, Descriptor, Image, Store};

use crate::error::Error;

/// The compressed media type for an uncompressed layer type, if it is one.
fn compressed_type(media_type: &str, compression: Compression) -> Option<&'static str> {
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

/// `image` with its uncompressed layers compressed with `compression` (new blobs and manifest stored in `store`),
/// or `image` itself when no layer is uncompressed (or `compression` is none). Layers compressed already are kept
/// as they are. The caller holds the store's writer lock until it has used them.
pub fn compress_layers(
    store: &Store,
    image: &Image,
    compression: Compression,
    progress: &dyn Progress,
) -> Result<Image, Error> {
    if !image
        .manifest
        .layers
        .iter()
        .any(|l| compressed_type(&l.media_type, compression).is_some())
    {
        return Ok(image.clone());
    }
    let mut manifest = image.manifest.clone();
    for layer in &mut manifest.layers {
        let Some(media_type) = compressed_type(&layer.media_type, compression) else {
            continue;
        };
        let item = layer.digest.to_string();
        progress.start(&item, layer.size);
        progress.status(&item, "compressing");
        let mut source = layerstore::progress::ProgressReader::new(
            store.open_blob(&layer.digest)?,
            &item,
            progress,
        );
        let mut writer = CompressingWriter::new(store.blob_writer(Algorithm::Sha256)?, compression)
            .map_err(|e| Error::io(format!("compressing layer {}", layer.digest), e))?;
        io::copy(&mut source, &mut writer)
            .map_err(|e| Error::io(format!("compressing layer {}", layer.digest), e))?;
        let (blob, digests) = writer
            .finish()
            .map_err(|e| Error::io(format!("compressing layer {}", layer.digest), e))?;
        if digests.diff_id != layer.digest {
            return Err(Error::DigestMismatch {
                url: format!("layer {} in the store", layer.digest),
                expected: layer.digest.clone(),
                actual: digests.diff_id,
            });
        }
        blob.commit(Some(&digests.digest))?;
        progress.finish(&item, "compressed");
        let mut compressed = Descriptor::new(media_type, digests.digest, digests.size);
        compressed.annotations = layer.annotations.clone();
        *layer = compressed;
    }
    let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let digest = store.write_blob(&manifest_bytes)?;
    let mut descriptor = Descriptor::new(
        image.descriptor.media_type.clone(),
        digest,
        manifest_bytes.len() as u64,
    );
    descriptor.platform = image.descriptor.platform.clone();
    Ok(Image {
        descriptor,
        manifest_bytes,
        manifest,
        config_bytes: image.config_bytes.clone(),
        config: image.config.clone(),
    })
}
