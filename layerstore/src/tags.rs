//! Tags and image records in the store's `index.json`, with Docker's `tag`, `rmi` and image lookup semantics.
//!
//! Each index entry is a manifest descriptor; a tagged entry carries its full reference
//! (`docker.io/library/busybox:1.36`) in the annotation `io.containerd.image.name` and, for OCI tools, in
//! `org.opencontainers.image.ref.name` too, as BuildKit's OCI exporter writes it: a bare tag there would collide across
//! repositories (every `:1` of the store under one name), so `skopeo copy oci:STORE:NAME` and `umoci --image
//! STORE:NAME` name an image by its full reference. Stores written when the ref name held the tag alone are
//! migrated when opened ([`Store::migrate_ref_names`]). An image whose last tag is moved away stays as one untagged
//! ("dangling") entry, as in Docker, until it is removed.
//!
//! A Docker schema 2 manifest (as pulled from a registry) is kept byte for byte, so its digest and a push of it
//! never change; but OCI tools skip or refuse Docker media types in an OCI layout, so its index entry is an OCI
//! view of it instead: the same manifest with OCI media types (same config and layer blobs, so the same image ID),
//! carrying the Docker manifest's digest and size in `dev.lade.docker-manifest.digest`/`.size`. lade reads the
//! entry as the Docker manifest; other tools read the view. Older entries of Docker manifests get their view on
//! migration too.
//!
//! An entry may also be an index, a multi-platform image kept whole ([`crate::index_entry`]): its ID is the index
//! digest, lookups resolve it to a platform's image ([`Store::find_image_on`]), and `rmi` removes it whole.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::image::{Image, ImageError};
use crate::manifest::{Descriptor, Flavour, Index, ManifestKind, Platform};
use crate::media_types;
use crate::reference::{Reference, ReferenceError};
use crate::store::{Store, StoreError};

/// Annotation holding an entry's full image name.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// On an entry that is the OCI view of a Docker schema 2 manifest: that manifest's digest, and its size.
pub const DOCKER_MANIFEST_ANNOTATION: &str = "dev.lade.docker-manifest.digest";
/// Companion of [`DOCKER_MANIFEST_ANNOTATION`]: the Docker manifest's size in bytes, in decimal.
pub const DOCKER_MANIFEST_SIZE_ANNOTATION: &str = "dev.lade.docker-manifest.size";
/// The OCI annotation naming an entry: in the store, the full reference of a tagged name (see the module docs).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Errors of tag operations and lookups.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image the index names could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No image matches the name or ID given (Docker's message); holds the argument.
    #[error("No such image: {0}")]
    NotFound(String),
    /// The image ID prefix given matches more than one image; holds the prefix.
    #[error("ambiguous image ID prefix {0:?}: it matches several images")]
    Ambiguous(String),
    /// The argument is neither an image ID nor a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Deleting by ID an image tagged in several repositories, without forcing it (Docker refuses the same).
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories {
        /// The image ID given.
        id: String,
    },
}

/// One entry of the index: a manifest and the name it is tagged as, if any.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The name the entry is tagged as; `None` for an entry that only keeps an image (untagged).
    pub name: Option<Reference>,
    /// The descriptor of the entry's manifest or index.
    pub descriptor: Descriptor,
}

/// An image found by a user's argument, with every name it is known by.
#[derive(Debug, Clone)]
pub struct FoundImage {
    /// The image, read from the store: for an index, its child for the platform asked for.
    pub image: Image,
    /// When the argument names a multi-platform image kept whole ([`crate::index_entry`]): the index (or Docker
    /// manifest list) descriptor.
    pub index: Option<Descriptor>,
    /// Every name the image is tagged as in the index.
    pub names: Vec<Reference>,
    /// The reference the user gave, when the lookup was by name.
    pub requested: Option<Reference>,
}

impl FoundImage {
    /// What identifies the entry to the user: the index digest for an index, else the image ID.
    pub fn id(&self) -> &Digest {
        self.index
            .as_ref()
            .map_or_else(|| self.image.id(), |index| &index.digest)
    }

    /// The descriptor of what the name points at: the index, or the image manifest.
    pub fn descriptor(&self) -> &Descriptor {
        self.index.as_ref().unwrap_or(&self.image.descriptor)
    }
}

fn record_of(entry: &Descriptor) -> ImageRecord {
    let name = entry
        .annotation(IMAGE_NAME_ANNOTATION)
        .and_then(|n| Reference::parse(n).ok());
    ImageRecord {
        name,
        descriptor: linked_manifest(entry).unwrap_or_else(|| entry.clone()),
    }
}

/// The Docker schema 2 manifest an entry stands for, when the entry is its OCI view (see the module docs).
pub(crate) fn linked_manifest(entry: &Descriptor) -> Option<Descriptor> {
    let digest = entry.annotation(DOCKER_MANIFEST_ANNOTATION)?.parse().ok()?;
    let size = entry
        .annotation(DOCKER_MANIFEST_SIZE_ANNOTATION)?
        .parse()
        .ok()?;
    // The OCI view of a Docker manifest list is an OCI index.
    let media_type = if entry.media_type == media_types::OCI_INDEX {
        media_types::DOCKER_MANIFEST_LIST
    } else {
        media_types::DOCKER_MANIFEST
    };
    let mut descriptor = Descriptor::new(media_type, digest, size);
    descriptor.platform = entry.platform.clone();
    Some(descriptor)
}

/// An entry without its name: its manifest (or OCI view, with the link to the Docker manifest).
fn unnamed(entry: &Descriptor) -> Descriptor {
    let mut base = entry.clone();
    base.annotations = entry.annotations.as_ref().and_then(|annotations| {
        let kept: BTreeMap<String, String> = annotations
            .iter()
            .filter(|(k, _)| {
                *k == DOCKER_MANIFEST_ANNOTATION || *k == DOCKER_MANIFEST_SIZE_ANNOTATION
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!kept.is_empty()).then_some(kept)
    });
    base
}

/// The index entry for the unnamed entry `base` tagged as `name` (or untagged).
fn entry_for(base: &Descriptor, name: Option<&Reference>) -> Descriptor {
    let mut entry = unnamed(base);
    if let Some(name) = name {
        let mut annotations = entry.annotations.take().unwrap_or_default();
        annotations.insert(IMAGE_NAME_ANNOTATION.to_string(), name.to_string());
        if let Some(ref_name) = ref_name_of(name) {
            annotations.insert(REF_NAME_ANNOTATION.to_string(), ref_name);
        }
        entry.annotations = Some(annotations);
    }
    entry
}

/// The `org.opencontainers.image.ref.name` of a name in the store: the full reference of a tagged name (a name by
/// digest alone has none: `@` is not allowed in a ref name).
fn ref_name_of(name: &Reference) -> Option<String> {
    (name.tag().is_some() && name.digest().is_none()).then(|| name.to_string())
}

/// Sets the ref name of every named entry to the current rule; returns whether anything changed.
fn fix_ref_names(index: &mut Index) -> bool {
    let mut changed = false;
    for entry in &mut index.manifests {
        let Some(name) = record_of(entry).name else {
            continue;
        };
        let wanted = ref_name_of(&name);
        if entry.annotation(REF_NAME_ANNOTATION) == wanted.as_deref() {
            continue;
        }
        let annotations = entry.annotations.get_or_insert_with(BTreeMap::new);
        match wanted {
            Some(ref_name) => annotations.insert(REF_NAME_ANNOTATION.to_string(), ref_name),
            None => annotations.remove(REF_NAME_ANNOTATION),
        };
        changed = true;
    }
    changed
}

/// Points `name` at the unnamed entry `descriptor` in `index`. The image the name pointed at before stays as a dangling entry when
/// nothing else refers to it.
fn set_tag(index: &mut Index, name: &Reference, descriptor: &Descriptor) {
    let previous = remove_name(index, name);
    index
        .manifests
        .retain(|d| !(d.digest == descriptor.digest && record_of(d).name.is_none()));
    index.manifests.push(entry_for(descriptor, Some(name)));
    if let Some(previous) = previous {
        keep_dangling(index, &unnamed(&previous));
    }
}

/// Removes the entry of `name`; returns its descriptor.
fn remove_name(index: &mut Index, name: &Reference) -> Option<Descriptor> {
    let position = index
        .manifests
        .iter()
        .position(|d| record_of(d).name.as_ref() == Some(name))?;
    Some(index.manifests.remove(position))
}

/// Adds the unnamed entry `descriptor` unless some entry already refers to its manifest.
fn keep_dangling(index: &mut Index, descriptor: &Descriptor) {
    if !index
        .manifests
        .iter()
        .any(|d| d.digest == descriptor.digest)
    {
        index.manifests.push(entry_for(descriptor, None));
    }
}

impl Store {
    /// Rewrites ref names written by older lade versions (the tag alone) to the full reference, so that other OCI
    /// tools can tell the store's images apart. Costs one read of the index when there is nothing to do.
    /// Entries of Docker schema 2 manifests written before the OCI view existed get one too.
    pub fn migrate_ref_names(&self) -> Result<(), StoreError> {
        let index = self.read_index()?;
        let raw_docker = |d: &Descriptor| {
            d.media_type == media_types::DOCKER_MANIFEST && linked_manifest(d).is_none()
        };
        let needs_view = index.manifests.iter().any(raw_docker);
        if !fix_ref_names(&mut index.clone()) && !needs_view {
            return Ok(());
        }
        let _writer = self.writer_lock()?;
        let mut views = Vec::new();
        for entry in index.manifests.iter().filter(|d| raw_docker(d)) {
            if self.has_blob(&entry.digest) {
                views.push((entry.digest.clone(), self.entry_base(entry)?));
            }
        }
        self.update_index(|index| {
            for entry in &mut index.manifests {
                let Some((_, view)) = views
                    .iter()
                    .find(|(digest, _)| *digest == entry.digest && raw_docker(entry))
                else {
                    continue;
                };
                *entry = entry_for(view, record_of(entry).name.as_ref());
            }
            fix_ref_names(index);
            Ok::<_, StoreError>(())
        })
    }

    /// The unnamed index entry of a manifest or index: itself, or for a Docker schema 2 manifest or manifest list
    /// its OCI view (written to the store here) linked to it.
    fn entry_base(&self, descriptor: &Descriptor) -> Result<Descriptor, StoreError> {
        let mut base = unnamed(descriptor);
        base.annotations = None;
        if descriptor.media_type == media_types::DOCKER_MANIFEST_LIST {
            return self.index_view(descriptor, |child| self.entry_base(child));
        }
        if descriptor.media_type != media_types::DOCKER_MANIFEST {
            return Ok(base);
        }
        let bytes = self.read_blob(&descriptor.digest)?;
        let converted = match ManifestKind::parse(&bytes, &descriptor.media_type) {
            Ok(ManifestKind::Image(manifest)) => manifest.to_flavour(Flavour::Oci),
            _ => None,
        };
        let Some(converted) = converted else {
            return Ok(base);
        };
        let oci_bytes = serde_json::to_vec(&converted).expect("a manifest serializes");
        let digest = self.write_blob(&oci_bytes)?;
        let mut entry = Descriptor::new(media_types::OCI_MANIFEST, digest, oci_bytes.len() as u64);
        entry.platform = descriptor.platform.clone();
        entry.annotations = Some(BTreeMap::from([
            (
                DOCKER_MANIFEST_ANNOTATION.to_string(),
                descriptor.digest.to_string(),
            ),
            (
                DOCKER_MANIFEST_SIZE_ANNOTATION.to_string(),
                descriptor.size.to_string(),
            ),
        ]));
        Ok(entry)
    }

    /// Every index entry.
    pub fn image_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.read_index()?.manifests.iter().map(record_of).collect())
    }

    /// Adds an image, or an index whose children are all stored, under `names` (or untagged when `names` is
    /// empty), moving tags as `docker tag` does.
    pub fn add_image(
        &self,
        descriptor: &Descriptor,
        names: &[Reference],
    ) -> Result<(), StoreError> {
        // The OCI view is an unreferenced blob until the index names it: keep `prune` away meanwhile.
        let _writer = self.writer_lock()?;
        let descriptor = &self.entry_base(descriptor)?;
        self.update_index(|index| {
            if names.is_empty() {
                keep_dangling(index, descriptor);
            }
            for name in names {
                set_tag(index, name, descriptor);
            }
            Ok::<_, StoreError>(())
        })
    }

    /// Finds an image the way the Docker CLI does: by reference (`name[:tag]`, `name@digest`), by full image ID
    /// (`sha256:…`) or by a unique prefix of it. An index resolves to this host's platform.
    pub fn find_image(&self, argument: &str) -> Result<FoundImage, TagError> {
        self.find_image_on(argument, &Platform::host())
    }

    /// Like [`Store::find_image`], resolving an index to `platform`.
    pub fn find_image_on(
        &self,
        argument: &str,
        platform: &Platform,
    ) -> Result<FoundImage, TagError> {
        let records = self.image_records()?;
        let (descriptor, requested) = match find_by_reference(&records, argument) {
            Some(found) => found,
            None => (self.find_by_id(&records, argument)?, None),
        };
        self.found(&records, descriptor, requested, platform)
    }

    /// Finds an image by reference only, as a Dockerfile's `FROM` and `COPY --from` name images (BuildKit never takes
    /// `FROM a` for an image whose ID starts with `a`). An index resolves to this host's platform.
    pub fn find_image_by_reference(&self, argument: &str) -> Result<FoundImage, TagError> {
        let records = self.image_records()?;
        let (descriptor, requested) = find_by_reference(&records, argument)
            .ok_or_else(|| TagError::NotFound(argument.to_string()))?;
        self.found(&records, descriptor, requested, &Platform::host())
    }

    fn found(
        &self,
        records: &[ImageRecord],
        descriptor: Descriptor,
        requested: Option<Reference>,
        platform: &Platform,
    ) -> Result<FoundImage, TagError> {
        let image = Image::read(self, &self.platform_manifest(&descriptor, platform)?)?;
        let index = media_types::is_index(&descriptor.media_type).then_some(descriptor);
        let id = index
            .as_ref()
            .map_or_else(|| image.id().clone(), |index| index.digest.clone());
        let names = names_of_entry(records, self, &id);
        Ok(FoundImage {
            image,
            index,
            names,
            requested,
        })
    }

    fn find_by_id(&self, records: &[ImageRecord], argument: &str) -> Result<Descriptor, TagError> {
        let prefix = argument.strip_prefix("sha256:").unwrap_or(argument);
        let is_hex = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !is_hex {
            return Err(TagError::NotFound(argument.to_string()));
        }
        let mut matches: Vec<(Digest, Descriptor)> = Vec::new();
        for record in records {
            let Ok(id) = self.entry_id(&record.descriptor) else {
                continue;
            };
            if id.hex().starts_with(prefix) && !matches.iter().any(|(m, _)| m == &id) {
                matches.push((id, record.descriptor.clone()));
            }
        }
        match matches.len() {
            0 => Err(TagError::NotFound(argument.to_string())),
            1 => Ok(matches.remove(0).1),
            _ => Err(TagError::Ambiguous(argument.to_string())),
        }
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference, TagError> {
        let found = self.find_image(source)?;
        let target = Reference::parse_tagged(target)?;
        if target.digest().is_some() {
            return Err(TagError::Reference(ReferenceError::Format(format!(
                "{target}: refusing to create a tag with a digest reference"
            ))));
        }
        self.add_image(found.descriptor(), std::slice::from_ref(&target))?;
        Ok(target)
    }

    /// `docker rmi ARG`: untags a name, or deletes an image by ID. Returns Docker's `Untagged:`/`Deleted:` lines.
    /// An index goes whole (its ID is the index digest). Blobs are left for [`Store::prune`].
    pub fn remove_image(&self, argument: &str, force: bool) -> Result<Vec<String>, TagError> {
        let records = self.image_records()?;
        let (descriptor, requested) = match find_by_reference(&records, argument) {
            Some(found) => found,
            None => (self.find_by_id(&records, argument)?, None),
        };
        let id = self.entry_id(&descriptor)?;
        let names = names_of_entry(&records, self, &id);
        self.update_index(|index| {
            let mut report = Vec::new();
            let untag = |index: &mut Index, name: &Reference, report: &mut Vec<String>| {
                remove_name(index, name);
                report.push(format!("Untagged: {}", name.familiar()));
            };
            match &requested {
                Some(reference) if reference.digest().is_none() => {
                    untag(index, reference, &mut report)
                }
                Some(reference) => {
                    for name in names.iter().filter(|n| n.name() == reference.name()) {
                        untag(index, name, &mut report);
                    }
                }
                None => {
                    let repositories: std::collections::BTreeSet<String> =
                        names.iter().map(Reference::name).collect();
                    if repositories.len() > 1 && !force {
                        return Err(TagError::MultipleRepositories {
                            id: id.short().to_string(),
                        });
                    }
                    for name in &names {
                        untag(index, name, &mut report);
                    }
                }
            }
            let is_it = |d: &Descriptor| {
                self.entry_id(&record_of(d).descriptor)
                    .is_ok_and(|entry| entry == id)
            };
            let still_named = index
                .manifests
                .iter()
                .any(|d| record_of(d).name.is_some() && is_it(d));
            if !still_named {
                index.manifests.retain(|d| !is_it(d));
                report.push(format!("Deleted: {id}"));
            }
            Ok(report)
        })
    }
}

/// Every name of the entry whose ID ([`Store::entry_id`]) is `id`.
fn names_of_entry(records: &[ImageRecord], store: &Store, id: &Digest) -> Vec<Reference> {
    let mut names: Vec<Reference> = records
        .iter()
        .filter_map(|r| {
            let name = r.name.clone()?;
            (&store.entry_id(&r.descriptor).ok()? == id).then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The record a reference (`name[:tag]`, `name@digest`) names, with the reference.
fn find_by_reference(
    records: &[ImageRecord],
    argument: &str,
) -> Option<(Descriptor, Option<Reference>)> {
    let reference = Reference::parse_tagged(argument).ok()?;
    let hit = records
        .iter()
        .find(|r| match (reference.digest(), &r.name) {
            (Some(digest), Some(name)) => {
                &r.descriptor.digest == digest && name.name() == reference.name()
            }
            (None, Some(name)) => name == &reference,
            _ => false,
        })?;
    Some((hit.descriptor.clone(), Some(reference)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::store_image;
    use crate::ImageConfig;

    #[test]
    fn dockerfile_lookups_take_references_only_not_id_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (descriptor, id) = store_image(&store, &ImageConfig::default(), Vec::new()).unwrap();
        let name = Reference::parse_tagged("base:1").unwrap();
        store.add_image(&descriptor, &[name]).unwrap();
        let prefix = &id.hex()[..1];
        assert_eq!(store.find_image(prefix).unwrap().image.id(), &id);
        assert!(matches!(
            store.find_image_by_reference(prefix),
            Err(TagError::NotFound(_))
        ));
        assert_eq!(
            store.find_image_by_reference("base:1").unwrap().image.id(),
            &id
        );
    }

    #[test]
    fn ref_names_are_full_references_and_old_stores_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (descriptor, _) = store_image(&store, &ImageConfig::default(), Vec::new()).unwrap();
        let names: Vec<Reference> = [
            "a/app:1".to_string(),
            "b/app:1".to_string(),
            format!("c/app@{}", descriptor.digest),
        ]
        .iter()
        .map(|n| Reference::parse_tagged(n).unwrap())
        .collect();
        store.add_image(&descriptor, &names).unwrap();
        let ref_names = |store: &Store| -> Vec<Option<String>> {
            let index = store.read_index().unwrap();
            index
                .manifests
                .iter()
                .map(|d| d.annotation(REF_NAME_ANNOTATION).map(str::to_string))
                .collect()
        };
        let expected = vec![
            Some("docker.io/a/app:1".to_string()),
            Some("docker.io/b/app:1".to_string()),
            None,
        ];
        assert_eq!(ref_names(&store), expected);

        // An index as older versions wrote it: the tag alone.
        store
            .update_index(|index| {
                for entry in &mut index.manifests {
                    if let Some(annotations) = &mut entry.annotations {
                        if annotations.contains_key(REF_NAME_ANNOTATION) {
                            annotations.insert(REF_NAME_ANNOTATION.into(), "1".into());
                        }
                    }
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.migrate_ref_names().unwrap();
        assert_eq!(ref_names(&store), expected);
        assert_eq!(store.find_image("b/app:1").unwrap().names.len(), 3);
    }
}

#[cfg(test)]
mod docker_view_tests {
    use super::*;
    use crate::import::store_image;
    use crate::ImageConfig;

    /// A Docker schema 2 image in `store`: its descriptor.
    fn docker_image(store: &Store) -> Descriptor {
        let (oci, _) = store_image(store, &ImageConfig::default(), Vec::new()).unwrap();
        let image = crate::Image::read(store, &oci).unwrap();
        let docker = image.manifest.to_flavour(Flavour::Docker).unwrap();
        let bytes = serde_json::to_vec(&docker).unwrap();
        let digest = store.write_blob(&bytes).unwrap();
        Descriptor::new(media_types::DOCKER_MANIFEST, digest, bytes.len() as u64)
    }

    #[test]
    fn docker_manifests_get_an_oci_view_and_keep_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let docker = docker_image(&store);
        let name = Reference::parse_tagged("registry.test/app:1").unwrap();
        store
            .add_image(&docker, std::slice::from_ref(&name))
            .unwrap();
        let entry = store.read_index().unwrap().manifests.remove(0);
        assert_eq!(entry.media_type, media_types::OCI_MANIFEST);
        assert_eq!(linked_manifest(&entry).unwrap().digest, docker.digest);
        let found = store.find_image("registry.test/app:1").unwrap();
        assert_eq!(found.image.descriptor.digest, docker.digest);
        assert_eq!(
            found.image.descriptor.media_type,
            media_types::DOCKER_MANIFEST
        );
        store.prune().unwrap();
        assert!(store.has_blob(&docker.digest) && store.has_blob(&entry.digest));
        // Retagging and untagging keep one entry per name, and the dangling image keeps its link.
        store
            .tag("registry.test/app:1", "registry.test/app:2")
            .unwrap();
        store.remove_image("registry.test/app:1", false).unwrap();
        let records = store.image_records().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].descriptor.digest, docker.digest);

        // An index as older versions wrote it (the Docker manifest itself) migrates to the view.
        store
            .update_index(|index| {
                index.manifests = vec![entry_for(&unnamed(&docker), Some(&name))];
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.migrate_ref_names().unwrap();
        let entry = store.read_index().unwrap().manifests.remove(0);
        assert_eq!(entry.media_type, media_types::OCI_MANIFEST);
        assert_eq!(record_of(&entry).name, Some(name));
        assert_eq!(record_of(&entry).descriptor.digest, docker.digest);
    }
}
