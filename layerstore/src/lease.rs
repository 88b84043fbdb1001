//! Leases: what a running container (or any long-lived user of the store) holds, so that no prune removes it.
//!
//! A lease is a small JSON file in `<store>/leases/` naming the image, blobs and unpacked layers (chain IDs) in
//! use. Its holder keeps an exclusive `flock` on it for as long as it runs, so a lease dies with its process however
//! that ends: a prune reads the leases whose lock is held and keeps what they name, and removes the others. A lease is
//! written under a temporary name, locked, and only then renamed into place, so a reader never sees an unlocked
//! lease of a live process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsutil::unique_name;
use crate::store::{Store, StoreError};

/// What one lease holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// A 64-hex-digit ID (a container's, as Docker shows the first 12 of).
    pub id: String,
    /// Who holds it, for messages: `lade run alpine (pid 1234)`.
    pub holder: String,
    /// A container's `--name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The image ID in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// Blobs in use (the image's manifest, config and layers).
    #[serde(default)]
    pub blobs: Vec<Digest>,
    /// Unpacked layers in use, by chain ID (`<store>/snapshots/layers/<hex>`).
    #[serde(default)]
    pub snapshots: Vec<Digest>,
}

impl LeaseRecord {
    /// The short form of the ID, as Docker prints container IDs.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// `container 0123456789ab (lade run alpine, pid 1234)`, for messages.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("container {} {name:?} ({})", self.short_id(), self.holder),
            None => format!("container {} ({})", self.short_id(), self.holder),
        }
    }
}

/// A lease in force; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct Lease {
    _file: File,
    path: PathBuf,
    record: LeaseRecord,
}

impl Lease {
    /// What the lease holds.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

impl Store {
    fn lease_dir(&self) -> PathBuf {
        self.root().join("leases")
    }

    /// Takes a lease on what `record` names (its `id` is filled in when empty). Take it under the writer lock,
    /// before using what it names, so that a prune either sees it or finishes before the use begins.
    pub fn take_lease(&self, mut record: LeaseRecord) -> Result<Lease, StoreError> {
        let dir = self.lease_dir();
        fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
        if record.id.is_empty() {
            record.id = Digest::sha256_of(unique_name("lease-").as_bytes())
                .hex()
                .to_string();
        }
        let tmp = dir.join(unique_name(".tmp-"));
        let path = dir.join(format!("{}.json", record.id));
        let result = (|| {
            let mut file = OpenOptions::new().create_new(true).write(true).open(&tmp)?;
            rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive)?;
            file.write_all(&serde_json::to_vec(&record).map_err(io::Error::other)?)?;
            fs::rename(&tmp, &path)?;
            Ok(file)
        })();
        match result {
            Ok(file) => Ok(Lease {
                _file: file,
                path,
                record,
            }),
            Err(source) => {
                let _ = fs::remove_file(&tmp);
                Err(io_error(format!("writing the lease {}", path.display()))(
                    source,
                ))
            }
        }
    }

    /// The leases whose holders are alive; the files of dead ones are removed on the way.
    pub fn live_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let dir = self.lease_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(format!("reading {}", dir.display()))(e)),
        };
        let mut live = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            if let Some(record) = read_if_held(&path)? {
                live.push(record);
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }
}

/// The record of a lease whose lock is held; a lease nobody holds is removed and gives `None`.
fn read_if_held(path: &Path) -> Result<Option<LeaseRecord>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        // Released between the listing and now.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("opening {}", path.display()))(e)),
    };
    match rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            // Nobody holds it: its process is gone.
            let _ = fs::remove_file(path);
            Ok(None)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let bytes = fs::read(path).map_err(io_error(format!("reading {}", path.display())))?;
            let record = serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
                context: format!("reading {}", path.display()),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?;
            Ok(Some(record))
        }
        Err(e) => Err(io_error(format!("locking {}", path.display()))(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_live_while_held_and_gone_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.live_leases().unwrap().is_empty());
        let lease = store
            .take_lease(LeaseRecord {
                holder: "test".into(),
                blobs: vec![Digest::sha256_of(b"x")],
                ..LeaseRecord::default()
            })
            .unwrap();
        let live = store.live_leases().unwrap();
        assert_eq!(live, [lease.record().clone()]);
        assert_eq!(live[0].id.len(), 64);
        drop(lease);
        assert!(store.live_leases().unwrap().is_empty());
    }

    #[test]
    fn a_lease_left_by_a_dead_process_is_not_live_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let leases = dir.path().join("leases");
        fs::create_dir_all(&leases).unwrap();
        let stale = leases.join("0123.json");
        fs::write(&stale, br#"{"id":"0123","holder":"gone"}"#).unwrap();
        assert!(store.live_leases().unwrap().is_empty());
        assert!(!stale.exists());
    }
}
