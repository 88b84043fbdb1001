//! The object-store driver: S3 (any S3-compatible server) or memory, through `object_store`.
//!
//! Paths are object keys below an optional root prefix; "directories" are key prefixes. Small files are single PUTs
//! (atomic on every S3 server), moves are server-side copies followed by deletes, blob reads are ranged streaming
//! GETs.
//!
//! Appendable files (upload data) are S3 multipart uploads whose state lives in the bucket (`append`); the
//! bucket is reached and checked as `setup` says.
//!
//! The driver is synchronous like the others: each call runs its requests on the driver's own small runtime.

mod append;
mod setup;

use std::io::{self, Read};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};

use super::{Driver, DriverError, FileInfo, FileWriter};
use append::{STATE_SUFFIX, TAIL_SUFFIX};
use setup::Runtime;
pub use setup::{S3Options, SetupError};

/// The smallest part S3 accepts (but for the last one).
pub const MIN_CHUNK_SIZE: usize = 5 * 1024 * 1024;
/// registry:2's default part size.
pub const DEFAULT_CHUNK_SIZE: usize = 10 * 1024 * 1024;
/// How many parts one upload has in flight while it receives the next: upload and receipt overlap.
pub const PARTS_IN_FLIGHT: usize = 2;
/// How many parts the whole driver has in flight, which bounds the memory part buffers take beyond the one each
/// open upload fills.
pub const PARTS_IN_FLIGHT_TOTAL: usize = 4;

/// Where `touch` records use times, outside Distribution's tree (an S3 object's modification time cannot be set).
const TOUCHED: &str = "lade/touched";

/// An object store that also offers S3's multipart primitives.
pub trait Store: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Store for T {}

struct Inner {
    store: Arc<dyn Store>,
    root: String,
    chunk_size: usize,
    /// Permits for part uploads in flight ([`PARTS_IN_FLIGHT_TOTAL`]).
    part_slots: Arc<tokio::sync::Semaphore>,
    runtime: Runtime,
}

/// A [`Driver`] over an object store.
#[derive(Clone)]
pub struct ObjectDriver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectDriver")
            .field("store", &self.inner.store.to_string())
            .field("root", &self.inner.root)
            .finish()
    }
}

fn backend(path: &str, err: object_store::Error) -> DriverError {
    match err {
        object_store::Error::NotFound { .. } => DriverError::NotFound(path.to_string()),
        other => DriverError::Io {
            path: path.to_string(),
            source: io::Error::other(other.to_string()),
        },
    }
}

impl ObjectDriver {
    /// A driver over any store (in tests: memory).
    pub fn new(
        store: Arc<dyn Store>,
        root: &str,
        chunk_size: usize,
    ) -> Result<ObjectDriver, SetupError> {
        Ok(ObjectDriver {
            inner: Arc::new(Inner {
                store,
                root: root.trim_matches('/').to_string(),
                chunk_size: chunk_size.max(MIN_CHUNK_SIZE),
                part_slots: Arc::new(tokio::sync::Semaphore::new(PARTS_IN_FLIGHT_TOTAL)),
                runtime: Runtime::new()?,
            }),
        })
    }

    /// A driver over a fresh in-memory store.
    pub fn in_memory() -> ObjectDriver {
        ObjectDriver::new(Arc::new(InMemory::new()), "", MIN_CHUNK_SIZE)
            .expect("an in-memory store needs only a runtime")
    }

    fn run<F: std::future::Future>(&self, future: F) -> F::Output {
        self.inner.runtime.handle().block_on(future)
    }

    fn key(&self, path: &str) -> Result<Path, DriverError> {
        let clean = !path.is_empty()
            && !path.starts_with('/')
            && path
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !clean {
            return Err(DriverError::InvalidPath(path.to_string()));
        }
        let full = if self.inner.root.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.inner.root)
        };
        Path::parse(&full).map_err(|_| DriverError::InvalidPath(path.to_string()))
    }

    fn touched_key(&self, path: &str) -> Result<Path, DriverError> {
        self.key(&format!("{TOUCHED}/{path}"))
    }

    /// Deletes the object at `key`, an appendable file there (aborting its multipart upload) and every object below
    /// `key/`. Returns whether anything existed.
    fn delete_tree(&self, path: &str, key: &Path) -> Result<bool, DriverError> {
        let store = self.inner.store.clone();
        let mut targets: Vec<Path> = Vec::new();
        self.run(async {
            let below: Vec<_> = store
                .list(Some(key))
                .try_collect()
                .await
                .map_err(|e| backend(path, e))?;
            targets.extend(below.into_iter().map(|m| m.location));
            // Not a directory: perhaps a file (a HEAD of a directory key fails on some servers).
            if targets.is_empty() {
                match store.head(key).await {
                    Ok(meta) => targets.push(meta.location),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(err) => return Err(backend(path, err)),
                }
            }
            Ok(())
        })?;
        let mut states = vec![Self::state_key(key)];
        states.extend(
            targets
                .iter()
                .filter(|t| t.as_ref().ends_with(STATE_SUFFIX))
                .cloned(),
        );
        for state_key in states {
            let data = Path::from_url_path(state_key.as_ref().trim_end_matches(STATE_SUFFIX))
                .map_err(|_| DriverError::InvalidPath(path.to_string()))?;
            if let Some((state, _)) = self.load_state(path, &data)? {
                if let Some(id) = &state.multipart_id {
                    // An upload that is already gone (completed or aborted elsewhere) is fine.
                    let _ = self.run(store.abort_multipart(&data, id));
                }
                if let Some(tail) = state.tail_key {
                    targets.push(Path::from(tail));
                }
                targets.push(state_key);
            }
        }
        let found = !targets.is_empty();
        self.delete_all(path, targets)?;
        Ok(found)
    }

    /// Deletes objects in as few requests as the store allows (S3: `DeleteObjects`, up to 1000 keys a request);
    /// keys already gone are fine.
    fn delete_all(&self, path: &str, mut targets: Vec<Path>) -> Result<(), DriverError> {
        targets.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        targets.dedup();
        if targets.is_empty() {
            return Ok(());
        }
        let locations = futures_util::stream::iter(targets.into_iter().map(Ok)).boxed();
        self.run(async {
            let mut deleted = self.inner.store.delete_stream(locations);
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(err) => return Err(backend(path, err)),
                }
            }
            Ok(())
        })
    }

    /// Deletes the use markers below `path`, or else its own (markers are plain objects: no upload states to look
    /// for, no check that the marker exists).
    fn delete_markers(&self, path: &str) -> Result<(), DriverError> {
        let marker = self.touched_key(path)?;
        let mut targets: Vec<Path> = self
            .run(self.inner.store.list(Some(&marker)).try_collect::<Vec<_>>())
            .map_err(|e| backend(path, e))?
            .into_iter()
            .map(|meta| meta.location)
            .collect();
        if targets.is_empty() {
            // Only a file has a marker of its own (a key with keys below is a directory on some servers' disks).
            targets.push(marker);
        }
        self.delete_all(path, targets)
    }

    fn head(
        &self,
        path: &str,
        key: &Path,
    ) -> Result<Option<object_store::ObjectMeta>, DriverError> {
        match self.run(self.inner.store.head(key)) {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => {
                // s3s-fs fails a HEAD of a key that is an (empty) directory on its disk: the parent's listing says
                // whether there is such an object at all.
                let parts: Vec<_> = key.parts().collect();
                let parent: Path = parts[..parts.len().saturating_sub(1)]
                    .iter()
                    .cloned()
                    .collect();
                let listing = self
                    .run(self.inner.store.list_with_delimiter(Some(&parent)))
                    .map_err(|e| backend(path, e))?;
                if listing.objects.iter().any(|m| &m.location == key) {
                    Err(backend(path, err))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// A streaming read of one object.
struct ObjectReader {
    driver: ObjectDriver,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.driver.run(self.stream.next()) {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(err)) => return Err(io::Error::other(err.to_string())),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Driver for ObjectDriver {
    fn get_content(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        let key = self.key(path)?;
        self.run(async { self.inner.store.get(&key).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(|e| backend(path, e))
    }

    fn put_content(&self, path: &str, content: &[u8]) -> Result<(), DriverError> {
        let key = self.key(path)?;
        self.run(
            self.inner
                .store
                .put(&key, PutPayload::from(content.to_vec())),
        )
        .map(drop)
        .map_err(|e| backend(path, e))
    }

    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, DriverError> {
        let key = self.key(path)?;
        let Some(meta) = self.head(path, &key)? else {
            if self.load_state(path, &key)?.is_some() {
                return Err(DriverError::Io {
                    path: path.to_string(),
                    source: io::Error::other(
                        "an unfinished upload on object storage cannot be read back before it completes",
                    ),
                });
            }
            return Err(DriverError::NotFound(path.to_string()));
        };
        let stream = if offset >= meta.size {
            futures_util::stream::empty().boxed()
        } else {
            let options = GetOptions {
                range: (offset > 0).then_some(GetRange::Offset(offset)),
                ..Default::default()
            };
            self.run(self.inner.store.get_opts(&key, options))
                .map_err(|e| backend(path, e))?
                .into_stream()
        };
        Ok(Box::new(ObjectReader {
            driver: self.clone(),
            stream,
            current: Bytes::new(),
        }))
    }

    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, DriverError> {
        self.open_writer(path, append)
    }

    fn stat(&self, path: &str) -> Result<FileInfo, DriverError> {
        let key = self.key(path)?;
        // Directories first: some servers (s3s-fs) answer a HEAD of a "directory" key with a 500.
        let first = self
            .run(async { self.inner.store.list(Some(&key)).next().await })
            .transpose()
            .map_err(|e| backend(path, e))?;
        if first.is_some() {
            return Ok(FileInfo {
                size: 0,
                modified: SystemTime::UNIX_EPOCH,
                is_dir: true,
            });
        }
        if let Some(meta) = self.head(path, &key)? {
            return Ok(FileInfo {
                size: meta.size,
                modified: SystemTime::from(meta.last_modified),
                is_dir: false,
            });
        }
        match self.load_state(path, &key)? {
            Some((state, modified)) => Ok(FileInfo {
                size: state.size,
                modified,
                is_dir: false,
            }),
            None => Err(DriverError::NotFound(path.to_string())),
        }
    }

    fn appendable_size(&self, path: &str) -> Result<u64, DriverError> {
        let key = self.key(path)?;
        match self.load_state(path, &key)? {
            Some((state, _)) => Ok(state.size),
            None => Ok(self.stat(path)?.size),
        }
    }

    fn list(&self, path: &str) -> Result<Vec<String>, DriverError> {
        let key = self.key(path)?;
        let listing = self
            .run(self.inner.store.list_with_delimiter(Some(&key)))
            .map_err(|e| backend(path, e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .chain(listing.objects.iter().filter_map(|m| {
                let name = m.location.filename()?;
                if let Some(file) = name.strip_suffix(STATE_SUFFIX) {
                    Some(file.to_string())
                } else if name.contains(TAIL_SUFFIX) {
                    None
                } else {
                    Some(name.to_string())
                }
            }))
            .collect();
        if names.is_empty() {
            return Err(DriverError::NotFound(path.to_string()));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn seal(&self, path: &str) -> Result<(), DriverError> {
        let key = self.key(path)?;
        if self.head(path, &key)?.is_none() {
            match self.load_state(path, &key)? {
                Some((state, _)) => self.complete(path, &key, state)?,
                None => return Err(DriverError::NotFound(path.to_string())),
            }
        }
        Ok(())
    }

    fn move_to(&self, src: &str, dst: &str) -> Result<(), DriverError> {
        let from = self.key(src)?;
        let to = self.key(dst)?;
        self.seal(src)?;
        self.run(self.inner.store.copy(&from, &to))
            .map_err(|e| backend(src, e))?;
        self.run(self.inner.store.delete(&from))
            .map_err(|e| backend(src, e))
    }

    fn delete(&self, path: &str) -> Result<(), DriverError> {
        let key = self.key(path)?;
        let found = self.delete_tree(path, &key)?;
        self.delete_markers(path)?;
        if found {
            Ok(())
        } else {
            Err(DriverError::NotFound(path.to_string()))
        }
    }

    fn put_if_absent(&self, path: &str, content: &[u8]) -> Result<bool, DriverError> {
        let key = self.key(path)?;
        let options = PutOptions::from(PutMode::Create);
        match self.run(
            self.inner
                .store
                .put_opts(&key, PutPayload::from(content.to_vec()), options),
        ) {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(err) => Err(backend(path, err)),
        }
    }

    fn replace_if(&self, path: &str, expected: &[u8], content: &[u8]) -> Result<bool, DriverError> {
        let key = self.key(path)?;
        let current = self.run(async {
            let got = self.inner.store.get(&key).await?;
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            Ok::<_, object_store::Error>((got.bytes().await?, version))
        });
        let (bytes, version) = match current {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(backend(path, err)),
        };
        if bytes != expected {
            return Ok(false);
        }
        let options = PutOptions::from(PutMode::Update(version));
        match self.run(
            self.inner
                .store
                .put_opts(&key, PutPayload::from(content.to_vec()), options),
        ) {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => Ok(false),
            Err(err) => Err(backend(path, err)),
        }
    }

    fn touch(&self, path: &str) -> Result<(), DriverError> {
        let key = self.key(path)?;
        if self.head(path, &key)?.is_none() {
            return Err(DriverError::NotFound(path.to_string()));
        }
        let marker = self.touched_key(path)?;
        self.run(self.inner.store.put(&marker, PutPayload::new()))
            .map(drop)
            .map_err(|e| backend(path, e))
    }

    fn last_used(&self, path: &str) -> Result<SystemTime, DriverError> {
        let modified = self.stat(path)?.modified;
        let marker = self.touched_key(path)?;
        Ok(match self.head(path, &marker)? {
            Some(meta) => modified.max(SystemTime::from(meta.last_modified)),
            None => modified,
        })
    }
}
