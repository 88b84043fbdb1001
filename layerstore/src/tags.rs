//! Tags and image records in the store's `index.json`, with Docker's `tag`, `rmi` and image lookup semantics.
//!
//! Each index entry is a manifest descriptor; a tagged entry carries its full reference
//! (`docker.io/library/busybox:1.36`) in the annotation `io.containerd.image.name` and, for OCI tools, in
//! `org.opencontainers.image.ref.name` too, as BuildKit's OCI exporter writes it: a bare tag there would collide across
//! repositories (every `:1` of the store under one name), so `skopeo copy oci:STORE:NAME` and `umoci --image
//! STORE:NAME` name an image by its full reference. Stores written when the ref name held the tag alone are
//! migrated when opened ([`Store::migrate_ref_names`]). An image whose last tag is moved away stays as one untagged
//! ("dangling") entry, as in Docker, until it is removed.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::image::{Image, ImageError};
use crate::manifest::{Descriptor, Index};
use crate::reference::{Reference, ReferenceError};
use crate::store::{Store, StoreError};

/// Annotation holding an entry's full image name.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The OCI annotation naming an entry: in the store, the full reference of a tagged name (see the module docs).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Errors of tag operations and lookups.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("ambiguous image ID prefix {0:?}: it matches several images")]
    Ambiguous(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { id: String },
}

/// One entry of the index: a manifest and the name it is tagged as, if any.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub name: Option<Reference>,
    pub descriptor: Descriptor,
}

/// An image found by a user's argument, with every name it is known by.
#[derive(Debug, Clone)]
pub struct FoundImage {
    pub image: Image,
    pub names: Vec<Reference>,
    /// The reference the user gave, when the lookup was by name.
    pub requested: Option<Reference>,
}

fn record_of(descriptor: &Descriptor) -> ImageRecord {
    let name = descriptor
        .annotation(IMAGE_NAME_ANNOTATION)
        .and_then(|n| Reference::parse(n).ok());
    ImageRecord {
        name,
        descriptor: descriptor.clone(),
    }
}

/// The index entry for `descriptor` tagged as `name` (or untagged).
fn entry_for(descriptor: &Descriptor, name: Option<&Reference>) -> Descriptor {
    let mut entry = Descriptor::new(
        descriptor.media_type.clone(),
        descriptor.digest.clone(),
        descriptor.size,
    );
    entry.platform = descriptor.platform.clone();
    if let Some(name) = name {
        let mut annotations = BTreeMap::new();
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

/// Points `name` at `descriptor` in `index`. The image the name pointed at before stays as a dangling entry when
/// nothing else refers to it.
fn set_tag(index: &mut Index, name: &Reference, descriptor: &Descriptor) {
    let previous = remove_name(index, name);
    index
        .manifests
        .retain(|d| !(d.digest == descriptor.digest && record_of(d).name.is_none()));
    index.manifests.push(entry_for(descriptor, Some(name)));
    if let Some(previous) = previous {
        keep_dangling(index, &previous);
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

/// Adds an untagged entry for `descriptor` unless some entry already refers to its manifest.
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
    pub fn migrate_ref_names(&self) -> Result<(), StoreError> {
        if !fix_ref_names(&mut self.read_index()?) {
            return Ok(());
        }
        self.update_index(|index| {
            fix_ref_names(index);
            Ok::<_, StoreError>(())
        })
    }

    /// Every index entry.
    pub fn image_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.read_index()?.manifests.iter().map(record_of).collect())
    }

    /// Adds an image under `names` (or untagged when `names` is empty), moving tags as `docker tag` does.
    pub fn add_image(
        &self,
        descriptor: &Descriptor,
        names: &[Reference],
    ) -> Result<(), StoreError> {
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
    /// (`sha256:…`) or by a unique prefix of it.
    pub fn find_image(&self, argument: &str) -> Result<FoundImage, TagError> {
        let records = self.image_records()?;
        let by_reference = Reference::parse_tagged(argument)
            .ok()
            .and_then(|reference| {
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
            });
        let (descriptor, requested) = match by_reference {
            Some(found) => found,
            None => (self.find_by_id(&records, argument)?, None),
        };
        let image = Image::read(self, &descriptor)?;
        let names = names_of_image(&records, self, image.id());
        Ok(FoundImage {
            image,
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
            let Ok(image) = Image::read(self, &record.descriptor) else {
                continue;
            };
            let id = image.id().clone();
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
        self.add_image(&found.image.descriptor, std::slice::from_ref(&target))?;
        Ok(target)
    }

    /// `docker rmi ARG`: untags a name, or deletes an image by ID. Returns Docker's `Untagged:`/`Deleted:` lines.
    /// Blobs are left for [`Store::prune`].
    pub fn remove_image(&self, argument: &str, force: bool) -> Result<Vec<String>, TagError> {
        let found = self.find_image(argument)?;
        let id = found.image.id().clone();
        self.update_index(|index| {
            let mut report = Vec::new();
            let untag = |index: &mut Index, name: &Reference, report: &mut Vec<String>| {
                remove_name(index, name);
                report.push(format!("Untagged: {}", name.familiar()));
            };
            match &found.requested {
                Some(reference) if reference.digest().is_none() => {
                    untag(index, reference, &mut report)
                }
                Some(reference) => {
                    for name in found.names.iter().filter(|n| n.name() == reference.name()) {
                        untag(index, name, &mut report);
                    }
                }
                None => {
                    let repositories: std::collections::BTreeSet<String> =
                        found.names.iter().map(Reference::name).collect();
                    if repositories.len() > 1 && !force {
                        return Err(TagError::MultipleRepositories {
                            id: id.short().to_string(),
                        });
                    }
                    for name in &found.names {
                        untag(index, name, &mut report);
                    }
                }
            }
            let still_named = index.manifests.iter().any(|d| {
                record_of(d).name.is_some()
                    && Image::read(self, d).map(|i| i.id() == &id).unwrap_or(false)
            });
            if !still_named {
                index
                    .manifests
                    .retain(|d| !Image::read(self, d).map(|i| i.id() == &id).unwrap_or(false));
                report.push(format!("Deleted: {id}"));
            }
            Ok(report)
        })
    }
}

/// Every name whose image has config digest `id`.
fn names_of_image(records: &[ImageRecord], store: &Store, id: &Digest) -> Vec<Reference> {
    let mut names: Vec<Reference> = records
        .iter()
        .filter_map(|r| {
            let name = r.name.clone()?;
            let image = Image::read(store, &r.descriptor).ok()?;
            (image.id() == id).then_some(name)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::store_image;
    use crate::ImageConfig;

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
