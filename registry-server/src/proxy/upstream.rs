//! The mirror's client of its upstream registry: manifest HEAD/GET and blob HEAD/GET on `reqwest`, with Basic
//! authentication and Docker Hub style Bearer tokens (a `401` with `WWW-Authenticate: Bearer realm=…,service=…`
//! sends the client to the realm for a token of scope `repository:<name>:pull`, cached per repository).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use crate::config::ProxyConfig;

/// Every manifest media type a mirror asks for, so that it can serve any client.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Tokens and error bodies are read whole, up to this size.
const SMALL_BODY_MAX: usize = 1 << 20;

/// Why a request to the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The request could not be sent or its answer not read (connection, TLS or timeout failures).
    #[error("upstream request {method} {url} failed: {source}")]
    Request {
        /// The request's method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The upstream answered with an unexpected status (404 among them: see [`UpstreamError::is_not_found`]).
    #[error("upstream answered {status} to {method} {url}")]
    Status {
        /// The request's method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The status answered.
        status: StatusCode,
    },
    /// A Bearer token could not be fetched from the token service a challenge named.
    #[error("getting a token for {scope} from {realm}: {reason}")]
    Token {
        /// The token service's URL (the challenge's `realm`).
        realm: String,
        /// The scope asked for (`repository:<name>:pull`).
        scope: String,
        /// Why it failed.
        reason: String,
    },
    /// The upstream's answer is not usable (e.g. a malformed challenge, header or digest).
    #[error("upstream {url}: {reason}")]
    Invalid {
        /// The URL requested.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. an invalid `remoteurl` or unreadable root certificates).
    #[error("setting up the upstream client: {0}")]
    Setup(String),
}

impl UpstreamError {
    /// Did the upstream say the thing does not exist?
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// How requests to one repository authenticate, learnt from the upstream's challenges.
#[derive(Clone)]
enum Credential {
    Basic(String),
    Bearer(String),
}

/// A client of the upstream registry.
pub struct Upstream {
    base: String,
    http: reqwest::Client,
    login: Option<(String, String)>,
    /// Per repository: the Authorization header value that worked last.
    auth: Mutex<HashMap<String, Credential>>,
}

/// The parameters of a `WWW-Authenticate` challenge (`Bearer realm="…",service="…"`), keys lower-cased.
fn parse_challenge(value: &str) -> Option<(String, HashMap<String, String>)> {
    let value = value.trim();
    let (scheme, mut rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, val);
        rest = next;
    }
    Some((scheme.to_ascii_lowercase(), params))
}

/// Reads a small body whole, refusing one over [`SMALL_BODY_MAX`].
async fn small_body(response: Response) -> Result<Vec<u8>, String> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() + chunk.len() > SMALL_BODY_MAX {
            return Err(format!("body exceeds {SMALL_BODY_MAX} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Upstream {
    /// A client for the configured upstream.
    pub fn new(config: &ProxyConfig) -> Result<Upstream, UpstreamError> {
        let base = config.remoteurl.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(UpstreamError::Setup(format!(
                "proxy.remoteurl {:?} must start with http:// or https://",
                config.remoteurl
            )));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system bundle may hold certificates rustls rejects; skipping them is what every client does.
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("lade-registry-mirror/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| UpstreamError::Setup(e.to_string()))?;
        let login = match (&config.username, &config.password) {
            (Some(user), password) if !user.is_empty() => {
                Some((user.clone(), password.clone().unwrap_or_default()))
            }
            _ => None,
        };
        Ok(Upstream {
            base,
            http,
            login,
            auth: Mutex::new(HashMap::new()),
        })
    }

    /// The upstream's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn basic(&self) -> Option<String> {
        self.login.as_ref().map(|(user, password)| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {encoded}")
        })
    }

    /// Fetches a Bearer token for pulling from `name` as the challenge says.
    async fn token(
        &self,
        params: &HashMap<String, String>,
        name: &str,
    ) -> Result<String, UpstreamError> {
        let scope = format!("repository:{name}:pull");
        let realm = params.get("realm").cloned().unwrap_or_default();
        let fail = |reason: String| UpstreamError::Token {
            realm: realm.clone(),
            scope: scope.clone(),
            reason,
        };
        if realm.is_empty() {
            return Err(fail("the challenge names no realm".into()));
        }
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = params.get("service") {
            query.push(("service", service.as_str()));
        }
        let mut request = self.http.get(&realm).query(&query);
        if let Some(basic) = self.basic() {
            request = request.header(AUTHORIZATION, basic);
        }
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = small_body(response).await.map_err(fail)?;
        if !status.is_success() {
            return Err(fail(format!("the token server answered {status}")));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| fail(format!("invalid JSON: {e}")))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| fail("the answer holds no token".into()))
    }

    /// Sends `method` to `/v2/<name>/<endpoint>`, answering the upstream's authentication challenge once. Only a
    /// successful (2xx) response is returned.
    async fn send(
        &self,
        method: Method,
        name: &str,
        endpoint: &str,
        accept: Option<&str>,
    ) -> Result<Response, UpstreamError> {
        let url = format!("{}/v2/{name}/{endpoint}", self.base);
        let cached = self
            .auth
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        let mut credential = cached;
        for attempt in 0..2 {
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(ACCEPT, accept.parse().expect("static accept header"));
            }
            if let Some(Credential::Basic(v) | Credential::Bearer(v)) = &credential {
                if let Ok(v) = v.parse() {
                    headers.insert(AUTHORIZATION, v);
                }
            }
            let response = self
                .http
                .request(method.clone(), &url)
                .headers(headers)
                .send()
                .await
                .map_err(|source| UpstreamError::Request {
                    method: method.clone(),
                    url: url.clone(),
                    source,
                })?;
            let status = response.status();
            if status.is_success() {
                if let Some(credential) = credential {
                    self.auth
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name.to_string(), credential);
                }
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            match (status, challenge, attempt) {
                (StatusCode::UNAUTHORIZED, Some((scheme, params)), 0) if scheme == "bearer" => {
                    credential = Some(Credential::Bearer(self.token(&params, name).await?));
                }
                (StatusCode::UNAUTHORIZED, Some((scheme, _)), 0) if scheme == "basic" => {
                    match self.basic() {
                        Some(basic) => credential = Some(Credential::Basic(basic)),
                        None => break,
                    }
                }
                _ => {
                    return Err(UpstreamError::Status {
                        method,
                        url,
                        status,
                    })
                }
            }
        }
        Err(UpstreamError::Status {
            method,
            url,
            status: StatusCode::UNAUTHORIZED,
        })
    }

    /// The digest the upstream gives a tag (`HEAD`, its `Docker-Content-Digest`); `None` when it sends none.
    pub async fn head_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<String>, UpstreamError> {
        let response = self
            .send(
                Method::HEAD,
                name,
                &format!("manifests/{reference}"),
                Some(MANIFEST_ACCEPT),
            )
            .await?;
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }

    /// A manifest's bytes (at most `max` of them) and the digest the upstream declares for it, if any.
    pub async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        max: u64,
    ) -> Result<(Vec<u8>, Option<String>), UpstreamError> {
        let endpoint = format!("manifests/{reference}");
        let response = self
            .send(Method::GET, name, &endpoint, Some(MANIFEST_ACCEPT))
            .await?;
        let declared = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let url = format!("{}/v2/{name}/{endpoint}", self.base);
        let mut stream = response.bytes_stream();
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| UpstreamError::Request {
                method: Method::GET,
                url: url.clone(),
                source,
            })?;
            if (body.len() + chunk.len()) as u64 > max {
                return Err(UpstreamError::Invalid {
                    url,
                    reason: format!("manifest exceeds the {max} byte limit"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, declared))
    }

    /// The size of a blob, from a `HEAD`.
    pub async fn head_blob(&self, name: &str, digest: &str) -> Result<Option<u64>, UpstreamError> {
        let response = self
            .send(Method::HEAD, name, &format!("blobs/{digest}"), None)
            .await?;
        Ok(response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Starts a blob download; the body is to be streamed by the caller.
    pub async fn get_blob(&self, name: &str, digest: &str) -> Result<Response, UpstreamError> {
        self.send(Method::GET, name, &format!("blobs/{digest}"), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "bearer");
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");
        let (scheme, params) = parse_challenge(r#"Basic realm="a \"b\", c""#).unwrap();
        assert_eq!(scheme, "basic");
        assert_eq!(params["realm"], r#"a "b", c"#);
        let (_, params) = parse_challenge("Bearer realm=http://x/token, service=s").unwrap();
        assert_eq!(params["realm"], "http://x/token");
        assert_eq!(params["service"], "s");
    }

    #[test]
    fn refuses_urls_without_a_scheme() {
        assert!(Upstream::new(&ProxyConfig::new("registry-1.docker.io")).is_err());
    }
}
