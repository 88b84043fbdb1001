//! Multi-platform images whole: copying one from a registry (`lade copy --all`, skopeo's `--all`) or for a list of
//! platforms (`--platform a,b`), pulling one into the store (`lade pull --all-platforms`, [`pull_index`]) and
//! pushing one from it ([`push_index`]): every selected platform's manifest, config and layers, then the index.
//! With `--all` the index keeps its exact bytes (and digest); with a list it is rewritten to hold the selected
//! entries only, as skopeo does. Destinations are registries, OCI layouts and the store; the children go first, the
//! index last, so a destination never names content it does not have.

use layerstore::manifest::ManifestKind;
use layerstore::progress::Progress;
use layerstore::{Descriptor, Digest, Image, Index, Manifest, Platform, Reference, Store};

use crate::error::Error;
use layerstore::archive::save::{save, SaveItem, SavedIndex};
use layerstore::transport::{ImageSource, StoreSource};

use crate::location::{
    copy_blobs, push_options, scratch_dir, set_oci_tag, write_archive, Copied, CopyOptions,
    IngestDirGuard, Location,
};
use crate::pull::{
    choose_platform, download_blobs, fetch_manifest, manifest_reference, media_type_of,
    no_platform, FetchedManifest, Pulled,
};
use crate::push::{push, put_manifest, PushOptions, Pushed};
use crate::session::Session;

/// Which entries of an index to copy (or pull).
#[derive(Debug, Clone)]
pub enum Platforms {
    /// Every entry, and the index unchanged.
    All,
    /// The entry for each of these platforms, in a new index.
    List(Vec<Platform>),
}

/// A multi-platform image gathered for a copy: its selected children, in a store, and the index to write.
struct Gathered {
    store: Store,
    images: Vec<Image>,
    index_bytes: Vec<u8>,
    index: Descriptor,
    /// The name the source gives the image, which an archive records when its destination names none.
    name: Option<Reference>,
    /// Keeps a scratch store alive until the copy is done.
    _scratch: Option<tempfile::TempDir>,
}

/// Copies the multi-platform image at `source` (a registry, or an index kept whole in the store) to
/// `destination`; `None` when the source is a single image (for the ordinary copy).
pub async fn copy_index(
    source: &Location,
    destination: &Location,
    platforms: &Platforms,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Option<Copied>, Error> {
    let gathered = match source {
        Location::Registry(reference) => {
            gather_from_registry(reference, platforms, options, progress).await?
        }
        Location::Local(name) => gather_from_store(name, platforms, options)?,
        _ => None,
    };
    let Some(gathered) = gathered else {
        return Ok(None);
    };
    let Gathered {
        store,
        images,
        index_bytes,
        index,
        name,
        ..
    } = &gathered;
    match destination {
        Location::Registry(target) => {
            let to = options.connector.connect(target.domain()).await?;
            // The index names its children by digest: they go as they are, never recompressed.
            let mut push_options = push_options(source, target, options);
            push_options.compression = layerstore::media_types::Compression::None;
            for image in images {
                let child = target.with_digest(image.digest().clone());
                push(&to, store, image, &child, &push_options, progress).await?;
            }
            put_manifest(
                &to,
                target.path(),
                &manifest_reference(target),
                &index.media_type,
                index_bytes,
                &index.digest,
            )
            .await?;
        }
        Location::Oci { dir, tag } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            let _tidy = IngestDirGuard::new(dir);
            let layout = Store::open(dir)?;
            for image in images {
                copy_blobs(store, &layout, image)?;
            }
            layout.ingest(&mut &index_bytes[..], Some(&index.digest))?;
            set_oci_tag(&layout, index, tag.as_deref())?;
        }
        Location::OciArchive { file, reference } | Location::DockerArchive { file, reference } => {
            let names = match reference {
                Some(reference) => vec![Reference::parse_tagged(reference)
                    .map_err(|e| Error::Location(format!("{reference:?}: {e}")))?],
                None => name.iter().filter(|n| n.tag().is_some()).cloned().collect(),
            };
            // `manifest.json`, which Docker before 25 reads, lists the host's image (or the first).
            let entries: Vec<Descriptor> = images.iter().map(|i| i.descriptor.clone()).collect();
            let host = choose_platform(&entries, &Platform::host())
                .and_then(|entry| images.iter().find(|i| i.digest() == &entry.digest))
                .unwrap_or(&images[0]);
            let sources: Vec<StoreSource> =
                images.iter().map(|image| StoreSource::new(store, image)).collect();
            let item = SaveItem {
                source: &StoreSource::new(store, host),
                index: Some(SavedIndex {
                    bytes: index_bytes.clone(),
                    media_type: index.media_type.clone(),
                    children: sources.iter().map(|s| s as &dyn ImageSource).collect(),
                }),
                names,
            };
            write_archive(file, |out| {
                save(&[item], out, progress)?;
                Ok(())
            })?;
        }
        Location::Local(_) => {
            return Err(Error::Location(
                "--all and lists of platforms copy to docker://, oci:, oci-archive: and docker-archive: \
                 destinations (use lade pull --all-platforms for the store)"
                    .into(),
            ))
        }
    }
    Ok(Some(Copied {
        digest: index.digest.clone(),
        converted_from: None,
    }))
}

/// The selected children and index of the multi-platform image `reference` names in a registry, pulled into a
/// scratch store; `None` when it names a single image.
async fn gather_from_registry(
    reference: &Reference,
    platforms: &Platforms,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Option<Gathered>, Error> {
    let registry = options.connector.connect(reference.domain()).await?;
    let repository = reference.path();
    let Some(Selection {
        media_type: index_type,
        selected,
        bytes: index_bytes,
        digest: index_digest,
        ..
    }) = fetch_selection(&registry, reference, platforms).await?
    else {
        return Ok(None);
    };
    let scratch = scratch_dir()?;
    let store = Store::open(scratch.path())?;
    let mut images = Vec::new();
    for entry in &selected {
        let (bytes, manifest) = fetch_child(&registry, reference, entry).await?;
        download_blobs(
            &registry,
            &store,
            repository,
            &manifest,
            options.pull.jobs,
            progress,
        )
        .await?;
        store.ingest(&mut &bytes[..], Some(&entry.digest))?;
        images.push(Image::read(&store, entry)?);
    }
    let index = Descriptor::new(index_type, index_digest, index_bytes.len() as u64);
    Ok(Some(Gathered {
        store,
        images,
        index_bytes,
        index,
        name: Some(reference.clone()),
        _scratch: Some(scratch),
    }))
}

/// The selected children and index of the multi-platform image `name` names in the local store; `None` when it is
/// a single image.
fn gather_from_store(
    name: &str,
    platforms: &Platforms,
    options: &CopyOptions<'_>,
) -> Result<Option<Gathered>, Error> {
    let store = (options.local_store)()?;
    let found = store.find_image(name)?;
    let Some(descriptor) = found.index else {
        return Ok(None);
    };
    let bytes = store.read_blob(&descriptor.digest)?;
    let index = store.read_image_index(&descriptor)?;
    let (selected, index_bytes, index_digest) =
        select(name, &index, bytes, descriptor.digest.clone(), platforms)?;
    let images = selected
        .iter()
        .map(|entry| Image::read(&store, entry))
        .collect::<Result<Vec<_>, _>>()?;
    let index = Descriptor::new(
        descriptor.media_type.clone(),
        index_digest,
        index_bytes.len() as u64,
    );
    Ok(Some(Gathered {
        store,
        images,
        index_bytes,
        index,
        name: found.requested,
        _scratch: None,
    }))
}

/// The entries of a fetched index that a copy or pull takes, and the index it writes.
struct Selection {
    /// The index's media type.
    media_type: String,
    /// The digest of the index fetched.
    resolved: Digest,
    /// The entries selected.
    selected: Vec<Descriptor>,
    /// The index to write: the one fetched, byte for byte, or a new one of the selected entries.
    bytes: Vec<u8>,
    /// Its digest.
    digest: Digest,
}

/// Fetches the index `reference` names and selects its entries for `platforms`; `None` when it names a single
/// image.
async fn fetch_selection(
    registry: &Session,
    reference: &Reference,
    platforms: &Platforms,
) -> Result<Option<Selection>, Error> {
    let Some((top, index)) = fetch_index(registry, reference).await? else {
        return Ok(None);
    };
    let media_type = media_type_of(&top);
    let resolved = top.digest.clone();
    let (selected, bytes, digest) = select(
        &reference.to_string(),
        &index,
        top.bytes,
        top.digest,
        platforms,
    )?;
    Ok(Some(Selection {
        media_type,
        resolved,
        selected,
        bytes,
        digest,
    }))
}

/// The manifest `reference` names with its parse when it is an index; `None` when it is a single image's.
async fn fetch_index(
    registry: &Session,
    reference: &Reference,
) -> Result<Option<(FetchedManifest, Index)>, Error> {
    let top = fetch_manifest(registry, reference.path(), &manifest_reference(reference)).await?;
    let parsed =
        ManifestKind::parse(&top.bytes, &top.media_type).map_err(|source| Error::Manifest {
            url: reference.to_string(),
            source,
        })?;
    Ok(match parsed {
        ManifestKind::Index(index) => Some((top, *index)),
        ManifestKind::Image(_) => None,
    })
}

/// The entries of `index` (fetched as `top`) that `platforms` selects, and the index to write: `top` itself for
/// [`Platforms::All`], else a new index of the selected entries.
fn select(
    name: &str,
    index: &Index,
    bytes: Vec<u8>,
    digest: Digest,
    platforms: &Platforms,
) -> Result<(Vec<Descriptor>, Vec<u8>, Digest), Error> {
    match platforms {
        Platforms::All => Ok((index.manifests.clone(), bytes, digest)),
        Platforms::List(wanted) => {
            let mut selected: Vec<Descriptor> = Vec::new();
            for platform in wanted {
                let entry = choose_platform(&index.manifests, platform)
                    .ok_or_else(|| no_platform(name, index, platform))?;
                if !selected.iter().any(|d| d.digest == entry.digest) {
                    selected.push(entry.clone());
                }
            }
            let mut subset = index.clone();
            subset.manifests = selected.clone();
            let bytes = serde_json::to_vec(&subset)
                .map_err(|e| Error::Location(format!("serializing the index: {e}")))?;
            let digest = Digest::sha256_of(&bytes);
            Ok((selected, bytes, digest))
        }
    }
}

/// Fetches the image manifest `entry` of an index names, refusing an index inside the index.
async fn fetch_child(
    registry: &Session,
    reference: &Reference,
    entry: &Descriptor,
) -> Result<(Vec<u8>, Manifest), Error> {
    let fetched = fetch_manifest(registry, reference.path(), &entry.digest.to_string()).await?;
    let url = format!("{}@{}", reference.name(), entry.digest);
    match ManifestKind::parse(&fetched.bytes, &entry.media_type).map_err(|source| {
        Error::Manifest {
            url: url.clone(),
            source,
        }
    })? {
        ManifestKind::Image(manifest) => Ok((fetched.bytes, *manifest)),
        ManifestKind::Index(_) => Err(Error::Protocol(format!(
            "{url}: an index inside an index is not supported"
        ))),
    }
}

/// `lade pull --all-platforms` (or with a list of platforms): stores the index `reference` names whole in `store`
/// — every selected child's config, layers and manifest, then the index (byte for byte with
/// [`Platforms::All`]) — and tags it with `names`. `None` when the reference names a single image (for the ordinary
/// pull). The returned [`Pulled::descriptor`] is the index's.
pub async fn pull_index(
    registry: &Session,
    store: &Store,
    reference: &Reference,
    names: &[Reference],
    platforms: &Platforms,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Option<Pulled>, Error> {
    let Some(Selection {
        media_type: index_type,
        resolved,
        selected,
        bytes: index_bytes,
        digest: index_digest,
    }) = fetch_selection(registry, reference, platforms).await?
    else {
        return Ok(None);
    };
    if selected.is_empty() {
        return Err(Error::Protocol(format!(
            "{reference}: the index lists no images"
        )));
    }
    // A name given by the digest of the index fetched names the index stored (rewritten for a platform list).
    let names: Vec<Reference> = names
        .iter()
        .map(|n| match n.digest() {
            Some(d) if *d == resolved => n.with_digest(index_digest.clone()),
            _ => n.clone(),
        })
        .collect();
    let _writer = store.writer_lock()?;
    let mut downloaded = 0;
    for entry in &selected {
        let (bytes, manifest) = fetch_child(registry, reference, entry).await?;
        downloaded +=
            download_blobs(registry, store, reference.path(), &manifest, jobs, progress).await?;
        store.ingest(&mut &bytes[..], Some(&entry.digest))?;
        Image::read(store, entry)?;
    }
    store.ingest(&mut &index_bytes[..], Some(&index_digest))?;
    let descriptor = Descriptor::new(index_type, index_digest, index_bytes.len() as u64);
    store.add_image(&descriptor, &names)?;
    Ok(Some(Pulled {
        descriptor,
        resolved,
        downloaded,
    }))
}

/// Pushes the index `descriptor` names, stored whole in `store`, as `reference`: each child's blobs and manifest
/// by digest, as stored (never recompressed: the index names them by digest), then the index's exact bytes under
/// the tag, so its digest is unchanged.
pub async fn push_index(
    registry: &Session,
    store: &Store,
    descriptor: &Descriptor,
    reference: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Pushed, Error> {
    if let Some(digest) = reference.digest() {
        if *digest != descriptor.digest {
            return Err(Error::Location(format!(
                "cannot push as {reference}: the index digest is {}",
                descriptor.digest
            )));
        }
    }
    let bytes = store.read_blob(&descriptor.digest)?;
    let mut as_stored = options.clone();
    as_stored.compression = layerstore::media_types::Compression::None;
    for image in store.entry_images(descriptor)? {
        let child = reference.with_digest(image.digest().clone());
        push(registry, store, &image, &child, &as_stored, progress).await?;
    }
    put_manifest(
        registry,
        reference.path(),
        &manifest_reference(reference),
        &descriptor.media_type,
        &bytes,
        &descriptor.digest,
    )
    .await?;
    Ok(Pushed {
        digest: descriptor.digest.clone(),
        size: bytes.len() as u64,
    })
}
