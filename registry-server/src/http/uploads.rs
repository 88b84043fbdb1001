//! The blob upload endpoints: POST (session, monolithic, or cross-repository mount), PATCH, GET status, PUT to
//! finish, DELETE to cancel.

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use layerstore::Digest;

use super::{
    empty, hv, parse_digest, query, range, with_events, Shared, DOCKER_CONTENT_DIGEST,
    DOCKER_UPLOAD_UUID,
};
use crate::error::{ApiError, ApiResult, Code};
use crate::names;
use crate::notify::{Action, Target};
use crate::uploads::{blocking, Session};

fn session_headers(name: &str, uuid: &str, size: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        hv(format!("/v2/{name}/blobs/uploads/{uuid}")),
    );
    headers.insert(header::RANGE, hv(format!("0-{}", size.saturating_sub(1))));
    headers.insert(DOCKER_UPLOAD_UUID, hv(uuid));
    headers
}

/// The answer to a completed upload or mount, carrying its event.
fn created(name: &str, digest: &Digest, event: (Action, Target)) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, hv(format!("/v2/{name}/blobs/{digest}")));
    headers.insert(DOCKER_CONTENT_DIGEST, hv(digest.to_string()));
    with_events(empty(StatusCode::CREATED, headers), vec![event])
}

fn body_stream(req: Request) -> axum::body::BodyDataStream {
    req.into_body().into_data_stream()
}

/// POST `/v2/<name>/blobs/uploads/`.
pub async fn start(st: Shared, name: String, req: Request) -> ApiResult<Response> {
    let params = query::parse(req.uri().query());
    if let Some(mount) = query::first(&params, "mount") {
        let digest = parse_digest(mount)?;
        let source = match query::first(&params, "from") {
            Some(from) if names::is_valid_name(from) => Some(Some(from.to_string())),
            Some(_) => None,
            None if st.config.automatic_crossmount => Some(None),
            None => None,
        };
        if let Some(source) = source {
            let (registry, lock) = (st.registry.clone(), st.commit_lock.clone());
            let (to, d) = (name.clone(), digest.clone());
            let from = source.clone();
            let mounted = blocking(move || {
                crate::lease::wait_while_held(registry.driver().as_ref())?;
                let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
                let found = match &source {
                    Some(from) => registry.blob_size(from, &d)?,
                    None => registry.global_blob_size(&d)?,
                };
                if found.is_some() {
                    registry.link_blob(&to, &d)?;
                }
                Ok(found)
            })
            .await?;
            if let Some(size) = mounted {
                let mut target = Target::blob(&name, &digest, size);
                target.from_repository = from;
                return Ok(created(&name, &digest, (Action::Mount, target)));
            }
        }
    }
    if let Some(digest) = query::first(&params, "digest") {
        let digest = parse_digest(digest)?;
        let mut session = st.uploads.create(&name).await?;
        if let Err(err) = st.uploads.append(&mut session, body_stream(req)).await {
            st.uploads.cancel(session).await?;
            return Err(err);
        }
        let size = st.uploads.finish(session, &digest).await?;
        let target = Target::blob(&name, &digest, size);
        return Ok(created(&name, &digest, (Action::Push, target)));
    }
    let session = st.uploads.create(&name).await?;
    let headers = session_headers(&name, &session.uuid, 0);
    Ok(empty(StatusCode::ACCEPTED, headers))
}

/// GET `/v2/<name>/blobs/uploads/<uuid>`: how much has been received.
pub async fn status(st: Shared, name: String, uuid: String) -> ApiResult<Response> {
    let session = st.uploads.open(&name, &uuid).await?;
    let size = session.size();
    Ok(empty(
        StatusCode::NO_CONTENT,
        session_headers(&name, &uuid, size),
    ))
}

/// Checks a chunk's `Content-Range` against what the session holds: a chunk must start where the data ends.
fn check_chunk_start(
    session: &Session,
    headers: &HeaderMap,
) -> ApiResult<Option<range::ByteRange>> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let size = session.size();
    let out_of_order = |detail: String| {
        let mut err = ApiError::new(Code::RangeInvalid)
            .message("chunk does not continue the upload")
            .detail(detail);
        for (k, v) in session_headers(&session.name, &session.uuid, size) {
            if let Some(k) = k {
                err = err.header(k, v);
            }
        }
        err
    };
    let chunk = range::content_range(value).map_err(|e| out_of_order(e.message.clone()))?;
    if chunk.start != size {
        return Err(out_of_order(format!(
            "chunk starts at {} but {size} bytes were received",
            chunk.start
        )));
    }
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length != chunk.len() {
            return Err(ApiError::new(Code::SizeInvalid).detail(format!(
                "Content-Length {length} does not match Content-Range length {}",
                chunk.len()
            )));
        }
    }
    Ok(Some(chunk))
}

/// Appends the body and checks it filled exactly the announced chunk.
async fn append_chunk(st: &Shared, session: &mut Session, req: Request) -> ApiResult<u64> {
    let chunk = check_chunk_start(session, req.headers())?;
    let size = st.uploads.append(session, body_stream(req)).await?;
    if let Some(chunk) = chunk {
        if size != chunk.end + 1 {
            return Err(ApiError::new(Code::SizeInvalid).detail(format!(
                "chunk ended at byte {} instead of {}",
                size.saturating_sub(1),
                chunk.end
            )));
        }
    }
    Ok(size)
}

/// PATCH `/v2/<name>/blobs/uploads/<uuid>`: one chunk (with `Content-Range`) or a stream (without).
pub async fn patch(st: Shared, name: String, uuid: String, req: Request) -> ApiResult<Response> {
    let mut session = st.uploads.open(&name, &uuid).await?;
    let size = append_chunk(&st, &mut session, req).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        session_headers(&name, &uuid, size),
    ))
}

/// PUT `/v2/<name>/blobs/uploads/<uuid>?digest=`: an optional last chunk, then verification and commit.
pub async fn put(st: Shared, name: String, uuid: String, req: Request) -> ApiResult<Response> {
    let params = query::parse(req.uri().query());
    let mut session = st.uploads.open(&name, &uuid).await?;
    let digest = query::first(&params, "digest").ok_or_else(|| {
        ApiError::new(Code::DigestInvalid).message("the digest query parameter is required")
    })?;
    let digest = parse_digest(digest)?;
    append_chunk(&st, &mut session, req).await?;
    let size = st.uploads.finish(session, &digest).await?;
    let target = Target::blob(&name, &digest, size);
    Ok(created(&name, &digest, (Action::Push, target)))
}

/// DELETE `/v2/<name>/blobs/uploads/<uuid>`.
pub async fn cancel(st: Shared, name: String, uuid: String) -> ApiResult<Response> {
    let session = st.uploads.open(&name, &uuid).await?;
    st.uploads.cancel(session).await?;
    Ok(empty(StatusCode::NO_CONTENT, HeaderMap::new()))
}
