//! `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`: the cache in an OCI image layout
//! directory (`oci-layout`, `index.json`, `blobs/<algorithm>/<hex>`), which CI systems can keep as a plain folder.
//! `index.json` names the cache manifest under the `org.opencontainers.image.ref.name` of its tag (`latest` unless
//! `tag=` says otherwise), as BuildKit's local cache does. Files are written atomically; blobs already there are
//! kept.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use layerstore::fsutil;
use layerstore::{Descriptor, Digest, Index, Store};

use super::cache_transfer::CacheTransport;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI layout directory holding a cache.
#[derive(Debug, Clone)]
pub struct LocalCache {
    dir: PathBuf,
    tag: String,
}

impl LocalCache {
    /// The cache tagged `tag` in `dir`.
    pub fn new(dir: impl Into<PathBuf>, tag: impl Into<String>) -> LocalCache {
        LocalCache {
            dir: dir.into(),
            tag: tag.into(),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn read_index(&self) -> Result<Option<Index>, String> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Copies `from` into place at `to` atomically (temp file beside it, fsync, rename).
    fn copy_in(from: &Path, to: &Path) -> io::Result<()> {
        let dir = to.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir)?;
        let tmp = dir.join(fsutil::unique_name(".tmp-"));
        let result = (|| {
            let mut source = File::open(from)?;
            let mut target = File::create(&tmp)?;
            io::copy(&mut source, &mut target)?;
            target.sync_all()?;
            fs::rename(&tmp, to)?;
            fsutil::sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl CacheTransport for LocalCache {
    fn fetch_manifest(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(index) = self.read_index()? else {
            return Ok(None);
        };
        let entry = index.manifests.iter().find(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|name| *name == self.tag)
        });
        let Some(entry) = entry else {
            return Ok(None);
        };
        let path = self.blob_path(&entry.digest);
        let bytes = fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let actual = Digest::of(entry.digest.algorithm(), &bytes);
        if actual != entry.digest {
            return Err(format!(
                "{}: the manifest hashes to {actual}, not {}",
                path.display(),
                entry.digest
            ));
        }
        Ok(Some(bytes))
    }

    fn fetch_blob(&self, descriptor: &Descriptor, path: &Path) -> Result<(), String> {
        let source = self.blob_path(&descriptor.digest);
        fs::copy(&source, path)
            .map(|_| ())
            .map_err(|e| format!("reading {}: {e}", source.display()))
    }

    fn push_blob(&self, store: &Store, descriptor: &Descriptor) -> Result<(), String> {
        let target = self.blob_path(&descriptor.digest);
        if fs::metadata(&target).is_ok_and(|m| m.len() == descriptor.size) {
            return Ok(());
        }
        Self::copy_in(&store.blob_path(&descriptor.digest), &target)
            .map_err(|e| format!("writing {}: {e}", target.display()))
    }

    fn push_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<(), String> {
        let failed = |path: &Path, e: io::Error| format!("writing {}: {e}", path.display());
        let digest = Digest::sha256_of(bytes);
        let path = self.blob_path(&digest);
        fs::create_dir_all(path.parent().expect("blob paths have a parent"))
            .map_err(|e| failed(&path, e))?;
        fsutil::write_atomic(&path, bytes).map_err(|e| failed(&path, e))?;
        let layout = self.dir.join("oci-layout");
        fsutil::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|e| failed(&layout, e))?;
        let mut index = self.read_index()?.unwrap_or_else(|| Index::new(Vec::new()));
        index.manifests.retain(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_none_or(|name| *name != self.tag)
        });
        let mut entry = Descriptor::new(media_type, digest, bytes.len() as u64);
        entry.annotations = Some([(REF_NAME.to_string(), self.tag.clone())].into());
        index.manifests.push(entry);
        let index_path = self.dir.join("index.json");
        let index_bytes = serde_json::to_vec_pretty(&index).expect("an index serializes");
        fsutil::write_atomic(&index_path, &index_bytes).map_err(|e| failed(&index_path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_written_is_read_back_by_its_tag_and_a_missing_dir_has_no_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LocalCache::new(dir.path().join("cache"), "latest");
        assert_eq!(cache.fetch_manifest().unwrap(), None);
        cache
            .push_manifest(layerstore::media_types::OCI_MANIFEST, b"{\"a\":1}")
            .unwrap();
        cache
            .push_manifest(layerstore::media_types::OCI_MANIFEST, b"{\"a\":2}")
            .unwrap();
        assert_eq!(cache.fetch_manifest().unwrap().unwrap(), b"{\"a\":2}");
        assert_eq!(
            LocalCache::new(dir.path().join("cache"), "other")
                .fetch_manifest()
                .unwrap(),
            None
        );
        // A corrupt manifest is an error, not a cache.
        let digest = Digest::sha256_of(b"{\"a\":2}");
        fs::write(cache.blob_path(&digest), b"{\"a\":3}").unwrap();
        assert!(cache.fetch_manifest().unwrap_err().contains("hashes to"));
    }
}
