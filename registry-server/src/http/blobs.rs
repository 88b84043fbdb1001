//! Blob downloads (whole or one byte range, streamed from storage, or followed while a mirror fetches them) and blob
//! deletion.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use layerstore::Digest;
use serde_json::json;

use super::{empty, hv, parse_digest, range, with_events, Shared, DOCKER_CONTENT_DIGEST};
use crate::error::{ApiError, ApiResult, Code};
use crate::notify::{Action, Target};
use crate::proxy::blobs::Fetched;
use crate::proxy::Mirror;
use crate::registry::Registry;
use crate::uploads::blocking;

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(Code::BlobUnknown).detail(json!({ "digest": digest.to_string() }))
}

/// GET or HEAD of `/v2/<name>/blobs/<digest>`.
pub async fn get(
    st: Shared,
    name: String,
    digest: String,
    req: Request,
    head: bool,
) -> ApiResult<Response> {
    let digest = parse_digest(&digest)?;
    let registry = st.registry.clone();
    let d = digest.clone();
    let lock = st.commit_lock.clone();
    let name_for_mirror = name.clone();
    let event_name = name.clone();
    let ranged = req.headers().contains_key(header::RANGE);
    let size = blocking(move || {
        // Under the commit lock, so that a collection either sees the touch below or has already swept the blob.
        crate::lease::wait_while_held(registry.driver().as_ref())?;
        let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
        let size = registry.blob_size(&name, &d)?;
        if head && size.is_some() {
            // A HEAD usually precedes a push that skips this blob: keep it safe from an imminent collection.
            registry.touch_blob(&d)?;
        }
        Ok(size)
    })
    .await?;
    let size = match (size, &st.mirror) {
        (Some(size), _) => size,
        (None, None) => return Err(blob_unknown(&digest)),
        (None, Some(mirror)) => {
            match mirrored(&st, mirror, &name_for_mirror, &digest, ranged, head).await? {
                Mirrored::Stored(size) => size,
                Mirrored::Answer(response, size) => {
                    let target = Target::blob(&event_name, &digest, size.unwrap_or_default());
                    return Ok(with_events(response, vec![(Action::Pull, target)]));
                }
            }
        }
    };
    let wanted = if head {
        None
    } else {
        range::requested(req.headers().get(header::RANGE), size)?
    };
    let mut headers = blob_headers(&digest);
    let (status, start, len) = match wanted {
        Some(r) => {
            headers.insert(
                header::CONTENT_RANGE,
                hv(format!("bytes {}-{}/{size}", r.start, r.end)),
            );
            (StatusCode::PARTIAL_CONTENT, r.start, r.len())
        }
        None => (StatusCode::OK, 0, size),
    };
    headers.insert(header::CONTENT_LENGTH, hv(len.to_string()));
    // registry:2 reports a HEAD as a pull too.
    let target = Target::blob(&event_name, &digest, size);
    let body = if head {
        Body::empty()
    } else {
        stream_blob(st.registry.clone(), digest, start, len)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(with_events(response, vec![(Action::Pull, target)]))
}

/// The headers of every blob answer.
fn blob_headers(digest: &Digest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(DOCKER_CONTENT_DIGEST, hv(digest.to_string()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, hv(format!("\"{digest}\"")));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers
}

/// How the mirror handled a blob the repository lacked.
enum Mirrored {
    /// Now in the store, of this size: serve it as any stored blob.
    Stored(u64),
    /// Answered already (a `HEAD` from the upstream's size, or the body of a fetch in progress), with the size.
    Answer(Response, Option<u64>),
}

/// A blob the repository lacks, on a mirror: linked from the blob store when another repository fetched it,
/// else `HEAD` asks the upstream, a ranged GET waits for the whole fetch, and a plain GET follows the fetch.
async fn mirrored(
    st: &Shared,
    mirror: &Arc<Mirror>,
    name: &str,
    digest: &Digest,
    ranged: bool,
    head: bool,
) -> ApiResult<Mirrored> {
    let (registry, lock, n, d) = (
        st.registry.clone(),
        st.commit_lock.clone(),
        name.to_string(),
        digest.clone(),
    );
    let link_stored = move || {
        blocking(move || {
            let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
            let size = registry.global_blob_size(&d)?;
            if size.is_some() {
                registry.link_blob(&n, &d)?;
            }
            Ok(size)
        })
    };
    if let Some(size) = link_stored.clone()().await? {
        return Ok(Mirrored::Stored(size));
    }
    if head {
        let size = mirror
            .blob_size_upstream(name, digest)
            .await?
            .ok_or_else(|| blob_unknown(digest))?;
        let mut headers = blob_headers(digest);
        headers.insert(header::CONTENT_LENGTH, hv(size.to_string()));
        let mut response = Response::new(Body::empty());
        *response.headers_mut() = headers;
        return Ok(Mirrored::Answer(response, Some(size)));
    }
    let fetched = if ranged {
        mirror
            .fetch_blob_whole(name, digest)
            .await?
            .map(|()| Fetched::Stored)
    } else {
        mirror.fetch_blob(name, digest).await?
    };
    match fetched.ok_or_else(|| blob_unknown(digest))? {
        Fetched::Stored => link_stored()
            .await?
            .map(Mirrored::Stored)
            .ok_or_else(|| ApiError::internal("a fetched blob is missing from the store")),
        Fetched::Streaming { size, body } => {
            let mut headers = blob_headers(digest);
            headers.remove(header::ACCEPT_RANGES);
            if let Some(size) = size {
                headers.insert(header::CONTENT_LENGTH, hv(size.to_string()));
            }
            let mut response = Response::new(body);
            *response.headers_mut() = headers;
            Ok(Mirrored::Answer(response, size))
        }
    }
}

/// Streams `len` bytes of a blob from `offset`, reading on the blocking pool.
fn stream_blob(registry: Arc<Registry>, digest: Digest, offset: u64, len: u64) -> Body {
    // Two chunks queued per download: enough to keep the socket busy, little memory under many downloads.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut reader = match registry.open_blob(&digest, offset) {
            Ok(reader) => reader,
            Err(err) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(err.to_string())));
                return;
            }
        };
        let mut left = len;
        while left > 0 {
            // 512 KiB reads into fresh, uninitialised buffers: no zeroing, few channel hops.
            let want = left.min(512 << 10);
            let mut chunk = Vec::with_capacity(want as usize);
            match (&mut reader).take(want).read_to_end(&mut chunk) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::ErrorKind::UnexpectedEof.into()));
                    return;
                }
                Ok(n) => {
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        return;
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = tx.blocking_send(Err(err));
                    return;
                }
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// DELETE of `/v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
pub async fn delete(st: Shared, name: String, digest: String) -> ApiResult<Response> {
    if !st.config.delete {
        return Err(
            ApiError::new(Code::Unsupported).message("deletes are disabled on this registry")
        );
    }
    let digest = parse_digest(&digest)?;
    let registry = st.registry.clone();
    let (n, d) = (name.clone(), digest.clone());
    if !blocking(move || Ok(registry.unlink_blob(&n, &d)?)).await? {
        return Err(blob_unknown(&digest));
    }
    let target = Target {
        digest: Some(digest.to_string()),
        repository: name,
        ..Target::default()
    };
    Ok(with_events(
        empty(StatusCode::ACCEPTED, HeaderMap::new()),
        vec![(Action::Delete, target)],
    ))
}
