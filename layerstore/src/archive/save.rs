//! Writing images as one tarball in Docker 25's dual format: `manifest.json`, `repositories`, `oci-layout`,
//! `index.json` and `blobs/<alg>/<hex>`. Blobs are streamed from each image's [`ImageSource`] (the store, another
//! archive) and verified on the way; each is written once. A multi-platform image is saved whole, as Docker 25 saves
//! one: `index.json` names its index, every child is in `blobs/`, and `manifest.json` lists the platform's child.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use super::{blob_path, ArchiveManifestEntry};
use crate::digest::Digest;
use crate::image::ImageError;
use crate::manifest::{Descriptor, Index, Manifest, ManifestKind};
use crate::progress::{Progress, ProgressReader};
use crate::reference::Reference;
use crate::store::{IoContext, StoreError};
use crate::tags::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::transport::{ImageSource, TransportError};

/// An image to save and the names to record for it.
pub struct SaveItem<'a> {
    /// Where the image is read from: for a multi-platform image, the platform's child that `manifest.json` (what
    /// `docker load` before Docker 25 reads) lists.
    pub source: &'a dyn ImageSource,
    /// A multi-platform image saved whole: `index.json` names the index, and every child is written.
    pub index: Option<SavedIndex<'a>>,
    /// The names to record for it (`RepoTags` and the index's name annotations); empty for an untagged image.
    pub names: Vec<Reference>,
}

/// A multi-platform image (an index or Docker manifest list) to save whole.
pub struct SavedIndex<'a> {
    /// The index's exact bytes.
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Where each of its children is read from.
    pub children: Vec<&'a dyn ImageSource>,
}

/// Writes `items` to `out` as a single tarball.
pub fn save<W: Write>(
    items: &[SaveItem<'_>],
    out: W,
    progress: &dyn Progress,
) -> Result<W, TransportError> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<Digest> = HashSet::new();
    let mut manifest_json: Vec<ArchiveManifestEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = Index::new(Vec::new());

    for item in items {
        let (manifest_descriptor, manifest) =
            write_image(item.source, &mut tar, &mut written, progress)?;
        let entry_descriptor = match &item.index {
            Some(saved) => {
                for child in &saved.children {
                    write_image(*child, &mut tar, &mut written, progress)?;
                }
                let descriptor = Descriptor::new(
                    saved.media_type.clone(),
                    Digest::sha256_of(&saved.bytes),
                    saved.bytes.len() as u64,
                );
                if written.insert(descriptor.digest.clone()) {
                    append_bytes(&mut tar, &blob_path(&descriptor.digest), &saved.bytes)?;
                }
                descriptor
            }
            None => manifest_descriptor,
        };

        let tags: Vec<&Reference> = item.names.iter().filter(|n| n.tag().is_some()).collect();
        manifest_json.push(ArchiveManifestEntry {
            config: blob_path(&manifest.config.digest),
            repo_tags: Some(tags.iter().map(|n| n.familiar()).collect()),
            layers: manifest
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
        });
        let top_layer = manifest.layers.last().map(|l| l.digest.hex().to_string());
        for name in &tags {
            if let (Some(tag), Some(top)) = (name.tag(), &top_layer) {
                repositories
                    .entry(name.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.clone());
            }
        }
        let mut entries: Vec<Descriptor> = tags
            .iter()
            .map(|name| {
                let mut entry = entry_descriptor.clone();
                let mut annotations = BTreeMap::new();
                annotations.insert(IMAGE_NAME_ANNOTATION.to_string(), name.to_string());
                annotations.insert(
                    REF_NAME_ANNOTATION.to_string(),
                    name.tag().unwrap_or_default().to_string(),
                );
                entry.annotations = Some(annotations);
                entry
            })
            .collect();
        if entries.is_empty() {
            entries.push(entry_descriptor.clone());
        }
        index.manifests.extend(entries);
    }

    append_bytes(&mut tar, "index.json", &to_json(&index))?;
    append_bytes(&mut tar, "manifest.json", &to_json(&manifest_json))?;
    append_bytes(
        &mut tar,
        "oci-layout",
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
    )?;
    if !repositories.is_empty() {
        append_bytes(&mut tar, "repositories", &to_json(&repositories))?;
    }
    Ok(tar
        .into_inner()
        .context(|| "finishing the archive".into())?)
}

/// Writes the config, layers and manifest of the image `source` reads (those not `written` yet); returns the
/// manifest's descriptor and the manifest.
fn write_image<W: Write>(
    source: &dyn ImageSource,
    tar: &mut tar::Builder<W>,
    written: &mut HashSet<Digest>,
    progress: &dyn Progress,
) -> Result<(Descriptor, Manifest), TransportError> {
    let (manifest_bytes, media_type) = source.manifest()?;
    let descriptor = Descriptor::new(
        media_type.clone(),
        Digest::sha256_of(&manifest_bytes),
        manifest_bytes.len() as u64,
    );
    let digest = &descriptor.digest;
    let manifest = match ManifestKind::parse(&manifest_bytes, &media_type) {
        Ok(ManifestKind::Image(manifest)) => manifest,
        Ok(ManifestKind::Index(_)) => return Err(ImageError::NotAnImage(digest.clone()).into()),
        Err(source) => {
            return Err(ImageError::Manifest {
                digest: digest.clone(),
                source,
            }
            .into())
        }
    };
    for blob in manifest
        .layers
        .iter()
        .chain(std::iter::once(&manifest.config))
    {
        if written.insert(blob.digest.clone()) {
            append_blob(source, tar, blob, progress)?;
        }
    }
    if written.insert(digest.clone()) {
        append_bytes(tar, &blob_path(digest), &manifest_bytes)?;
    }
    Ok((descriptor, *manifest))
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("archive metadata serializes")
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), StoreError> {
    let mut header = file_header(data.len() as u64);
    tar.append_data(&mut header, path, data)
        .context(|| format!("writing {path} to the archive"))
}

fn append_blob<W: Write>(
    source: &dyn ImageSource,
    tar: &mut tar::Builder<W>,
    descriptor: &Descriptor,
    progress: &dyn Progress,
) -> Result<(), TransportError> {
    let digest = &descriptor.digest;
    let item = digest.to_string();
    progress.start(&item, descriptor.size);
    let mut header = file_header(descriptor.size);
    // The source's reader fails unless it yields exactly the descriptor's bytes, so no short entry is written.
    let reader = ProgressReader::new(source.blob(descriptor)?, &item, progress);
    tar.append_data(&mut header, blob_path(digest), reader)
        .context(|| format!("writing blob {digest} to the archive"))?;
    progress.finish(&item, "saved");
    Ok(())
}
