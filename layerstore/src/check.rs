//! The store's integrity check (`lade system check`): every blob is re-hashed against its name, every image the
//! index names is followed to its config and layers, and what interrupted writers left in `ingest/` is found.
//!
//! The check runs under the collector lock, so no writer is between its first blob and its index update while it
//! looks. What a killed process left behind is told apart from a live process's scratch space by the lock every
//! temp file and directory holds while it is in use ([`crate::fsutil::hold_in_use`]). With `repair`, corrupt blobs,
//! stray files, leftovers and the index entries of broken images are removed; nothing that checks out is touched.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::fsutil::FileLock;
use crate::manifest::{Descriptor, ManifestKind};
use crate::store::{Store, StoreError};

/// An index entry whose image cannot be read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenImage {
    /// The entry's reference name, or its manifest digest when it has none.
    pub name: String,
    /// What is wrong, naming the blob.
    pub reason: String,
}

/// What a check found (and, with repair, removed).
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Blobs whose content does not hash to their name.
    pub corrupt_blobs: Vec<Digest>,
    /// Files under `blobs/` whose names are not digests.
    pub stray_files: Vec<PathBuf>,
    /// Index entries whose manifest, config or a layer is missing, corrupt or unreadable.
    pub broken_images: Vec<BrokenImage>,
    /// Entries of `ingest/` that no live process holds: what an interrupted write left behind.
    pub leftovers: Vec<PathBuf>,
    /// Whether the problems above were removed.
    pub repaired: bool,
}

impl CheckReport {
    /// Is anything visible wrong? (Leftovers are invisible to every reader and do not count.)
    pub fn has_problems(&self) -> bool {
        !self.corrupt_blobs.is_empty()
            || !self.stray_files.is_empty()
            || !self.broken_images.is_empty()
    }
}

fn io_error(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

impl Store {
    /// Checks the whole store; with `repair`, removes what is broken (see the module docs).
    pub fn check(&self, repair: bool) -> Result<CheckReport, StoreError> {
        let _lock = self.collector_lock()?;
        let mut report = CheckReport {
            leftovers: self.leftovers()?,
            ..CheckReport::default()
        };
        self.check_blobs(&mut report)?;
        let index = self.read_index()?;
        for entry in &index.manifests {
            let docker = crate::tags::linked_manifest(entry);
            let problem = self
                .image_problem(entry, &report.corrupt_blobs)
                .or_else(|| {
                    docker
                        .as_ref()
                        .and_then(|d| self.image_problem(d, &report.corrupt_blobs))
                });
            if let Some(reason) = problem {
                report.broken_images.push(BrokenImage {
                    name: entry_name(entry),
                    reason,
                });
            }
        }
        if repair {
            self.repair(&report)?;
            report.repaired = true;
        }
        Ok(report)
    }

    /// `ingest/` entries nobody holds.
    fn leftovers(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root().join("ingest");
        let mut leftovers = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error(format!("listing {}", dir.display())))? {
            let path = entry
                .map_err(io_error(format!("listing {}", dir.display())))?
                .path();
            match FileLock::try_exclusive_existing(&path) {
                Ok(Some(_)) => leftovers.push(path),
                Ok(None) => {}
                // Gone since the listing: its owner finished.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(format!("locking {}", path.display()))(e)),
            }
        }
        leftovers.sort();
        Ok(leftovers)
    }

    fn check_blobs(&self, report: &mut CheckReport) -> Result<(), StoreError> {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root().join("blobs").join(algorithm.name());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(format!("listing {}", dir.display()))(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_error(format!("listing {}", dir.display())))?;
                let name = format!(
                    "{}:{}",
                    algorithm.name(),
                    entry.file_name().to_string_lossy()
                );
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                match name.parse::<Digest>() {
                    Ok(digest) if is_file => {
                        let (actual, size) = self.hash_blob(&digest)?;
                        report.blobs_checked += 1;
                        report.bytes_checked += size;
                        if actual != digest {
                            report.corrupt_blobs.push(digest);
                        }
                    }
                    _ => report.stray_files.push(entry.path()),
                }
            }
        }
        report.corrupt_blobs.sort();
        report.stray_files.sort();
        Ok(())
    }

    fn hash_blob(&self, digest: &Digest) -> Result<(Digest, u64), StoreError> {
        let mut reader = HashingReader::new(self.open_blob(digest)?, digest.algorithm());
        io::copy(&mut reader, &mut io::sink())
            .map_err(io_error(format!("reading blob {digest}")))?;
        Ok(reader.finish())
    }

    /// Why the image behind `descriptor` cannot be read whole, if it cannot.
    fn image_problem(&self, descriptor: &Descriptor, corrupt: &[Digest]) -> Option<String> {
        let blob_problem = |d: &Descriptor, what: &str| -> Option<String> {
            if corrupt.contains(&d.digest) {
                return Some(format!("{what} {} is corrupt", d.digest));
            }
            match self.blob_size(&d.digest) {
                Err(_) => Some(format!("{what} {} is missing", d.digest)),
                Ok(size) if size != d.size => Some(format!(
                    "{what} {} has {size} bytes, its descriptor says {}",
                    d.digest, d.size
                )),
                Ok(_) => None,
            }
        };
        if let Some(problem) = blob_problem(descriptor, "manifest") {
            return Some(problem);
        }
        let bytes = match self.read_blob(&descriptor.digest) {
            Ok(bytes) => bytes,
            Err(e) => return Some(format!("manifest {}: {e}", descriptor.digest)),
        };
        match ManifestKind::parse(&bytes, &descriptor.media_type) {
            Ok(ManifestKind::Image(manifest)) => {
                blob_problem(&manifest.config, "config").or_else(|| {
                    manifest
                        .layers
                        .iter()
                        .find_map(|layer| blob_problem(layer, "layer"))
                })
            }
            // An index is kept whole (`pull --all-platforms`): every child must be there, and whole.
            Ok(ManifestKind::Index(index)) => index
                .manifests
                .iter()
                .find_map(|child| self.image_problem(child, corrupt)),
            Err(e) => Some(format!("manifest {}: {e}", descriptor.digest)),
        }
    }

    fn repair(&self, report: &CheckReport) -> Result<(), StoreError> {
        for digest in &report.corrupt_blobs {
            self.remove_blob(digest)?;
        }
        for path in report.stray_files.iter().chain(&report.leftovers) {
            let removed = if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_error(format!("removing {}", path.display()))(e));
                }
                _ => {}
            }
        }
        if report.broken_images.is_empty() {
            return Ok(());
        }
        let broken: Vec<&str> = report
            .broken_images
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        self.update_index(|index| {
            index
                .manifests
                .retain(|entry| !broken.contains(&entry_name(entry).as_str()));
            Ok::<(), StoreError>(())
        })
    }
}

/// How the report names an index entry.
fn entry_name(entry: &Descriptor) -> String {
    entry
        .annotation(crate::tags::REF_NAME_ANNOTATION)
        .map_or_else(|| entry.digest.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::store_image;
    use crate::{media_types, ImageConfig};

    fn store_with_image(dir: &std::path::Path) -> (Store, Digest, Descriptor) {
        let store = Store::open(dir).unwrap();
        let layer = store.write_blob(b"layer bytes").unwrap();
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids.push(layer.clone());
        let layers = vec![Descriptor::new(media_types::OCI_LAYER, layer.clone(), 11)];
        let (descriptor, _) = store_image(&store, &config, layers).unwrap();
        store
            .add_image(&descriptor, &["app:1".parse().unwrap()])
            .unwrap();
        (store, layer, descriptor)
    }

    #[test]
    fn a_sound_store_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = store_with_image(dir.path());
        let report = store.check(false).unwrap();
        assert!(!report.has_problems(), "{report:?}");
        assert_eq!(report.blobs_checked, 3);
        assert!(report.leftovers.is_empty());
    }

    #[test]
    fn a_corrupt_layer_breaks_its_image_and_repair_drops_both() {
        let dir = tempfile::tempdir().unwrap();
        let (store, layer, _) = store_with_image(dir.path());
        fs::write(store.blob_path(&layer), b"LAYER BYTES").unwrap();
        let report = store.check(false).unwrap();
        assert_eq!(report.corrupt_blobs, std::slice::from_ref(&layer));
        assert_eq!(report.broken_images.len(), 1);
        assert!(
            report.broken_images[0].reason.contains("corrupt"),
            "{report:?}"
        );
        assert!(
            store.has_blob(&layer),
            "a check without repair changes nothing"
        );
        let report = store.check(true).unwrap();
        assert!(report.repaired);
        assert!(!store.has_blob(&layer));
        assert!(store.read_index().unwrap().manifests.is_empty());
        assert!(!store.check(false).unwrap().has_problems());
    }

    #[test]
    fn leftovers_of_dead_writers_are_found_but_live_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = store_with_image(dir.path());
        let dead = dir.path().join("ingest/blob-killed");
        fs::write(&dead, b"half a blob").unwrap();
        let mut live = store.blob_writer(Algorithm::Sha256).unwrap();
        io::Write::write_all(&mut live, b"in flight").unwrap();
        let scratch = store.temp_dir("load-").unwrap();
        // flock locks belong to open files, so this process's own writers count as live too.
        let report = store.check(true).unwrap();
        assert_eq!(report.leftovers, std::slice::from_ref(&dead));
        assert!(!report.has_problems());
        assert!(!dead.exists() && scratch.path().exists());
        live.commit(None).unwrap();
    }

    #[test]
    fn a_missing_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, descriptor) = store_with_image(dir.path());
        let bytes = store.read_blob(&descriptor.digest).unwrap();
        let ManifestKind::Image(manifest) = ManifestKind::parse(&bytes, "").unwrap() else {
            panic!("an image")
        };
        store.remove_blob(&manifest.config.digest).unwrap();
        let report = store.check(false).unwrap();
        assert_eq!(report.broken_images[0].name, "docker.io/library/app:1");
        assert!(
            report.broken_images[0].reason.starts_with("config "),
            "{report:?}"
        );
    }
}
