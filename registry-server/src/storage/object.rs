//! The object-store driver: S3 (any S3-compatible server) or memory, through `object_store`.
//!
//! Paths are object keys below an optional root prefix; "directories" are key prefixes. Small files are single PUTs
//! (atomic on every S3 server), moves are server-side copies followed by deletes, blob reads are ranged streaming
//! GETs.
//!
//! Appendable files (upload data) are S3 multipart uploads whose state lives in the bucket, so that any process can
//! continue one: the multipart id, the ETags of the parts sent, the size, and a buffered tail smaller than a part
//! (parts must be ≥ 5 MiB but the last) are kept as `<path>.lade-upload` (JSON) and `<path>.lade-tail-<size>`.
//! Writes buffer at most one part in memory; committing a writer saves the tail and then the state, so a crash
//! between the two leaves the previous state intact. Moving such a file completes the multipart upload (the tail
//! as its last part) and copies the result into place; while in progress its content cannot be read back (S3 has
//! no read of unfinished uploads), which is why upload hashing saves its state (see `hashstate`).
//!
//! The driver is synchronous like the others: each call runs its requests on the driver's own small runtime.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::{Driver, DriverError, FileInfo, FileWriter};

/// The smallest part S3 accepts (but for the last one).
pub const MIN_CHUNK_SIZE: usize = 5 * 1024 * 1024;
/// registry:2's default part size.
pub const DEFAULT_CHUNK_SIZE: usize = 10 * 1024 * 1024;
/// How many parts one upload has in flight while it receives the next: upload and receipt overlap.
pub const PARTS_IN_FLIGHT: usize = 2;
/// How many parts the whole driver has in flight, which bounds the memory part buffers take beyond the one each
/// open upload fills.
pub const PARTS_IN_FLIGHT_TOTAL: usize = 4;

const STATE_SUFFIX: &str = ".lade-upload";
const TAIL_SUFFIX: &str = ".lade-tail-";
/// Where `touch` records use times, outside Distribution's tree (an S3 object's modification time cannot be set).
const TOUCHED: &str = "lade/touched";

/// An object store that also offers S3's multipart primitives.
pub trait Store: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Store for T {}

/// How to reach an S3 bucket (registry:2's `storage.s3` keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// The bucket's name (`storage.s3.bucket`; required).
    pub bucket: String,
    /// The AWS region (`storage.s3.region`); `us-east-1` when unset.
    pub region: Option<String>,
    /// `http(s)://host:port` of an S3-compatible server; AWS when unset.
    pub endpoint: Option<String>,
    /// The access key ID (`storage.s3.accesskey`); used only together with `secret_key`.
    pub access_key: Option<String>,
    /// The secret access key (`storage.s3.secretkey`).
    pub secret_key: Option<String>,
    /// Key prefix everything is stored below.
    pub root_directory: String,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones.
    pub force_path_style: bool,
    /// Use HTTPS (when `endpoint` names no scheme).
    pub secure: bool,
    /// The multipart part size (≥ 5 MiB).
    pub chunk_size: usize,
}

/// Why an object-store driver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The `storage.s3` options are invalid (e.g. no bucket, or a chunk size under 5 MiB).
    #[error("storage.s3: {0}")]
    Config(String),
    /// The startup check of the bucket failed (missing bucket, refused credentials, no answer).
    #[error("storage.s3: bucket {bucket:?} at {endpoint}: {message}")]
    Unreachable {
        /// The bucket's name.
        bucket: String,
        /// The endpoint the bucket was looked for at.
        endpoint: String,
        /// The object store's error.
        message: String,
    },
    /// The runtime the driver's requests run on could not be started.
    #[error("starting the storage runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Owns the runtime the driver's requests run on; shuts it down without blocking, wherever it is dropped.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn new() -> Result<Runtime, SetupError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lade-storage")
            .enable_all()
            .build()
            .map(|rt| Runtime(Some(rt)))
            .map_err(SetupError::Runtime)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

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

/// The saved state of an appendable file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppendState {
    multipart_id: Option<String>,
    parts: Vec<String>,
    size: u64,
    tail_key: Option<String>,
    tail_len: u64,
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

    /// A driver over an S3 bucket, checked by listing it once so that a missing bucket or bad credentials are
    /// reported at startup.
    pub fn s3(options: &S3Options) -> Result<ObjectDriver, SetupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if options.bucket.is_empty() {
            return Err(SetupError::Config("bucket is required".into()));
        }
        if options.chunk_size != 0 && options.chunk_size < MIN_CHUNK_SIZE {
            return Err(SetupError::Config(format!(
                "chunksize {} is below S3's minimum part size of {MIN_CHUNK_SIZE}",
                options.chunk_size
            )));
        }
        let region = options.region.clone().unwrap_or_else(|| "us-east-1".into());
        let endpoint = options.endpoint.as_ref().map(|e| {
            if e.contains("://") {
                e.clone()
            } else if options.secure {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            }
        });
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&options.bucket)
            .with_region(&region)
            .with_virtual_hosted_style_request(!options.force_path_style && endpoint.is_none())
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(20),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
            });
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&options.access_key, &options.secret_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| SetupError::Config(e.to_string()))?;
        let chunk = if options.chunk_size == 0 {
            DEFAULT_CHUNK_SIZE
        } else {
            options.chunk_size
        };
        let driver = ObjectDriver::new(Arc::new(store), &options.root_directory, chunk)?;
        let probe = driver.run(async {
            let inner = &driver.inner;
            let prefix = (!inner.root.is_empty()).then(|| Path::from(inner.root.as_str()));
            inner.store.list_with_delimiter(prefix.as_ref()).await
        });
        probe.map_err(|e| SetupError::Unreachable {
            bucket: options.bucket.clone(),
            endpoint: endpoint.unwrap_or_else(|| format!("AWS S3 ({region})")),
            message: e.to_string(),
        })?;
        Ok(driver)
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

    fn state_key(key: &Path) -> Path {
        Path::parse(format!("{}{STATE_SUFFIX}", key.as_ref())).expect("suffixed keys stay valid")
    }

    fn touched_key(&self, path: &str) -> Result<Path, DriverError> {
        self.key(&format!("{TOUCHED}/{path}"))
    }

    fn load_state(
        &self,
        path: &str,
        key: &Path,
    ) -> Result<Option<(AppendState, SystemTime)>, DriverError> {
        let state_key = Self::state_key(key);
        let got = self.run(async {
            let result = self.inner.store.get(&state_key).await?;
            let modified = result.meta.last_modified;
            Ok::<_, object_store::Error>((result.bytes().await?, modified))
        });
        match got {
            Ok((bytes, modified)) => {
                let state = serde_json::from_slice(&bytes).map_err(|e| DriverError::Io {
                    path: path.to_string(),
                    source: io::Error::other(format!("corrupt upload state: {e}")),
                })?;
                Ok(Some((state, SystemTime::from(modified))))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(backend(path, err)),
        }
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

    /// Completes an appendable file into an ordinary object at its own key.
    fn complete(&self, path: &str, key: &Path, state: AppendState) -> Result<(), DriverError> {
        let tail = match &state.tail_key {
            Some(tail) => self
                .run(async {
                    self.inner
                        .store
                        .get(&Path::from(tail.as_str()))
                        .await?
                        .bytes()
                        .await
                })
                .map_err(|e| backend(path, e))?,
            None => Bytes::new(),
        };
        if tail.len() as u64 != state.tail_len {
            return Err(DriverError::Io {
                path: path.to_string(),
                source: io::Error::other("upload tail does not match its saved state"),
            });
        }
        let store = self.inner.store.clone();
        self.run(async {
            match &state.multipart_id {
                None => {
                    store.put(key, PutPayload::from_bytes(tail)).await?;
                }
                Some(id) => {
                    let mut parts: Vec<PartId> = state
                        .parts
                        .iter()
                        .map(|etag| PartId {
                            content_id: etag.clone(),
                        })
                        .collect();
                    if !tail.is_empty() {
                        let part = store
                            .put_part(key, id, parts.len(), PutPayload::from_bytes(tail))
                            .await?;
                        parts.push(part);
                    }
                    store.complete_multipart(key, id, parts).await?;
                }
            }
            Ok::<_, object_store::Error>(())
        })
        .map_err(|e| backend(path, e))?;
        let mut leftovers = vec![Self::state_key(key)];
        leftovers.extend(state.tail_key.as_deref().map(Path::from));
        self.run(async {
            for leftover in leftovers {
                let _ = store.delete(&leftover).await;
            }
        });
        Ok(())
    }
}

/// A part upload running in the background, in part order.
type PartUpload = tokio::task::JoinHandle<object_store::Result<PartId>>;

/// An open appendable file: bytes are buffered up to one part, then sent as a part of the multipart upload in the
/// background while the next part fills. At most [`PARTS_IN_FLIGHT`] parts of one writer (and
/// [`PARTS_IN_FLIGHT_TOTAL`] of the whole driver) are in flight; [`FileWriter::commit`] waits for all of them.
struct ObjectWriter {
    driver: ObjectDriver,
    path: String,
    key: Path,
    state: AppendState,
    tail: Vec<u8>,
    tail_dirty: bool,
    in_flight: VecDeque<PartUpload>,
}

impl ObjectWriter {
    /// Sends the buffered bytes as the next part, in the background.
    fn send_part(&mut self) -> Result<(), DriverError> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.wait_oldest()?;
        }
        let inner = &self.driver.inner;
        let store = inner.store.clone();
        let id = match &self.state.multipart_id {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .driver
                    .run(store.create_multipart(&self.key))
                    .map_err(|e| backend(&self.path, e))?;
                self.state.multipart_id = Some(id.clone());
                id
            }
        };
        let permit = self
            .driver
            .run(inner.part_slots.clone().acquire_owned())
            .expect("the part semaphore is never closed");
        let data = Bytes::from(std::mem::replace(
            &mut self.tail,
            Vec::with_capacity(inner.chunk_size),
        ));
        let index = self.state.parts.len() + self.in_flight.len();
        let key = self.key.clone();
        self.in_flight
            .push_back(inner.runtime.handle().spawn(async move {
                let part = store
                    .put_part(&key, &id, index, PutPayload::from_bytes(data))
                    .await;
                drop(permit);
                part
            }));
        self.tail_dirty = true;
        Ok(())
    }

    /// Waits for the oldest part in flight and records its ETag.
    fn wait_oldest(&mut self) -> Result<(), DriverError> {
        let Some(upload) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let part = self
            .driver
            .run(upload)
            .map_err(|e| DriverError::Io {
                path: self.path.clone(),
                source: io::Error::other(format!("part upload task: {e}")),
            })?
            .map_err(|e| backend(&self.path, e))?;
        self.state.parts.push(part.content_id);
        Ok(())
    }

    /// Waits for every part in flight.
    fn wait_all(&mut self) -> Result<(), DriverError> {
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// A writer dropped without a commit still lets its parts land before it goes, so that none can overwrite a
    /// part of the same number that a later writer of the upload sends.
    fn drop(&mut self) {
        for upload in std::mem::take(&mut self.in_flight) {
            let _ = self.driver.run(upload);
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.driver.inner.chunk_size - self.tail.len();
        let n = room.min(buf.len());
        self.tail.extend_from_slice(&buf[..n]);
        self.state.size += n as u64;
        self.tail_dirty = true;
        if self.tail.len() >= self.driver.inner.chunk_size {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    /// Starts sending a buffered tail of at least S3's minimum part size as a part (parts need not be of equal
    /// size), so that it travels while the caller does other work before [`FileWriter::commit`].
    fn flush(&mut self) -> io::Result<()> {
        if self.tail.len() >= MIN_CHUNK_SIZE {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl FileWriter for ObjectWriter {
    fn size(&self) -> u64 {
        self.state.size
    }

    /// Sends a tail of at least S3's minimum part size as a part too (see `flush`), else saves it as an object;
    /// waits for the parts in flight; then saves the state.
    fn commit(mut self: Box<Self>) -> Result<(), DriverError> {
        let old_tail = self.state.tail_key.clone();
        self.flush().map_err(|source| DriverError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.wait_all()?;
        if self.tail_dirty {
            self.state.tail_len = self.tail.len() as u64;
            self.state.tail_key = None;
            if !self.tail.is_empty() {
                let tail_key = format!("{}{TAIL_SUFFIX}{}", self.key.as_ref(), self.state.size);
                let payload = PutPayload::from_bytes(Bytes::from(std::mem::take(&mut self.tail)));
                self.driver
                    .run(
                        self.driver
                            .inner
                            .store
                            .put(&Path::from(tail_key.as_str()), payload),
                    )
                    .map_err(|e| backend(&self.path, e))?;
                self.state.tail_key = Some(tail_key);
            }
        }
        let json = serde_json::to_vec(&self.state).expect("upload state serializes");
        let state_key = ObjectDriver::state_key(&self.key);
        self.driver
            .run(
                self.driver
                    .inner
                    .store
                    .put(&state_key, PutPayload::from(json)),
            )
            .map_err(|e| backend(&self.path, e))?;
        if let Some(old) = old_tail.filter(|old| Some(old) != self.state.tail_key.as_ref()) {
            let _ = self
                .driver
                .run(self.driver.inner.store.delete(&Path::from(old.as_str())));
        }
        Ok(())
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
        let key = self.key(path)?;
        let existing = self.load_state(path, &key)?;
        let (state, tail) = match existing {
            Some((state, _)) if append => {
                let tail = match &state.tail_key {
                    Some(tail) => self
                        .run(async {
                            self.inner
                                .store
                                .get(&Path::from(tail.as_str()))
                                .await?
                                .bytes()
                                .await
                        })
                        .map_err(|e| backend(path, e))?,
                    None => Bytes::new(),
                };
                let mut buffer = Vec::with_capacity(self.inner.chunk_size.max(tail.len()));
                buffer.extend_from_slice(&tail);
                (state, buffer)
            }
            _ => {
                if append && self.head(path, &key)?.is_some() {
                    return Err(DriverError::Io {
                        path: path.to_string(),
                        source: io::Error::other("objects cannot be appended to once complete"),
                    });
                }
                if existing.is_some() || self.head(path, &key)?.is_some() {
                    self.delete_tree(path, &key)?;
                }
                (
                    AppendState::default(),
                    Vec::with_capacity(self.inner.chunk_size),
                )
            }
        };
        if tail.len() as u64 != state.tail_len {
            return Err(DriverError::Io {
                path: path.to_string(),
                source: io::Error::other("upload tail does not match its saved state"),
            });
        }
        Ok(Box::new(ObjectWriter {
            driver: self.clone(),
            path: path.to_string(),
            key,
            state,
            tail,
            tail_dirty: !append,
            in_flight: VecDeque::new(),
        }))
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
