//! Remembered file content digests, valid while a file's (inode, size, mtime, ctime) stay the same, so that an
//! unchanged build context is not read again on a rebuild. One entry per path (a newer state replaces the older),
//! kept in `<store>/context-hashes.json`, replaced atomically on save.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use layerstore::digest::{Algorithm, HashingWriter};
use layerstore::{Digest, Store};

use super::ContextError;

/// The digest cache of one build.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    /// Path → (stat key, digest).
    entries: HashMap<String, (String, Digest)>,
    dirty: bool,
    files_read: u64,
    bytes_read: u64,
}

impl HashCache {
    /// Loads the cache of `store` (empty when missing or unreadable: it is only a cache).
    pub fn open(store: &Store) -> HashCache {
        let path = store.root().join("context-hashes.json");
        let entries = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, (String, String)>>(&b).ok())
            .map(|m| {
                m.into_iter()
                    .filter_map(|(path, (key, digest))| Some((path, (key, digest.parse().ok()?))))
                    .collect()
            })
            .unwrap_or_default();
        HashCache {
            path,
            entries,
            dirty: false,
            files_read: 0,
            bytes_read: 0,
        }
    }

    /// The sha256 of a regular file's content, from the cache when the file is unchanged.
    pub fn file_digest(&mut self, path: &Path, meta: &Metadata) -> Result<Digest, ContextError> {
        let name = path.display().to_string();
        let key = format!(
            "{}:{}:{}.{}:{}.{}",
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        );
        if let Some((known, digest)) = self.entries.get(&name) {
            if *known == key {
                return Ok(digest.clone());
            }
        }
        let read_err = |source| ContextError::Io {
            context: format!("reading {}", path.display()),
            source,
        };
        let mut file = File::open(path).map_err(read_err)?;
        let mut hashing = HashingWriter::new(io::sink(), Algorithm::Sha256);
        let read = io::copy(&mut file, &mut hashing).map_err(read_err)?;
        let (_, digest, _) = hashing.finish();
        self.files_read += 1;
        self.bytes_read += read;
        self.entries.insert(name, (key, digest.clone()));
        self.dirty = true;
        Ok(digest)
    }

    /// How many files had to be read (not found in the cache) since it was opened.
    pub fn files_read(&self) -> u64 {
        self.files_read
    }

    /// How many bytes those files held.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Writes the cache back when it changed.
    pub fn save(&self) -> Result<(), ContextError> {
        if !self.dirty {
            return Ok(());
        }
        let map: HashMap<&String, (&String, String)> = self
            .entries
            .iter()
            .map(|(path, (key, digest))| (path, (key, digest.to_string())))
            .collect();
        let bytes = serde_json::to_vec(&map).expect("a map of strings serializes");
        layerstore::fsutil::write_atomic(&self.path, &bytes).map_err(|source| ContextError::Io {
            context: format!("writing {}", self.path.display()),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_read_again_after_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"one").unwrap();
        let mut cache = HashCache::open(&store);
        let first = cache
            .file_digest(&file, &fs::metadata(&file).unwrap())
            .unwrap();
        assert_eq!(first, Digest::sha256_of(b"one"));
        cache.save().unwrap();
        let mut cache = HashCache::open(&store);
        assert_eq!(
            cache
                .file_digest(&file, &fs::metadata(&file).unwrap())
                .unwrap(),
            first
        );
        assert_eq!((cache.files_read(), cache.bytes_read()), (0, 0));
        fs::write(&file, b"two").unwrap();
        let second = cache
            .file_digest(&file, &fs::metadata(&file).unwrap())
            .unwrap();
        assert_eq!(second, Digest::sha256_of(b"two"));
        assert_eq!((cache.files_read(), cache.bytes_read()), (1, 3));
        assert_eq!(cache.entries.len(), 1, "the new state replaces the old one");
    }
}
