//! Uploading one blob: skip it when the registry has it, mount it from another repository of the same registry when
//! one is known to hold it, else upload it — whole in one `PUT` when small, in `PATCH` chunks when large. When a
//! chunk fails midway, the upload's status (`GET` on the session, `Range: 0-N`) says where to resume; when the
//! registry cannot say (registry:2 invalidates a session whose data outran the offset in its URL), the upload starts
//! over in a new session.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{TryFutureExt, TryStreamExt};
use layerstore::progress::Progress;
use layerstore::{Descriptor, Store};
use reqwest::{header, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::Error;
use crate::retry::{backoff, MAX_ATTEMPTS};
use crate::session::{header_str, repository_scope, status_error, Retry, Session};

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Exists,
    Mounted,
    Pushed,
}

impl Outcome {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Outcome::Exists => "exists",
            Outcome::Mounted => "mounted",
            Outcome::Pushed => "pushed",
        }
    }
}

/// One blob upload to one repository.
pub(crate) struct BlobUpload<'a> {
    pub registry: &'a Session,
    pub repository: &'a str,
    pub store: &'a Store,
    pub descriptor: &'a Descriptor,
    /// Blobs up to this size go in one request; larger ones in chunks of this size.
    pub chunk_size: u64,
    pub progress: &'a dyn Progress,
}

impl BlobUpload<'_> {
    fn scopes(&self) -> Vec<String> {
        vec![repository_scope(self.repository, "pull,push")]
    }

    fn item(&self) -> String {
        self.descriptor.digest.to_string()
    }

    /// Gets the blob into the repository by the cheapest way available. The caller has started its progress item.
    pub(crate) async fn run(&self, mount_from: &[String]) -> Result<Outcome, Error> {
        self.progress.status(&self.item(), "checking");
        let outcome = self.transfer(mount_from).await;
        match &outcome {
            Ok(outcome) => self.progress.finish(&self.item(), outcome.status()),
            Err(_) => self.progress.finish(&self.item(), "failed"),
        }
        outcome
    }

    async fn transfer(&self, mount_from: &[String]) -> Result<Outcome, Error> {
        if !self.store.has_blob(&self.descriptor.digest) {
            return Err(layerstore::StoreError::BlobUnknown(self.descriptor.digest.clone()).into());
        }
        if self.exists().await? {
            return Ok(Outcome::Exists);
        }
        let mut session = None;
        // A failed mount opens an ordinary upload session, so only the first candidate is tried.
        if let Some(from) = mount_from.iter().find(|f| *f != self.repository) {
            match self.mount(from).await? {
                Mounted::Done => return Ok(Outcome::Mounted),
                Mounted::Session(location) => session = Some(location),
            }
        }
        self.progress.status(&self.item(), "pushing");
        let mut failures = 0;
        loop {
            let location = match session.take() {
                Some(location) => location,
                None => self.start().await?,
            };
            let result = if self.descriptor.size <= self.chunk_size {
                self.put_whole(location).await
            } else {
                self.put_chunked(location).await
            };
            match result {
                Ok(()) => return Ok(Outcome::Pushed),
                Err(error)
                    if (error.is_transient() || matches!(error, Error::UploadLost { .. }))
                        && failures + 1 < MAX_ATTEMPTS =>
                {
                    failures += 1;
                    tracing::warn!(
                        "{error}; starting the upload of {} again",
                        self.descriptor.digest
                    );
                    tokio::time::sleep(backoff(failures)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn exists(&self) -> Result<bool, Error> {
        let url = self.registry.url(&format!(
            "/v2/{}/blobs/{}",
            self.repository, self.descriptor.digest
        ));
        let response = self
            .registry
            .send(&self.scopes(), Retry::Yes, |http| http.head(&url))
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error("HEAD", &url, response).await),
        }
    }

    async fn mount(&self, from: &str) -> Result<Mounted, Error> {
        let url = self
            .registry
            .url(&format!("/v2/{}/blobs/uploads/", self.repository));
        let mut scopes = self.scopes();
        scopes.push(repository_scope(from, "pull"));
        let mut mount_url = self.registry.resolve(&url)?;
        mount_url
            .query_pairs_mut()
            .append_pair("mount", &self.descriptor.digest.to_string())
            .append_pair("from", from);
        let response = self
            .registry
            .send(&scopes, Retry::Yes, |http| {
                http.post(mount_url.clone())
                    .header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mounted::Done),
            StatusCode::ACCEPTED => Ok(Mounted::Session(self.location("POST", &url, &response)?)),
            _ => Err(status_error("POST", &url, response).await),
        }
    }

    /// Opens an upload session; returns its URL.
    async fn start(&self) -> Result<Url, Error> {
        let url = self
            .registry
            .url(&format!("/v2/{}/blobs/uploads/", self.repository));
        let response = self
            .registry
            .send(&self.scopes(), Retry::Yes, |http| {
                http.post(&url).header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error("POST", &url, response).await);
        }
        self.location("POST", &url, &response)
    }

    fn location(
        &self,
        method: &str,
        url: &str,
        response: &reqwest::Response,
    ) -> Result<Url, Error> {
        let location = header_str(response, "location").ok_or_else(|| {
            Error::Protocol(format!(
                "{method} {url}: {} without Location",
                response.status()
            ))
        })?;
        self.registry.resolve(location)
    }

    /// The session URL with `?digest=` added, to close the upload.
    fn closing_url(&self, location: &Url) -> Url {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &self.descriptor.digest.to_string());
        url
    }

    /// The whole blob in the closing `PUT`.
    async fn put_whole(&self, location: Url) -> Result<(), Error> {
        let url = self.closing_url(&location);
        let position = Arc::new(AtomicU64::new(0));
        let path = self.store.blob_path(&self.descriptor.digest);
        let size = self.descriptor.size;
        let scopes = self.scopes();
        let request = self.registry.send(&scopes, Retry::No, |http| {
            http.put(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size)
                .body(file_body(path.clone(), 0, size, position.clone()))
        });
        let mut reported = 0;
        let response = self
            .with_progress(request, &position, &mut reported)
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("PUT", url.as_str(), response).await);
        }
        Ok(())
    }

    /// `PATCH` chunks with `Content-Range`, resuming from the registry's offset after a failure, then the closing `PUT`.
    async fn put_chunked(&self, mut location: Url) -> Result<(), Error> {
        let size = self.descriptor.size;
        let path = self.store.blob_path(&self.descriptor.digest);
        let position = Arc::new(AtomicU64::new(0));
        let mut reported = 0;
        let mut offset = 0;
        let mut failures = 0;
        while offset < size {
            let end = (offset + self.chunk_size).min(size);
            let url = location.clone();
            let scopes = self.scopes();
            let request = self.registry.send(&scopes, Retry::No, |http| {
                http.patch(url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, end - offset)
                    .header(header::CONTENT_RANGE, format!("{offset}-{}", end - 1))
                    .body(file_body(
                        path.clone(),
                        offset,
                        end - offset,
                        position.clone(),
                    ))
            });
            let failure = match self.with_progress(request, &position, &mut reported).await {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {
                    location = self.location("PATCH", url.as_str(), &response)?;
                    offset = match header_str(&response, "range").and_then(range_size) {
                        Some(size) if size > offset => size,
                        _ => end,
                    };
                    continue;
                }
                Ok(response)
                    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE
                        || response.status() == StatusCode::TOO_MANY_REQUESTS
                        || response.status().is_server_error() =>
                {
                    status_error("PATCH", url.as_str(), response).await
                }
                Ok(response) => return Err(status_error("PATCH", url.as_str(), response).await),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            failures += 1;
            if failures >= MAX_ATTEMPTS {
                return Err(failure);
            }
            tracing::warn!("{failure}; asking the registry where to resume");
            tokio::time::sleep(backoff(failures)).await;
            let (resumed_at, resumed_location) = match self.status(&location).await {
                Ok(status) => status,
                // registry:2, for one, cancels an upload whose data went past the offset its session URL records.
                Err(error) => {
                    return Err(Error::UploadLost {
                        digest: self.descriptor.digest.clone(),
                        reason: error.to_string(),
                    })
                }
            };
            tracing::info!(
                "resuming the upload of {} at byte {resumed_at}",
                self.descriptor.digest
            );
            offset = resumed_at;
            location = resumed_location;
        }
        let url = self.closing_url(&location);
        let response = self
            .registry
            .send(&self.scopes(), Retry::Yes, |http| {
                http.put(url.clone()).header(header::CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error("PUT", url.as_str(), response).await);
        }
        self.advance_to(size, &mut reported);
        Ok(())
    }

    /// The upload session's status: how many bytes the registry holds, and the session URL to continue with.
    async fn status(&self, location: &Url) -> Result<(u64, Url), Error> {
        let response = self
            .registry
            .send(&self.scopes(), Retry::Yes, |http| {
                http.get(location.clone())
            })
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(status_error("GET", location.as_str(), response).await);
        }
        let offset = header_str(&response, "range")
            .and_then(range_size)
            .unwrap_or(0);
        let next = match header_str(&response, "location") {
            Some(_) => self.location("GET", location.as_str(), &response)?,
            None => location.clone(),
        };
        Ok((offset, next))
    }

    /// Awaits `request` while reporting the bytes its body has sent.
    async fn with_progress(
        &self,
        request: impl std::future::Future<Output = Result<reqwest::Response, Error>>,
        position: &AtomicU64,
        reported: &mut u64,
    ) -> Result<reqwest::Response, Error> {
        let mut request = std::pin::pin!(request);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                response = &mut request => {
                    self.advance_to(position.load(Ordering::Relaxed), reported);
                    return response;
                }
                _ = tick.tick() => self.advance_to(position.load(Ordering::Relaxed), reported),
            }
        }
    }

    /// Reports progress up to byte `position` (a high-water mark: resent bytes are not counted twice).
    fn advance_to(&self, position: u64, reported: &mut u64) {
        if position > *reported {
            self.progress.advance(&self.item(), position - *reported);
            *reported = position;
        }
    }
}

enum Mounted {
    Done,
    /// The registry could not mount and opened an ordinary upload instead.
    Session(Url),
}

/// The byte count a `Range: 0-N` header reports (registry:2 writes `0-N`, some registries `bytes=0-N`). registry:2
/// reports an empty upload as `0-0` too, so that reads as 0: resuming one byte early only costs a 416 and a retry.
fn range_size(value: &str) -> Option<u64> {
    let value = value.trim().trim_start_matches("bytes=");
    let (start, end) = value.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let last: u64 = end.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

/// A request body streaming `len` bytes of the file at `path` from `offset`, recording the position reached.
fn file_body(path: PathBuf, offset: u64, len: u64, position: Arc<AtomicU64>) -> reqwest::Body {
    let stream = async move {
        let mut file = tokio::fs::File::open(&path).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        position.store(offset, Ordering::Relaxed);
        let chunks = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10);
        Ok::<_, std::io::Error>(chunks.inspect_ok(move |chunk| {
            position.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }))
    }
    .try_flatten_stream();
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upload_ranges() {
        assert_eq!(range_size("0-1023"), Some(1024));
        assert_eq!(range_size("bytes=0-9"), Some(10));
        assert_eq!(range_size("0-0"), Some(0));
        assert_eq!(range_size("5-9"), None);
        assert_eq!(range_size("garbage"), None);
    }
}
