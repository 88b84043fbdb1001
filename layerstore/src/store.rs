//! The content-addressed blob store, on disk in OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
//!
//! Every blob write streams into a temp file under `ingest/` while hashing, verifies the expected digest, fsyncs and
//! renames into place, so a blob file is always complete and correct. Writing a blob that exists is a no-op. The
//! index (`index.json`, which holds the tags) is only changed under an exclusive lock and replaced atomically, so
//! several processes can share one store. Operations that add blobs hold a shared "writer" lock until their index
//! update, so `prune` (which takes it exclusively) never sweeps blobs of an import in flight.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::fsutil::{self, FileLock, TempDir};
use crate::limits::{read_limited, MAX_INDEX_SIZE, MAX_METADATA_SIZE};
use crate::manifest::Index;

const OCI_LAYOUT: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation on the store failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. the path being written.
        context: String,
        /// What the file system reported.
        source: io::Error,
    },
    /// The blob with this digest is not in the store.
    #[error("blob {0} is not in the store")]
    BlobUnknown(Digest),
    /// Content written or read does not hash to the digest it is stored or expected under.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of the content.
        actual: Digest,
    },
    /// Content written or read does not have the size its descriptor gives.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: Digest,
        /// The size in bytes the caller expected.
        expected: u64,
        /// The size in bytes of the content.
        actual: u64,
    },
    /// The store's `index.json` does not parse as an OCI image index.
    #[error("the store's index.json is corrupt: {0}")]
    CorruptIndex(serde_json::Error),
}

/// Adds a description of what was being done to an I/O error.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            context: context(),
            source,
        })
    }
}

/// A store rooted at a directory in OCI image layout.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating the layout when missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            fsutil::write_atomic(&layout, OCI_LAYOUT.as_bytes())
                .context(|| format!("writing {}", layout.display()))?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _lock = FileLock::exclusive(&root.join("index.lock"))
                .context(|| "locking the index".into())?;
            if !index.exists() {
                let empty = serde_json::to_vec(&Index::new(Vec::new())).expect("serializable");
                fsutil::write_atomic(&index, &empty)
                    .context(|| format!("writing {}", index.display()))?;
            }
        }
        Ok(Store { root })
    }

    /// The store's root directory, holding `oci-layout`, `index.json` and `blobs/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Whether the blob with this digest is in the store (its file exists).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobUnknown(digest.clone()))
            }
            Err(e) => Err(e).context(|| format!("reading blob {digest}")),
        }
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        match File::open(self.blob_path(digest)) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobUnknown(digest.clone()))
            }
            Err(e) => Err(e).context(|| format!("opening blob {digest}")),
        }
    }

    /// Reads a small blob (a manifest or config) whole, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let what = format!("blob {digest}");
        let bytes = read_limited(self.open_blob(digest)?, MAX_METADATA_SIZE, &what)
            .context(|| format!("reading {what}"))?;
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` and returns their sha256 digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let mut writer = self.blob_writer(Algorithm::Sha256)?;
        writer.write_all(bytes).context(|| "writing blob".into())?;
        Ok(writer.commit(None)?.0)
    }

    /// Streams `reader` into the store, verifying it against `expected` when given.
    pub fn ingest(
        &self,
        reader: &mut impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut writer = self.blob_writer(algorithm)?;
        io::copy(reader, &mut writer).context(|| "reading blob content".into())?;
        writer.commit(expected)
    }

    /// A writer for a new blob of unknown digest; see [`BlobWriter::commit`].
    pub fn blob_writer(&self, algorithm: Algorithm) -> Result<BlobWriter, StoreError> {
        let path = self.root.join("ingest").join(fsutil::unique_name("blob-"));
        let file = File::create(&path).context(|| format!("creating {}", path.display()))?;
        fsutil::hold_in_use(&file).context(|| format!("locking {}", path.display()))?;
        Ok(BlobWriter {
            store: self.clone(),
            inner: Some(HashingWriter::new(
                io::BufWriter::with_capacity(1 << 20, file),
                algorithm,
            )),
            path,
        })
    }

    /// Moves a complete file (on the store's filesystem) into the store as the blob `digest`; the caller has checked
    /// that its content hashes to `digest`. The file is fsynced before the rename.
    pub fn adopt_verified_file(&self, path: &Path, digest: &Digest) -> Result<(), StoreError> {
        let target = self.blob_path(digest);
        if target.is_file() {
            return Ok(());
        }
        File::open(path)
            .and_then(|file| file.sync_all())
            .context(|| format!("syncing {}", path.display()))?;
        let dir = target.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        fs::rename(path, &target).context(|| format!("storing blob {digest}"))?;
        fsutil::sync_dir(dir).context(|| format!("syncing {}", dir.display()))
    }

    /// Deletes a blob (and what is remembered about it); deleting a missing blob is not an error.
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        self.forget_content_size(digest);
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).context(|| format!("removing blob {digest}"))
            }
            _ => Ok(()),
        }
    }

    /// The digests of every blob in the store, sorted.
    pub fn list_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let mut blobs = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(algorithm.name());
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).context(|| format!("listing {}", dir.display())),
            };
            for entry in entries {
                let entry = entry.context(|| format!("listing {}", dir.display()))?;
                if let Ok(digest) = format!(
                    "{}:{}",
                    algorithm.name(),
                    entry.file_name().to_string_lossy()
                )
                .parse()
                {
                    blobs.push(digest);
                }
            }
        }
        blobs.sort();
        Ok(blobs)
    }

    /// A scratch directory inside the store (same filesystem, so files in it can be adopted by rename).
    pub fn temp_dir(&self, prefix: &str) -> Result<TempDir, StoreError> {
        TempDir::new_in(&self.root.join("ingest"), prefix)
            .context(|| "creating a scratch directory".into())
    }

    /// Held by any operation that adds blobs, from its first blob until its index update.
    pub fn writer_lock(&self) -> Result<FileLock, StoreError> {
        FileLock::shared(&self.root.join("gc.lock")).context(|| "locking the store".into())
    }

    /// Held by garbage collection, excluding all writers.
    pub fn collector_lock(&self) -> Result<FileLock, StoreError> {
        FileLock::exclusive(&self.root.join("gc.lock")).context(|| "locking the store".into())
    }

    /// Reads the index (tags and images).
    pub fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.root.join("index.json");
        let file = File::open(&path).context(|| format!("reading {}", path.display()))?;
        let bytes = read_limited(file, MAX_INDEX_SIZE, &path.display().to_string())
            .context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(StoreError::CorruptIndex)
    }

    /// Changes the index under an exclusive lock; the new index replaces the old atomically when `change` succeeds.
    pub fn update_index<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut Index) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = FileLock::exclusive(&self.root.join("index.lock"))
            .context(|| "locking the index".into())?;
        let mut index = self.read_index()?;
        let result = change(&mut index)?;
        let bytes = serde_json::to_vec_pretty(&index).expect("an index serializes");
        let path = self.root.join("index.json");
        fsutil::write_atomic(&path, &bytes).context(|| format!("writing {}", path.display()))?;
        Ok(result)
    }
}

/// A blob being written: bytes go to a temp file while hashing; [`BlobWriter::commit`] verifies and stores it.
/// Dropping it without committing deletes the temp file.
pub struct BlobWriter {
    store: Store,
    inner: Option<HashingWriter<io::BufWriter<File>>>,
    path: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map_or(0, HashingWriter::written)
    }

    /// Finishes the blob: fsync, check against `expected` (when given), rename into place.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let (buffered, digest, size) = self.inner.take().expect("commit once").finish();
        let file = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .context(|| "writing blob".into())?;
        drop(file);
        if let Some(expected) = expected {
            if expected != &digest {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        self.store.adopt_verified_file(&self.path, &digest)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_blob(b"hello").unwrap();
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert_eq!(store.write_blob(b"hello").unwrap(), digest);
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");
        let wrong = Digest::sha256_of(b"other");
        let err = store.ingest(&mut &b"hello"[..], Some(&wrong)).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!store.has_blob(&wrong));
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert!(dir.path().join("oci-layout").is_file());
        assert_eq!(store.list_blobs().unwrap(), vec![digest]);
    }

    #[test]
    fn corrupt_blob_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = store.write_blob(b"hello").unwrap();
        fs::write(store.blob_path(&digest), b"HELLO").unwrap();
        assert!(matches!(
            store.read_blob(&digest),
            Err(StoreError::DigestMismatch { .. })
        ));
    }
}
