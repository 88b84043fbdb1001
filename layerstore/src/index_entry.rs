//! Multi-platform images kept whole in the store (`lade pull --all-platforms`): the index (or Docker manifest list)
//! is stored byte for byte beside every child manifest, config and layer, and `index.json` names it like an image.
//!
//! Such an entry is one image to the user: its ID is the index digest (as Docker's containerd image store shows it),
//! `rmi` untags it whole, and prune follows it to every child ([`crate::prune`]). Whatever runs or reads an image
//! (`run`, `FROM`, `save`, `history`) gets the child for the platform asked for, the host's by default
//! ([`Store::platform_manifest`]). A Docker manifest list gets an OCI view in `index.json`, as a Docker manifest does
//! ([`crate::tags`]): an OCI index of the children's OCI views, so that OCI tools read the entry.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::image::{Image, ImageError};
use crate::manifest::{Descriptor, Index, ManifestKind, Platform};
use crate::media_types;
use crate::store::{Store, StoreError};
use crate::tags::{DOCKER_MANIFEST_ANNOTATION, DOCKER_MANIFEST_SIZE_ANNOTATION};

/// The index entry for `wanted`: same OS and architecture, and the same variant when both name one (an exact
/// variant match wins).
pub fn choose_platform<'a>(
    manifests: &'a [Descriptor],
    wanted: &Platform,
) -> Option<&'a Descriptor> {
    let candidates = manifests.iter().filter(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == wanted.os
                && p.architecture == wanted.architecture
                && media_types::is_manifest(&d.media_type)
        })
    });
    let mut fallback = None;
    for candidate in candidates {
        let variant = candidate
            .platform
            .as_ref()
            .and_then(|p| p.variant.as_deref());
        match (variant, wanted.variant.as_deref()) {
            (Some(have), Some(want)) if have == want => return Some(candidate),
            (Some(_), Some(_)) => {}
            _ => {
                fallback.get_or_insert(candidate);
            }
        }
    }
    fallback
}

/// The text of a platform, `os/arch[/variant]`.
pub fn platform_string(platform: &Platform) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

/// The platforms an index lists, as `os/arch[/variant]`, comma-separated.
pub fn platforms_of(index: &Index) -> String {
    index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(platform_string))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Reads and parses the index `descriptor` names.
    pub fn read_image_index(&self, descriptor: &Descriptor) -> Result<Index, ImageError> {
        let bytes = self.read_blob(&descriptor.digest)?;
        match ManifestKind::parse(&bytes, &descriptor.media_type) {
            Ok(ManifestKind::Index(index)) => Ok(*index),
            Ok(ManifestKind::Image(_)) => Err(ImageError::NotAnIndex(descriptor.digest.clone())),
            Err(source) => Err(ImageError::Manifest {
                digest: descriptor.digest.clone(),
                source,
            }),
        }
    }

    /// The image manifest an entry stands for on `platform`: the entry itself when it is an image manifest, the
    /// platform's child when it is an index.
    pub fn platform_manifest(
        &self,
        descriptor: &Descriptor,
        platform: &Platform,
    ) -> Result<Descriptor, ImageError> {
        if !media_types::is_index(&descriptor.media_type) {
            return Ok(descriptor.clone());
        }
        let index = self.read_image_index(descriptor)?;
        choose_platform(&index.manifests, platform)
            .cloned()
            .ok_or_else(|| ImageError::NoPlatform {
                index: descriptor.digest.clone(),
                platform: platform_string(platform),
                available: platforms_of(&index),
            })
    }

    /// Every image an entry holds: the image itself, or each child of an index (all must be in the store, and
    /// there is at least one).
    pub fn entry_images(&self, descriptor: &Descriptor) -> Result<Vec<Image>, ImageError> {
        if !media_types::is_index(&descriptor.media_type) {
            return Ok(vec![Image::read(self, descriptor)?]);
        }
        let index = self.read_image_index(descriptor)?;
        if index.manifests.is_empty() {
            return Err(ImageError::EmptyIndex(descriptor.digest.clone()));
        }
        let mut images = Vec::new();
        for child in &index.manifests {
            if media_types::is_index(&child.media_type) {
                return Err(ImageError::NestedIndex(descriptor.digest.clone()));
            }
            images.push(Image::read(self, child)?);
        }
        Ok(images)
    }

    /// What identifies an entry to the user: the config digest of an image (Docker's image ID), the digest of an
    /// index.
    pub fn entry_id(&self, descriptor: &Descriptor) -> Result<Digest, ImageError> {
        if media_types::is_index(&descriptor.media_type) {
            // Readable, so that an unreadable index is reported rather than listed.
            self.read_image_index(descriptor)?;
            return Ok(descriptor.digest.clone());
        }
        Ok(Image::read(self, descriptor)?.id().clone())
    }

    /// The OCI view of a stored Docker manifest list: an OCI index whose entries are the children's OCI views
    /// (written to the store, with the index), linked to the list by annotations.
    pub(crate) fn index_view(
        &self,
        list: &Descriptor,
        child_view: impl Fn(&Descriptor) -> Result<Descriptor, StoreError>,
    ) -> Result<Descriptor, StoreError> {
        let bytes = self.read_blob(&list.digest)?;
        let Ok(ManifestKind::Index(index)) = ManifestKind::parse(&bytes, &list.media_type) else {
            let mut base = list.clone();
            base.annotations = None;
            return Ok(base);
        };
        let mut view = Index::new(Vec::new());
        view.annotations = index.annotations.clone();
        for child in &index.manifests {
            if child.media_type == media_types::DOCKER_MANIFEST && self.has_blob(&child.digest) {
                let mut converted = child_view(child)?;
                converted.platform = child.platform.clone();
                view.manifests.push(converted);
            } else {
                view.manifests.push(child.clone());
            }
        }
        let view_bytes = serde_json::to_vec(&view).expect("an index serializes");
        let digest = self.write_blob(&view_bytes)?;
        let mut entry = Descriptor::new(media_types::OCI_INDEX, digest, view_bytes.len() as u64);
        entry.annotations = Some(BTreeMap::from([
            (
                DOCKER_MANIFEST_ANNOTATION.to_string(),
                list.digest.to_string(),
            ),
            (
                DOCKER_MANIFEST_SIZE_ANNOTATION.to_string(),
                list.size.to_string(),
            ),
        ]));
        Ok(entry)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::import::store_image;
    use crate::manifest::Flavour;
    use crate::reference::Reference;
    use crate::ImageConfig;

    fn platform(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    /// Stores an image for each platform (a layer of its own each) and an index of them in `flavour`; returns the
    /// index's descriptor and the children's.
    pub(crate) fn store_index(
        store: &Store,
        platforms: &[&str],
        flavour: Flavour,
    ) -> (Descriptor, Vec<Descriptor>) {
        let mut children = Vec::new();
        for text in platforms {
            let wanted = platform(text);
            let layer = store.write_blob(text.as_bytes()).unwrap();
            let layers = vec![Descriptor::new(
                media_types::OCI_LAYER,
                layer.clone(),
                text.len() as u64,
            )];
            let mut config = ImageConfig {
                os: wanted.os.clone(),
                architecture: wanted.architecture.clone(),
                ..ImageConfig::default()
            };
            config.rootfs.diff_ids.push(layer);
            let (oci, _) = store_image(store, &config, layers).unwrap();
            let mut child = match flavour {
                Flavour::Oci => oci,
                Flavour::Docker => {
                    let image = Image::read(store, &oci).unwrap();
                    let docker = image.manifest.to_flavour(Flavour::Docker).unwrap();
                    let bytes = serde_json::to_vec(&docker).unwrap();
                    let digest = store.write_blob(&bytes).unwrap();
                    Descriptor::new(media_types::DOCKER_MANIFEST, digest, bytes.len() as u64)
                }
            };
            child.platform = Some(wanted);
            children.push(child);
        }
        let mut index = Index::new(children.clone());
        let media_type = match flavour {
            Flavour::Oci => media_types::OCI_INDEX,
            Flavour::Docker => media_types::DOCKER_MANIFEST_LIST,
        };
        index.media_type = Some(media_type.to_string());
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = store.write_blob(&bytes).unwrap();
        (
            Descriptor::new(media_type, digest, bytes.len() as u64),
            children,
        )
    }

    #[test]
    fn an_index_entry_is_one_image_resolved_per_platform() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (index, children) = store_index(&store, &["linux/amd64", "linux/arm64"], Flavour::Oci);
        let name = Reference::parse_tagged("registry.test/multi:1").unwrap();
        store
            .add_image(&index, std::slice::from_ref(&name))
            .unwrap();

        let records = store.image_records().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].descriptor.digest, index.digest);
        assert_eq!(
            store.entry_id(&records[0].descriptor).unwrap(),
            index.digest
        );
        assert_eq!(store.entry_images(&index).unwrap().len(), 2);

        let found = store
            .find_image_on("registry.test/multi:1", &platform("linux/arm64"))
            .unwrap();
        assert_eq!(found.image.digest(), &children[1].digest);
        assert_eq!(found.id(), &index.digest);
        assert_eq!(found.descriptor().digest, index.digest);
        assert_eq!(found.names, std::slice::from_ref(&name));
        let err = store
            .find_image_on("registry.test/multi:1", &platform("linux/s390x"))
            .unwrap_err();
        assert!(
            err.to_string().contains("linux/amd64, linux/arm64"),
            "{err}"
        );
        // By ID: the index digest, as `lade images` shows it.
        let by_id = store.find_image(&index.digest.hex()[..12]).unwrap();
        assert_eq!(by_id.id(), &index.digest);

        // Untagged, the whole index goes, and prune then frees every child.
        let report = store.remove_image("registry.test/multi:1", false).unwrap();
        assert_eq!(
            report,
            [
                "Untagged: registry.test/multi:1".to_string(),
                format!("Deleted: {}", index.digest)
            ]
        );
        assert!(store.image_records().unwrap().is_empty());
        store.prune().unwrap();
        assert!(store.list_blobs().unwrap().is_empty());
    }

    #[test]
    fn prune_and_check_follow_an_index_to_every_child() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (index, children) = store_index(&store, &["linux/amd64", "linux/arm64"], Flavour::Oci);
        store
            .add_image(&index, &[Reference::parse_tagged("multi:1").unwrap()])
            .unwrap();
        let orphan = store.write_blob(b"orphan").unwrap();
        let before = store.list_blobs().unwrap();
        let report = store.prune().unwrap();
        assert_eq!(report.blobs, 1);
        assert!(!store.has_blob(&orphan));
        assert_eq!(store.list_blobs().unwrap().len(), before.len() - 1);
        for image in store.entry_images(&index).unwrap() {
            assert!(store.has_blob(image.id()));
            assert!(image
                .manifest
                .layers
                .iter()
                .all(|l| store.has_blob(&l.digest)));
        }
        let check = store.check(false).unwrap();
        assert!(!check.has_problems(), "{check:?}");
        // A child missing is a broken entry.
        store.remove_blob(&children[1].digest).unwrap();
        let check = store.check(false).unwrap();
        assert_eq!(check.broken_images.len(), 1, "{check:?}");
    }

    #[test]
    fn a_docker_manifest_list_gets_an_oci_view_and_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (list, children) =
            store_index(&store, &["linux/amd64", "linux/arm64"], Flavour::Docker);
        store
            .add_image(&list, &[Reference::parse_tagged("multi:docker").unwrap()])
            .unwrap();
        let entry = store.read_index().unwrap().manifests.remove(0);
        assert_eq!(entry.media_type, media_types::OCI_INDEX);
        let view = store.read_image_index(&entry).unwrap();
        assert!(view
            .manifests
            .iter()
            .all(|m| m.media_type == media_types::OCI_MANIFEST));
        assert_eq!(
            view.manifests[1].platform.as_ref().unwrap().architecture,
            "arm64"
        );
        let found = store
            .find_image_on("multi:docker", &platform("linux/arm64"))
            .unwrap();
        assert_eq!(found.descriptor().digest, list.digest);
        assert_eq!(
            found.descriptor().media_type,
            media_types::DOCKER_MANIFEST_LIST
        );
        assert_eq!(found.image.digest(), &children[1].digest);
        store.prune().unwrap();
        for digest in [
            &list.digest,
            &entry.digest,
            &children[0].digest,
            &children[1].digest,
        ] {
            assert!(store.has_blob(digest), "{digest}");
        }
        for child in &view.manifests {
            assert!(store.has_blob(&child.digest));
        }
        assert!(!store.check(false).unwrap().has_problems());
    }
}
