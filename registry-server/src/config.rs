//! The server configuration, read from YAML; command-line flags override it field by field. A file with a top-level
//! `version` key is registry:2's format instead, translated by [`crate::registry2_config`].
//!
//! ```yaml
//! addr: 0.0.0.0:5000
//! root: /var/lib/lade/registry
//! storage: filesystem          # the root above; or `inmemory`, or an S3 bucket:
//! # storage: { s3: { bucket: b, region: us-east-1, endpoint: http://127.0.0.1:9000, access_key: …, secret_key: …,
//! #                  root_directory: /registry, force_path_style: true, secure: false, chunk_size: 10485760 } }
//! delete: true                 # allow DELETE of blobs, manifests and tags (the default; false answers 405 UNSUPPORTED)
//! automatic_crossmount: false  # mount without `from` links any blob the registry holds
//! allow_sparse_manifests: false  # accept manifests whose layers or child manifests are not in the repository
//! read_only: false             # refuse writes (403 DENIED), e.g. during offline garbage collection
//! tls: { cert: cert.pem, key: key.pem }
//! auth:
//!   htpasswd: /etc/lade/htpasswd   # bcrypt entries, as `htpasswd -B` writes them
//!   realm: lade registry
//!   anonymous_read: false
//! gc: { enabled: true, interval_secs: 3600, grace_period_secs: 3600, delete_untagged: false, upload_max_age_secs: 604800,
//!       settle_secs: 30 }   # replicas: one collector at a time (a lease in storage), commits wait while it sweeps
//! limits:
//!   manifest_max_bytes: 4194304
//!   blob_max_bytes: null           # no limit
//!   request_timeout_secs: 3600     # 0: none
//!   shutdown_timeout_secs: 30
//!   max_concurrent_requests: null  # beyond it: 429 TOOMANYREQUESTS
//! ui: true                       # the web page at / and /ui
//! log: { level: info, formatter: text, accesslog: { disabled: false } }  # registry:2's names; formatter: text|json
//! health: { drain_delay_secs: 0 }  # on SIGTERM, /readyz answers 503 this long before the listener closes
//! debug: { addr: 127.0.0.1:5001 }  # /metrics there, unauthenticated (registry:2's http.debug); without it /metrics
//!                                  # is on the main address, behind auth when auth is configured
//! proxy:                           # a pull-through mirror of another registry (registry:2's `proxy` keys)
//!   remoteurl: https://registry-1.docker.io
//!   username: someone              # optional; Basic, or Bearer tokens fetched with these credentials
//!   password: secret
//!   ttl: 168h                      # how long a tag is served from the store before it is re-checked upstream
//! notifications:                   # registry:2's webhooks, same keys and semantics
//!   events: { includereferences: true }
//!   endpoints:
//!     - name: ci
//!       url: https://ci.example/registry-events
//!       headers: { Authorization: [Bearer secret] }
//!       timeout: 1s                # per delivery (default 1s)
//!       threshold: 10              # failures in a row before deliveries back off (default 10)
//!       backoff: 1s                # the wait between attempts once backing off (default 1s)
//!       ignoredmediatypes: [application/octet-stream]
//!       ignore: { mediatypes: [], actions: [pull] }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::storage::object::S3Options;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML for lade's format.
    #[error("parsing config {path}: {source}")]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// The YAML parser's error, with its location.
        #[source]
        source: serde_norway::Error,
    },
    /// The file is registry:2's format but could not be translated.
    #[error("config {path} (registry:2 format): {source}")]
    Registry2 {
        /// The configuration file.
        path: PathBuf,
        /// What the translation refused.
        #[source]
        source: crate::registry2_config::Registry2Error,
    },
}

/// Where the registry keeps its content: `storage: filesystem`, `storage: inmemory` or `storage: { s3: { … } }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "StorageYaml")]
pub enum Storage {
    /// Below `root` on the local filesystem.
    #[default]
    Filesystem,
    /// In this process's memory (tests, throwaway registries).
    InMemory,
    /// In an S3 bucket, shared by any number of replicas.
    S3(S3Options),
}

/// The YAML shapes of [`Storage`].
#[derive(Deserialize)]
#[serde(untagged)]
enum StorageYaml {
    Name(String),
    S3 { s3: S3Options },
}

impl TryFrom<StorageYaml> for Storage {
    type Error = String;

    fn try_from(yaml: StorageYaml) -> Result<Storage, String> {
        match yaml {
            StorageYaml::Name(name) if name == "filesystem" => Ok(Storage::Filesystem),
            StorageYaml::Name(name) if name == "inmemory" => Ok(Storage::InMemory),
            StorageYaml::Name(name) => Err(format!(
                "unknown storage {name:?} (filesystem, inmemory or {{ s3: {{ … }} }})"
            )),
            StorageYaml::S3 { s3 } => Ok(Storage::S3(s3)),
        }
    }
}

/// registry:2's `storage.maintenance.uploadpurging`: removing upload sessions older than `age` every `interval`.
#[derive(Debug, Clone)]
pub struct UploadPurging {
    /// Upload sessions started longer ago than this are removed (registry:2's `age`, 168h by default).
    pub age: Duration,
    /// How often the purge runs (registry:2's `interval`, 24h by default).
    pub interval: Duration,
    /// Only log what would be removed (registry:2's `dryrun`).
    pub dry_run: bool,
}

impl Default for UploadPurging {
    /// registry:2's defaults.
    fn default() -> UploadPurging {
        UploadPurging {
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dry_run: false,
        }
    }
}

/// Everything `lade registry serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address the API listens on (`0.0.0.0:5000` by default; registry:2's `http.addr`).
    pub addr: SocketAddr,
    /// The storage root directory for `storage: filesystem` ([`default_root`] by default).
    pub root: PathBuf,
    /// The storage driver; `filesystem` (below `root`) by default.
    pub storage: Storage,
    /// Set from registry:2's configuration only (lade's own purges uploads as part of `gc`).
    #[serde(skip)]
    pub upload_purging: Option<UploadPurging>,
    /// Allow DELETE of blobs, manifests and tags. On by default (registry:2 has it off): the distribution spec's
    /// content management, and so its conformance suite, needs it, and a registry that accepts anonymous pushes
    /// gains no safety from refusing deletes. Turn it off, or put the registry behind htpasswd auth, to protect it.
    pub delete: bool,
    /// Let a mount request without `from` link any blob the registry holds (the spec's optional automatic content
    /// discovery); off by default, as in registry:2, because it lets a client learn of blobs in other repositories.
    pub automatic_crossmount: bool,
    /// Accept manifests that reference layers, configs or child manifests the repository does not hold (sparse
    /// manifests, e.g. a mirror of one platform of a multi-platform index). The spec lets a registry refuse them
    /// (`MANIFEST_BLOB_UNKNOWN`, the default here) or accept them; blobs that are present are still protected from
    /// garbage collection by the manifest.
    pub allow_sparse_manifests: bool,
    /// Refuse every write with 403 `DENIED` (e.g. while `lade registry gc` runs on the root).
    pub read_only: bool,
    /// Serve HTTPS with this certificate and key; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// Require Basic authentication against an htpasswd file; no authentication when absent.
    pub auth: Option<AuthConfig>,
    /// Online garbage collection (off by default).
    pub gc: GcConfig,
    /// Size and time limits on requests.
    pub limits: Limits,
    /// Serve the web page (`/` and `/ui`).
    pub ui: bool,
    /// Log level, format and access log.
    pub log: LogConfig,
    /// Behaviour of the `/healthz` and `/readyz` endpoints on shutdown.
    pub health: HealthConfig,
    /// Serve as a pull-through mirror of `proxy.remoteurl`: writes are refused, pulls fetch what is missing.
    pub proxy: Option<ProxyConfig>,
    /// Webhooks for push, pull and delete events (registry:2's `notifications`).
    pub notifications: Option<NotificationsConfig>,
    /// The separate debug listener for `/metrics` (off by default).
    pub debug: DebugConfig,
}

/// The debug listener (registry:2's `http.debug`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Where `/metrics` is served, without auth, instead of on the main address. Keep it off the public network.
    pub addr: Option<SocketAddr>,
}

/// Logging, with registry:2's key names (`log.level`, `log.formatter`, `log.accesslog.disabled`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The least severe level logged; `RUST_LOG` (a tracing filter) overrides it.
    pub level: LogLevel,
    /// How entries are written: `text` (the default) or `json`.
    pub formatter: LogFormatter,
    /// The per-request access log (on by default).
    pub accesslog: AccessLogConfig,
}

impl LogConfig {
    /// registry:2's `log` section: `level`, `formatter` and `accesslog.disabled` apply; the keys it has beyond them
    /// (`fields`, `hooks`, `reportcaller`, …) are returned by path, to be warned about.
    pub fn from_registry2(
        value: serde_norway::Value,
    ) -> Result<(LogConfig, Vec<String>), serde_norway::Error> {
        use serde_norway::{Mapping, Value};
        let mut ignored = Vec::new();
        let mut kept = Mapping::new();
        if let Value::Mapping(section) = value {
            for (key, value) in section {
                let name = key.as_str().unwrap_or_default().to_string();
                match (name.as_str(), value) {
                    ("level" | "formatter", value) => {
                        kept.insert(key, value);
                    }
                    ("accesslog", Value::Mapping(access)) => {
                        let mut access_kept = Mapping::new();
                        for (key, value) in access {
                            match key.as_str() {
                                Some("disabled") => {
                                    access_kept.insert(key, value);
                                }
                                other => {
                                    ignored.push(format!("log.accesslog.{}", other.unwrap_or("?")))
                                }
                            }
                        }
                        kept.insert(Value::from("accesslog"), Value::Mapping(access_kept));
                    }
                    _ => ignored.push(format!("log.{name}")),
                }
            }
        }
        Ok((serde_norway::from_value(Value::Mapping(kept))?, ignored))
    }
}

/// registry:2's log levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational messages and above (the default).
    #[default]
    Info,
    /// Debug messages and above.
    Debug,
    /// Everything, including per-request tracing.
    Trace,
}

impl LogLevel {
    /// The level's name as a tracing filter directive takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// How log entries are written: registry:2's `text` (human-readable lines) or `json` (one object a line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatter {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// The per-request access log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Turn the access log off (registry:2's `log.accesslog.disabled`; false by default).
    pub disabled: bool,
}

/// Health endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still served, so that a load balancer
    /// polling it stops sending traffic before the listener closes.
    pub drain_delay_secs: u64,
}

/// registry:2's `notifications` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// What event payloads contain.
    pub events: EventsConfig,
    /// The webhooks events are sent to; none by default.
    pub endpoints: Vec<EndpointConfig>,
}

/// registry:2's `notifications.events`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Add the descriptors a manifest references to its events' targets (`target.references`).
    pub includereferences: bool,
}

/// One webhook (registry:2's `notifications.endpoints[]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The endpoint's name, used in logs and metrics.
    pub name: String,
    /// Keep the endpoint configured but send it nothing.
    #[serde(default)]
    pub disabled: bool,
    /// Where event envelopes are POSTed.
    pub url: String,
    /// Extra request headers, each with a list of values.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Vec<String>>,
    /// Per delivery attempt; 1s by default.
    #[serde(default, deserialize_with = "go_duration_opt")]
    pub timeout: Option<Duration>,
    /// Failures in a row after which attempts are spaced by `backoff`; 10 by default.
    #[serde(default)]
    pub threshold: Option<u32>,
    /// 1s by default.
    #[serde(default, deserialize_with = "go_duration_opt")]
    pub backoff: Option<Duration>,
    /// Events whose target has one of these media types are not sent.
    #[serde(default)]
    pub ignoredmediatypes: Vec<String>,
    /// Events not to send to this endpoint, by media type or action.
    #[serde(default)]
    pub ignore: IgnoreConfig,
}

/// Which events an endpoint does not want.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IgnoreConfig {
    /// Events whose target has one of these media types are not sent.
    pub mediatypes: Vec<String>,
    /// `push`, `pull`, `mount`, `delete`.
    pub actions: Vec<String>,
}

fn go_duration_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    go_duration(deserializer).map(Some)
}

/// A pull-through mirror's upstream, with registry:2's key names and semantics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The upstream registry's base URL (`https://registry-1.docker.io`).
    pub remoteurl: String,
    /// The upstream user; with `password`, sent as Basic credentials or used to fetch Bearer tokens.
    #[serde(default)]
    pub username: Option<String>,
    /// The upstream user's password.
    #[serde(default)]
    pub password: Option<String>,
    /// How long a tag fetched from upstream is served from the store before it is checked again (a Go duration,
    /// `168h` by default as in registry:2; `0` re-checks every time).
    #[serde(default = "default_ttl", deserialize_with = "go_duration")]
    pub ttl: Duration,
}

/// registry:2's default proxy TTL: seven days.
pub fn default_ttl() -> Duration {
    Duration::from_secs(168 * 3600)
}

impl ProxyConfig {
    /// A proxy of `remoteurl` without credentials and with the default TTL.
    pub fn new(remoteurl: impl Into<String>) -> ProxyConfig {
        ProxyConfig {
            remoteurl: remoteurl.into(),
            username: None,
            password: None,
            ttl: default_ttl(),
        }
    }
}

fn go_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_go_duration(&text).map_err(serde::de::Error::custom)
}

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`, such as `168h`, `1h30m` or `2.5s`; a bare `0` is zero. Negative durations are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (expected e.g. 168h, 30m, 1h30m, 10s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key of the certificate.
    pub key: PathBuf,
}

/// Basic authentication against an htpasswd file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The htpasswd file; only bcrypt entries (`htpasswd -B`) are accepted.
    pub htpasswd: PathBuf,
    /// The realm named in `WWW-Authenticate` challenges (`lade registry` by default).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Let unauthenticated clients pull.
    #[serde(default)]
    pub anonymous_read: bool,
}

fn default_realm() -> String {
    "lade registry".to_string()
}

/// Online garbage collection while serving.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Run collections periodically while serving (off by default).
    pub enabled: bool,
    /// Seconds between collections (3600 by default).
    pub interval_secs: u64,
    /// Blobs written or used more recently than this are never swept.
    pub grace_period_secs: u64,
    /// Also sweep manifests that no tag references, directly or through an index (off by default).
    pub delete_untagged: bool,
    /// Upload sessions untouched for longer than this are removed.
    pub upload_max_age_secs: u64,
    /// After taking the sweep lease, how long a collection waits for commits already under way on other replicas.
    pub settle_secs: u64,
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            enabled: false,
            interval_secs: 3600,
            grace_period_secs: 3600,
            delete_untagged: false,
            upload_max_age_secs: 7 * 24 * 3600,
            settle_secs: 30,
        }
    }
}

/// Size and time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest manifest accepted on push, in bytes (4 MiB by default); larger ones get 413 `SIZE_INVALID`.
    pub manifest_max_bytes: u64,
    /// The largest blob accepted on upload, in bytes; larger ones get 413 `SIZE_INVALID`. None (the default): no
    /// limit.
    pub blob_max_bytes: Option<u64>,
    /// 0 disables the per-request timeout.
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// API requests served at once; more are refused with 429 `TOOMANYREQUESTS`. None: no limit.
    pub max_concurrent_requests: Option<usize>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            manifest_max_bytes: 4 * 1024 * 1024,
            blob_max_bytes: None,
            request_timeout_secs: 3600,
            shutdown_timeout_secs: 30,
            max_concurrent_requests: None,
        }
    }
}

/// The default storage root: `/var/lib/lade/registry` for root, else `$XDG_DATA_HOME/lade/registry`.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/lade/registry");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("lade/registry")
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([0, 0, 0, 0], 5000)),
            root: default_root(),
            storage: Storage::Filesystem,
            upload_purging: None,
            delete: true,
            automatic_crossmount: false,
            allow_sparse_manifests: false,
            read_only: false,
            tls: None,
            auth: None,
            gc: GcConfig::default(),
            limits: Limits::default(),
            ui: true,
            log: LogConfig::default(),
            health: HealthConfig::default(),
            proxy: None,
            notifications: None,
            debug: DebugConfig::default(),
        }
    }
}

impl Config {
    /// Reads a YAML file, lade's format or registry:2's (then with its `REGISTRY_…` environment overrides); fields
    /// it leaves out keep their defaults. Warnings (keys not implemented) go to the log.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::load_with_warnings(path)?;
        for warning in warnings {
            tracing::warn!(config = %path.display(), "{warning}");
        }
        Ok(config)
    }

    /// [`Config::load`], returning the warnings instead of logging them.
    pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if crate::registry2_config::is_registry2(&text) {
            let registry2 = |source| ConfigError::Registry2 {
                path: path.to_path_buf(),
                source,
            };
            let translated =
                crate::registry2_config::parse(&text, std::env::vars()).map_err(registry2)?;
            let section = |key: &str, value| crate::registry2_config::Registry2Error::Invalid {
                key: key.into(),
                message: format!("{value}"),
            };
            let mut warnings: Vec<String> = translated
                .warnings
                .iter()
                .map(|key| format!("ignoring `{key}`: not implemented by this registry"))
                .collect();
            let mut config = translated.config;
            if let Some(log) = translated.unapplied.log {
                let (log, ignored) =
                    LogConfig::from_registry2(log).map_err(|source| ConfigError::Parse {
                        path: path.to_path_buf(),
                        source,
                    })?;
                config.log = log;
                warnings.extend(
                    ignored
                        .into_iter()
                        .map(|key| format!("ignoring `{key}`: not implemented by this registry")),
                );
            }
            if let Some(proxy) = translated.unapplied.proxy {
                config.proxy = Some(
                    serde_norway::from_value(proxy).map_err(|e| registry2(section("proxy", e)))?,
                );
            }
            if let Some(notifications) = translated.unapplied.notifications {
                config.notifications = Some(
                    serde_norway::from_value(notifications)
                        .map_err(|e| registry2(section("notifications", e)))?,
                );
            }
            return Ok((config, warnings));
        }
        let config = Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Ok((config, Vec::new()))
    }

    /// Parses YAML text.
    pub fn parse(text: &str) -> Result<Config, serde_norway::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_norway::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_yaml() {
        let c = Config::parse(
            "addr: 127.0.0.1:5001\ndelete: true\nallow_sparse_manifests: true\ngc:\n  enabled: true\nauth:\n  htpasswd: /x\n",
        )
        .unwrap();
        assert_eq!(c.addr.port(), 5001);
        assert!(c.delete && c.gc.enabled && c.allow_sparse_manifests);
        assert!(!Config::default().allow_sparse_manifests);
        assert_eq!(c.gc.grace_period_secs, 3600);
        assert_eq!(c.auth.unwrap().realm, "lade registry");
        assert_eq!(c.limits.manifest_max_bytes, 4 * 1024 * 1024);
        assert!(Config::parse("bogus: 1").is_err());
        assert!(c.ui && c.log.formatter == LogFormatter::Text && c.log.level == LogLevel::Info);
        assert!(c.proxy.is_none());
        let s3 = Config::parse(
            "storage:\n  s3: { bucket: b, endpoint: \"http://h:1\", force_path_style: true }\n",
        )
        .unwrap();
        assert!(matches!(&s3.storage, Storage::S3(o) if o.bucket == "b" && o.force_path_style));
        assert!(matches!(
            Config::parse("storage: inmemory").unwrap().storage,
            Storage::InMemory
        ));
        assert!(Config::parse("storage: tape").is_err());
    }

    #[test]
    fn registry2_log_sections_apply_what_lade_knows_and_name_the_rest() {
        let value: serde_norway::Value = serde_norway::from_str(
            "level: debug\nformatter: json\nfields: { service: registry }\naccesslog: { disabled: true }\n",
        )
        .unwrap();
        let (log, ignored) = LogConfig::from_registry2(value).unwrap();
        assert_eq!(
            (log.level, log.formatter),
            (LogLevel::Debug, LogFormatter::Json)
        );
        assert!(log.accesslog.disabled);
        assert_eq!(ignored, ["log.fields"]);
        let bad: serde_norway::Value = serde_norway::from_str("level: loud").unwrap();
        assert!(LogConfig::from_registry2(bad)
            .unwrap_err()
            .to_string()
            .contains("loud"));
    }

    #[test]
    fn parses_log_ui_and_health() {
        let c = Config::parse(
            "ui: false\nlog:\n  level: debug\n  formatter: json\n  accesslog: { disabled: true }\nhealth: { drain_delay_secs: 3 }\n",
        )
        .unwrap();
        assert!(!c.ui && c.log.accesslog.disabled);
        assert_eq!(
            (c.log.level, c.log.formatter),
            (LogLevel::Debug, LogFormatter::Json)
        );
        assert_eq!(c.health.drain_delay_secs, 3);
        let err = Config::parse("log: { formatter: logstash }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("logstash") && err.contains("json"), "{err}");
    }

    #[test]
    fn parses_proxy_with_go_durations() {
        let c = Config::parse(
            "proxy:\n  remoteurl: http://up:5000\n  username: u\n  password: p\n  ttl: 1h30m\n",
        )
        .unwrap();
        let proxy = c.proxy.unwrap();
        assert_eq!(proxy.remoteurl, "http://up:5000");
        assert_eq!(proxy.username.as_deref(), Some("u"));
        assert_eq!(proxy.ttl, Duration::from_secs(5400));
        let c = Config::parse("proxy:\n  remoteurl: http://up\n").unwrap();
        assert_eq!(c.proxy.unwrap().ttl, Duration::from_secs(168 * 3600));
        assert_eq!(
            parse_go_duration("2.5s").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_go_duration("300ms").unwrap(),
            Duration::from_millis(300)
        );
        for bad in ["", "10", "h", "-1h", "1d", "1h x"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert!(Config::parse("proxy:\n  remoteurl: x\n  ttl: 7d\n").is_err());
        assert!(Config::parse("proxy:\n  remoteurl: x\n  bogus: 1\n").is_err());
    }

    #[test]
    fn registry2_files_apply_proxy_and_notifications() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(
            &path,
            "version: 0.1\nstorage:\n  filesystem: { rootdirectory: /r }\nproxy:\n  remoteurl: http://up:5000\n  ttl: 2h\nnotifications:\n  endpoints:\n    - name: ci\n      url: http://hook/e\n",
        )
        .unwrap();
        let (config, warnings) = Config::load_with_warnings(&path).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let proxy = config.proxy.unwrap();
        assert_eq!(
            (proxy.remoteurl.as_str(), proxy.ttl),
            ("http://up:5000", Duration::from_secs(7200))
        );
        assert_eq!(
            config.notifications.unwrap().endpoints[0].url,
            "http://hook/e"
        );
        std::fs::write(
            &path,
            "version: 0.1\nstorage: { inmemory: {} }\nproxy:\n  remoteurl: http://up\n  ttl: 7d\n",
        )
        .unwrap();
        let err = Config::load_with_warnings(&path).unwrap_err().to_string();
        assert!(err.contains("proxy") && err.contains("7d"), "{err}");
    }

    #[test]
    fn parses_registry2_notifications() {
        let c = Config::parse(
            "notifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: a\n      url: http://x/e\n      headers:\n        Authorization: [Bearer t]\n      timeout: 500ms\n      threshold: 5\n      backoff: 2s\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n",
        )
        .unwrap();
        let n = c.notifications.unwrap();
        assert!(n.events.includereferences);
        let e = &n.endpoints[0];
        assert_eq!(e.headers["Authorization"], vec!["Bearer t".to_string()]);
        assert_eq!(e.timeout, Some(Duration::from_millis(500)));
        assert_eq!(
            (e.threshold, e.backoff),
            (Some(5), Some(Duration::from_secs(2)))
        );
        assert_eq!(e.ignore.actions, vec!["pull".to_string()]);
        assert!(Config::parse(
            "notifications:\n  endpoints:\n    - name: a\n      url: u\n      retries: 1\n"
        )
        .is_err());
    }
}
