//! Garbage collection of the blob store: blobs that no index entry reaches are deleted, except those a live lease
//! ([`crate::lease`]) holds: a running container's image stays whole, and the report says what was kept for whom.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::lease::LeaseRecord;
use crate::manifest::{Descriptor, ManifestKind};
use crate::store::{Store, StoreError};

/// What a prune removed, and what it left because it is in use.
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    /// Blobs deleted.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs nothing else reaches, kept because a live lease holds them.
    pub skipped_blobs: u64,
    /// The live leases at the time (what is in use, and by whom).
    pub leases: Vec<LeaseRecord>,
}

impl Store {
    /// Deletes every blob that no index entry reaches (manifests, indexes, configs, layers, subjects).
    /// Writers are excluded for the duration, so blobs of an import in flight are never swept.
    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        self.prune_with(|_| Ok(Vec::new()))
    }

    /// Like [`Store::prune`], keeping also the blobs `extra_roots` returns. It runs under the collector lock, so
    /// other users of the store (a build cache) can drop their own state there, sparing what the live leases it is
    /// given hold, and name what they still use.
    pub fn prune_with(
        &self,
        extra_roots: impl FnOnce(&[LeaseRecord]) -> Result<Vec<Digest>, StoreError>,
    ) -> Result<PruneReport, StoreError> {
        let _lock = self.collector_lock()?;
        let leases = self.live_leases()?;
        let mut reachable: HashSet<Digest> = extra_roots(&leases)?.into_iter().collect();
        for entry in &self.read_index()?.manifests {
            self.mark(entry, &mut reachable)?;
            if let Some(docker) = crate::tags::linked_manifest(entry) {
                self.mark(&docker, &mut reachable)?;
            }
        }
        let leased: HashSet<&Digest> = leases.iter().flat_map(|l| &l.blobs).collect();
        let mut report = PruneReport::default();
        for digest in self.list_blobs()? {
            if reachable.contains(&digest) {
                continue;
            }
            if leased.contains(&digest) {
                report.skipped_blobs += 1;
                continue;
            }
            report.bytes += self.blob_size(&digest).unwrap_or(0);
            self.remove_blob(&digest)?;
            report.blobs += 1;
        }
        report.leases = leases;
        Ok(report)
    }

    fn mark(
        &self,
        descriptor: &Descriptor,
        reachable: &mut HashSet<Digest>,
    ) -> Result<(), StoreError> {
        if !reachable.insert(descriptor.digest.clone()) || !self.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let bytes = self.read_blob(&descriptor.digest)?;
        match ManifestKind::parse(&bytes, &descriptor.media_type) {
            Ok(ManifestKind::Image(manifest)) => {
                reachable.insert(manifest.config.digest.clone());
                reachable.extend(manifest.layers.iter().map(|l| l.digest.clone()));
            }
            Ok(ManifestKind::Index(index)) => {
                for child in &index.manifests {
                    self.mark(child, reachable)?;
                }
            }
            // Not a manifest we understand: keep it, reach nothing further.
            Err(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::store_image;
    use crate::ImageConfig;

    #[test]
    fn prune_keeps_reachable_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.write_blob(b"layer").unwrap();
        let orphan = store.write_blob(b"orphan").unwrap();
        let layers = vec![Descriptor::new(
            crate::media_types::OCI_LAYER,
            layer.clone(),
            5,
        )];
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids.push(layer.clone());
        let (descriptor, id) = store_image(&store, &config, layers).unwrap();
        store.add_image(&descriptor, &[]).unwrap();
        let report = store.prune().unwrap();
        assert_eq!(report.blobs, 1);
        assert!(!store.has_blob(&orphan));
        for kept in [&layer, &id, &descriptor.digest] {
            assert!(store.has_blob(kept));
        }
    }

    #[test]
    fn prune_keeps_blobs_a_live_lease_holds_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let used = store.write_blob(b"used by a container").unwrap();
        let orphan = store.write_blob(b"orphan").unwrap();
        let lease = store
            .take_lease(LeaseRecord {
                holder: "test".into(),
                blobs: vec![used.clone()],
                ..LeaseRecord::default()
            })
            .unwrap();
        let report = store.prune().unwrap();
        assert_eq!((report.blobs, report.skipped_blobs), (1, 1));
        assert_eq!(report.leases, [lease.record().clone()]);
        assert!(store.has_blob(&used) && !store.has_blob(&orphan));
        drop(lease);
        let report = store.prune().unwrap();
        assert_eq!((report.blobs, report.skipped_blobs), (1, 0));
        assert!(!store.has_blob(&used));
    }
}
