//! The HTTP API: shared state, routing of `/v2/...` paths (repository names contain `/`, so one wildcard route
//! parses them) and the middleware around every request.

pub mod auth;
mod blobs;
mod discovery;
mod drain;
pub mod health;
mod manifests;
pub mod metrics;
mod query;
mod range;
mod uploads;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use layerstore::Digest;
use serde_json::json;

use crate::config::Config;
use crate::error::{ApiError, ApiResult, Code};
use crate::names;
use crate::notify::{self, Action, Actor, Emitted, Notifier, RequestRecord, Target};
use crate::registry::Registry;
use crate::uploads::Uploads;

/// Everything a request handler needs.
pub struct AppState {
    /// The repositories and their content, over the storage driver.
    pub registry: Arc<Registry>,
    /// The blob upload sessions in progress.
    pub uploads: Arc<Uploads>,
    /// The configuration the server was started with.
    pub config: Arc<Config>,
    /// The htpasswd check, when `auth` is configured; None: every request is let through.
    pub auth: Option<Arc<auth::Authenticator>>,
    /// Request counters and durations for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Read-held while content is linked; write-held by garbage collection while it sweeps.
    pub commit_lock: Arc<RwLock<()>>,
    /// Permits for `limits.max_concurrent_requests`.
    pub admission: Option<Arc<tokio::sync::Semaphore>>,
    /// Readiness: set when shutdown begins.
    pub health: Arc<health::Health>,
    /// Set when the registry is a pull-through mirror (`proxy.remoteurl`).
    pub mirror: Option<Arc<crate::proxy::Mirror>>,
    /// Set when `notifications.endpoints` are configured.
    pub notifier: Option<Arc<Notifier>>,
}

/// The state as handlers share it.
pub type Shared = Arc<AppState>;

/// `Docker-Content-Digest`: the digest of a blob or manifest, sent with content and upload answers.
pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// `Docker-Upload-UUID`: an upload session's ID, sent with upload answers.
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
/// `Docker-Distribution-API-Version`, sent as `registry/2.0` on every response.
pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// The application router.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/_catalog", any(discovery::catalog))
        .route("/v2/{*path}", any(dispatch))
        .route_layer(from_fn_with_state(state.clone(), admit))
        .route_layer(from_fn_with_state(state.clone(), auth::require));
    let timeout = state.config.limits.request_timeout_secs;
    let mut app = api
        .route("/healthz", get(healthz))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz));
    if state.config.debug.addr.is_none() {
        // Without a debug listener the metrics share the API's address, and its credentials.
        app = app.route(
            "/metrics",
            get(metrics::render)
                .route_layer(from_fn_with_state(state.clone(), auth::require_valid)),
        );
    }
    if state.config.ui {
        app = app.merge(crate::ui::router(state.clone()));
    }
    if timeout > 0 {
        app = app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(timeout),
        ));
    }
    // Outermost, so that refused and timed-out requests are counted and logged too.
    app.layer(axum::middleware::from_fn(drain::unread_body))
        .layer(from_fn_with_state(state.clone(), metrics::observe))
        .with_state(state)
}

/// The debug listener's router (`http.debug.addr`): `/metrics`, unauthenticated, as registry:2 serves it there.
pub fn debug_router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// Middleware on `/v2/...`: refuses writes on a read-only registry (403 `DENIED`) and requests beyond the
/// concurrency limit (429 `TOOMANYREQUESTS`).
async fn admit(State(st): State<Shared>, request: Request, next: Next) -> Response {
    let write = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if st.config.read_only && write {
        return ApiError::new(Code::Denied)
            .message("the registry is in read-only mode")
            .into_response();
    }
    let _permit = match &st.admission {
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return ApiError::new(Code::TooManyRequests)
                    .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
                    .into_response()
            }
        },
        None => None,
    };
    next.run(request).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn base(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(Code::Unsupported).into_response();
    }
    let mut response = (StatusCode::OK, "{}").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What a `/v2/<name>/...` path addresses.
#[derive(Debug, PartialEq)]
enum Route {
    Blob(String),
    UploadStart,
    Upload(String),
    Manifest(String),
    Tags,
    Referrers(String),
}

/// Splits `<name>/<endpoint>` from the right, since the name itself may contain `/`.
fn parse_route(path: &str) -> Option<(String, Route)> {
    let segs: Vec<&str> = path.split('/').collect();
    let n = segs.len();
    let name = |k: usize| segs[..n - k].join("/");
    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        return Some((name(2), Route::Tags));
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let route = if segs[n - 1].is_empty() {
            Route::UploadStart
        } else {
            Route::Upload(segs[n - 1].to_string())
        };
        return Some((name(3), route));
    }
    if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        return Some((name(2), Route::UploadStart));
    }
    if n >= 3 {
        let last = segs[n - 1].to_string();
        match segs[n - 2] {
            "blobs" => return Some((name(2), Route::Blob(last))),
            "manifests" => return Some((name(2), Route::Manifest(last))),
            "referrers" => return Some((name(2), Route::Referrers(last))),
            _ => {}
        }
    }
    // A digest or reference with a `/` in it (`blobs/sha256:../x`): still that endpoint, so that it is refused as an
    // invalid digest or tag rather than as an unknown endpoint.
    let i = (1..n.saturating_sub(2))
        .rev()
        .find(|&i| segs[i] == "manifests" || (segs[i] == "blobs" && segs[i + 1] != "uploads"))?;
    let rest = segs[i + 1..].join("/");
    let route = if segs[i] == "blobs" {
        Route::Blob(rest)
    } else {
        Route::Manifest(rest)
    };
    Some((segs[..i].join("/"), route))
}

impl Route {
    /// The route with its digest, reference or upload ID percent-decoded.
    fn decoded(self) -> Route {
        let decode = |text: String| percent_decode(&text).unwrap_or(text);
        match self {
            Route::Blob(d) => Route::Blob(decode(d)),
            Route::Upload(id) => Route::Upload(decode(id)),
            Route::Manifest(r) => Route::Manifest(decode(r)),
            Route::Referrers(d) => Route::Referrers(decode(d)),
            route @ (Route::UploadStart | Route::Tags) => route,
        }
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn dispatch(State(st): State<Shared>, req: Request) -> Response {
    // Route on the path as sent: axum's `Path` would decode `%2F` into a separator, making `/v2/a%2Fb/...` address
    // repository `a/b`.
    let path = req.uri().path();
    let path = path.strip_prefix("/v2/").unwrap_or(path).to_string();
    let record = st.notifier.as_ref().map(|_| request_record(&st, &req));
    let mut response = match route(st.clone(), &path, req).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let emitted = response.extensions_mut().remove::<Emitted>();
    if let (Some(notifier), Some((request, actor)), Some(mut emitted)) =
        (&st.notifier, record, emitted)
    {
        let scheme = if st.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        for (action, target) in &mut emitted.0 {
            if *action != Action::Delete {
                if let Some(digest) = &target.digest {
                    let kind = match target.kind {
                        notify::Kind::Blob => "blobs",
                        notify::Kind::Manifest => "manifests",
                    };
                    target.url = Some(format!(
                        "{scheme}://{}/v2/{}/{kind}/{digest}",
                        request.host, target.repository
                    ));
                }
            }
        }
        notifier.emit(emitted, &request, &actor);
    }
    response
}

/// registry:2's `request` and `actor` records of a request.
fn request_record(st: &Shared, req: &Request) -> (RequestRecord, Actor) {
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.to_string())
        .unwrap_or_default();
    let request = RequestRecord {
        id: uuid::Uuid::new_v4().to_string(),
        addr,
        host: header(header::HOST),
        method: req.method().to_string(),
        useragent: header(header::USER_AGENT),
    };
    // The user the auth middleware let through (it has verified the credentials by now).
    let name = st
        .auth
        .as_ref()
        .and_then(|_| auth::basic_user(req.headers()));
    (request, Actor { name })
}

/// Attaches events to a response, for the router to send once the handler is done.
fn with_events(mut response: Response, events: Vec<(Action, Target)>) -> Response {
    response.extensions_mut().insert(Emitted(events));
    response
}

fn unsupported(method: &Method) -> ApiError {
    ApiError::new(Code::Unsupported).detail(json!({ "method": method.as_str() }))
}

async fn route(st: Shared, path: &str, req: Request) -> ApiResult<Response> {
    let Some((raw_name, route)) = parse_route(path) else {
        return Err(ApiError::new(Code::Unsupported)
            .message("unknown API endpoint")
            .status(StatusCode::NOT_FOUND));
    };
    let route = route.decoded();
    let name = percent_decode(&raw_name).unwrap_or_else(|| raw_name.clone());
    if name.matches('/').count() != raw_name.matches('/').count() {
        return Err(ApiError::new(Code::NameInvalid)
            .message("repository name is invalid: an encoded '/' (%2F) is not a path separator")
            .detail(json!({ "name": raw_name })));
    }
    if !names::is_valid_name(&name) {
        return Err(ApiError::new(Code::NameInvalid).detail(json!({ "name": name })));
    }
    let method = req.method().clone();
    if st.mirror.is_some() && !matches!(method, Method::GET | Method::HEAD) {
        // registry:2 in proxy mode answers every write (upload, mount, manifest PUT, DELETE) this way.
        return Err(unsupported(&method)
            .message("the registry is a pull-through mirror: writes are refused"));
    }
    match (route, &method) {
        (Route::Blob(d), &Method::GET) => blobs::get(st, name, d, req, false).await,
        (Route::Blob(d), &Method::HEAD) => blobs::get(st, name, d, req, true).await,
        (Route::Blob(d), &Method::DELETE) => blobs::delete(st, name, d).await,
        (Route::UploadStart, &Method::POST) => uploads::start(st, name, req).await,
        (Route::Upload(id), &Method::GET | &Method::HEAD) => uploads::status(st, name, id).await,
        (Route::Upload(id), &Method::PATCH) => uploads::patch(st, name, id, req).await,
        (Route::Upload(id), &Method::PUT) => uploads::put(st, name, id, req).await,
        (Route::Upload(id), &Method::DELETE) => uploads::cancel(st, name, id).await,
        (Route::Manifest(r), &Method::GET) => manifests::get(st, name, r, req, false).await,
        (Route::Manifest(r), &Method::HEAD) => manifests::get(st, name, r, req, true).await,
        (Route::Manifest(r), &Method::PUT) => manifests::put(st, name, r, req).await,
        (Route::Manifest(r), &Method::DELETE) => manifests::delete(st, name, r).await,
        (Route::Tags, &Method::GET | &Method::HEAD) => discovery::tags(st, name, req).await,
        (Route::Referrers(d), &Method::GET | &Method::HEAD) => {
            discovery::referrers(st, name, d, req).await
        }
        _ => Err(unsupported(&method)),
    }
}

/// Parses a digest from a path or query, answering `DIGEST_INVALID` (400) for a malformed one.
fn parse_digest(text: &str) -> ApiResult<Digest> {
    text.parse()
        .map_err(|err: layerstore::digest::DigestError| {
            ApiError::new(Code::DigestInvalid).detail(err.to_string())
        })
}

/// An empty-bodied response with the given status and headers.
fn empty(status: StatusCode, headers: HeaderMap) -> Response {
    let mut response = (status, Body::empty()).into_response();
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// A header value from text that is known to be valid (paths, digests, numbers).
fn hv(text: impl AsRef<str>) -> HeaderValue {
    HeaderValue::from_str(text.as_ref()).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_from_the_right() {
        assert_eq!(
            parse_route("a/b/tags/list"),
            Some(("a/b".into(), Route::Tags))
        );
        assert_eq!(
            parse_route("a/blobs/uploads/"),
            Some(("a".into(), Route::UploadStart))
        );
        assert_eq!(
            parse_route("a/blobs/uploads"),
            Some(("a".into(), Route::UploadStart))
        );
        assert_eq!(
            parse_route("a/blobs/uploads/u1"),
            Some(("a".into(), Route::Upload("u1".into())))
        );
        assert_eq!(
            parse_route("x/blobs/y/blobs/d"),
            Some(("x/blobs/y".into(), Route::Blob("d".into())))
        );
        assert_eq!(
            parse_route("m/manifests/latest"),
            Some(("m".into(), Route::Manifest("latest".into())))
        );
        assert_eq!(
            parse_route("m/referrers/d"),
            Some(("m".into(), Route::Referrers("d".into())))
        );
        assert_eq!(
            parse_route("a/blobs/sha256:../../x"),
            Some(("a".into(), Route::Blob("sha256:../../x".into())))
        );
        assert_eq!(
            parse_route("a/b/manifests/x/y"),
            Some(("a/b".into(), Route::Manifest("x/y".into())))
        );
        assert_eq!(parse_route("manifests/x"), None);
        assert_eq!(parse_route("a/other/x"), None);
    }

    #[test]
    fn escapes_decode_but_never_into_separators() {
        assert_eq!(percent_decode("sha256%3Aab").as_deref(), Some("sha256:ab"));
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(
            parse_route("a%2Fb/tags/list"),
            Some(("a%2Fb".into(), Route::Tags))
        );
    }
}
