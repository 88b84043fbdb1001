//! The OCI runtime config (`config.json`) of a build step, shaped like BuildKit's: mount, pid, ipc and uts
//! namespaces (plus network when the step has no network), hostname `buildkitsandbox`, the usual `/proc`, `/dev`,
//! `/dev/pts`, `/dev/shm`, `/dev/mqueue`, read-only `/sys`, the host's `/etc/resolv.conf` and BuildKit's own
//! `/etc/hosts` read-only, Docker's default capabilities (none inheritable or ambient), masked and read-only paths,
//! and Docker's default seccomp profile; or, in BuildKit's insecure mode, every capability and none of the
//! confinement.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_mounts, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, Mount, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

use super::seccomp::{Host, Profile};
use super::security::{Seccomp, Security};
use super::RuntimeError;
use crate::users::Identity;

/// The hostname BuildKit gives build containers.
pub const HOSTNAME: &str = "buildkitsandbox";

/// `PATH` when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The host's DNS configuration, which every step sees read-only.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Where a step sees [`HOSTS_CONTENT`], read-only.
const HOSTS: &str = "/etc/hosts";

/// The `/etc/hosts` BuildKit gives build containers, whatever their network.
pub const HOSTS_CONTENT: &str =
    "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// The network a step has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network (BuildKit's default for a local build).
    #[default]
    Host,
    /// A new network namespace with only a loopback device.
    None,
}

/// What goes into a config.json besides the defaults.
pub struct SpecInput<'a> {
    /// The root filesystem, on the host.
    pub rootfs: &'a Path,
    /// The command and its arguments; not empty.
    pub args: &'a [String],
    /// `KEY=value` entries; `PATH` gets [`DEFAULT_PATH`] when missing.
    pub env: &'a [String],
    /// The absolute working directory in the container.
    pub cwd: &'a Path,
    /// The user, group and supplementary groups the process runs as.
    pub identity: &'a Identity,
    /// Whether the container gets its own network namespace.
    pub network: Network,
    /// A file holding [`HOSTS_CONTENT`], mounted at `/etc/hosts`.
    pub hosts_file: &'a Path,
    /// Mounts of `RUN --mount`, after the standard ones.
    pub extra_mounts: Vec<Mount>,
    /// Seccomp, no-new-privileges and insecure mode.
    pub security: &'a Security,
    /// Whether the process gets a terminal (`lade run -t`).
    pub terminal: bool,
}

/// Docker's default capability set.
const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The capabilities BuildKit adds in insecure mode (`entitlements.WithInsecureSpec`), besides Docker's, with their
/// numbers.
const INSECURE_CAPABILITIES: [(Capability, u32); 24] = [
    (Capability::MacAdmin, 33),
    (Capability::MacOverride, 32),
    (Capability::DacReadSearch, 2),
    (Capability::SysPtrace, 19),
    (Capability::SysModule, 16),
    (Capability::Syslog, 34),
    (Capability::SysRawio, 17),
    (Capability::SysAdmin, 21),
    (Capability::LinuxImmutable, 9),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysPacct, 20),
    (Capability::SysTtyConfig, 26),
    (Capability::SysTime, 25),
    (Capability::WakeAlarm, 35),
    (Capability::AuditRead, 37),
    (Capability::AuditControl, 30),
    (Capability::SysResource, 24),
    (Capability::BlockSuspend, 36),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::Lease, 28),
    (Capability::NetAdmin, 12),
    (Capability::NetBroadcast, 11),
];

/// The standard mounts: the runtime defaults (with BuildKit's options: `/proc` nosuid, noexec and nodev; `/sys`
/// read-only unless `writable_sys`; the cgroup hierarchy read-only), the host's resolv.conf and `hosts_file` as
/// `/etc/hosts`, in BuildKit's order.
fn standard_mounts(
    hosts_file: &Path,
    writable_sys: bool,
    host_sys: bool,
) -> Result<Vec<Mount>, RuntimeError> {
    let mut mounts = Vec::new();
    let mut cgroup = None;
    for mut mount in get_default_mounts() {
        match mount.destination().to_str() {
            // After the files, where BuildKit has it.
            Some("/sys/fs/cgroup") => {
                cgroup = Some(mount);
                continue;
            }
            Some("/proc") => {
                mount.set_options(Some(
                    ["nosuid", "noexec", "nodev"].map(String::from).to_vec(),
                ));
            }
            // A user namespace (rootless) may mount sysfs only in a network namespace of its own: with the host's
            // network, the host's /sys is bound instead, as rootless Docker and podman do.
            Some("/sys") if host_sys => {
                mount
                    .set_typ(Some("bind".into()))
                    .set_source(Some("/sys".into()));
                let mut options = vec!["rbind".to_string()];
                options.extend(mount.options().clone().unwrap_or_default());
                if writable_sys {
                    options.retain(|o| o != "ro");
                }
                mount.set_options(Some(options));
            }
            Some("/sys") if writable_sys => {
                let options = mount.options().clone().unwrap_or_default();
                mount.set_options(Some(options.into_iter().filter(|o| o != "ro").collect()));
            }
            _ => {}
        }
        mounts.push(mount);
    }
    for (source, destination) in [(Path::new(RESOLV_CONF), RESOLV_CONF), (hosts_file, HOSTS)] {
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(
                    ["rbind", "rprivate", "ro", "nosuid", "noexec", "nodev"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()?,
        );
    }
    mounts.extend(cgroup);
    Ok(mounts)
}

/// The container paths the standard mounts cover.
pub fn standard_targets() -> Result<Vec<PathBuf>, RuntimeError> {
    Ok(mount_targets(&standard_mounts(
        Path::new(HOSTS),
        false,
        false,
    )?))
}

/// Builds the config.
pub fn build(input: SpecInput<'_>) -> Result<Spec, RuntimeError> {
    let mut env = input.env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", input.identity.home));
    }
    let security = input.security;
    let mut cap_list = CAPABILITIES.to_vec();
    if security.insecure {
        // Only those this process has: no runtime can grant more (some sandboxes run root without all of them).
        let host = host_bounding_set();
        cap_list.extend(
            INSECURE_CAPABILITIES
                .iter()
                .filter(|(_, bit)| host & (1u64 << bit) != 0)
                .map(|(cap, _)| *cap),
        );
    }
    let caps: oci_spec::runtime::Capabilities = cap_list.iter().copied().collect();
    // Insecure mode gives them to every set, as BuildKit does, so that a non-root USER keeps them too.
    let (inheritable, ambient) = match security.insecure {
        true => (caps.clone(), caps.clone()),
        false => Default::default(),
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(inheritable)
        .ambient(ambient)
        .build()?;
    let user = UserBuilder::default()
        .uid(input.identity.uid)
        .gid(input.identity.gid)
        .additional_gids(input.identity.additional_gids.clone())
        .umask(0o022u32)
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(input.terminal)
        .args(input.args.to_vec())
        .env(env)
        .cwd(input.cwd)
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(security.no_new_privileges)
        .build()?;
    let mut kinds = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    if input.network == Network::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    let namespaces = kinds
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<LinuxNamespace>, _>>()?;
    let defaults = oci_spec::runtime::Linux::default();
    let (masked, readonly) = match security.insecure {
        true => Default::default(),
        false => (
            defaults.masked_paths().clone().unwrap_or_default(),
            defaults.readonly_paths().clone().unwrap_or_default(),
        ),
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()?;
    let profile = match (&security.seccomp, security.insecure) {
        (_, true) | (Seccomp::Unconfined, _) => None,
        (Seccomp::Default, false) => Some(std::borrow::Cow::Owned(Profile::docker_default())),
        (Seccomp::Profile(profile), false) => Some(std::borrow::Cow::Borrowed(&**profile)),
    };
    if let Some(profile) = profile {
        let bounding: Vec<String> = cap_list
            .iter()
            .map(|c| serde_json::to_value(c).map(|v| v.as_str().unwrap_or_default().to_string()))
            .collect::<Result<_, _>>()
            .expect("capabilities serialize as strings");
        linux.set_seccomp(profile.to_oci(&bounding, &Host::current()?)?);
    }
    let host_sys = input.network == Network::Host && in_user_namespace();
    let mut mounts = standard_mounts(input.hosts_file, security.insecure, host_sys)?;
    mounts.extend(input.extra_mounts);
    let mut spec = Spec::default();
    spec.set_process(Some(process))
        .set_root(Some(
            RootBuilder::default()
                .path(input.rootfs)
                .readonly(false)
                .build()?,
        ))
        .set_hostname(Some(HOSTNAME.to_string()))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux));
    Ok(spec)
}

/// Whether this process runs in a user namespace other than the initial one (lade's rootless mode): its uid map is
/// not the identity of every id.
pub fn in_user_namespace() -> bool {
    static INSIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSIDE.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
    })
}

/// This process's capability bounding set (`CapBnd` of `/proc/self/status`); every capability when unreadable.
fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The container paths a config mounts onto.
pub fn mount_targets(mounts: &[Mount]) -> Vec<PathBuf> {
    mounts.iter().map(|m| m.destination().clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_build_shape() {
        let identity = Identity {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/home/u".into(),
        };
        let args = vec!["sh".to_string(), "-c".to_string(), "true".to_string()];
        let env = vec!["A=b".to_string()];
        let spec = build(SpecInput {
            rootfs: Path::new("/r"),
            args: &args,
            env: &env,
            cwd: Path::new("/app"),
            identity: &identity,
            network: Network::None,
            hosts_file: Path::new("/bundle/hosts"),
            extra_mounts: Vec::new(),
            security: &Security::default(),
            terminal: false,
        })
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["hostname"], HOSTNAME);
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["user"]["additionalGids"][0], 10);
        assert_eq!(json["process"]["env"][0], DEFAULT_PATH);
        assert_eq!(json["process"]["env"][2], "HOME=/home/u");
        assert_eq!(json["process"]["cwd"], "/app");
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "pid", "ipc", "uts", "network"]);
        let targets = mount_targets(spec.mounts().as_ref().unwrap());
        for t in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/sys",
            "/etc/resolv.conf",
            "/etc/hosts",
        ] {
            assert!(targets.contains(&PathBuf::from(t)), "{t} missing");
        }
        let mount_at = |destination: &str| {
            spec.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.destination() == Path::new(destination))
                .unwrap()
                .clone()
        };
        let sys = mount_at("/sys");
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert_eq!(
            mount_at("/etc/hosts").source().as_deref(),
            Some(Path::new("/bundle/hosts"))
        );
        let caps = &json["process"]["capabilities"];
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 14);
        assert!(caps["inheritable"].as_array().is_none_or(|c| c.is_empty()));
        assert!(caps["ambient"].as_array().is_none_or(|c| c.is_empty()));
    }
}
