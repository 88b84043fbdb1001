//! Liveness and readiness endpoints for orchestrators and load balancers: `/livez` answers while the process serves
//! requests at all; `/readyz` only while storage answers and the server is not draining for shutdown.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Shared;

/// Whether the server is shutting down.
#[derive(Debug, Default)]
pub struct Health {
    draining: AtomicBool,
}

impl Health {
    /// Marks the server as shutting down: `/readyz` fails from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Has shutdown begun?
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// GET `/livez`: the process is up and its HTTP stack answers.
pub async fn livez() -> Response {
    text(StatusCode::OK, "ok\n".to_string())
}

/// GET `/readyz`: 200 while storage answers and the server is not draining, else 503 with the reason.
pub async fn readyz(State(st): State<Shared>) -> Response {
    if st.health.draining() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".to_string(),
        );
    }
    let registry = st.registry.clone();
    let checked = tokio::task::spawn_blocking(move || registry.driver().check()).await;
    match checked {
        Ok(Ok(())) => text(StatusCode::OK, "ready\n".to_string()),
        Ok(Err(err)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: storage unavailable: {err}\n"),
        ),
        Err(err) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: storage check failed: {err}\n"),
        ),
    }
}
