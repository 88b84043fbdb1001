//! A container's sandbox settings: its seccomp filter (`--security-opt seccomp=…`), `no-new-privileges`, and
//! BuildKit's insecure mode (`RUN --security=insecure`); and the entitlements (`lade build --allow …`, as buildx
//! takes them) without which a RUN may not leave the sandbox.

use std::path::Path;

use super::seccomp::{Profile, SeccompError};

/// The seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's format, read from a file (`seccomp=FILE`).
    Profile(Box<Profile>),
}

/// How a container is confined, beyond its namespaces and mounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    /// `seccomp=`: the system call filter (Docker's default profile unless told otherwise).
    pub seccomp: Seccomp,
    /// `no-new-privileges`: setuid binaries and file capabilities give nothing.
    pub no_new_privileges: bool,
    /// `RUN --security=insecure`: every capability, no seccomp filter, no masked or read-only paths, `/sys`
    /// writable (BuildKit's `entitlements.WithInsecureSpec` with writable sysfs).
    pub insecure: bool,
}

/// A `--security-opt` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityOptError {
    #[error("invalid --security-opt {0:?}: lade supports seccomp=unconfined|FILE and no-new-privileges[=true|false]")]
    Unsupported(String),
    #[error("invalid --security-opt {0:?}: no-new-privileges takes true or false")]
    NoNewPrivileges(String),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

impl Security {
    /// The settings `--security-opt` options give, read as Docker reads them (`KEY=VALUE`, or the older
    /// `KEY:VALUE`); a `seccomp=FILE` profile is read and checked here.
    pub fn from_options(options: &[String]) -> Result<Security, SecurityOptError> {
        let mut security = Security::default();
        for option in options {
            if option == "no-new-privileges" {
                security.no_new_privileges = true;
                continue;
            }
            let (key, value) = option
                .split_once('=')
                .or_else(|| option.split_once(':'))
                .ok_or_else(|| SecurityOptError::Unsupported(option.clone()))?;
            match key {
                "seccomp" if value == "unconfined" => security.seccomp = Seccomp::Unconfined,
                "seccomp" if !value.is_empty() => {
                    security.seccomp = Seccomp::Profile(Box::new(Profile::read(Path::new(value))?))
                }
                "no-new-privileges" => {
                    security.no_new_privileges = value
                        .parse()
                        .map_err(|_| SecurityOptError::NoNewPrivileges(option.clone()))?
                }
                _ => return Err(SecurityOptError::Unsupported(option.clone())),
            }
        }
        Ok(security)
    }

    /// What a step's cache key takes from these settings: nothing for the defaults (so keys stay as they were),
    /// otherwise a line naming each difference.
    pub fn cache_input(&self) -> Option<String> {
        let mut parts = Vec::new();
        match &self.seccomp {
            Seccomp::Default => {}
            Seccomp::Unconfined => parts.push("seccomp=unconfined".to_string()),
            Seccomp::Profile(profile) => parts.push(format!("seccomp={}", profile.digest())),
        }
        if self.no_new_privileges {
            parts.push("no-new-privileges".into());
        }
        if self.insecure {
            parts.push("insecure".into());
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// What a build may let its RUN steps do beyond the sandbox (`--allow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// `network.host`: `RUN --network=host`.
    pub network_host: bool,
    /// `security.insecure`: `RUN --security=insecure`.
    pub security_insecure: bool,
}

/// A RUN that needs an entitlement the build was not given, or an `--allow` value that names none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntitlementError {
    /// A RUN flag needs an entitlement the build was not given.
    #[error("{flag} needs the {entitlement} entitlement, which this build was not given: pass --allow {entitlement} to lade build")]
    NotAllowed {
        /// The flag, like `--network=host`.
        flag: &'static str,
        /// The entitlement, like `network.host`.
        entitlement: &'static str,
    },
    /// An `--allow` value that is not an entitlement.
    #[error("invalid --allow {0:?}: the entitlements are network.host and security.insecure")]
    Unknown(String),
}

impl Entitlements {
    /// The entitlements `--allow` values name (each may list several, comma-separated, as buildx takes them).
    pub fn from_allow(values: &[String]) -> Result<Entitlements, EntitlementError> {
        let mut entitlements = Entitlements::default();
        for name in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
            match name {
                "network.host" => entitlements.network_host = true,
                "security.insecure" => entitlements.security_insecure = true,
                _ => return Err(EntitlementError::Unknown(name.to_string())),
            }
        }
        Ok(entitlements)
    }

    /// Refuses a RUN with `--network=host` or `--security=insecure` unless its entitlement was given.
    pub fn check_run(&self, network_host: bool, insecure: bool) -> Result<(), EntitlementError> {
        if network_host && !self.network_host {
            return Err(EntitlementError::NotAllowed {
                flag: "RUN --network=host",
                entitlement: "network.host",
            });
        }
        if insecure && !self.security_insecure {
            return Err(EntitlementError::NotAllowed {
                flag: "RUN --security=insecure",
                entitlement: "security.insecure",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Result<Security, SecurityOptError> {
        Security::from_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn security_opts_parse_as_docker_takes_them() {
        assert_eq!(opts(&[]).unwrap(), Security::default());
        assert_eq!(opts(&[]).unwrap().cache_input(), None);
        let unconfined = opts(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(unconfined.seccomp, Seccomp::Unconfined);
        assert!(unconfined.no_new_privileges);
        assert_eq!(
            unconfined.cache_input().as_deref(),
            Some("seccomp=unconfined no-new-privileges")
        );
        assert_eq!(
            opts(&["seccomp:unconfined"]).unwrap().seccomp,
            Seccomp::Unconfined
        );
        assert!(
            !opts(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(&file, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let custom = opts(&[&format!("seccomp={}", file.display())]).unwrap();
        assert!(matches!(custom.seccomp, Seccomp::Profile(_)));
        assert!(custom.cache_input().unwrap().starts_with("seccomp=sha256:"));

        let missing = opts(&["seccomp=/nonexistent.json"]).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent.json"),
            "{missing}"
        );
        let unknown = opts(&["apparmor=unconfined"]).unwrap_err();
        assert!(
            unknown.to_string().contains("apparmor=unconfined"),
            "{unknown}"
        );
        assert!(opts(&["no-new-privileges=maybe"]).is_err());
        assert!(opts(&["bogus"]).is_err());
    }

    #[test]
    fn entitlements_gate_host_network_and_insecure_runs() {
        let none = Entitlements::default();
        assert!(none.check_run(false, false).is_ok());
        let err = none.check_run(true, false).unwrap_err();
        assert!(err.to_string().contains("--allow network.host"), "{err}");
        let err = none.check_run(false, true).unwrap_err();
        assert!(
            err.to_string().contains("--allow security.insecure"),
            "{err}"
        );
        let both =
            Entitlements::from_allow(&["network.host,security.insecure".to_string()]).unwrap();
        assert!(both.check_run(true, true).is_ok());
        let err = Entitlements::from_allow(&["network.bridge".to_string()]).unwrap_err();
        assert!(err.to_string().contains("network.bridge"), "{err}");
    }
}
