//! HTTP basic authentication against an htpasswd file of bcrypt hashes, with optional anonymous pulls.
//!
//! bcrypt is deliberately slow, and Docker sends credentials with every request, so a verified user/password pair
//! is remembered (as a sha256 of the password) for the life of the process.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use layerstore::Digest;

use super::{hv, Shared};
use crate::config::AuthConfig;
use crate::error::{ApiError, Code};

/// Why an htpasswd file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The htpasswd file could not be read.
    #[error("reading htpasswd file {path}: {source}")]
    Read {
        /// The htpasswd file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    #[error("htpasswd file {path}, line {line}: only bcrypt entries (user:$2y$...) are supported")]
    /// A line is not a `user:bcrypt-hash` entry.
    Entry {
        /// The htpasswd file.
        path: String,
        /// The entry's line number, from 1.
        line: usize,
    },
}

/// Checks credentials against the users of an htpasswd file.
pub struct Authenticator {
    users: HashMap<String, String>,
    realm: String,
    anonymous_read: bool,
    verified: Mutex<HashSet<(String, Digest)>>,
}

/// The outcome of looking at a request's `Authorization` header.
#[derive(Debug, PartialEq)]
enum Credentials {
    Valid,
    Invalid,
    Absent,
}

impl Authenticator {
    /// Loads the htpasswd file a configuration names.
    pub fn load(config: &AuthConfig) -> Result<Authenticator, AuthError> {
        let path = config.htpasswd.display().to_string();
        let text = std::fs::read_to_string(Path::new(&config.htpasswd)).map_err(|source| {
            AuthError::Read {
                path: path.clone(),
                source,
            }
        })?;
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or(AuthError::Entry {
                path: path.clone(),
                line: index + 1,
            })?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
                return Err(AuthError::Entry {
                    path,
                    line: index + 1,
                });
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Authenticator {
            users,
            realm: config.realm.clone(),
            anonymous_read: config.anonymous_read,
            verified: Mutex::new(HashSet::new()),
        })
    }

    fn check(&self, authorization: Option<&str>) -> Credentials {
        let Some(value) = authorization else {
            return Credentials::Absent;
        };
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return Credentials::Invalid;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return Credentials::Invalid;
        };
        let Ok(pair) = String::from_utf8(decoded) else {
            return Credentials::Invalid;
        };
        let Some((user, password)) = pair.split_once(':') else {
            return Credentials::Invalid;
        };
        let Some(hash) = self.users.get(user) else {
            return Credentials::Invalid;
        };
        let key = (user.to_string(), Digest::sha256_of(password.as_bytes()));
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Credentials::Valid;
        }
        if bcrypt::verify(password, hash).unwrap_or(false) {
            self.verified
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key);
            Credentials::Valid
        } else {
            Credentials::Invalid
        }
    }

    fn challenge(&self) -> Response {
        ApiError::new(Code::Unauthorized)
            .header(
                header::WWW_AUTHENTICATE,
                hv(format!("Basic realm=\"{}\"", self.realm)),
            )
            .into_response()
    }
}

/// The user name of a request's Basic credentials.
pub fn basic_user(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':').map(|(user, _)| user.to_string())
}

/// The request's credentials, checked off the async threads (bcrypt is slow on purpose).
fn credentials(
    auth: &Arc<Authenticator>,
    request: &Request,
) -> impl std::future::Future<Output = Credentials> + Send + 'static {
    let authorization: Option<String> = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let checker = auth.clone();
    let check = tokio::task::spawn_blocking(move || checker.check(authorization.as_deref()));
    async move { check.await.unwrap_or(Credentials::Invalid) }
}

/// Middleware for operator endpoints (`/metrics`): valid credentials when auth is configured, whether anonymous
/// reads are allowed or not.
pub async fn require_valid(State(st): State<Shared>, request: Request, next: Next) -> Response {
    let Some(auth) = st.auth.clone() else {
        return next.run(request).await;
    };
    match credentials(&auth, &request).await {
        Credentials::Valid => next.run(request).await,
        _ => auth.challenge(),
    }
}

/// Middleware on `/v2/...`: lets a request through or answers 401 with a Basic challenge. The base `/v2/` endpoint
/// always requires credentials so that `docker login` verifies them.
pub async fn require(State(st): State<Shared>, request: Request, next: Next) -> Response {
    let Some(auth) = st.auth.clone() else {
        return next.run(request).await;
    };
    let credentials = credentials(&auth, &request).await;
    let path = request.uri().path();
    let is_base = path == "/v2/" || path == "/v2";
    let is_read = request.method() == Method::GET || request.method() == Method::HEAD;
    match credentials {
        Credentials::Valid => next.run(request).await,
        Credentials::Absent if auth.anonymous_read && is_read && !is_base => {
            next.run(request).await
        }
        _ => auth.challenge(),
    }
}
