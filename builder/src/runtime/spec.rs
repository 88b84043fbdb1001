//! The OCI runtime config (`config.json`) of a build step, shaped like BuildKit's: mount, pid, ipc and uts
//! namespaces (plus network when the step has no network), hostname `buildkitsandbox`, the usual `/proc`, `/dev`,
//! `/dev/pts`, `/dev/shm`, `/dev/mqueue`, read-only `/sys`, the host's `/etc/resolv.conf` and BuildKit's own
//! `/etc/hosts` read-only, and Docker's default capabilities (none inheritable or ambient).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_mounts, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, Mount, ProcessBuilder, RootBuilder, Spec,
    UserBuilder,
};

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
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a Path,
    pub identity: &'a Identity,
    pub network: Network,
    /// A file holding [`HOSTS_CONTENT`], mounted at `/etc/hosts`.
    pub hosts_file: &'a Path,
    /// Mounts of `RUN --mount`, after the standard ones.
    pub extra_mounts: Vec<Mount>,
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

/// The standard mounts: the runtime defaults without cgroups, plus the host's resolv.conf and `hosts_file` as
/// `/etc/hosts`.
fn standard_mounts(hosts_file: &Path) -> Result<Vec<Mount>, RuntimeError> {
    let mut mounts: Vec<Mount> = get_default_mounts()
        .into_iter()
        .filter(|m| m.destination() != Path::new("/sys/fs/cgroup"))
        .collect();
    for (source, destination) in [(Path::new(RESOLV_CONF), RESOLV_CONF), (hosts_file, HOSTS)] {
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(vec![
                    "rbind".to_string(),
                    "rprivate".to_string(),
                    "ro".to_string(),
                ])
                .build()?,
        );
    }
    Ok(mounts)
}

/// The container paths the standard mounts cover.
pub fn standard_targets() -> Result<Vec<PathBuf>, RuntimeError> {
    Ok(mount_targets(&standard_mounts(Path::new(HOSTS))?))
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
    let caps: oci_spec::runtime::Capabilities = CAPABILITIES.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
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
        .no_new_privileges(false)
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
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(defaults.masked_paths().clone().unwrap_or_default())
        .readonly_paths(defaults.readonly_paths().clone().unwrap_or_default())
        .build()?;
    let mut mounts = standard_mounts(input.hosts_file)?;
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
