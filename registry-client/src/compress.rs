//! Compress-on-push: an image whose layers are stored uncompressed (loaded or imported: valid OCI, but large on the
//! wire, and some clients expect compressed layers) is rewritten with gzip- or zstd-compressed copies of those layers
//! and a new manifest, both added to the store, so that the push sends the compressed image, as `docker push` does.
//! The config (and so the image ID and diff IDs) stays the same; the manifest digest changes. The rewriting is
//! [`layerstore::mutate::compress_layers`]; this module stores the new manifest and maps errors.

use layerstore::media_types::Compression;
use layerstore::mutate::{self, MutateError};
use layerstore::progress::Progress;
use layerstore::{Image, Store};

use crate::error::Error;

/// `image` with its uncompressed layers compressed with `compression` (new blobs and manifest stored in `store`),
/// or `image` itself when no layer is uncompressed (or `compression` is none). Layers compressed already are kept
/// as they are. The caller holds the store's writer lock until it has used them.
pub fn compress_layers(
    store: &Store,
    image: &Image,
    compression: Compression,
    progress: &dyn Progress,
) -> Result<Image, Error> {
    let compressed =
        mutate::compress_layers(store, image, compression, progress).map_err(|e| match e {
            MutateError::Store(e) => Error::Store(e),
            MutateError::LayerContent { digest, actual } => Error::DigestMismatch {
                url: format!("layer {digest} in the store"),
                expected: digest,
                actual,
            },
            MutateError::Compress { digest, source } => {
                Error::io(format!("compressing layer {digest}"), source)
            }
            other => Error::Mutate(other),
        })?;
    if compressed.digest() != image.digest() {
        store.write_blob(&compressed.manifest_bytes)?;
    }
    Ok(compressed)
}
