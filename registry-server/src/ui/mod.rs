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

/// Why a page cannot be shown; rendered as an error page.
struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> PageError {
        PageError {
            status,
            title,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, "Bad request", message)
    }

    fn storage(err: impl std::fmt::Display) -> PageError {
        tracing::error!(error = %err, "rendering a page");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Storage error",
            err.to_string(),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        html(self.status, pages::error(self.title, &self.message))
    }
}

type PageResult = Result<Response, PageError>;

/// Runs storage reads off the async threads.
async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DriverError> + Send + 'static,
) -> Result<T, PageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(PageError::storage(err)),
        Err(err) => Err(PageError::storage(err)),
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
fn repository_name(params: &HashMap<String, String>) -> Result<String, PageError> {
    match params.get("name") {
        Some(name) if names::is_valid_name(name) => Ok(name.clone()),
        Some(name) => Err(PageError::bad_request(format!(
            "{name:?} is not a valid repository name"
        ))),
        None => Err(PageError::bad_request("the name parameter is missing")),
    }
}

/// GET `/`, `/ui[?q=TEXT]`.
async fn repositories(State(st): State<Shared>, Query(params): Params) -> PageResult {
    let query = params.get("q").cloned().unwrap_or_default();
    let registry = st.registry.clone();
    let q = query.clone();
    let names = read(move || view::repositories(&registry, &q)).await?;
    Ok(html(StatusCode::OK, pages::repositories(&names, &query)))
}

/// GET `/ui/repo?name=NAME`.
async fn repository(
    State(st): State<Shared>,
    Query(params): Params,
    request: Request,
) -> PageResult {
    let name = repository_name(&params)?;
    let registry = st.registry.clone();
    let n = name.clone();
    let rows = read(move || view::tags(&registry, &n))
        .await?
        .ok_or_else(|| PageError::not_found(format!("repository {name} does not exist")))?;
    Ok(html(
        StatusCode::OK,
        pages::repository(&host(&request), &name, &rows),
    ))
}

/// GET `/ui/image?name=NAME&ref=TAG|DIGEST`.
async fn image(State(st): State<Shared>, Query(params): Params, request: Request) -> PageResult {
    let name = repository_name(&params)?;
    let reference = params
        .get("ref")
        .cloned()
        .unwrap_or_else(|| "latest".into());
    let registry = st.registry.clone();
    let (n, r) = (name.clone(), reference.clone());
    let view = read(move || view::image(&registry, &n, &r))
        .await?
        .ok_or_else(|| PageError::not_found(format!("{name} has no manifest {reference}")))?;
    Ok(html(
        StatusCode::OK,
        pages::image(&host(&request), &name, &reference, &view),
    ))
}
