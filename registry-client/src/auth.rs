//! Answering registry challenges: parsing `WWW-Authenticate`, Basic credentials, and the Bearer token flow of the
//! distribution token spec (anonymous and password grants by GET, refresh-token grants by OAuth2 POST), with
//! tokens cached per scope set until shortly before they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::credentials::Credential;
use crate::error::Error;

/// The client id sent with OAuth2 token requests.
const CLIENT_ID: &str = "lade";
/// Tokens are renewed this long before their stated expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic`: send the user name and password with every request.
    Basic,
    /// `Bearer`: get a token from the realm (the distribution token protocol) and send it with the requests.
    Bearer {
        /// The URL of the token endpoint.
        realm: String,
        /// The `service` to name in token requests, if the challenge gives one.
        service: Option<String>,
        /// `error="insufficient_scope"` and similar.
        error: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value into the challenges it holds that this client can answer.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let end = rest.find([' ', ',']).unwrap_or(rest.len());
        let scheme = rest[..end].to_ascii_lowercase();
        rest = rest[end..].trim_start_matches([' ', ',']);
        let mut params: HashMap<String, String> = HashMap::new();
        // key=value or key="quoted, value" pairs, until the next scheme (a token not followed by '=').
        while let Some(eq) = rest.find('=') {
            let key = &rest[..eq];
            if key.contains([' ', ',']) || key.is_empty() {
                break;
            }
            let after = &rest[eq + 1..];
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(key.to_ascii_lowercase(), value);
            rest = remaining.trim_start_matches([' ', ',']);
        }
        match scheme.as_str() {
            "basic" => challenges.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = params.remove("realm") {
                    challenges.push(Challenge::Bearer {
                        realm,
                        service: params.remove("service"),
                        error: params.remove("error"),
                    });
                }
            }
            _ => {}
        }
    }
    challenges
}

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
    /// A refresh token the token server handed out, preferred over the password afterwards.
    refresh_token: Option<String>,
}

/// The authentication state of one registry session.
#[derive(Debug)]
pub struct Auth {
    credential: Option<Credential>,
    state: tokio::sync::Mutex<State>,
}

impl Auth {
    /// The state of a new session: `credential` (anonymous access when `None`), no challenge seen and no token yet.
    pub fn new(credential: Option<Credential>) -> Auth {
        Auth {
            credential,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The credential the session authenticates with, if any.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// Records the challenge of a 401 response. Returns false when it gives no new way to authenticate (the
    /// registry refused what was sent).
    pub async fn challenged(&self, header: Option<&str>, scopes: &[String]) -> bool {
        let challenges = header.map(parse_challenges).unwrap_or_default();
        // Prefer Bearer: a registry offering both issues scoped tokens.
        let challenge = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        let mut state = self.state.lock().await;
        let Some(challenge) = challenge else {
            return false;
        };
        let had_token = state.tokens.remove(&scopes.join(" ")).is_some();
        let is_new = state.challenge.as_ref().map(std::mem::discriminant)
            != Some(std::mem::discriminant(&challenge));
        state.challenge = Some(challenge.clone());
        match challenge {
            Challenge::Basic => is_new && self.credential.is_some(),
            Challenge::Bearer { error, .. } => {
                error.as_deref() != Some("insufficient_scope") && (is_new || had_token)
            }
        }
    }

    /// Forgets every challenge and token, as after a ping that asked for nothing.
    pub async fn set_anonymous(&self) {
        let mut state = self.state.lock().await;
        state.challenge = None;
        state.tokens.clear();
    }

    /// The `Authorization` value for a request needing `scopes`, fetching a token when needed.
    pub async fn authorization(
        &self,
        http: &reqwest::Client,
        scopes: &[String],
    ) -> Result<Option<String>, Error> {
        let mut state = self.state.lock().await;
        let (realm, service) = match &state.challenge {
            None => return Ok(None),
            Some(Challenge::Basic) => {
                return Ok(match &self.credential {
                    Some(Credential::Basic { username, password }) => {
                        Some(basic(username, password))
                    }
                    _ => None,
                })
            }
            Some(Challenge::Bearer { realm, service, .. }) => (realm.clone(), service.clone()),
        };
        let key = scopes.join(" ");
        if let Some(token) = state.tokens.get(&key) {
            if Instant::now() < token.renew_at {
                return Ok(Some(format!("Bearer {}", token.value)));
            }
        }
        let refresh_token = state
            .refresh_token
            .clone()
            .or_else(|| match &self.credential {
                Some(Credential::IdentityToken(token)) => Some(token.clone()),
                _ => None,
            });
        let response = match refresh_token {
            Some(refresh_token) => {
                fetch_by_refresh(http, &realm, service.as_deref(), scopes, &refresh_token).await?
            }
            None => {
                fetch_by_get(
                    http,
                    &realm,
                    service.as_deref(),
                    scopes,
                    self.credential.as_ref(),
                )
                .await?
            }
        };
        let value = response
            .token
            .or(response.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Token {
                realm: realm.clone(),
                reason: "the response has neither token nor access_token".into(),
            })?;
        let lifetime = Duration::from_secs(response.expires_in.unwrap_or(60).max(1));
        if let Some(refresh) = response.refresh_token {
            state.refresh_token = Some(refresh);
        }
        state.tokens.insert(
            key,
            Token {
                value: value.clone(),
                renew_at: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
            },
        );
        Ok(Some(format!("Bearer {value}")))
    }

    /// The refresh token the token server issued during this session, if any.
    pub async fn refresh_token(&self) -> Option<String> {
        self.state.lock().await.refresh_token.clone()
    }
}

fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// The distribution token spec's GET: anonymous, or with the user's Basic credentials.
async fn fetch_by_get(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
) -> Result<TokenResponse, Error> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| Error::Token {
        realm: realm.to_string(),
        reason: format!("invalid realm URL: {e}"),
    })?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
        if let Some(Credential::Basic { username, .. }) = credential {
            query
                .append_pair("account", username)
                .append_pair("offline_token", "true")
                .append_pair("client_id", CLIENT_ID);
        }
    }
    let mut request = http.get(url);
    if let Some(Credential::Basic { username, password }) = credential {
        request = request.header(reqwest::header::AUTHORIZATION, basic(username, password));
    }
    read_token(realm, request).await
}

/// The OAuth2 refresh-token grant.
async fn fetch_by_refresh(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    refresh_token: &str,
) -> Result<TokenResponse, Error> {
    let scope = scopes.join(" ");
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", CLIENT_ID),
        ("scope", scope.as_str()),
    ];
    if let Some(service) = service {
        form.push(("service", service));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let request = http
        .post(realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body);
    read_token(realm, request).await
}

fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Sends a token request, retrying connection errors, 5xx and 429 with backoff, and parses the answer.
async fn read_token(realm: &str, request: reqwest::RequestBuilder) -> Result<TokenResponse, Error> {
    let token_error = |reason: String| Error::Token {
        realm: realm.to_string(),
        reason,
    };
    let mut attempt = 0;
    let (status, body) = loop {
        attempt += 1;
        let retry = attempt < crate::retry::MAX_ATTEMPTS;
        let this_try = request
            .try_clone()
            .expect("token requests have in-memory bodies");
        let response = match this_try.send().await {
            Ok(response) => response,
            Err(e) if retry && (e.is_connect() || e.is_timeout()) => {
                tokio::time::sleep(crate::retry::backoff(attempt)).await;
                continue;
            }
            Err(e) => return Err(token_error(e.to_string())),
        };
        let status = response.status();
        if retry && (status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS) {
            let wait = crate::retry::retry_after(&response)
                .unwrap_or_else(|| crate::retry::backoff(attempt));
            tokio::time::sleep(wait).await;
            continue;
        }
        let body = crate::body::read_limited(response, 1 << 20)
            .await
            .map_err(|e| token_error(e.to_string()))?
            .map_err(|too_large| {
                token_error(format!(
                    "the token response is {} bytes or more, larger than the 1 MiB limit",
                    too_large.at_least
                ))
            })?;
        break (status, body);
    };
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)])
            .trim()
            .to_string();
        return Err(token_error(format!("{status}: {text}")));
    }
    serde_json::from_slice(&body).map_err(|e| token_error(format!("invalid token response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_and_basic_challenges() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#;
        assert_eq!(
            parse_challenges(header),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                error: None,
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let both = r#"Basic realm="x", Bearer realm="https://t/token",error="insufficient_scope""#;
        assert_eq!(parse_challenges(both).len(), 2);
        assert_eq!(
            form_encode("repository:a/b:pull push"),
            "repository%3Aa%2Fb%3Apull+push"
        );
    }
}
