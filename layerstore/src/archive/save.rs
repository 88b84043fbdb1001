//! Writing images as one tarball in Docker 25's dual format: `manifest.json`, `repositories`, `oci-layout`,
//! `index.json` and `blobs/<alg>/<hex>`. Blobs are streamed from the store; each is written once.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use super::{blob_path, ArchiveManifestEntry};
use crate::digest::Digest;
use crate::image::Image;
use crate::manifest::{Descriptor, Index};
use crate::progress::{Progress, ProgressReader};
use crate::reference::Reference;
use crate::store::{IoContext, Store, StoreError};
use crate::tags::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};

/// An image to save and the names to record for it.
pub struct SaveItem {
    /// The image to write into the archive.
    pub image: Image,
    /// The names to record for it (`RepoTags` and the index's name annotations); empty for an untagged image.
    pub names: Vec<Reference>,
}

/// Writes `items` to `out` as a single tarball.
pub fn save<W: Write>(
    store: &Store,
    items: &[SaveItem],
    out: W,
    progress: &dyn Progress,
) -> Result<W, StoreError> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<Digest> = HashSet::new();
    let mut manifest_json: Vec<ArchiveManifestEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = Index::new(Vec::new());

    for item in items {
        let image = &item.image;
        let manifest = &image.manifest;
        let mut blobs: Vec<&Descriptor> = manifest.layers.iter().collect();
        blobs.push(&manifest.config);
        for descriptor in blobs {
            if written.insert(descriptor.digest.clone()) {
                append_blob(store, &mut tar, &descriptor.digest, progress)?;
            }
        }
        if written.insert(image.digest().clone()) {
            append_bytes(&mut tar, &blob_path(image.digest()), &image.manifest_bytes)?;
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
                let mut entry = descriptor_of(image);
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
            entries.push(descriptor_of(image));
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
    tar.into_inner().context(|| "finishing the archive".into())
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("archive metadata serializes")
}

fn descriptor_of(image: &Image) -> Descriptor {
    Descriptor::new(
        image.descriptor.media_type.clone(),
        image.digest().clone(),
        image.manifest_bytes.len() as u64,
    )
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
    store: &Store,
    tar: &mut tar::Builder<W>,
    digest: &Digest,
    progress: &dyn Progress,
) -> Result<(), StoreError> {
    let file = store.open_blob(digest)?;
    let size = file
        .metadata()
        .context(|| format!("reading blob {digest}"))?
        .len();
    let item = digest.to_string();
    progress.start(&item, size);
    let mut header = file_header(size);
    let reader = ProgressReader::new(io::BufReader::with_capacity(1 << 20, file), &item, progress);
    tar.append_data(&mut header, blob_path(digest), reader)
        .context(|| format!("writing blob {digest} to the archive"))?;
    progress.finish(&item, "saved");
    Ok(())
}
