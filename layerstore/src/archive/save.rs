//! Writing images as one tarball in Docker 25's dual format: `manifest.json`, `repositories`, `oci-layout`,
//! `index.json` and `blobs/<alg>/<hex>`. Blobs are streamed from each image's [`ImageSource`] (the store, another
//! archive) and verified on the way; each is written once.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use super::{blob_path, ArchiveManifestEntry};
use crate::digest::Digest;
use crate::image::ImageError;
use crate::manifest::{Descriptor, Index, ManifestKind};
use crate::progress::{Progress, ProgressReader};
use crate::reference::Reference;
use crate::store::{IoContext, StoreError};
use crate::tags::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};
use crate::transport::{ImageSource, TransportError};

/// An image to save and the names to record for it.
pub struct SaveItem<'a> {
    /// Where the image is read from.
    pub source: &'a dyn ImageSource,
    /// The names to record for it (`RepoTags` and the index's name annotations); empty for an untagged image.
    pub names: Vec<Reference>,
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
        let (manifest_bytes, media_type) = item.source.manifest()?;
        let manifest_descriptor = Descriptor::new(
            media_type.clone(),
            Digest::sha256_of(&manifest_bytes),
            manifest_bytes.len() as u64,
        );
        let digest = &manifest_descriptor.digest;
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
        let mut blobs: Vec<&Descriptor> = manifest.layers.iter().collect();
        blobs.push(&manifest.config);
        for descriptor in blobs {
            if written.insert(descriptor.digest.clone()) {
                append_blob(item.source, &mut tar, descriptor, progress)?;
            }
        }
        if written.insert(digest.clone()) {
            append_bytes(&mut tar, &blob_path(digest), &manifest_bytes)?;
        }

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
                let mut entry = manifest_descriptor.clone();
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
            entries.push(manifest_descriptor.clone());
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
