//! A session with one registry: the endpoint, authentication, and sending requests with auth and retries.

use reqwest::{header, RequestBuilder, Response, StatusCode};

use crate::auth::Auth;
use crate::credentials::Credential;
use crate::endpoint::{Endpoint, EndpointOptions};
use crate::error::Error;
use crate::retry::{backoff, retry_after, MAX_ATTEMPTS};

/// Whether a request may be repeated as is when it fails transiently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    Yes,
    /// Requests with a side effect on a partial failure (an upload chunk): the caller recovers instead.
    No,
    /// The first contact: as [`Retry::Yes`], except that a refused connection fails at once, as in Docker.
    FirstContact,
}

/// The scope of a repository, for Bearer tokens.
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// An HTTP session with one registry: its endpoint (scheme, TLS) and its authentication state (cached tokens).
#[derive(Debug)]
pub struct Session {
    endpoint: Endpoint,
    auth: Auth,
}

impl Session {
    /// Connects to the registry of a reference domain (`docker.io`, `host:port`): pings `/v2/` to learn how it
    /// authenticates.
    pub async fn connect(
        domain: &str,
        options: &EndpointOptions,
        credential: Option<Credential>,
    ) -> Result<Session, Error> {
        let registry = Session {
            endpoint: Endpoint::new(domain, options)?,
            auth: Auth::new(credential),
        };
        registry.ping().await?;
        Ok(registry)
    }

    /// The registry as references name it.
    pub fn name(&self) -> &str {
        &self.endpoint.registry
    }

    /// `base` + `path` (`path` starts with `/v2/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base)
    }

    /// A URL the registry returned (`Location`), made absolute.
    pub(crate) fn resolve(&self, location: &str) -> Result<reqwest::Url, Error> {
        let base = reqwest::Url::parse(&self.endpoint.base).map_err(|e| {
            Error::Protocol(format!("invalid registry URL {}: {e}", self.endpoint.base))
        })?;
        base.join(location).map_err(|e| {
            Error::Protocol(format!(
                "{}: invalid Location {location:?}: {e}",
                self.name()
            ))
        })
    }

    async fn ping(&self) -> Result<(), Error> {
        let url = self.url("/v2/");
        let response = self
            .send_raw(Retry::FirstContact, &[], false, &|http| http.get(&url))
            .await
            .map_err(|error| self.hint(error))?;
        match response.status() {
            StatusCode::UNAUTHORIZED => {
                let header = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok());
                if !self.auth.challenged(header, &[]).await && header.is_none() {
                    return Err(Error::Protocol(format!(
                        "GET {url}: 401 without a WWW-Authenticate challenge"
                    )));
                }
                Ok(())
            }
            status if status.is_success() => {
                self.auth.set_anonymous().await;
                Ok(())
            }
            StatusCode::BAD_REQUEST if self.endpoint.base.starts_with("http:") => {
                let error = status_error("GET", &url, response).await;
                Err(Error::Hinted {
                    hint: self.https_hint(),
                    error: Box::new(error),
                })
            }
            _ => Err(status_error("GET", &url, response).await),
        }
    }

    /// What to try when a registry reached over plain HTTP seems to speak HTTPS.
    fn https_hint(&self) -> String {
        let host = crate::endpoint::api_host(self.name());
        format!(
            "{} is reached over plain HTTP (it is on loopback or declared insecure); if it serves HTTPS, put its CA \
             certificate in {}/{host}/ca.crt (or use --certs-dir)",
            self.name(),
            self.endpoint.certs_dir.display()
        )
    }

    /// The first contact's transport error, with what to try when the cause is TLS or nothing listening.
    fn hint(&self, error: Error) -> Error {
        let Error::Request { error: cause, .. } = &error else {
            return error;
        };
        let name = self.name();
        let hint = if crate::error::is_refused(cause) {
            format!("nothing accepts connections at {name}: is the registry running, and is the port right?")
        } else if self.endpoint.base.starts_with("https:") {
            match crate::error::cause::<rustls::Error>(cause) {
                Some(rustls::Error::InvalidMessage(_)) => {
                    format!("{name} does not speak TLS: if it is a plain-HTTP registry, pass --insecure {name} (or list it in \"insecure-registries\" of lade's config)")
                }
                Some(rustls::Error::InvalidCertificate(_)) => format!(
                    "the certificate of {name} is not trusted: put the CA that signed it (or the certificate itself) in {}/{}/ca.crt, or pass --insecure {name} if it serves plain HTTP",
                    self.endpoint.certs_dir.display(),
                    crate::endpoint::api_host(name)
                ),
                _ => return error,
            }
        } else if cause.is_connect() {
            return error;
        } else {
            self.https_hint()
        };
        Error::Hinted {
            error: Box::new(error),
            hint,
        }
    }

    /// Checks that the credentials are accepted, as `docker login` does: `/v2/` with Basic credentials, or a token
    /// from the token server. Returns a refresh token when the token server issued one.
    pub async fn verify_login(&self) -> Result<Option<String>, Error> {
        let url = self.url("/v2/");
        let response = self.send(&[], Retry::Yes, |http| http.get(&url)).await?;
        if !response.status().is_success() {
            return Err(status_error("GET", &url, response).await);
        }
        Ok(self.auth.refresh_token().await)
    }

    /// Sends the request `build` makes (it is called again for each try), authenticated for `scopes`. Answers 401
    /// challenges; with [`Retry::Yes`], retries connection errors, 5xx and 429 with backoff. Other statuses are
    /// returned for the caller to judge; a 401 that authentication cannot fix is an error.
    pub(crate) async fn send(
        &self,
        scopes: &[String],
        retry: Retry,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        self.send_raw(retry, scopes, true, &build).await
    }

    async fn send_raw(
        &self,
        retry: Retry,
        scopes: &[String],
        authenticate: bool,
        build: &dyn Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let http = &self.endpoint.http;
        let mut attempt = 0;
        let mut auth_rounds = 0;
        loop {
            attempt += 1;
            let mut request = build(http)
                .build()
                .map_err(|e| Error::Protocol(format!("{}: invalid request: {e}", self.name())))?;
            let method = request.method().to_string();
            let url = request.url().to_string();
            if authenticate {
                if let Some(value) = self.auth.authorization(http, scopes).await? {
                    let value = header::HeaderValue::from_str(&value).map_err(|e| {
                        Error::Protocol(format!("{method} {url}: invalid credentials header: {e}"))
                    })?;
                    request.headers_mut().insert(header::AUTHORIZATION, value);
                }
            }
            tracing::debug!(%method, %url, attempt, "request");
            let result = http.execute(request).await;
            let may_retry = retry != Retry::No && attempt < MAX_ATTEMPTS;
            let response = match result {
                Ok(response) => response,
                Err(source) => {
                    let error = Error::Request {
                        method,
                        url,
                        error: source,
                    };
                    let refused = matches!(&error, Error::Request { error, .. } if crate::error::is_refused(error));
                    if may_retry
                        && error.is_transient()
                        && !(refused && retry == Retry::FirstContact)
                    {
                        let wait = backoff(attempt);
                        tracing::warn!(
                            "{error}; retrying in {wait:?} (try {} of {MAX_ATTEMPTS})",
                            attempt + 1
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && authenticate {
                let header = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string);
                auth_rounds += 1;
                if auth_rounds <= 2 && self.auth.challenged(header.as_deref(), scopes).await {
                    attempt -= 1;
                    continue;
                }
                let reason = match self.auth.credential() {
                    None => "no credentials for this registry (lade login?)".to_string(),
                    Some(_) => "the registry refused the credentials".to_string(),
                };
                let message = error_message(response).await;
                return Err(Error::Unauthorized {
                    method,
                    url,
                    reason: if message.is_empty() {
                        reason
                    } else {
                        format!("{reason}: {message}")
                    },
                });
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && may_retry {
                let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
                tracing::warn!("{method} {url}: {status}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(response);
        }
    }
}

/// The message of an error response: the OCI `errors` array when present, else the start of the body.
pub(crate) async fn error_message(response: Response) -> String {
    // Only the start of an error document is shown, so a hostile registry cannot make it big.
    let body = match crate::body::read_limited(response, 64 << 10).await {
        Ok(Ok(body)) => body,
        _ => Vec::new(),
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body) {
        return errors
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("UNKNOWN"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string()
}

/// An error for an unexpected response status.
pub(crate) async fn status_error(method: &str, url: &str, response: Response) -> Error {
    let status = response.status().as_u16();
    Error::Status {
        method: method.to_string(),
        url: url.to_string(),
        status,
        message: error_message(response).await,
    }
}

/// A header's value as text, if present.
pub(crate) fn header_str<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}
