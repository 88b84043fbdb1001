//! Seccomp: Docker's profile format and its translation into the OCI runtime config's `linux.seccomp`.
//!
//! `default.json` beside this file is Docker's default profile, byte for byte as Docker 20.10.24 ships it (moby's
//! `profiles/seccomp/default.json` at v20.10.24, Apache-2.0, as packaged in Debian 12's
//! `golang-github-docker-docker-dev` 20.10.24+dfsg1-1+deb12u1). [`Profile::to_oci`] applies a profile's conditions
//! the way moby's `setupSeccomp` does: a rule whose `excludes` names an architecture this is, a capability in the
//! bounding set, or a kernel at most this old is dropped; so is one whose `includes` names architectures none of
//! which this is, a capability not in the bounding set, or a newer kernel than this; `archMap` picks this
//! architecture's entry and its sub-architectures.

use std::path::Path;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;

/// Docker's default profile, as Docker 20.10.24 ships it.
const DEFAULT_PROFILE: &str = include_str!("default.json");

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("reading the seccomp profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("decoding seccomp profile {origin} failed: {reason}")]
    Decode { origin: String, reason: String },
    #[error("seccomp profile {0}: 'architectures' and 'archMap' were both given; use one of them")]
    ArchitecturesAndArchMap(String),
    #[error("seccomp profile {0}: a rule gives both 'name' and 'names'; use one of them")]
    NameAndNames(String),
    #[error("the kernel release {0:?} does not start with <kernel>.<major>")]
    KernelRelease(String),
}

/// A seccomp profile in Docker's format (what `docker run --security-opt seccomp=FILE` takes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Where it came from, for messages (`default` or the file's path).
    #[serde(skip)]
    origin: String,
    /// The digest of the profile's text, for cache keys.
    #[serde(skip)]
    digest: String,
    default_action: Option<LinuxSeccompAction>,
    /// Newer Docker profiles give one; Docker 20.10's does not (the runtime's default, EPERM, applies).
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

/// A rule's condition: capabilities, architectures (libseccomp's names: `amd64`, `arm64`, …) and a kernel version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The host a profile's conditions are evaluated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// libseccomp's name of the architecture (`amd64`, `arm64`, …); `None` for one Docker has no name for.
    pub arch: Option<&'static str>,
    /// The kernel's `<kernel>.<major>`.
    pub kernel: (u64, u64),
}

impl Host {
    /// This machine: the architecture lade was built for and the running kernel's release.
    pub fn current() -> Result<Host, SeccompError> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_err(|source| {
            SeccompError::Read {
                path: "/proc/sys/kernel/osrelease".into(),
                source,
            }
        })?;
        Ok(Host {
            arch: native_arch(std::env::consts::ARCH, cfg!(target_endian = "little")),
            kernel: parse_release(release.trim())?,
        })
    }
}

/// Rust's architecture name to libseccomp's (moby's `goToNative`).
fn native_arch(rust_arch: &str, little_endian: bool) -> Option<&'static str> {
    Some(match rust_arch {
        "x86" => "x86",
        "x86_64" => "amd64",
        "arm" => "arm",
        "aarch64" => "arm64",
        "mips64" if little_endian => "mipsel64",
        "mips64" => "mips64",
        "mips" if little_endian => "mipsel",
        "powerpc" => "ppc",
        "powerpc64" if little_endian => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

/// libseccomp's architecture name to the OCI config's (moby's `nativeToSeccomp`).
fn seccomp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mips3l64n32" => Arch::ScmpArchMipsel64n32,
        "mipsle" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        _ => return None,
    })
}

/// `<kernel>.<major>` at the start of a release such as `5.10.0-18-amd64` (as moby's `parseRelease`).
fn parse_release(release: &str) -> Result<(u64, u64), SeccompError> {
    let bad = || SeccompError::KernelRelease(release.to_string());
    let mut parts = release.splitn(2, '.');
    let kernel = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let rest = parts.next().ok_or_else(bad)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().map_err(|_| bad())?;
    Ok((kernel, major))
}

/// A profile's `minKernel` (`"<kernel>.<major>"`, as moby's `KernelVersion.UnmarshalJSON` takes it).
fn parse_min_kernel(origin: &str, text: &str) -> Result<Option<(u64, u64)>, SeccompError> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || SeccompError::Decode {
        origin: origin.to_string(),
        reason: format!("invalid kernel version: {text:?}, expected \"<kernel>.<major>\""),
    };
    let (kernel, major) = text.split_once('.').ok_or_else(invalid)?;
    let kernel: u8 = kernel.parse().map_err(|_| invalid())?;
    let major: u8 = major.parse().map_err(|_| invalid())?;
    if kernel == 0 && major == 0 {
        return Err(invalid());
    }
    Ok(Some((kernel.into(), major.into())))
}

impl Profile {
    /// Docker's default profile.
    pub fn docker_default() -> Profile {
        Profile::parse("default", DEFAULT_PROFILE).expect("the bundled default profile parses")
    }

    /// A profile in Docker's JSON format; `origin` names it in messages.
    pub fn parse(origin: &str, text: &str) -> Result<Profile, SeccompError> {
        let mut profile: Profile =
            serde_json::from_str(text).map_err(|e| SeccompError::Decode {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        profile.origin = origin.to_string();
        profile.digest = layerstore::Digest::sha256_of(text.as_bytes()).to_string();
        for rule in profile.syscalls.iter().flatten() {
            for filter in [&rule.includes, &rule.excludes] {
                parse_min_kernel(origin, filter.min_kernel.as_deref().unwrap_or(""))?;
            }
        }
        Ok(profile)
    }

    /// The digest of the profile's text.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Reads a profile file (`--security-opt seccomp=FILE`).
    pub fn read(path: &Path) -> Result<Profile, SeccompError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// The OCI config's `linux.seccomp` for a container whose bounding set is `bounding` (capability names such as
    /// `CAP_SYS_ADMIN`), on `host`; `None` when the profile has neither a default action nor rules (Docker takes
    /// that as no filter).
    pub fn to_oci(
        &self,
        bounding: &[String],
        host: &Host,
    ) -> Result<Option<LinuxSeccomp>, SeccompError> {
        let rules = self.syscalls.as_deref().unwrap_or_default();
        let Some(default_action) = self.default_action else {
            if rules.is_empty() {
                return Ok(None);
            }
            return Err(SeccompError::Decode {
                origin: self.origin.clone(),
                reason: "the profile has rules but no defaultAction".into(),
            });
        };
        if self.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && self.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            return Err(SeccompError::ArchitecturesAndArchMap(self.origin.clone()));
        }
        let mut architectures = self.architectures.clone().unwrap_or_default();
        if let Some(native) = host.arch.and_then(seccomp_arch) {
            if let Some(entry) = self
                .arch_map
                .iter()
                .flatten()
                .find(|e| e.architecture == native)
            {
                architectures.push(entry.architecture);
                architectures.extend(entry.sub_architectures.iter().flatten());
            }
        }
        let mut syscalls = Vec::new();
        for rule in rules {
            if !self.applies(rule, bounding, host)? {
                continue;
            }
            let names = match (&rule.name, &rule.names) {
                (Some(name), Some(names)) if !name.is_empty() && !names.is_empty() => {
                    return Err(SeccompError::NameAndNames(self.origin.clone()))
                }
                (Some(name), _) if !name.is_empty() => vec![name.clone()],
                (_, names) => names.clone().unwrap_or_default(),
            };
            let mut syscall = LinuxSyscall::default();
            syscall
                .set_names(names)
                .set_action(rule.action)
                .set_errno_ret(rule.errno_ret)
                .set_args(rule.args.clone().filter(|a| !a.is_empty()));
            syscalls.push(syscall);
        }
        let mut seccomp = LinuxSeccomp::default();
        seccomp
            .set_default_action(default_action)
            .set_default_errno_ret(self.default_errno_ret)
            .set_architectures((!architectures.is_empty()).then_some(architectures))
            .set_syscalls(Some(syscalls));
        Ok(Some(seccomp))
    }

    /// Whether a rule's `includes` and `excludes` let it into the filter (moby's `setupSeccomp`, in its order).
    fn applies(&self, rule: &Rule, bounding: &[String], host: &Host) -> Result<bool, SeccompError> {
        let arch_in = |arches: &Option<Vec<String>>| {
            host.arch
                .is_some_and(|arch| arches.iter().flatten().any(|a| a == arch))
        };
        let has_cap = |cap: &String| bounding.contains(cap);
        let kernel_at_least = |filter: &Filter| -> Result<Option<bool>, SeccompError> {
            let min = parse_min_kernel(&self.origin, filter.min_kernel.as_deref().unwrap_or(""))?;
            Ok(min.map(|min| host.kernel >= min))
        };
        let excludes = &rule.excludes;
        if arch_in(&excludes.arches) || excludes.caps.iter().flatten().any(has_cap) {
            return Ok(false);
        }
        if kernel_at_least(excludes)? == Some(true) {
            return Ok(false);
        }
        let includes = &rule.includes;
        if includes.arches.as_ref().is_some_and(|a| !a.is_empty()) && !arch_in(&includes.arches) {
            return Ok(false);
        }
        if !includes.caps.iter().flatten().all(has_cap) {
            return Ok(false);
        }
        Ok(kernel_at_least(includes)? != Some(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_CAPS: [&str; 14] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    fn amd64(kernel: (u64, u64)) -> Host {
        Host {
            arch: Some("amd64"),
            kernel,
        }
    }

    fn caps(extra: &[&str]) -> Vec<String> {
        DOCKER_CAPS
            .iter()
            .chain(extra)
            .map(|c| c.to_string())
            .collect()
    }

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    #[test]
    fn the_default_profile_for_docker_caps_on_amd64() {
        let seccomp = Profile::docker_default()
            .to_oci(&caps(&[]), &amd64((6, 1)))
            .unwrap()
            .unwrap();
        let json = serde_json::to_value(&seccomp).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(json.get("defaultErrnoRet").is_none());
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // Without CAP_SYS_ADMIN: no unshare, mount or keyctl's friends; clone only without namespace flags; clone3
        // answers ENOSYS so that libc falls back to clone.
        for forbidden in [
            "unshare", "mount", "setns", "bpf", "keyctl", "add_key", "reboot",
        ] {
            assert!(allowed(&seccomp, forbidden).is_empty(), "{forbidden}");
        }
        let clone = allowed(&seccomp, "clone");
        assert_eq!(clone.len(), 1);
        let arg = &clone[0].args().as_ref().unwrap()[0];
        assert_eq!((arg.index(), arg.value()), (0, 2114060288));
        let clone3 = allowed(&seccomp, "clone3");
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // CAP_SYS_CHROOT is in Docker's set, so chroot is allowed; ptrace comes with kernel 4.8.
        assert_eq!(allowed(&seccomp, "chroot").len(), 1);
        assert_eq!(allowed(&seccomp, "ptrace").len(), 1);
        assert_eq!(allowed(&seccomp, "arch_prctl").len(), 1);
        assert!(allowed(&seccomp, "set_tls").is_empty(), "an arm-only call");
    }

    #[test]
    fn conditions_follow_the_bounding_set_the_arch_and_the_kernel() {
        let profile = Profile::docker_default();
        let admin = profile
            .to_oci(&caps(&["CAP_SYS_ADMIN"]), &amd64((6, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(allowed(&admin, "unshare").len(), 1);
        assert!(allowed(&admin, "clone3")
            .iter()
            .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
        let old_kernel = profile.to_oci(&caps(&[]), &amd64((4, 4))).unwrap().unwrap();
        assert!(allowed(&old_kernel, "ptrace").is_empty());
        let arm = profile
            .to_oci(
                &caps(&[]),
                &Host {
                    arch: Some("arm64"),
                    kernel: (6, 1),
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(allowed(&arm, "set_tls").len(), 1);
        assert!(allowed(&arm, "arch_prctl").is_empty());
        assert_eq!(
            serde_json::to_value(arm.architectures()).unwrap(),
            serde_json::json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
    }

    #[test]
    fn custom_profiles_parse_as_docker_reads_them() {
        let text = r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1,"syscalls":[
            {"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13},
            {"names":["chmod"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"99.0"}}]}"#;
        let seccomp = Profile::parse("p.json", text)
            .unwrap()
            .to_oci(&caps(&[]), &amd64((6, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(seccomp.default_errno_ret(), Some(1));
        let syscalls = seccomp.syscalls().as_ref().unwrap();
        assert_eq!(syscalls.len(), 1);
        assert_eq!(syscalls[0].names(), &["mkdir".to_string()]);
        assert_eq!(syscalls[0].errno_ret(), Some(13));

        let empty = Profile::parse("e.json", "{}").unwrap();
        assert!(empty.to_oci(&caps(&[]), &amd64((6, 1))).unwrap().is_none());

        let bad = Profile::parse("bad.json", r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap_err();
        assert!(bad.to_string().contains("bad.json"), "{bad}");
        let kernel = Profile::parse(
            "k.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"x","action":"SCMP_ACT_ERRNO","includes":{"minKernel":"5"}}]}"#,
        )
        .unwrap_err();
        assert!(kernel.to_string().contains("<kernel>.<major>"), "{kernel}");
        let both = Profile::parse(
            "both.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}]}"#,
        )
        .unwrap()
        .to_oci(&caps(&[]), &amd64((6, 1)))
        .unwrap_err();
        assert!(matches!(both, SeccompError::ArchitecturesAndArchMap(_)));
    }

    #[test]
    fn kernel_releases_parse_like_moby() {
        assert_eq!(parse_release("5.10.0-18-amd64").unwrap(), (5, 10));
        assert_eq!(parse_release("3.12-1-amd64").unwrap(), (3, 12));
        assert_eq!(parse_release("6.18.44-fc-v1045").unwrap(), (6, 18));
        assert!(parse_release("garbage").is_err());
        assert_eq!(native_arch("x86_64", true), Some("amd64"));
        assert_eq!(native_arch("powerpc64", true), Some("ppc64le"));
    }
}
