//! Blobs through the mirror: one fetch per missing blob, however many clients ask for it at once.
//!
//! The first request for a blob the store lacks starts a fetch that outlives it: the upstream's body is written to
//! an upload file (`_uploads/<uuid>/data`, purged like any stale upload if the process dies) while being hashed, then
//! verified, moved into the blob store and linked into the repository. Every request for that blob meanwhile follows
//! the file as it grows, so clients receive the bytes while they arrive, in bounded memory. The last chunk is only
//! released once the digest is verified: on a mismatch (or a short or failed upstream body) nothing is stored and
//! every client's response is cut short, so no client can take the bad bytes for the blob.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt;
use layerstore::digest::Hasher;
use layerstore::Digest;
use tokio::sync::watch;

use super::upstream::Upstream;
use super::{upstream_failed, Mirror};
use crate::error::{ApiError, ApiResult};
use crate::layout;
use crate::registry::Registry;
use crate::storage::{Driver, DriverError};

/// How far a fetch has got.
#[derive(Debug, Clone)]
enum Progress {
    /// Waiting for the upstream's answer.
    Starting,
    /// `written` bytes may be served; `size` is the upstream's `Content-Length`.
    Running {
        written: u64,
        size: Option<u64>,
    },
    /// Verified and stored.
    Done {
        size: u64,
    },
    /// The upstream does not have the blob.
    NotFound,
    Failed(String),
}

/// One fetch in progress: its progress and the file it writes.
#[derive(Clone)]
struct Flight {
    progress: watch::Receiver<Progress>,
    temp: String,
}

/// The fetches in progress, by repository and digest.
#[derive(Default)]
pub struct Flights(Arc<Mutex<HashMap<(String, Digest), Flight>>>);

/// What a request for a blob the store lacked gets.
pub enum Fetched {
    /// It is in the store now: serve it from there.
    Stored,
    /// It is arriving: a body that follows the fetch, and the upstream's size when it sent one.
    Streaming {
        /// The blob's size in bytes, when the upstream sent a `Content-Length`.
        size: Option<u64>,
        /// The blob's bytes as they arrive from the upstream.
        body: Body,
    },
}

/// Everything a fetch task needs.
struct Fetch {
    upstream: Arc<Upstream>,
    registry: Arc<Registry>,
    commit_lock: Arc<RwLock<()>>,
    name: String,
    digest: Digest,
    temp: String,
}

impl Mirror {
    /// A blob of `name` the store does not hold: joins or starts its fetch. `None` when the upstream lacks it.
    pub async fn fetch_blob(&self, name: &str, digest: &Digest) -> ApiResult<Option<Fetched>> {
        let flight = self.join_or_start(name, digest);
        let mut progress = flight.progress.clone();
        let state = progress
            .wait_for(|p| !matches!(p, Progress::Starting))
            .await
            .map(|p| p.clone())
            .unwrap_or_else(|_| progress.borrow().clone());
        match state {
            Progress::Starting => Err(ApiError::internal("blob fetch ended without an answer")),
            Progress::NotFound => Ok(None),
            Progress::Failed(reason) => Err(upstream_failed("fetching the blob upstream", reason)),
            Progress::Done { .. } => Ok(Some(Fetched::Stored)),
            Progress::Running { size, .. } => Ok(Some(Fetched::Streaming {
                size,
                body: follow(
                    progress,
                    self.registry.driver().clone(),
                    flight.temp,
                    layout::blob_data(digest),
                ),
            })),
        }
    }

    /// Waits until a blob is stored (for requests that need it whole first, such as ranged ones); `None` when the
    /// upstream lacks it.
    pub async fn fetch_blob_whole(&self, name: &str, digest: &Digest) -> ApiResult<Option<()>> {
        let mut progress = self.join_or_start(name, digest).progress;
        let state = progress
            .wait_for(|p| {
                matches!(
                    p,
                    Progress::Done { .. } | Progress::NotFound | Progress::Failed(_)
                )
            })
            .await
            .map(|p| p.clone())
            .unwrap_or_else(|_| progress.borrow().clone());
        match state {
            Progress::Done { .. } => Ok(Some(())),
            Progress::NotFound => Ok(None),
            Progress::Failed(reason) => Err(upstream_failed("fetching the blob upstream", reason)),
            _ => Err(ApiError::internal("blob fetch ended without an answer")),
        }
    }

    /// The size the upstream gives a blob (for a `HEAD` of a blob not yet fetched).
    pub async fn blob_size_upstream(&self, name: &str, digest: &Digest) -> ApiResult<Option<u64>> {
        match self.upstream.head_blob(name, &digest.to_string()).await {
            Ok(size) => Ok(Some(size.unwrap_or(0))),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(upstream_failed("checking the blob upstream", err)),
        }
    }

    fn join_or_start(&self, name: &str, digest: &Digest) -> Flight {
        let key = (name.to_string(), digest.clone());
        let mut flights = self.flights.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = flights.get(&key) {
            return flight.clone();
        }
        let temp = layout::upload_data(name, &uuid::Uuid::new_v4().to_string());
        let (tx, rx) = watch::channel(Progress::Starting);
        let flight = Flight {
            progress: rx,
            temp: temp.clone(),
        };
        flights.insert(key.clone(), flight.clone());
        let fetch = Fetch {
            upstream: self.upstream.clone(),
            registry: self.registry.clone(),
            commit_lock: self.commit_lock.clone(),
            name: name.to_string(),
            digest: digest.clone(),
            temp,
        };
        let table = self.flights.0.clone();
        tokio::spawn(async move {
            let outcome = fetch.run(&tx).await;
            if !matches!(outcome, Progress::Done { .. }) {
                let (driver, dir) = (fetch.registry.driver().clone(), upload_dir(&fetch.temp));
                let _ = tokio::task::spawn_blocking(move || driver.delete(&dir)).await;
            }
            match &outcome {
                Progress::Failed(reason) => {
                    tracing::warn!(name = fetch.name, digest = %fetch.digest, reason, "blob fetch failed; nothing stored")
                }
                Progress::Done { size } => {
                    tracing::info!(name = fetch.name, digest = %fetch.digest, size, "blob fetched from upstream")
                }
                _ => {}
            }
            // Announced before the flight leaves the table, so that no request starts a second fetch meanwhile.
            tx.send_replace(outcome);
            table.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        });
        flight
    }
}

/// `…/_uploads/<uuid>` of `…/_uploads/<uuid>/data`.
fn upload_dir(data: &str) -> String {
    data.strip_suffix("/data").unwrap_or(data).to_string()
}

impl Fetch {
    /// Fetches, writes, verifies and stores the blob; returns the final progress (`Done`, `NotFound` or `Failed`).
    async fn run(&self, tx: &watch::Sender<Progress>) -> Progress {
        let response = match self
            .upstream
            .get_blob(&self.name, &self.digest.to_string())
            .await
        {
            Ok(response) => response,
            Err(err) if err.is_not_found() => return Progress::NotFound,
            Err(err) => return Progress::Failed(err.to_string()),
        };
        let size = response.content_length();
        let (chunks_tx, mut chunks_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let driver = self.registry.driver().clone();
        let (temp, digest, writer_tx) = (self.temp.clone(), self.digest.clone(), tx.clone());
        let writer = tokio::task::spawn_blocking(move || -> Result<(u64, Digest), String> {
            let started = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?;
            let dir = upload_dir(&temp);
            driver
                .put_content(&format!("{dir}/startedat"), started.as_bytes())
                .map_err(|e| e.to_string())?;
            let mut file = driver.writer(&temp, false).map_err(|e| e.to_string())?;
            let mut hasher = Hasher::new(digest.algorithm());
            let mut written = 0u64;
            writer_tx.send_replace(Progress::Running { written, size });
            while let Some(chunk) = chunks_rx.blocking_recv() {
                // What was written before this chunk is released now; the last chunk waits for verification.
                writer_tx.send_replace(Progress::Running { written, size });
                file.write_all(&chunk).map_err(|e| e.to_string())?;
                hasher.update(&chunk);
                written += chunk.len() as u64;
                if size.is_some_and(|size| written > size) {
                    return Err(format!(
                        "the upstream sent more than its {} byte Content-Length",
                        size.unwrap_or_default()
                    ));
                }
            }
            file.commit().map_err(|e| e.to_string())?;
            Ok((written, hasher.finish()))
        });
        let mut body = response.bytes_stream();
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    if chunks_tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    failure = Some(format!("reading the upstream's body: {err}"));
                    break;
                }
            }
        }
        drop(chunks_tx);
        let written = match writer.await {
            Ok(Ok(written)) => written,
            Ok(Err(reason)) => return Progress::Failed(reason),
            Err(err) => return Progress::Failed(err.to_string()),
        };
        if let Some(reason) = failure {
            return Progress::Failed(reason);
        }
        let (written, actual) = written;
        if size.is_some_and(|size| size != written) {
            return Progress::Failed(format!(
                "the upstream sent {written} bytes of a {} byte blob",
                size.unwrap_or_default()
            ));
        }
        if actual != self.digest {
            return Progress::Failed(format!(
                "the upstream's blob {} has digest {actual}",
                self.digest
            ));
        }
        let (registry, lock) = (self.registry.clone(), self.commit_lock.clone());
        let (name, digest, temp) = (self.name.clone(), self.digest.clone(), self.temp.clone());
        let stored = tokio::task::spawn_blocking(move || -> Result<(), DriverError> {
            let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
            let driver = registry.driver();
            match registry.global_blob_size(&digest)? {
                Some(existing) if existing == written => {}
                _ => driver.move_to(&temp, &layout::blob_data(&digest))?,
            }
            registry.link_blob(&name, &digest)?;
            let _ = driver.delete(&upload_dir(&temp));
            Ok(())
        })
        .await;
        match stored {
            Ok(Ok(())) => Progress::Done { size: written },
            Ok(Err(err)) => Progress::Failed(format!("storing the blob: {err}")),
            Err(err) => Progress::Failed(err.to_string()),
        }
    }
}

/// A follower of a fetch: its position and the file it reads.
struct Follower {
    progress: watch::Receiver<Progress>,
    driver: Arc<dyn Driver>,
    temp: String,
    stored: String,
    reader: Option<Box<dyn Read + Send>>,
    offset: u64,
    ended: bool,
}

/// A response body that serves a fetch's bytes as they are released.
fn follow(
    progress: watch::Receiver<Progress>,
    driver: Arc<dyn Driver>,
    temp: String,
    stored: String,
) -> Body {
    let follower = Follower {
        progress,
        driver,
        temp,
        stored,
        reader: None,
        offset: 0,
        ended: false,
    };
    Body::from_stream(futures_util::stream::unfold(follower, |mut f| async move {
        if f.ended {
            return None;
        }
        match f.next().await {
            Ok(Some(bytes)) => Some((Ok(bytes), f)),
            Ok(None) => None,
            Err(err) => {
                f.ended = true;
                Some((Err(err), f))
            }
        }
    }))
}

impl Follower {
    /// The next released chunk; `None` at the verified end.
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            let (available, done) = match &*self.progress.borrow_and_update() {
                Progress::Starting => (0, false),
                Progress::Running { written, .. } => (*written, false),
                Progress::Done { size } => (*size, true),
                Progress::NotFound => {
                    return Err(std::io::Error::other("the upstream lost the blob"))
                }
                Progress::Failed(reason) => return Err(std::io::Error::other(reason.clone())),
            };
            if self.offset < available {
                return self.read(available - self.offset).await.map(Some);
            }
            if done {
                return Ok(None);
            }
            if self.progress.changed().await.is_err() {
                // The fetch is over; its last word is still readable.
                if !matches!(
                    &*self.progress.borrow(),
                    Progress::Done { .. } | Progress::Failed(_) | Progress::NotFound
                ) {
                    return Err(std::io::Error::other("the blob fetch stopped"));
                }
            }
        }
    }

    /// Reads up to `left` (at most 512 KiB) released bytes.
    async fn read(&mut self, left: u64) -> std::io::Result<Bytes> {
        let want = left.min(512 << 10) as usize;
        let reader = self.reader.take();
        let (driver, temp, stored, offset) = (
            self.driver.clone(),
            self.temp.clone(),
            self.stored.clone(),
            self.offset,
        );
        let (reader, chunk) = tokio::task::spawn_blocking(move || {
            let mut reader = match reader {
                Some(reader) => reader,
                // The fetch may have moved its file into the blob store meanwhile.
                None => match driver.reader(&temp, offset) {
                    Err(err) if err.is_not_found() => driver.reader(&stored, offset),
                    other => other,
                }
                .map_err(std::io::Error::other)?,
            };
            let mut chunk = vec![0u8; want];
            reader.read_exact(&mut chunk)?;
            Ok::<_, std::io::Error>((reader, chunk))
        })
        .await
        .map_err(std::io::Error::other)??;
        self.reader = Some(reader);
        self.offset += chunk.len() as u64;
        Ok(Bytes::from(chunk))
    }
}
