//! Appendable files (upload data) are S3 multipart uploads whose state lives in the bucket, so that any process can
//! continue one: the multipart id, the ETags of the parts sent, the size, and a buffered tail smaller than a part
//! (parts must be ≥ 5 MiB but the last) are kept as `<path>.lade-upload` (JSON) and `<path>.lade-tail-<size>`.
//! Writes buffer at most one part in memory; committing a writer saves the tail and then the state, so a crash
//! between the two leaves the previous state intact. Moving such a file completes the multipart upload (the tail
//! as its last part) and copies the result into place; while in progress its content cannot be read back (S3 has
//! no read of unfinished uploads), which is why upload hashing saves its state (see `hashstate`).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::SystemTime;

use bytes::Bytes;
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{backend, ObjectDriver, MIN_CHUNK_SIZE, PARTS_IN_FLIGHT};
use crate::storage::{DriverError, FileWriter};

pub(super) const STATE_SUFFIX: &str = ".lade-upload";
pub(super) const TAIL_SUFFIX: &str = ".lade-tail-";

/// The saved state of an appendable file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct AppendState {
    /// The multipart upload's id, once a part was sent.
    pub(super) multipart_id: Option<String>,
    /// The ETags of the parts sent, in order.
    parts: Vec<String>,
    /// The bytes written so far, parts and tail.
    pub(super) size: u64,
    /// The object holding the tail not yet sent as a part.
    pub(super) tail_key: Option<String>,
    /// The tail's length.
    tail_len: u64,
}

impl ObjectDriver {
    pub(super) fn state_key(key: &Path) -> Path {
        Path::parse(format!("{}{STATE_SUFFIX}", key.as_ref())).expect("suffixed keys stay valid")
    }

    pub(super) fn load_state(
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

    /// Completes an appendable file into an ordinary object at its own key.
    pub(super) fn complete(
        &self,
        path: &str,
        key: &Path,
        state: AppendState,
    ) -> Result<(), DriverError> {
        let tail = self.fetch_tail(path, &state)?;
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

    /// Opens the appendable file at `path`: continues its upload when `append`, else starts it afresh (deleting
    /// whatever was there).
    pub(super) fn open_writer(
        &self,
        path: &str,
        append: bool,
    ) -> Result<Box<dyn FileWriter>, DriverError> {
        let key = self.key(path)?;
        let existing = self.load_state(path, &key)?;
        let (state, tail) = match existing {
            Some((state, _)) if append => {
                let tail = self.fetch_tail(path, &state)?;
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

    /// The buffered tail of an appendable file, checked against its saved state.
    fn fetch_tail(&self, path: &str, state: &AppendState) -> Result<Bytes, DriverError> {
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
        Ok(tail)
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
