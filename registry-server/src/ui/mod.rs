//! The registry's web page: server-rendered HTML at `/` and `/ui` listing repositories (with search), a
//! repository's tags, and one image's layers, config, history and referrers. It reads through the same
//! [`crate::registry::Registry`] the API uses, behind the same authentication middleware, so with htpasswd
//! configured a browser is asked for credentials (401 with a Basic challenge) exactly as `docker login` is.
//! `ui: false` in the config (or `--no-ui`) leaves the routes out.

mod html;
mod pages;
mod view;

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::{auth, Shared};
use crate::names;
use crate::storage::DriverError;

/// The page routes, to merge into the application router.
pub fn router(state: Shared) -> Router<Shared> {
    Router::new()
        .route("/", get(repositories))
        .route("/ui", get(repositories))
        .route("/ui/", get(repositories))
        .route("/ui/repo", get(repository))
        .route("/ui/image", get(image))
        .route_layer(from_fn_with_state(state, auth::require))
}

type Params = Query<HashMap<String, String>>;

/// An HTML response with the headers every page carries.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(policy) = HeaderValue::from_str(&html::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found(what: &str) -> Response {
    html(StatusCode::NOT_FOUND, pages::error("Not found", what))
}

fn failed(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "rendering a page");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::error("Storage error", &err.to_string()),
    )
}

/// Runs storage reads off the async threads.
async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DriverError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(failed(err)),
        Err(err) => Err(failed(err)),
    }
}

/// The host clients pull from: the request's `Host` header (escaped where shown, like everything else).
fn host(request: &Request) -> String {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:5000")
        .to_string()
}

/// The `name` parameter, checked against the distribution spec's grammar.
fn repository_name(params: &HashMap<String, String>) -> Result<String, Response> {
    match params.get("name") {
        Some(name) if names::is_valid_name(name) => Ok(name.clone()),
        Some(name) => Err(html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Bad request",
                &format!("{name:?} is not a valid repository name"),
            ),
        )),
        None => Err(html(
            StatusCode::BAD_REQUEST,
            pages::error("Bad request", "the name parameter is missing"),
        )),
    }
}

/// GET `/`, `/ui[?q=TEXT]`.
async fn repositories(State(st): State<Shared>, Query(params): Params) -> Response {
    let query = params.get("q").cloned().unwrap_or_default();
    let registry = st.registry.clone();
    let q = query.clone();
    match read(move || view::repositories(&registry, &q)).await {
        Ok(names) => html(StatusCode::OK, pages::repositories(&names, &query)),
        Err(response) => response,
    }
}

/// GET `/ui/repo?name=NAME`.
async fn repository(State(st): State<Shared>, Query(params): Params, request: Request) -> Response {
    let name = match repository_name(&params) {
        Ok(name) => name,
        Err(response) => return response,
    };
    let registry = st.registry.clone();
    let n = name.clone();
    match read(move || view::tags(&registry, &n)).await {
        Ok(Some(rows)) => html(
            StatusCode::OK,
            pages::repository(&host(&request), &name, &rows),
        ),
        Ok(None) => not_found(&format!("repository {name} does not exist")),
        Err(response) => response,
    }
}

/// GET `/ui/image?name=NAME&ref=TAG|DIGEST`.
async fn image(State(st): State<Shared>, Query(params): Params, request: Request) -> Response {
    let name = match repository_name(&params) {
        Ok(name) => name,
        Err(response) => return response,
    };
    let reference = params
        .get("ref")
        .cloned()
        .unwrap_or_else(|| "latest".into());
    let registry = st.registry.clone();
    let (n, r) = (name.clone(), reference.clone());
    match read(move || view::image(&registry, &n, &r)).await {
        Ok(Some(view)) => html(
            StatusCode::OK,
            pages::image(&host(&request), &name, &reference, &view),
        ),
        Ok(None) => not_found(&format!("{name} has no manifest {reference}")),
        Err(response) => response,
    }
}
