//! registry:2's `config.yml` (CNCF Distribution's configuration, `version: 0.1`), read as it is and translated into
//! lade's [`Config`], with registry:2's environment overrides (`REGISTRY_STORAGE_S3_BUCKET=…`).
//!
//! Honoured: `version`, `storage.filesystem.rootdirectory`, `storage.inmemory`, `storage.s3` (`accesskey`,
//! `secretkey`, `region`, `regionendpoint`, `bucket`, `rootdirectory`, `forcepathstyle`, `secure`, `chunksize`),
//! `storage.delete.enabled`, `storage.maintenance.uploadpurging` (`enabled`, `age`, `interval`, `dryrun`),
//! `http.addr`, `http.secret` (accepted: upload state lives in storage, so nothing is signed with it),
//! `http.tls.certificate`/`key`, `http.debug.addr` (with `prometheus`: metrics at `/metrics`), `auth.htpasswd.realm`/`path`. Any other key is reported as a warning naming its
//! path; a value of the wrong type is an error naming its key. The `log`, `proxy` and `notifications` sections are
//! kept aside in [`Registry2Config::unapplied`]; [`Config::load`] reads them into the sections of the same names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_norway::{Mapping, Value};

use crate::config::{parse_go_duration, AuthConfig, Config, Storage, TlsConfig, UploadPurging};
use crate::storage::object::{S3Options, DEFAULT_CHUNK_SIZE};

/// Why a registry:2 configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Registry2Error {
    /// A key's value has the wrong YAML type.
    #[error("`{key}`: expected {expected}, found {found}")]
    Type {
        /// The key, by path (`storage.delete.enabled`).
        key: String,
        /// The type the key takes.
        expected: &'static str,
        /// The type found instead.
        found: String,
    },
    /// A key's value has the right type but is not acceptable.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The key, by path.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
    /// A `REGISTRY_…` environment override could not be applied.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The sections of a registry:2 configuration this module reads but does not apply; other parts of lade implement
/// them.
#[derive(Debug, Clone, Default)]
pub struct Unapplied {
    /// The `log` section, for [`crate::config::LogConfig::from_registry2`].
    pub log: Option<Value>,
    /// The `proxy` section, deserialized as [`crate::config::ProxyConfig`].
    pub proxy: Option<Value>,
    /// The `notifications` section, deserialized as [`crate::config::NotificationsConfig`].
    pub notifications: Option<Value>,
}

/// A translated registry:2 configuration.
#[derive(Debug, Clone)]
pub struct Registry2Config {
    /// The equivalent lade configuration, without the [`Unapplied`] sections.
    pub config: Config,
    /// Keys that were not understood, by path (`storage.cache.blobdescriptor`).
    pub warnings: Vec<String>,
    /// The sections left for the caller to apply.
    pub unapplied: Unapplied,
}

/// Does this YAML text look like registry:2's format (a top-level `version` key)?
pub fn is_registry2(text: &str) -> bool {
    serde_norway::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_mapping().map(|m| m.contains_key("version")))
        .unwrap_or(false)
}

/// Parses registry:2 YAML text, applying `REGISTRY_…` overrides from `env`.
pub fn parse(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Registry2Config, Registry2Error> {
    let mut root: Value = serde_norway::from_str(text).map_err(|e| Registry2Error::Invalid {
        key: "(document)".into(),
        message: e.to_string(),
    })?;
    if root.is_null() {
        root = Value::Mapping(Mapping::new());
    }
    let overrides: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("REGISTRY_") && k.len() > "REGISTRY_".len())
        .collect();
    for (var, value) in &overrides {
        apply_env(&mut root, var, value)?;
    }
    Translator::default().translate(&root)
}

/// Sets the value an environment variable names: `REGISTRY_A_B_C` is key `a.b.c`, its value read as YAML.
fn apply_env(root: &mut Value, var: &str, value: &str) -> Result<(), Registry2Error> {
    let path: Vec<String> = var["REGISTRY_".len()..]
        .split('_')
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(Registry2Error::Env {
            var: var.into(),
            message: "empty key segment".into(),
        });
    }
    let parsed: Value = serde_norway::from_str(value).unwrap_or(Value::String(value.into()));
    let mut node = root;
    for (i, segment) in path.iter().enumerate() {
        let Value::Mapping(map) = node else {
            return Err(Registry2Error::Env {
                var: var.into(),
                message: format!("`{}` is not a section", path[..i].join(".")),
            });
        };
        // Keys match case-insensitively, as registry:2 matches them.
        let existing = map
            .keys()
            .find(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(segment)))
            .cloned();
        let key = existing.unwrap_or_else(|| Value::String(segment.clone()));
        if i + 1 == path.len() {
            map.insert(key, parsed);
            return Ok(());
        }
        let entry = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if entry.is_null() {
            *entry = Value::Mapping(Mapping::new());
        }
        node = entry;
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

/// Walks the document, reading what it knows and noting what it does not.
#[derive(Default)]
struct Translator {
    warnings: Vec<String>,
}

impl Translator {
    fn section<'a>(
        &mut self,
        value: &'a Value,
        key: &str,
    ) -> Result<Option<&'a Mapping>, Registry2Error> {
        match value {
            Value::Null => Ok(None),
            Value::Mapping(m) => Ok(Some(m)),
            other => Err(Registry2Error::Type {
                key: key.into(),
                expected: "a mapping",
                found: describe(other),
            }),
        }
    }

    /// The entries of a mapping, each known key handed to `known`, the others warned about.
    fn entries<'a>(
        &mut self,
        map: &'a Mapping,
        prefix: &str,
        known: &[&str],
    ) -> Result<BTreeMap<String, &'a Value>, Registry2Error> {
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let name = match k {
                Value::String(s) => s.to_ascii_lowercase(),
                other => {
                    return Err(Registry2Error::Type {
                        key: format!("{prefix}(key)"),
                        expected: "a string key",
                        found: describe(other),
                    })
                }
            };
            if known.contains(&name.as_str()) {
                out.insert(name, v);
            } else {
                self.warnings.push(format!("{prefix}{name}"));
            }
        }
        Ok(out)
    }

    fn string(value: &Value, key: &str) -> Result<String, Registry2Error> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(Registry2Error::Type {
                key: key.into(),
                expected: "a string",
                found: describe(other),
            }),
        }
    }

    fn boolean(value: &Value, key: &str) -> Result<bool, Registry2Error> {
        match value {
            Value::Bool(b) => Ok(*b),
            // registry:2 reads environment values as YAML too, so "true" arrives as a boolean; a quoted one is a
            // string, which Go's parser would also refuse.
            other => Err(Registry2Error::Type {
                key: key.into(),
                expected: "a boolean",
                found: describe(other),
            }),
        }
    }

    fn unsigned(value: &Value, key: &str) -> Result<u64, Registry2Error> {
        match value {
            Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
            Value::String(s) if s.parse::<u64>().is_ok() => Ok(s.parse().unwrap_or_default()),
            other => Err(Registry2Error::Type {
                key: key.into(),
                expected: "a non-negative integer",
                found: describe(other),
            }),
        }
    }

    fn duration(value: &Value, key: &str) -> Result<Duration, Registry2Error> {
        let text = Self::string(value, key)?;
        parse_go_duration(&text).map_err(|_| Registry2Error::Type {
            key: key.into(),
            expected: "a duration such as 168h or 10m",
            found: describe(value),
        })
    }

    fn translate(mut self, root: &Value) -> Result<Registry2Config, Registry2Error> {
        let root = self
            .section(root, "(document)")?
            .cloned()
            .unwrap_or_default();
        let top = self.entries(
            &root,
            "",
            &[
                "version",
                "log",
                "storage",
                "http",
                "auth",
                "proxy",
                "notifications",
            ],
        )?;
        let version = top
            .get("version")
            .map(|v| Self::string(v, "version"))
            .transpose()?;
        if version.as_deref() != Some("0.1") {
            return Err(Registry2Error::Invalid {
                key: "version".into(),
                message: format!(
                    "registry:2 configurations are version 0.1, this one says {}",
                    version.as_deref().unwrap_or("nothing")
                ),
            });
        }
        let unapplied = Unapplied {
            log: top.get("log").map(|v| (*v).clone()),
            proxy: top.get("proxy").map(|v| (*v).clone()),
            notifications: top.get("notifications").map(|v| (*v).clone()),
        };
        let mut config = Config {
            // registry:2 refuses deletes unless storage.delete.enabled says otherwise.
            delete: false,
            ..Config::default()
        };
        if let Some(storage) = top.get("storage") {
            self.storage(storage, &mut config)?;
        } else {
            return Err(Registry2Error::Invalid {
                key: "storage".into(),
                message: "no storage driver configured".into(),
            });
        }
        if let Some(http) = top.get("http") {
            self.http(http, &mut config)?;
        }
        if let Some(auth) = top.get("auth") {
            self.auth(auth, &mut config)?;
        }
        Ok(Registry2Config {
            config,
            warnings: self.warnings,
            unapplied,
        })
    }

    fn storage(&mut self, value: &Value, config: &mut Config) -> Result<(), Registry2Error> {
        let Some(map) = self.section(value, "storage")? else {
            return Err(Registry2Error::Invalid {
                key: "storage".into(),
                message: "no storage driver configured".into(),
            });
        };
        let known = self.entries(
            map,
            "storage.",
            &["filesystem", "s3", "inmemory", "delete", "maintenance"],
        )?;
        let drivers: Vec<&str> = ["filesystem", "s3", "inmemory"]
            .into_iter()
            .filter(|d| known.contains_key(*d))
            .collect();
        if drivers.len() != 1 {
            return Err(Registry2Error::Invalid {
                key: "storage".into(),
                message: if drivers.is_empty() {
                    "no storage driver configured (filesystem, s3 or inmemory)".into()
                } else {
                    format!("more than one storage driver: {}", drivers.join(", "))
                },
            });
        }
        match drivers[0] {
            "filesystem" => {
                if let Some(fs) = self.section(known["filesystem"], "storage.filesystem")? {
                    let keys = self.entries(fs, "storage.filesystem.", &["rootdirectory"])?;
                    if let Some(dir) = keys.get("rootdirectory") {
                        config.root =
                            PathBuf::from(Self::string(dir, "storage.filesystem.rootdirectory")?);
                    }
                }
                // registry:2's default root.
                if config.root == crate::config::default_root() {
                    config.root = PathBuf::from("/var/lib/registry");
                }
                config.storage = Storage::Filesystem;
            }
            "inmemory" => config.storage = Storage::InMemory,
            _ => config.storage = Storage::S3(self.s3(known["s3"])?),
        }
        if let Some(delete) = known.get("delete") {
            if let Some(d) = self.section(delete, "storage.delete")? {
                let keys = self.entries(d, "storage.delete.", &["enabled"])?;
                if let Some(enabled) = keys.get("enabled") {
                    config.delete = Self::boolean(enabled, "storage.delete.enabled")?;
                }
            }
        }
        if let Some(maintenance) = known.get("maintenance") {
            if let Some(m) = self.section(maintenance, "storage.maintenance")? {
                let keys = self.entries(m, "storage.maintenance.", &["uploadpurging"])?;
                if let Some(purging) = keys.get("uploadpurging") {
                    config.upload_purging = self.purging(purging)?;
                }
            }
        }
        Ok(())
    }

    fn s3(&mut self, value: &Value) -> Result<S3Options, Registry2Error> {
        let map = self
            .section(value, "storage.s3")?
            .cloned()
            .unwrap_or_default();
        let keys = self.entries(
            &map,
            "storage.s3.",
            &[
                "accesskey",
                "secretkey",
                "region",
                "regionendpoint",
                "bucket",
                "rootdirectory",
                "forcepathstyle",
                "secure",
                "chunksize",
            ],
        )?;
        let text = |name: &str| -> Result<Option<String>, Registry2Error> {
            keys.get(name)
                .map(|v| Self::string(v, &format!("storage.s3.{name}")))
                .transpose()
                .map(|s| s.filter(|s| !s.is_empty()))
        };
        let flag = |name: &str, default: bool| -> Result<bool, Registry2Error> {
            keys.get(name)
                .map(|v| Self::boolean(v, &format!("storage.s3.{name}")))
                .transpose()
                .map(|b| b.unwrap_or(default))
        };
        let bucket = text("bucket")?.ok_or_else(|| Registry2Error::Invalid {
            key: "storage.s3.bucket".into(),
            message: "a bucket is required".into(),
        })?;
        let region = text("region")?.ok_or_else(|| Registry2Error::Invalid {
            key: "storage.s3.region".into(),
            message: "a region is required (registry:2 requires it too)".into(),
        })?;
        let chunk_size = match keys.get("chunksize") {
            Some(v) => Self::unsigned(v, "storage.s3.chunksize")? as usize,
            None => DEFAULT_CHUNK_SIZE,
        };
        if chunk_size < crate::storage::object::MIN_CHUNK_SIZE {
            return Err(Registry2Error::Invalid {
                key: "storage.s3.chunksize".into(),
                message: format!("{chunk_size} is below S3's minimum part size of 5242880"),
            });
        }
        Ok(S3Options {
            bucket,
            region: Some(region),
            endpoint: text("regionendpoint")?,
            access_key: text("accesskey")?,
            secret_key: text("secretkey")?,
            root_directory: text("rootdirectory")?.unwrap_or_default(),
            force_path_style: flag("forcepathstyle", false)?,
            secure: flag("secure", true)?,
            chunk_size,
        })
    }

    fn purging(&mut self, value: &Value) -> Result<Option<UploadPurging>, Registry2Error> {
        let Some(map) = self.section(value, "storage.maintenance.uploadpurging")? else {
            return Ok(Some(UploadPurging::default()));
        };
        let prefix = "storage.maintenance.uploadpurging.";
        let keys = self.entries(map, prefix, &["enabled", "age", "interval", "dryrun"])?;
        let enabled = keys
            .get("enabled")
            .map(|v| Self::boolean(v, &format!("{prefix}enabled")))
            .transpose()?
            .unwrap_or(true);
        if !enabled {
            return Ok(None);
        }
        let mut purging = UploadPurging::default();
        if let Some(v) = keys.get("age") {
            purging.age = Self::duration(v, &format!("{prefix}age"))?;
        }
        if let Some(v) = keys.get("interval") {
            purging.interval = Self::duration(v, &format!("{prefix}interval"))?;
        }
        if let Some(v) = keys.get("dryrun") {
            purging.dry_run = Self::boolean(v, &format!("{prefix}dryrun"))?;
        }
        Ok(Some(purging))
    }

    fn http(&mut self, value: &Value, config: &mut Config) -> Result<(), Registry2Error> {
        let Some(map) = self.section(value, "http")? else {
            return Ok(());
        };
        let keys = self.entries(map, "http.", &["addr", "secret", "tls", "debug"])?;
        if let Some(addr) = keys.get("addr") {
            config.addr = Self::socket_addr(addr, "http.addr")?;
        }
        if let Some(secret) = keys.get("secret") {
            Self::string(secret, "http.secret")?;
        }
        if let Some(debug) = keys.get("debug") {
            self.debug(debug, config)?;
        }
        if let Some(tls) = keys.get("tls") {
            if let Some(t) = self.section(tls, "http.tls")? {
                let keys = self.entries(t, "http.tls.", &["certificate", "key"])?;
                match (keys.get("certificate"), keys.get("key")) {
                    (Some(cert), Some(key)) => {
                        config.tls = Some(TlsConfig {
                            cert: Self::string(cert, "http.tls.certificate")?.into(),
                            key: Self::string(key, "http.tls.key")?.into(),
                        })
                    }
                    (None, None) => {}
                    _ => {
                        return Err(Registry2Error::Invalid {
                            key: "http.tls".into(),
                            message: "certificate and key go together".into(),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// `http.debug.addr`, and `http.debug.prometheus` (lade's metrics are Prometheus text, served at `/metrics`).
    fn debug(&mut self, value: &Value, config: &mut Config) -> Result<(), Registry2Error> {
        let Some(map) = self.section(value, "http.debug")? else {
            return Ok(());
        };
        let keys = self.entries(map, "http.debug.", &["addr", "prometheus"])?;
        if let Some(addr) = keys.get("addr") {
            config.debug.addr = Some(Self::socket_addr(addr, "http.debug.addr")?);
        }
        if let Some(prometheus) = keys.get("prometheus") {
            if let Some(p) = self.section(prometheus, "http.debug.prometheus")? {
                let keys = self.entries(p, "http.debug.prometheus.", &["enabled", "path"])?;
                if let Some(enabled) = keys.get("enabled") {
                    Self::boolean(enabled, "http.debug.prometheus.enabled")?;
                }
                if let Some(path) = keys.get("path") {
                    let path = Self::string(path, "http.debug.prometheus.path")?;
                    if path != "/metrics" {
                        return Err(Registry2Error::Invalid {
                            key: "http.debug.prometheus.path".into(),
                            message: format!("{path:?}: lade serves its metrics at /metrics only"),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// A listen address, with Go's `:5000` for every interface.
    fn socket_addr(value: &Value, key: &str) -> Result<std::net::SocketAddr, Registry2Error> {
        let text = Self::string(value, key)?;
        let full = if text.starts_with(':') {
            format!("0.0.0.0{text}")
        } else {
            text.clone()
        };
        full.parse().map_err(|_| Registry2Error::Invalid {
            key: key.into(),
            message: format!("{text:?} is not host:port"),
        })
    }

    fn auth(&mut self, value: &Value, config: &mut Config) -> Result<(), Registry2Error> {
        let Some(map) = self.section(value, "auth")? else {
            return Ok(());
        };
        let keys = self.entries(map, "auth.", &["htpasswd"])?;
        if let Some(htpasswd) = keys.get("htpasswd") {
            let map = self
                .section(htpasswd, "auth.htpasswd")?
                .cloned()
                .unwrap_or_default();
            let keys = self.entries(&map, "auth.htpasswd.", &["realm", "path"])?;
            let path = keys.get("path").ok_or_else(|| Registry2Error::Invalid {
                key: "auth.htpasswd.path".into(),
                message: "an htpasswd file is required".into(),
            })?;
            config.auth = Some(AuthConfig {
                htpasswd: Self::string(path, "auth.htpasswd.path")?.into(),
                realm: keys
                    .get("realm")
                    .map(|v| Self::string(v, "auth.htpasswd.realm"))
                    .transpose()?
                    .unwrap_or_else(|| "lade registry".into()),
                anonymous_read: false,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
version: 0.1
log:
  level: debug
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  s3:
    accesskey: AK
    secretkey: SK
    region: us-east-1
    regionendpoint: http://127.0.0.1:9000
    bucket: images
    rootdirectory: /reg
    forcepathstyle: true
    secure: false
    chunksize: 5242880
    v4auth: true
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
http:
  addr: :5001
  secret: asecretforlocaldevelopment
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: /certs/c.pem
    key: /certs/k.pem
  debug:
    addr: 127.0.0.1:5002
    prometheus: { enabled: true, path: /metrics }
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd
"#;

    fn none() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn translates_every_honoured_key() {
        assert!(is_registry2(FULL));
        assert!(!is_registry2("addr: 127.0.0.1:5000\n"));
        let r = parse(FULL, none()).unwrap();
        let c = &r.config;
        let Storage::S3(s3) = &c.storage else {
            panic!("s3 storage expected")
        };
        assert_eq!(s3.bucket, "images");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            (s3.access_key.as_deref(), s3.secret_key.as_deref()),
            (Some("AK"), Some("SK"))
        );
        assert_eq!(s3.root_directory, "/reg");
        assert!(s3.force_path_style && !s3.secure);
        assert_eq!(s3.chunk_size, 5242880);
        assert!(c.delete);
        let purging = c.upload_purging.clone().unwrap();
        assert_eq!(purging.age, Duration::from_secs(168 * 3600));
        assert_eq!(purging.interval, Duration::from_secs(24 * 3600));
        assert!(!purging.dry_run);
        assert_eq!(c.addr.to_string(), "0.0.0.0:5001");
        assert_eq!(c.debug.addr.unwrap().to_string(), "127.0.0.1:5002");
        assert_eq!(c.tls.as_ref().unwrap().cert, PathBuf::from("/certs/c.pem"));
        let auth = c.auth.as_ref().unwrap();
        assert_eq!(
            (auth.realm.as_str(), auth.htpasswd.to_str()),
            ("basic-realm", Some("/auth/htpasswd"))
        );
        assert_eq!(
            r.warnings,
            vec!["storage.cache", "storage.s3.v4auth", "http.headers"]
        );
        assert!(r.unapplied.log.is_some() && r.unapplied.proxy.is_none());
    }

    #[test]
    fn filesystem_defaults_are_registry2s() {
        let r = parse("version: 0.1\nstorage:\n  filesystem:\n", none()).unwrap();
        assert_eq!(r.config.root, PathBuf::from("/var/lib/registry"));
        assert!(!r.config.delete, "registry:2 refuses deletes by default");
        assert!(r.config.upload_purging.is_none());
        let r = parse(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /srv/r\n  maintenance:\n    uploadpurging:\n      enabled: false\n",
            none(),
        )
        .unwrap();
        assert_eq!(r.config.root, PathBuf::from("/srv/r"));
        assert!(matches!(r.config.storage, Storage::Filesystem));
    }

    #[test]
    fn wrong_types_name_the_key() {
        let err = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\n  delete:\n    enabled: maybe\n",
            none(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`storage.delete.enabled`: expected a boolean, found string \"maybe\""
        );
        let err = parse(
            "version: 0.1\nstorage:\n  s3: {bucket: b, region: r, chunksize: [1]}\n",
            none(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`storage.s3.chunksize`: expected a non-negative integer"),
            "{err}"
        );
        let err = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\nhttp:\n  addr: [1]\n",
            none(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("`http.addr`"), "{err}");
        let err = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\n  s3: {bucket: b, region: r}\n",
            none(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("more than one storage driver"),
            "{err}"
        );
        let err = parse("version: 0.2\nstorage: {filesystem: {}}\n", none()).unwrap_err();
        assert!(err.to_string().starts_with("`version`"), "{err}");
        let err = parse(
            "version: 0.1\nstorage:\n  s3: {bucket: b, region: r, chunksize: 1024}\n",
            none(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("minimum part size"), "{err}");
        let err = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\n  maintenance: {uploadpurging: {age: soon}}\n",
            none(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`storage.maintenance.uploadpurging.age`"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_as_registry2_spells_them() {
        let env = vec![
            (
                "REGISTRY_STORAGE_S3_BUCKET".to_string(),
                "from-env".to_string(),
            ),
            (
                "REGISTRY_STORAGE_S3_FORCEPATHSTYLE".to_string(),
                "false".to_string(),
            ),
            (
                "REGISTRY_HTTP_ADDR".to_string(),
                "127.0.0.1:6000".to_string(),
            ),
            (
                "REGISTRY_STORAGE_DELETE_ENABLED".to_string(),
                "false".to_string(),
            ),
            (
                "REGISTRY_AUTH_HTPASSWD_REALM".to_string(),
                "env realm".to_string(),
            ),
            (
                "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE".to_string(),
                "2h".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let r = parse(FULL, env).unwrap();
        let Storage::S3(s3) = &r.config.storage else {
            panic!("s3 storage expected")
        };
        assert_eq!(s3.bucket, "from-env");
        assert!(!s3.force_path_style);
        assert_eq!(r.config.addr.to_string(), "127.0.0.1:6000");
        assert!(!r.config.delete);
        assert_eq!(r.config.auth.unwrap().realm, "env realm");
        assert_eq!(
            r.config.upload_purging.unwrap().age,
            Duration::from_secs(7200)
        );
        // A section the file does not have is created by the environment.
        let r = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\n",
            vec![(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY".to_string(),
                "/env/root".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(r.config.root, PathBuf::from("/env/root"));
        let err = parse(
            "version: 0.1\nstorage:\n  filesystem: {}\n",
            vec![(
                "REGISTRY_STORAGE_DELETE_ENABLED".to_string(),
                "yes please".to_string(),
            )],
        )
        .unwrap_err();
        assert!(err.to_string().contains("storage.delete.enabled"), "{err}");
    }
}
