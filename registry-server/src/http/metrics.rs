//! Request metrics in the Prometheus text format, and the structured access log, both fed by one middleware that
//! also stamps every response with `Docker-Distribution-API-Version`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Shared, API_VERSION};

/// Counters since the server started.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    response_bytes: AtomicU64,
    request_bytes: AtomicU64,
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Middleware: counts and logs each request.
pub async fn observe(State(st): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let received = content_length(request.headers());
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    let status = response.status().as_u16();
    let sent = if method == Method::HEAD {
        0
    } else {
        content_length(response.headers())
    };
    let metrics = &st.metrics;
    *metrics
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((method.to_string(), status))
        .or_default() += 1;
    metrics.response_bytes.fetch_add(sent, Ordering::Relaxed);
    metrics.request_bytes.fetch_add(received, Ordering::Relaxed);
    tracing::info!(
        target: "lade::registry::access",
        method = %method,
        path = %path,
        status,
        bytes_sent = sent,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// GET `/metrics`.
pub async fn render(State(st): State<Shared>) -> Response {
    let metrics = &st.metrics;
    let mut out = String::new();
    out.push_str("# HELP lade_registry_http_requests_total HTTP requests by method and status.\n");
    out.push_str("# TYPE lade_registry_http_requests_total counter\n");
    for ((method, status), count) in metrics
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "lade_registry_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}"
        );
    }
    let counters = [
        (
            "lade_registry_http_response_bytes_total",
            "Response body bytes (as announced by Content-Length).",
            metrics.response_bytes.load(Ordering::Relaxed),
        ),
        (
            "lade_registry_http_request_bytes_total",
            "Request body bytes announced by Content-Length.",
            metrics.request_bytes.load(Ordering::Relaxed),
        ),
        (
            "lade_registry_upload_bytes_total",
            "Bytes received into blob uploads, chunked or streamed.",
            st.uploads.bytes_received(),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    if let Some(notifier) = &st.notifier {
        out.push_str("# HELP lade_registry_notifications_dropped_total Events dropped because an endpoint's queue was full.\n");
        out.push_str("# TYPE lade_registry_notifications_dropped_total counter\n");
        for (endpoint, dropped) in notifier.dropped() {
            let endpoint = endpoint.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "lade_registry_notifications_dropped_total{{endpoint=\"{endpoint}\"}} {dropped}"
            );
        }
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
