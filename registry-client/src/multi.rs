//! Copying a multi-platform image from a registry whole (`lade copy --all`, skopeo's `--all`) or for a list of
//! platforms (`--platform a,b`): every selected platform's manifest, config and layers, then the index. With
//! `--all` the index keeps its exact bytes (and digest); with a list it is rewritten to hold the selected entries
//! only, as skopeo does. Destinations are registries and OCI layouts; the children go first, the index last, so
//! a destination never names content it does not have.

use layerstore::manifest::ManifestKind;
use layerstore::progress::Progress;
use layerstore::{Descriptor, Digest, Image, Platform, Reference, Store};

use crate::error::Error;
use crate::location::{
    copy_blobs, push_options, scratch_dir, set_oci_tag, Copied, CopyOptions, IngestDirGuard,
    Location,
};
use crate::pull::{
    choose_platform, download_blobs, fetch_manifest, manifest_reference, media_type_of, no_platform,
};
use crate::push::{push, put_manifest};

/// Which entries of an index to copy.
#[derive(Debug, Clone)]
pub enum Platforms {
    /// Every entry, and the index unchanged.
    All,
    /// The entry for each of these platforms, in a new index.
    List(Vec<Platform>),
}

/// Copies the index `reference` names to `destination`; `None` when it names a single image (for the ordinary copy).
pub async fn copy_index(
    reference: &Reference,
    destination: &Location,
    platforms: &Platforms,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Option<Copied>, Error> {
    let registry = options.connector.connect(reference.domain()).await?;
    let repository = reference.path();
    let top = fetch_manifest(&registry, repository, &manifest_reference(reference)).await?;
    let manifest_error = |url: String| move |source| Error::Manifest { url, source };
    let index = match ManifestKind::parse(&top.bytes, &top.media_type)
        .map_err(manifest_error(reference.to_string()))?
    {
        ManifestKind::Index(index) => index,
        ManifestKind::Image(_) => return Ok(None),
    };
    let index_type = media_type_of(&top);
    let (selected, index_bytes, index_digest) = match platforms {
        Platforms::All => (index.manifests.clone(), top.bytes, top.digest),
        Platforms::List(wanted) => {
            let mut selected: Vec<Descriptor> = Vec::new();
            for platform in wanted {
                let entry = choose_platform(&index.manifests, platform)
                    .ok_or_else(|| no_platform(&reference.to_string(), &index, platform))?;
                if !selected.iter().any(|d| d.digest == entry.digest) {
                    selected.push(entry.clone());
                }
            }
            let mut subset = (*index).clone();
            subset.manifests = selected.clone();
            let bytes = serde_json::to_vec(&subset)
                .map_err(|e| Error::Location(format!("serializing the index: {e}")))?;
            let digest = Digest::sha256_of(&bytes);
            (selected, bytes, digest)
        }
    };

    let scratch = scratch_dir()?;
    let store = Store::open(scratch.path())?;
    let mut images = Vec::new();
    for entry in &selected {
        let fetched = fetch_manifest(&registry, repository, &entry.digest.to_string()).await?;
        let url = format!("{}@{}", reference.name(), entry.digest);
        let manifest = match ManifestKind::parse(&fetched.bytes, &entry.media_type)
            .map_err(manifest_error(url.clone()))?
        {
            ManifestKind::Image(manifest) => *manifest,
            ManifestKind::Index(_) => {
                return Err(Error::Protocol(format!(
                    "{url}: an index inside an index is not supported"
                )))
            }
        };
        download_blobs(
            &registry,
            &store,
            repository,
            &manifest,
            options.pull.jobs,
            progress,
        )
        .await?;
        store.ingest(&mut &fetched.bytes[..], Some(&entry.digest))?;
        images.push(Image::read(&store, entry)?);
    }
    let index_descriptor =
        Descriptor::new(index_type, index_digest.clone(), index_bytes.len() as u64);

    match destination {
        Location::Registry(target) => {
            let to = options.connector.connect(target.domain()).await?;
            // The index names its children by digest: they go as they are, never recompressed.
            let mut push_options =
                push_options(&Location::Registry(reference.clone()), target, options);
            push_options.compression = layerstore::media_types::Compression::None;
            for image in &images {
                let child = target.with_digest(image.digest().clone());
                push(&to, &store, image, &child, &push_options, progress).await?;
            }
            put_manifest(
                &to,
                target.path(),
                &manifest_reference(target),
                &index_descriptor.media_type,
                &index_bytes,
                &index_digest,
            )
            .await?;
        }
        Location::Oci { dir, tag } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            let _tidy = IngestDirGuard::new(dir);
            let layout = Store::open(dir)?;
            for image in &images {
                copy_blobs(&store, &layout, image)?;
            }
            layout.ingest(&mut &index_bytes[..], Some(&index_digest))?;
            set_oci_tag(&layout, &index_descriptor, tag.as_deref())?;
        }
        _ => {
            return Err(Error::Location(
                "--all and lists of platforms copy to docker:// and oci: destinations only".into(),
            ))
        }
    }
    Ok(Some(Copied {
        digest: index_digest,
        converted_from: None,
    }))
}
