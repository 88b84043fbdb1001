//! Pushing an image from a [`Store`]: every blob (config and layers, `jobs` at a time) through [`crate::upload`],
//! then the manifest — its stored bytes and media type unchanged, so its digest is the one the store knows.

use futures_util::{StreamExt, TryStreamExt};
use layerstore::media_types::Compression;
use layerstore::progress::Progress;
use layerstore::{Descriptor, Digest, Image, Reference, Store};
use reqwest::{header, StatusCode};

use crate::error::Error;
use crate::session::{header_str, repository_scope, status_error, Retry, Session};
use crate::upload::BlobUpload;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Blobs up to this size are uploaded in one request, larger ones in `PATCH` chunks of this size.
    pub chunk_size: u64,
    /// Repositories of the same registry that may hold the blobs, to mount them from instead of uploading.
    pub mount_from: Vec<String>,
    /// Compress uncompressed layers with this before sending them (see [`crate::compress`]); the pushed digest then
    /// differs from the stored image's. `None` sends every layer as stored.
    pub compression: Compression,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: 3,
            chunk_size: 16 << 20,
            mount_from: Vec::new(),
            compression: Compression::None,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest and size.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// Pushes `image` (read from `store`) as `reference`: its tag, or its digest when it names one.
pub async fn push(
    registry: &Session,
    store: &Store,
    image: &Image,
    reference: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed, Error> {
    let repository = reference.path();
    // The compressed layers are unreferenced blobs until the push is done: keep `prune` away meanwhile.
    let compress = options.compression != Compression::None;
    let _writer = if compress {
        Some(store.writer_lock()?)
    } else {
        None
    };
    let compressed;
    let image = if compress {
        compressed = crate::compress::compress_layers(store, image, options.compression, progress)?;
        &compressed
    } else {
        image
    };
    if let Some(digest) = reference.digest() {
        if digest != image.digest() {
            return Err(Error::Location(format!(
                "cannot push as {reference}: the manifest digest is {}",
                image.digest()
            )));
        }
    }
    let mut blobs: Vec<&Descriptor> = image.manifest.layers.iter().collect();
    blobs.push(&image.manifest.config);
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|d| seen.insert(d.digest.clone()));
    for descriptor in &blobs {
        let item = descriptor.digest.to_string();
        progress.start(&item, descriptor.size);
        progress.status(&item, "waiting");
    }
    let _: Vec<crate::upload::Outcome> = futures_util::stream::iter(blobs)
        .map(|descriptor| upload_blob(registry, store, repository, descriptor, options, progress))
        .buffer_unordered(options.jobs.max(1))
        .try_collect()
        .await?;

    let target = crate::pull::manifest_reference(reference);
    put_manifest(
        registry,
        repository,
        &target,
        &image.descriptor.media_type,
        &image.manifest_bytes,
        image.digest(),
    )
    .await?;
    Ok(Pushed {
        digest: image.digest().clone(),
        size: image.manifest_bytes.len() as u64,
    })
}

/// Uploads manifest (or index) bytes as `target` (a tag or digest) of `repository`, checking the digest the registry
/// answers with.
pub async fn put_manifest(
    registry: &Session,
    repository: &str,
    target: &str,
    media_type: &str,
    manifest_bytes: &[u8],
    digest: &Digest,
) -> Result<(), Error> {
    let url = registry.url(&format!("/v2/{repository}/manifests/{target}"));
    let scopes = [repository_scope(repository, "pull,push")];
    let bytes = bytes::Bytes::from(manifest_bytes.to_vec());
    let response = registry
        .send(&scopes, Retry::Yes, |http| {
            http.put(&url)
                .header(header::CONTENT_TYPE, media_type)
                .body(bytes.clone())
        })
        .await?;
    if response.status() != StatusCode::CREATED {
        return Err(status_error("PUT", &url, response).await);
    }
    if let Some(returned) = header_str(&response, "docker-content-digest") {
        if returned != digest.to_string() {
            return Err(Error::Protocol(format!(
                "PUT {url}: the registry stored the manifest as {returned}, not {digest}"
            )));
        }
    }
    Ok(())
}

/// Uploads one blob of `store` to `repository` (skipped when the registry has it; resumable like an image push's),
/// for callers that push content other than images, such as a build cache.
pub async fn push_blob(
    registry: &Session,
    store: &Store,
    repository: &str,
    descriptor: &Descriptor,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<(), Error> {
    progress.start(&descriptor.digest.to_string(), descriptor.size);
    upload_blob(registry, store, repository, descriptor, options, progress)
        .await
        .map(|_| ())
}

/// Uploads one blob whose progress item has been started.
async fn upload_blob(
    registry: &Session,
    store: &Store,
    repository: &str,
    descriptor: &Descriptor,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<crate::upload::Outcome, Error> {
    BlobUpload {
        registry,
        repository,
        store,
        descriptor,
        chunk_size: options.chunk_size.max(1),
        progress,
    }
    .run(&options.mount_from)
    .await
}
