//! Repository content over a storage driver: blob links, manifest revisions, tags, the catalog and referrers.
//!
//! Everything here is synchronous; the HTTP layer runs it on the blocking thread pool.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use layerstore::{media_types, Descriptor, Digest, ManifestKind};
use serde_json::Value;

use crate::layout;
use crate::storage::{Driver, DriverError};

/// The content of one registry root.
pub struct Registry {
    driver: Arc<dyn Driver>,
}

/// Turns "not found" into `None`.
fn optional<T>(result: Result<T, DriverError>) -> Result<Option<T>, DriverError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// The media type a stored manifest is served with: its own `mediaType`, else what its shape says.
pub fn manifest_media_type(bytes: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return media_types::OCI_MANIFEST.to_string();
    };
    if let Some(declared) = value
        .get("mediaType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return declared.to_string();
    }
    if value.get("manifests").is_some() {
        return media_types::OCI_INDEX.to_string();
    }
    let config_type = value.pointer("/config/mediaType").and_then(Value::as_str);
    if config_type == Some(media_types::DOCKER_CONFIG) {
        media_types::DOCKER_MANIFEST.to_string()
    } else {
        media_types::OCI_MANIFEST.to_string()
    }
}

impl Registry {
    /// A registry over a storage driver.
    pub fn new(driver: Arc<dyn Driver>) -> Registry {
        Registry { driver }
    }

    /// The storage driver it reads and writes.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The digest a link file names, if the file exists and is well formed.
    pub fn read_link(&self, path: &str) -> Result<Option<Digest>, DriverError> {
        let Some(content) = optional(self.driver.get_content(path))? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&content);
        match text.trim().parse() {
            Ok(digest) => Ok(Some(digest)),
            Err(err) => {
                tracing::warn!(path, error = %err, "ignoring malformed link file");
                Ok(None)
            }
        }
    }

    fn write_link(&self, path: &str, digest: &Digest) -> Result<(), DriverError> {
        self.driver.put_content(path, digest.to_string().as_bytes())
    }

    // ---- blobs ----

    /// The size of a blob in the global store.
    pub fn global_blob_size(&self, digest: &Digest) -> Result<Option<u64>, DriverError> {
        Ok(optional(self.driver.stat(&layout::blob_data(digest)))?.map(|info| info.size))
    }

    /// The size of a blob if it is linked into repository `name` and present.
    pub fn blob_size(&self, name: &str, digest: &Digest) -> Result<Option<u64>, DriverError> {
        if self.read_link(&layout::layer_link(name, digest))?.as_ref() != Some(digest) {
            return Ok(None);
        }
        self.global_blob_size(digest)
    }

    /// Reads a blob's content from `offset` on.
    pub fn open_blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<Box<dyn Read + Send>, DriverError> {
        self.driver.reader(&layout::blob_data(digest), offset)
    }

    /// Marks a blob as recently used so that garbage collection's grace period protects it.
    pub fn touch_blob(&self, digest: &Digest) -> Result<(), DriverError> {
        optional(self.driver.touch(&layout::blob_data(digest))).map(drop)
    }

    /// Links an existing global blob into a repository.
    pub fn link_blob(&self, name: &str, digest: &Digest) -> Result<(), DriverError> {
        self.touch_blob(digest)?;
        self.write_link(&layout::layer_link(name, digest), digest)
    }

    /// Removes a repository's link to a blob; false when there was none.
    pub fn unlink_blob(&self, name: &str, digest: &Digest) -> Result<bool, DriverError> {
        if self.read_link(&layout::layer_link(name, digest))?.is_none() {
            return Ok(false);
        }
        optional(self.driver.delete(&layout::layer_link_dir(name, digest)))?;
        Ok(true)
    }

    // ---- manifests and tags ----

    /// The digest a tag points at.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>, DriverError> {
        self.read_link(&layout::tag_current_link(name, tag))
    }

    /// The bytes of a manifest revision of repository `name`.
    pub fn get_manifest(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, DriverError> {
        if self
            .read_link(&layout::revision_link(name, digest))?
            .as_ref()
            != Some(digest)
        {
            return Ok(None);
        }
        optional(self.driver.get_content(&layout::blob_data(digest)))
    }

    /// Does repository `name` hold manifest `digest`?
    pub fn manifest_exists(&self, name: &str, digest: &Digest) -> Result<bool, DriverError> {
        Ok(self
            .read_link(&layout::revision_link(name, digest))?
            .as_ref()
            == Some(digest)
            && self.global_blob_size(digest)?.is_some())
    }

    /// Stores manifest bytes (already verified to hash to `digest`) as a revision of `name`, and points `tags` at it.
    pub fn put_manifest(
        &self,
        name: &str,
        digest: &Digest,
        bytes: &[u8],
        tags: &[String],
    ) -> Result<(), DriverError> {
        let path = layout::blob_data(digest);
        match optional(self.driver.stat(&path))? {
            Some(info) if info.size == bytes.len() as u64 => self.driver.touch(&path)?,
            _ => self.driver.put_content(&path, bytes)?,
        }
        self.write_link(&layout::revision_link(name, digest), digest)?;
        for tag in tags {
            self.tag(name, tag, digest)?;
        }
        Ok(())
    }

    /// Points `tag` at `digest`.
    pub fn tag(&self, name: &str, tag: &str, digest: &Digest) -> Result<(), DriverError> {
        self.write_link(&layout::tag_index_link(name, tag, digest), digest)?;
        self.write_link(&layout::tag_current_link(name, tag), digest)
    }

    /// Removes a tag; false when it did not exist.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool, DriverError> {
        if self.resolve_tag(name, tag)?.is_none() {
            return Ok(false);
        }
        optional(self.driver.delete(&layout::tag_dir(name, tag)))?;
        Ok(true)
    }

    /// Removes a manifest revision and every tag pointing at it; false when the revision did not exist.
    pub fn delete_manifest(&self, name: &str, digest: &Digest) -> Result<bool, DriverError> {
        if self
            .read_link(&layout::revision_link(name, digest))?
            .is_none()
        {
            return Ok(false);
        }
        optional(self.driver.delete(&layout::revision_link_dir(name, digest)))?;
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(digest) {
                optional(self.driver.delete(&layout::tag_dir(name, &tag)))?;
            }
        }
        Ok(true)
    }

    /// Does repository `name` exist at all?
    pub fn repository_exists(&self, name: &str) -> Result<bool, DriverError> {
        Ok(optional(self.driver.stat(&layout::repo_dir(name)))?.is_some_and(|info| info.is_dir))
    }

    /// The sorted tags of a repository, or `None` when the repository does not exist.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, DriverError> {
        if !self.repository_exists(name)? {
            return Ok(None);
        }
        let mut tags = Vec::new();
        for tag in optional(self.driver.list(&layout::tags_dir(name)))?.unwrap_or_default() {
            if self.resolve_tag(name, &tag)?.is_some() {
                tags.push(tag);
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Every tag of a repository with the digest it points at.
    pub fn tag_map(&self, name: &str) -> Result<BTreeMap<String, Digest>, DriverError> {
        let mut map = BTreeMap::new();
        for tag in self.tags(name)?.unwrap_or_default() {
            if let Some(digest) = self.resolve_tag(name, &tag)? {
                map.insert(tag, digest);
            }
        }
        Ok(map)
    }

    /// The sorted names of all repositories (directories holding manifests or blob links).
    pub fn repositories(&self) -> Result<Vec<String>, DriverError> {
        self.find_repositories(&["_manifests", "_layers"])
    }

    /// The sorted names of all repository directories, including those that so far only hold upload sessions.
    pub fn repository_dirs(&self) -> Result<Vec<String>, DriverError> {
        self.find_repositories(&["_manifests", "_layers", "_uploads"])
    }

    fn find_repositories(&self, markers: &[&str]) -> Result<Vec<String>, DriverError> {
        let mut found = Vec::new();
        let mut pending = vec![String::new()];
        let root = layout::repositories_root();
        while let Some(prefix) = pending.pop() {
            let dir = if prefix.is_empty() {
                root.clone()
            } else {
                format!("{root}/{prefix}")
            };
            let Some(children) = optional(self.driver.list(&dir))? else {
                continue;
            };
            if children.iter().any(|c| markers.contains(&c.as_str())) && !prefix.is_empty() {
                found.push(prefix.clone());
            }
            for child in children.into_iter().filter(|c| !c.starts_with('_')) {
                let path = if prefix.is_empty() {
                    child
                } else {
                    format!("{prefix}/{child}")
                };
                if optional(self.driver.stat(&format!("{root}/{path}")))?.is_some_and(|i| i.is_dir)
                {
                    pending.push(path);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The digests of every manifest revision of a repository.
    pub fn manifest_revisions(&self, name: &str) -> Result<Vec<Digest>, DriverError> {
        let mut digests = Vec::new();
        let dir = layout::revisions_dir(name);
        for algorithm in optional(self.driver.list(&dir))?.unwrap_or_default() {
            for hex in
                optional(self.driver.list(&format!("{dir}/{algorithm}")))?.unwrap_or_default()
            {
                let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                    continue;
                };
                if self
                    .read_link(&layout::revision_link(name, &digest))?
                    .as_ref()
                    == Some(&digest)
                {
                    digests.push(digest);
                }
            }
        }
        Ok(digests)
    }

    /// Descriptors of the manifests in `name` whose `subject` is `subject`, optionally only of one artifact type.
    pub fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, DriverError> {
        let mut found = Vec::new();
        for digest in self.manifest_revisions(name)? {
            let Some(bytes) = optional(self.driver.get_content(&layout::blob_data(&digest)))?
            else {
                continue;
            };
            let Ok(kind) = ManifestKind::parse(&bytes, "") else {
                continue;
            };
            let (subject_of, artifact, annotations) = match &kind {
                ManifestKind::Image(m) => (
                    m.subject.as_ref(),
                    m.artifact_type
                        .clone()
                        .or_else(|| Some(m.config.media_type.clone())),
                    m.annotations.clone(),
                ),
                ManifestKind::Index(i) => (
                    i.subject.as_ref(),
                    i.artifact_type.clone(),
                    i.annotations.clone(),
                ),
            };
            if subject_of.map(|s| &s.digest) != Some(subject) {
                continue;
            }
            if artifact_type.is_some_and(|wanted| artifact.as_deref() != Some(wanted)) {
                continue;
            }
            let mut descriptor =
                Descriptor::new(manifest_media_type(&bytes), digest, bytes.len() as u64);
            descriptor.artifact_type = artifact;
            descriptor.annotations = annotations;
            found.push(descriptor);
        }
        found.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_of_stored_manifests() {
        let declared = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(
            manifest_media_type(declared),
            media_types::DOCKER_MANIFEST_LIST
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"manifests":[]}"#),
            media_types::OCI_INDEX
        );
        let docker = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"},"layers":[]}"#;
        assert_eq!(manifest_media_type(docker), media_types::DOCKER_MANIFEST);
        let oci = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json"},"layers":[]}"#;
        assert_eq!(manifest_media_type(oci), media_types::OCI_MANIFEST);
    }
}
