//! Registry credentials in Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//! `auths` entries (base64 `user:password`, or an `identitytoken`), and external helpers (`credsStore` for all
//! registries, `credHelpers` per registry) run as `docker-credential-<name> get|store|erase`. Fields this code does
//! not know are kept when the file is rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::endpoint::DOCKER_HUB_DOMAIN;
use crate::error::Error;

/// The key Docker files Docker Hub credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The user name a helper returns for an identity (refresh) token.
const TOKEN_USERNAME: &str = "<token>";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token).
    Basic {
        /// The account name on the registry.
        username: String,
        /// The password, or a personal access token in its place.
        password: String,
    },
    /// An OAuth2 refresh token, exchanged at the token endpoint for access tokens.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// The key a registry's credentials are filed under.
pub fn config_key(registry: &str) -> String {
    if registry == DOCKER_HUB_DOMAIN
        || registry == "index.docker.io"
        || registry == "registry-1.docker.io"
    {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// A key as Docker compares them: without scheme and path.
fn hostname_of(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// A Docker `config.json`, read and written whole.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    value: Map<String, Value>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => {
                let home =
                    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
                home.join(".docker/config.json")
            }
        }
    }

    /// Reads the file at `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DockerConfig, Error> {
        let value = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Credentials(format!("{}: invalid JSON: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            value,
        })
    }

    /// The credential helper for `registry`, if any.
    fn helper(&self, registry: &str) -> Option<String> {
        let key = config_key(registry);
        self.value
            .get("credHelpers")
            .and_then(|h| h.get(&key).or_else(|| h.get(registry)))
            .or_else(|| self.value.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for `registry` (a reference domain such as `docker.io` or `host:port`).
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let key = config_key(registry);
        if let Some(helper) = self.helper(registry) {
            return helper_get(&helper, &key);
        }
        let Some(auths) = self.value.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let entry = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| hostname_of(k) == hostname_of(&key))
                .map(|(_, v)| v)
        });
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credential::IdentityToken(token.to_string())));
        }
        let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| {
                Error::Credentials(format!(
                    "{}: auths[{key:?}].auth is not base64: {e}",
                    self.path.display()
                ))
            })?;
        let decoded = String::from_utf8(decoded).map_err(|_| {
            Error::Credentials(format!(
                "{}: auths[{key:?}].auth is not UTF-8",
                self.path.display()
            ))
        })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            Error::Credentials(format!(
                "{}: auths[{key:?}].auth is not user:password",
                self.path.display()
            ))
        })?;
        Ok(Some(Credential::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }))
    }

    /// Stores credentials for `registry` (in its helper when one is configured) and writes the file.
    pub fn store(&mut self, registry: &str, credential: &Credential) -> Result<(), Error> {
        let key = config_key(registry);
        let helper = self.helper(registry);
        let auths = self
            .value
            .entry("auths")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "{}: \"auths\" is not an object",
                    self.path.display()
                ))
            })?;
        if let Some(helper) = helper {
            let (username, secret) = match credential {
                Credential::Basic { username, password } => (username.as_str(), password.as_str()),
                Credential::IdentityToken(token) => (TOKEN_USERNAME, token.as_str()),
            };
            let input = json!({"ServerURL": key, "Username": username, "Secret": secret});
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            // Docker records an empty entry so that `docker login` state is visible in the file.
            let auths = self
                .value
                .get_mut("auths")
                .and_then(Value::as_object_mut)
                .expect("created above");
            auths.insert(key, json!({}));
        } else {
            let entry = match credential {
                Credential::Basic { username, password } => {
                    json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))})
                }
                Credential::IdentityToken(token) => json!({"auth": "", "identitytoken": token}),
            };
            auths.insert(key, entry);
        }
        self.save()
    }

    /// Removes the credentials of `registry`; returns whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool, Error> {
        let key = config_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper(registry) {
            found = helper_get(&helper, &key)?.is_some();
            if found {
                run_helper(&helper, "erase", key.as_bytes())?;
            }
        }
        if let Some(auths) = self.value.get_mut("auths").and_then(Value::as_object_mut) {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| **k == key || hostname_of(k) == hostname_of(&key))
                .cloned()
                .collect();
            for k in keys {
                auths.remove(&k);
                found = true;
            }
        }
        if found {
            self.save()?;
        }
        Ok(found)
    }

    /// Writes the file atomically with mode 0600, creating its directory.
    fn save(&self) -> Result<(), Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut bytes = serde_json::to_vec_pretty(&self.value).expect("JSON serializes");
        bytes.push(b'\n');
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::io(format!("creating a temp file in {}", dir.display()), e))?;
        file.write_all(&bytes)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        file.persist(&self.path)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e.error))?;
        Ok(())
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns its stdout.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Credentials(format!("running {program} {action}: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .map_err(|e| Error::Credentials(format!("writing to {program} {action}: {e}")))?;
    let output = child
        .wait_with_output()
        .map_err(|e| Error::Credentials(format!("running {program} {action}: {e}")))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout).trim().to_string()
            + String::from_utf8_lossy(&output.stderr).trim();
        return Err(Error::Credentials(format!("{program} {action}: {message}")));
    }
    Ok(output.stdout)
}

/// Asks a helper for the credentials of `key`; "not found" is `None`.
fn helper_get(helper: &str, key: &str) -> Result<Option<Credential>, Error> {
    let output = match run_helper(helper, "get", key.as_bytes()) {
        Ok(output) => output,
        Err(Error::Credentials(message)) if message.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let value: Value = serde_json::from_slice(&output).map_err(|e| {
        Error::Credentials(format!("docker-credential-{helper} get: invalid JSON: {e}"))
    })?;
    let username = value.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = value.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == TOKEN_USERNAME {
        Credential::IdentityToken(secret.to_string())
    } else {
        Credential::Basic {
            username: username.to_string(),
            password: secret.to_string(),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip_and_keep_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://other.example/v1/":{"auth":"dTpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut config = DockerConfig::load(&path).unwrap();
        assert_eq!(
            config.get("other.example").unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        let credential = Credential::Basic {
            username: "me".into(),
            password: "s:ecret".into(),
        };
        config.store("docker.io", &credential).unwrap();
        let reread = DockerConfig::load(&path).unwrap();
        assert_eq!(reread.get("docker.io").unwrap(), Some(credential));
        let raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["psFormat"], "x");
        assert_eq!(raw["auths"][DOCKER_HUB_KEY]["auth"], "bWU6czplY3JldA==");
        let mut config = reread;
        assert!(config.erase("docker.io").unwrap());
        assert!(!config.erase("docker.io").unwrap());
        assert_eq!(
            DockerConfig::load(&path).unwrap().get("docker.io").unwrap(),
            None
        );
    }

    #[test]
    fn identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"r.example:5000":{"auth":"","identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let config = DockerConfig::load(&path).unwrap();
        assert_eq!(
            config.get("r.example:5000").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
    }
}
