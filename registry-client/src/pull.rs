//! Pulling an image into a [`Store`]: resolve the manifest (choosing the platform from an index), stream every
//! missing blob into the store while hashing it, resuming an interrupted download with `Range`, and only then record
//! the manifest — with its original bytes — and the tags. A blob whose content does not hash to its digest is
//! discarded and fails the pull, so the store never holds a partial or wrong image.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use layerstore::digest::HashingWriter;
use layerstore::manifest::ManifestKind;
use layerstore::progress::Progress;
use layerstore::{Descriptor, Digest, Manifest, Platform, Reference, Store};
use reqwest::{header, StatusCode};

use crate::error::Error;
use crate::retry::{backoff, MAX_ATTEMPTS};
use crate::session::{header_str, repository_scope, status_error, Retry, Session};

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index.
    pub platform: Platform,
    /// Blobs downloaded at once.
    pub jobs: usize,
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image manifest (for an index, the one chosen for the platform).
    pub descriptor: Descriptor,
    /// The digest the reference resolved to: the index's when it named an index.
    pub resolved: Digest,
    /// The number of blobs downloaded (the others were already in the store).
    pub downloaded: usize,
}

/// A manifest as fetched: its bytes, media type and digest.
pub struct FetchedManifest {
    /// The manifest exactly as the registry sent it.
    pub bytes: Vec<u8>,
    /// The media type from the `Content-Type` header, without parameters; empty when the registry sent none.
    pub media_type: String,
    /// The digest of the bytes, checked against the digest asked for or `Docker-Content-Digest` when either is known.
    pub digest: Digest,
}

/// The tag or digest part of a manifest URL.
pub fn manifest_reference(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// Fetches the manifest `reference` (a tag or digest) of `repository`, verifying it when fetched by digest.
pub async fn fetch_manifest(
    registry: &Session,
    repository: &str,
    reference: &str,
) -> Result<FetchedManifest, Error> {
    let url = registry.url(&format!("/v2/{repository}/manifests/{reference}"));
    let scopes = [repository_scope(repository, "pull")];
    let response = registry
        .send(&scopes, Retry::Yes, |http| {
            http.get(&url)
                .header(header::ACCEPT, crate::MANIFEST_ACCEPT)
        })
        .await?;
    if response.status() != StatusCode::OK {
        return Err(status_error("GET", &url, response).await);
    }
    let media_type = header_str(&response, "content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let header_digest = header_str(&response, "docker-content-digest").map(str::to_string);
    let limit = layerstore::limits::MAX_METADATA_SIZE;
    let bytes = crate::body::read_limited(response, limit)
        .await
        .map_err(|error| Error::Request {
            method: "GET".into(),
            url: url.clone(),
            error,
        })?
        .map_err(|too_large| {
            Error::Protocol(format!(
                "GET {url}: the manifest is {} bytes or more, larger than the {limit}-byte limit",
                too_large.at_least
            ))
        })?;
    let expected: Option<Digest> = match reference.parse::<Digest>() {
        Ok(digest) => Some(digest),
        Err(_) => header_digest.and_then(|d| d.parse().ok()),
    };
    let algorithm = expected
        .as_ref()
        .map_or(layerstore::Algorithm::Sha256, Digest::algorithm);
    let digest = Digest::of(algorithm, &bytes);
    if let Some(expected) = expected {
        if expected != digest {
            return Err(Error::DigestMismatch {
                url,
                expected,
                actual: digest,
            });
        }
    }
    Ok(FetchedManifest {
        bytes: bytes.to_vec(),
        media_type,
        digest,
    })
}

/// The error for an index without a manifest for `platform`, listing the platforms it has.
pub(crate) fn no_platform(url: &str, index: &layerstore::Index, platform: &Platform) -> Error {
    Error::NoPlatform {
        url: url.to_string(),
        platform: platform_string(platform),
        available: layerstore::index_entry::platforms_of(index),
    }
}

pub use layerstore::index_entry::{choose_platform, platform_string};

/// Parses `os/arch[/variant]`, normalized ([`Platform::parse`]).
pub fn parse_platform(text: &str) -> Result<Platform, Error> {
    Platform::parse(text).map_err(|error| Error::Location(error.to_string()))
}

/// Pulls `reference` into `store` and tags it with `names`.
pub async fn pull(
    registry: &Session,
    store: &Store,
    reference: &Reference,
    names: &[Reference],
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Pulled, Error> {
    let repository = reference.path();
    let top = fetch_manifest(registry, repository, &manifest_reference(reference)).await?;
    let resolved = top.digest.clone();
    let (manifest_bytes, descriptor) = match ManifestKind::parse(&top.bytes, &top.media_type)
        .map_err(|source| Error::Manifest {
            url: reference.to_string(),
            source,
        })? {
        ManifestKind::Image(_) => {
            let media_type = media_type_of(&top);
            let descriptor =
                Descriptor::new(media_type, top.digest.clone(), top.bytes.len() as u64);
            (top.bytes, descriptor)
        }
        ManifestKind::Index(index) => {
            let entry = choose_platform(&index.manifests, &options.platform)
                .ok_or_else(|| no_platform(&reference.to_string(), &index, &options.platform))?;
            let fetched = fetch_manifest(registry, repository, &entry.digest.to_string()).await?;
            let mut descriptor = Descriptor::new(
                entry.media_type.clone(),
                fetched.digest.clone(),
                fetched.bytes.len() as u64,
            );
            descriptor.platform = entry.platform.clone();
            (fetched.bytes, descriptor)
        }
    };
    let manifest =
        match ManifestKind::parse(&manifest_bytes, &descriptor.media_type).map_err(|source| {
            Error::Manifest {
                url: format!("{}@{}", reference.name(), descriptor.digest),
                source,
            }
        })? {
            ManifestKind::Image(manifest) => *manifest,
            ManifestKind::Index(_) => {
                return Err(Error::Protocol(format!(
                    "{reference}: the index entry for the platform is itself an index"
                )))
            }
        };

    // A name given by the digest of an index now names the platform's manifest, which is what the store holds.
    let names: Vec<Reference> = names
        .iter()
        .map(|n| match n.digest() {
            Some(d) if *d == resolved => n.with_digest(descriptor.digest.clone()),
            _ => n.clone(),
        })
        .collect();
    let _writer = store.writer_lock()?;
    let downloaded = download_blobs(
        registry,
        store,
        repository,
        &manifest,
        options.jobs,
        progress,
    )
    .await?;
    store.ingest(&mut &manifest_bytes[..], Some(&descriptor.digest))?;
    layerstore::Image::read(store, &descriptor)?;
    store.add_image(&descriptor, &names)?;
    Ok(Pulled {
        descriptor,
        resolved,
        downloaded,
    })
}

/// A manifest's media type: the response's, else the document's own, else OCI.
pub(crate) fn media_type_of(fetched: &FetchedManifest) -> String {
    if !fetched.media_type.is_empty() && fetched.media_type != "application/json" {
        return fetched.media_type.clone();
    }
    serde_json::from_slice::<serde_json::Value>(&fetched.bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| layerstore::media_types::OCI_MANIFEST.to_string())
}

/// Downloads the config and layers of `manifest` that the store lacks, `jobs` at a time, into `scratch`, and moves
/// them into the store only when every one has arrived and checked out. Returns how many it fetched.
pub async fn download_blobs(
    registry: &Session,
    store: &Store,
    repository: &str,
    manifest: &Manifest,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<usize, Error> {
    let scratch = store.temp_dir("pull-")?;
    let mut blobs: Vec<&Descriptor> = vec![&manifest.config];
    blobs.extend(manifest.layers.iter());
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|d| seen.insert(d.digest.clone()));
    for descriptor in &blobs {
        let item = descriptor.digest.to_string();
        progress.start(&item, descriptor.size);
        progress.status(&item, "waiting");
    }
    let fetched: Vec<Option<(PathBuf, &Descriptor)>> = futures_util::stream::iter(blobs)
        .map(|descriptor| {
            let path = scratch.path().join(descriptor.digest.hex());
            async move {
                let item = descriptor.digest.to_string();
                if store.has_blob(&descriptor.digest) {
                    progress.finish(&item, "exists");
                    return Ok(None);
                }
                download_blob(registry, repository, descriptor, &path, progress).await?;
                Ok::<_, Error>(Some((path, descriptor)))
            }
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await?;
    let fetched: Vec<_> = fetched.into_iter().flatten().collect();
    for (path, descriptor) in &fetched {
        store.adopt_verified_file(path, &descriptor.digest)?;
    }
    Ok(fetched.len())
}

/// A blob file being downloaded, hashed as it is written.
struct Partial {
    writer: HashingWriter<BufWriter<File>>,
}

impl Partial {
    fn create(path: &Path, descriptor: &Descriptor) -> Result<Partial, Error> {
        let file =
            File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        Ok(Partial {
            writer: HashingWriter::new(
                BufWriter::with_capacity(1 << 20, file),
                descriptor.digest.algorithm(),
            ),
        })
    }
}

/// Streams one blob to `path` (its progress item already started), verifying size and digest; a dropped connection resumes with `Range`. On a digest
/// mismatch the file is deleted.
pub async fn download_blob(
    registry: &Session,
    repository: &str,
    descriptor: &Descriptor,
    path: &Path,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let url = registry.url(&format!("/v2/{repository}/blobs/{}", descriptor.digest));
    let scopes = [repository_scope(repository, "pull")];
    let item = descriptor.digest.to_string();
    let write_error = |e| Error::io(format!("writing {}", path.display()), e);
    progress.status(&item, "downloading");
    let mut partial = Partial::create(path, descriptor)?;
    let mut failures = 0;
    loop {
        let offset = partial.writer.written();
        let response = registry
            .send(&scopes, Retry::Yes, |http| {
                let request = http.get(&url);
                if offset > 0 {
                    request.header(header::RANGE, format!("bytes={offset}-"))
                } else {
                    request
                }
            })
            .await?;
        match response.status() {
            StatusCode::OK if offset > 0 => {
                tracing::warn!(
                    "GET {url}: the registry ignored Range; downloading again from the start"
                );
                partial = Partial::create(path, descriptor)?;
            }
            StatusCode::OK | StatusCode::PARTIAL_CONTENT => {}
            _ => return Err(status_error("GET", &url, response).await),
        }
        let mut body = response.bytes_stream();
        let mut interrupted = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    let total = partial.writer.written() + chunk.len() as u64;
                    if total > descriptor.size {
                        return Err(Error::SizeMismatch {
                            url,
                            expected: descriptor.size,
                            actual: total,
                        });
                    }
                    partial.writer.write_all(&chunk).map_err(write_error)?;
                    progress.advance(&item, chunk.len() as u64);
                }
                Err(source) => {
                    interrupted = Some(source);
                    break;
                }
            }
        }
        let written = partial.writer.written();
        match interrupted {
            None if written == descriptor.size => break,
            None => {
                return Err(Error::SizeMismatch {
                    url,
                    expected: descriptor.size,
                    actual: written,
                });
            }
            Some(source) => {
                failures += 1;
                if failures >= MAX_ATTEMPTS {
                    return Err(Error::Request {
                        method: "GET".into(),
                        url,
                        error: source,
                    });
                }
                tracing::warn!("GET {url}: {source} after {written} bytes; resuming");
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
    let (buffered, actual, _) = partial.writer.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| write_error(e.into_error()))?;
    file.sync_all().map_err(write_error)?;
    if actual != descriptor.digest {
        let _ = std::fs::remove_file(path);
        progress.finish(&item, "failed");
        return Err(Error::DigestMismatch {
            url,
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    progress.finish(&item, "done");
    Ok(())
}
