//! Reading what is left of a request body before an error response goes out, so the client gets to see it.
//!
//! A handler (or the auth middleware) that refuses a request with a body answers without reading it, and the
//! connection is closed behind the response. A client still writing its body then sees the close (a TCP reset, or
//! over TLS an EOF without `close_notify`) instead of the response: Python's requests reports `SSLEOFError` where a
//! 401 was due. Go's `net/http`, which registry:2 uses, reads up to 256 KiB of such a body and lingers before
//! closing; this middleware does the same within a byte and time bound: on a response of status 400 or above to a
//! request with a body, it reads and discards up to [`MAX_DRAIN_BYTES`] of the unread body, for at most
//! [`MAX_DRAIN_TIME`], before the response is sent. A body drained to its end also lets the connection be reused.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::{Stream, StreamExt};

/// The most of an unread body read before an error response: a whole default-sized upload chunk of lade's, Docker's
/// and oras' clients.
pub const MAX_DRAIN_BYTES: u64 = 64 << 20;
/// The longest an error response waits for the body to drain.
pub const MAX_DRAIN_TIME: Duration = Duration::from_secs(10);

/// Does the request announce a body (a non-zero `Content-Length`, or a `Transfer-Encoding`)?
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// A request body shared between the handler, which reads it through a [`SharedBody`], and this middleware, which
/// keeps it when the handler drops its end.
type Inner = Arc<Mutex<BodyDataStream>>;

/// The handler's end of a shared body.
struct SharedBody(Inner);

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inner = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inner.poll_next_unpin(cx)
    }
}

/// Middleware: drains the unread part of a refused request's body (see the module documentation).
pub async fn unread_body(request: Request, next: Next) -> Response {
    if !has_body(&request) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let inner: Inner = Arc::new(Mutex::new(body.into_data_stream()));
    let request = Request::from_parts(parts, Body::from_stream(SharedBody(inner.clone())));
    let response = next.run(request).await;
    // A 408 answers a client too slow to send its body: waiting for the body again would only delay the answer.
    if response.status().as_u16() >= 400
        && response.status() != axum::http::StatusCode::REQUEST_TIMEOUT
    {
        let mut rest = SharedBody(inner);
        let drained = tokio::time::timeout(MAX_DRAIN_TIME, async {
            let mut read = 0u64;
            while let Some(Ok(chunk)) = rest.next().await {
                read += chunk.len() as u64;
                if read > MAX_DRAIN_BYTES {
                    break;
                }
            }
            read
        })
        .await;
        tracing::debug!(status = %response.status(), ?drained, "drained the unread request body");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::put;
    use axum::Router;
    use tower::ServiceExt;

    /// A body that counts what was read of it.
    fn counted(total: usize, read: Arc<Mutex<usize>>) -> Body {
        let chunks = (0..total / 1024).map(move |_| {
            *read.lock().unwrap() += 1024;
            Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1024]))
        });
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    async fn send(status: StatusCode, size: usize) -> (StatusCode, usize) {
        let app = Router::new()
            .route("/", put(move || async move { status }))
            .layer(axum::middleware::from_fn(unread_body));
        let read = Arc::new(Mutex::new(0));
        let request = Request::put("/")
            .header(header::CONTENT_LENGTH, size.to_string())
            .body(counted(size, read.clone()))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let read = *read.lock().unwrap();
        (response.status(), read)
    }

    #[tokio::test]
    async fn a_refused_body_is_drained_within_the_bound() {
        assert_eq!(
            send(StatusCode::UNAUTHORIZED, 1 << 20).await,
            (StatusCode::UNAUTHORIZED, 1 << 20)
        );
        let (status, read) = send(
            StatusCode::PAYLOAD_TOO_LARGE,
            (MAX_DRAIN_BYTES as usize) * 2,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(read as u64 > MAX_DRAIN_BYTES && (read as u64) < MAX_DRAIN_BYTES + (1 << 20));
    }

    #[tokio::test]
    async fn an_accepted_body_is_left_alone() {
        assert_eq!(
            send(StatusCode::NO_CONTENT, 1 << 20).await,
            (StatusCode::NO_CONTENT, 0)
        );
    }
}
