//! Blob upload sessions: created, appended to in chunks while hashing, then verified and committed.
//!
//! A session lives on storage as `_uploads/<uuid>/{data,startedat}` so it survives a restart, and every request
//! saves the running sha256 as `_uploads/<uuid>/hashstates/sha256/<offset>` (as Distribution does) so that another
//! replica, or this one after a restart, continues the session without re-reading it (object storage cannot read an
//! unfinished upload back). The running hash is also kept in memory between requests; when both are missing or
//! stale (or the final digest uses another algorithm) the partial data is re-hashed from storage. Requests on one
//! session are serialized by a per-session lock.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use layerstore::digest::Hasher;

use crate::hashstate::Sha256State;
use layerstore::{Algorithm, Digest};
use tokio::sync::OwnedMutexGuard;

use crate::error::{ApiError, ApiResult, Code};
use crate::layout;
use crate::registry::Registry;
use crate::storage::{Driver, DriverError};

/// The running sha256 of a session's data: valid while its length equals the data size.
type HashState = Sha256State;

type SessionLock = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// All upload sessions of one registry.
pub struct Uploads {
    registry: Arc<Registry>,
    sessions: Mutex<HashMap<String, SessionLock>>,
    max_blob_size: Option<u64>,
    /// Held for reading while a blob is committed; garbage collection holds it for writing while it sweeps.
    commit_lock: Arc<RwLock<()>>,
    received: AtomicU64,
}

/// An open session, locked for the duration of one request.
pub struct Session {
    /// The repository the upload is for.
    pub name: String,
    /// The session's ID, as in `/v2/<name>/blobs/uploads/<uuid>`.
    pub uuid: String,
    /// The size of the data on storage, read when the session was opened and updated by this request's writes.
    size: u64,
    /// The session lock. A body being written holds it until the last byte is on storage, even if the request that
    /// sent it is gone, so that a retried chunk never interleaves with it.
    lock: Option<OwnedMutexGuard<Option<HashState>>>,
}

/// Runs blocking storage work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Feeds a file's content to `update`.
fn read_all(
    driver: &dyn Driver,
    path: &str,
    mut update: impl FnMut(&[u8]),
) -> Result<(), DriverError> {
    let mut reader = driver.reader(path, 0)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|source| DriverError::Io {
            path: path.to_string(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        update(&buf[..n]);
    }
}

/// The digest of a file, read from storage.
fn hash_file(driver: &dyn Driver, path: &str, algorithm: Algorithm) -> Result<Digest, DriverError> {
    let mut hasher = Hasher::new(algorithm);
    read_all(driver, path, |chunk| hasher.update(chunk))?;
    Ok(hasher.finish())
}

/// The sha256 state of a session's first `size` bytes: the one in memory, else the one saved on storage, else
/// hashed from the data.
fn sha256_state(
    driver: &dyn Driver,
    name: &str,
    uuid: &str,
    size: u64,
    known: Option<HashState>,
) -> Result<HashState, DriverError> {
    if let Some(state) = kept_sha256_state(driver, name, uuid, size, known)? {
        return Ok(state);
    }
    let mut state = Sha256State::default();
    read_all(driver, &layout::upload_data(name, uuid), |chunk| {
        state.update(chunk)
    })?;
    Ok(state)
}

/// The sha256 state of a session's first `size` bytes without reading the data: the one in memory, else the one
/// saved on storage.
fn kept_sha256_state(
    driver: &dyn Driver,
    name: &str,
    uuid: &str,
    size: u64,
    known: Option<HashState>,
) -> Result<Option<HashState>, DriverError> {
    if let Some(state) = known.filter(|s| s.len() == size) {
        return Ok(Some(state));
    }
    if size == 0 {
        return Ok(Some(Sha256State::default()));
    }
    match driver.get_content(&layout::upload_hash_state(name, uuid, size)) {
        Ok(saved) => Ok(Sha256State::unmarshal(&saved).filter(|s| s.len() == size)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

fn unknown_upload() -> ApiError {
    ApiError::new(Code::BlobUploadUnknown)
}

impl Session {
    /// The number of bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Uploads {
    /// The session table of `registry`; blobs larger than `max_blob_size` bytes are refused, and commits hold
    /// `commit_lock` for reading.
    pub fn new(
        registry: Arc<Registry>,
        max_blob_size: Option<u64>,
        commit_lock: Arc<RwLock<()>>,
    ) -> Uploads {
        Uploads {
            registry,
            sessions: Mutex::new(HashMap::new()),
            max_blob_size,
            commit_lock,
            received: AtomicU64::new(0),
        }
    }

    /// Bytes received into upload sessions since start.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn driver(&self) -> Arc<dyn Driver> {
        self.registry.driver().clone()
    }

    async fn lock(&self, uuid: &str) -> OwnedMutexGuard<Option<HashState>> {
        let lock = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.entry(uuid.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn forget(&self, uuid: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid);
    }

    /// Starts a new session in repository `name`.
    pub async fn create(&self, name: &str) -> ApiResult<Session> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let driver = self.driver();
        let (n, u) = (name.to_string(), uuid.clone());
        blocking(move || {
            let started = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(ApiError::internal)?;
            driver.put_content(&layout::upload_started_at(&n, &u), started.as_bytes())?;
            driver
                .writer(&layout::upload_data(&n, &u), false)?
                .commit()?;
            Ok(())
        })
        .await?;
        let lock = Some(self.lock(&uuid).await);
        Ok(Session {
            name: name.to_string(),
            uuid,
            size: 0,
            lock,
        })
    }

    /// Opens an existing session; `BLOB_UPLOAD_UNKNOWN` when there is none.
    pub async fn open(&self, name: &str, uuid: &str) -> ApiResult<Session> {
        let valid = uuid::Uuid::parse_str(uuid).is_ok_and(|u| u.hyphenated().to_string() == uuid);
        if !valid {
            return Err(unknown_upload().detail(serde_json::json!({ "uuid": uuid })));
        }
        let lock = Some(self.lock(uuid).await);
        let driver = self.driver();
        let path = layout::upload_data(name, uuid);
        let size = blocking(move || match driver.appendable_size(&path) {
            Ok(size) => Ok(size),
            Err(err) if err.is_not_found() => Err(unknown_upload()),
            Err(err) => Err(err.into()),
        })
        .await;
        match size {
            Ok(size) => Ok(Session {
                name: name.to_string(),
                uuid: uuid.to_string(),
                size,
                lock,
            }),
            Err(err) => {
                // Do not let requests for unknown sessions grow the lock table.
                drop(lock);
                self.forget(uuid);
                Err(err)
            }
        }
    }

    /// Appends a request body to the session's data, hashing as it goes, and returns the new size. Whatever arrived
    /// before a failure stays in the session so that the client can resume.
    pub async fn append<S, E>(&self, session: &mut Session, mut body: S) -> ApiResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let already = session.size;
        let driver = self.driver();
        let path = layout::upload_data(&session.name, &session.uuid);
        let (name, uuid) = (session.name.clone(), session.uuid.clone());
        let mut lock = session
            .lock
            .take()
            .ok_or_else(|| ApiError::internal("upload session used after a failed write"))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let max = self.max_blob_size;
        let writer = tokio::task::spawn_blocking(move || -> Result<_, DriverError> {
            let mut file = driver.writer(&path, true)?;
            let mut state = sha256_state(driver.as_ref(), &name, &uuid, file.size(), lock.take())?;
            let started = state.len();
            let io = |source| DriverError::Io {
                path: path.clone(),
                source,
            };
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all(&chunk).map_err(io)?;
                state.update(&chunk);
            }
            // Parts go out while the hash state is saved, first: once the data's new size is committed, another
            // replica may need it.
            file.flush().map_err(io)?;
            let size = state.len();
            if size != started {
                driver.put_content(
                    &layout::upload_hash_state(&name, &uuid, size),
                    &state.marshal(),
                )?;
            }
            file.commit()?;
            *lock = Some(state);
            Ok((lock, size))
        });
        let mut failure = None;
        let mut sent = 0u64;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    sent += chunk.len() as u64;
                    self.received
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if max.is_some_and(|max| already + sent > max) {
                        failure = Some(
                            ApiError::new(Code::SizeInvalid)
                                .message("blob exceeds the configured size limit")
                                .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE),
                        );
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    failure = Some(
                        ApiError::new(Code::BlobUploadInvalid)
                            .detail(format!("reading body: {err}")),
                    );
                    break;
                }
            }
        }
        drop(tx);
        let (lock, size) = writer.await.map_err(ApiError::internal)??;
        session.lock = Some(lock);
        session.size = size;
        if let Some(max) = max.filter(|&max| size > max) {
            return Err(ApiError::new(Code::SizeInvalid)
                .message(format!(
                    "blob exceeds the configured size limit of {max} bytes"
                ))
                .status(axum::http::StatusCode::PAYLOAD_TOO_LARGE));
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(size),
        }
    }

    /// Verifies the data against `digest`, moves it into the blob store and links it into the repository. On a
    /// digest mismatch the session is cancelled and `DIGEST_INVALID` returned. Returns the blob's size.
    pub async fn finish(&self, mut session: Session, digest: &Digest) -> ApiResult<u64> {
        let registry = self.registry.clone();
        let known = session.lock.as_mut().and_then(|lock| lock.take());
        let (name, uuid, expected) = (session.name.clone(), session.uuid.clone(), digest.clone());
        let lock = self.commit_lock.clone();
        let size = session.size;
        let result = blocking(move || {
            let driver = registry.driver().clone();
            let data = layout::upload_data(&name, &uuid);
            let kept = match expected.algorithm() {
                Algorithm::Sha256 => kept_sha256_state(driver.as_ref(), &name, &uuid, size, known),
                _ => Ok(None),
            };
            let actual = kept.and_then(|kept| match kept {
                Some(state) => Ok(state.finish()),
                None => {
                    // Hashed from the data, which an object store's upload in progress only offers once sealed.
                    driver.seal(&data)?;
                    hash_file(driver.as_ref(), &data, expected.algorithm())
                }
            });
            let actual = match actual {
                Ok(actual) => actual,
                Err(err) if err.is_not_found() => return Err(unknown_upload()),
                Err(err) => return Err(err.into()),
            };
            if actual != expected {
                driver.delete(&layout::upload_dir(&name, &uuid))?;
                return Err(
                    ApiError::new(Code::DigestInvalid).detail(serde_json::json!({
                        "expected": expected.to_string(),
                        "actual": actual.to_string(),
                    })),
                );
            }
            crate::lease::wait_while_held(registry.driver().as_ref())?;
            let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
            match registry.global_blob_size(&expected)? {
                Some(existing) if existing == size => {}
                _ => driver.move_to(&data, &layout::blob_data(&expected))?,
            }
            registry.link_blob(&name, &expected)?;
            driver.delete(&layout::upload_dir(&name, &uuid))?;
            Ok(size)
        })
        .await;
        self.forget(&session.uuid);
        result
    }

    /// Deletes a session and its data.
    pub async fn cancel(&self, session: Session) -> ApiResult<()> {
        let driver = self.driver();
        let dir = layout::upload_dir(&session.name, &session.uuid);
        let result = blocking(move || match driver.delete(&dir) {
            Err(err) if err.is_not_found() => Err(unknown_upload()),
            other => Ok(other?),
        })
        .await;
        self.forget(&session.uuid);
        result
    }
}
