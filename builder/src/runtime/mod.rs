//! `RUN`: a command in an OCI bundle over a snapshot's root filesystem, run by an OCI runtime binary (runc, or crun
//! where it works).
//!
//! [`Runtime::detect`] finds a runtime that actually starts containers here (crun, for one, fails on hybrid-cgroup
//! hosts) and remembers the verdict per binary and kernel; [`Runtime::run`] writes the bundle, runs the container
//! with a unique id (detached, see [`container`], so that its output keeps the order it was written in), streams its
//! output, and always deletes the container and its bundle afterwards.

mod container;
mod mounts;
mod seccomp;
mod security;
pub mod spec;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use layerstore::layer::apply::resolve_in_root;
use layerstore::Store;

pub use container::Streams;
pub use mounts::{BindMount, CacheMount, MountSpec, SecretMount, Sharing, TmpfsMount};
pub use security::{EntitlementError, Entitlements, Seccomp, Security};
pub use spec::Network;

use crate::snapshot::Snapshot;
use crate::users::{resolve_user, UserError};

/// How much of a step's output [`RunOutcome::output_tail`] keeps.
pub const TAIL_BYTES: usize = 64 * 1024;

/// Why a step could not be run (a command that runs and fails is not an error: see [`RunOutcome::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// None of the runtime binaries looked for (the list) is installed.
    #[error("no OCI runtime found (looked for {0}); install one with `apt-get install runc`")]
    NotInstalled(String),
    /// Every runtime found failed its test container; the text gives each one's failure.
    #[error("no OCI runtime works here: {0}")]
    NoneWorks(String),
    /// The runtime binary could not be started.
    #[error("running {runtime}: {source}")]
    Spawn {
        /// The runtime binary.
        runtime: PathBuf,
        /// The error of starting it.
        source: io::Error,
    },
    /// Writing the bundle, preparing mounts or reading the container's output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The step's `USER` cannot be resolved in its root filesystem.
    #[error(transparent)]
    User(#[from] UserError),
    /// The OCI runtime config could not be built.
    #[error("building the OCI runtime config: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    /// A `required` secret mount has no secret of its id (`--secret`).
    #[error("secret {0} is required but was not given to the build")]
    SecretMissing(String),
    /// A bind mount's source does not exist in the directory it is taken from.
    #[error("bind mount source {source_path:?} does not exist in {root}")]
    BindSource {
        /// The source as written.
        source_path: String,
        /// The context or root filesystem it was looked for in.
        root: PathBuf,
    },
    /// The step's command line is empty.
    #[error("RUN has no command")]
    EmptyCommand,
    /// The layer store failed (a temporary bundle directory, a cache mount's directory).
    #[error(transparent)]
    Store(#[from] layerstore::StoreError),
    /// The seccomp profile could not be read or decoded, or not applied to this kernel.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
}

/// One step to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The root filesystem (a snapshot's).
    pub rootfs: PathBuf,
    /// The command and its arguments (exec form); must not be empty.
    pub args: Vec<String>,
    /// `KEY=value` entries; `PATH` gets Docker's default when missing.
    pub env: Vec<String>,
    /// Absolute working directory; created (0755) when missing, as Docker does.
    pub cwd: PathBuf,
    /// `USER`: `name`, `uid`, `name:group`, `uid:gid`; `None` is root.
    pub user: Option<String>,
    /// The step's network.
    pub network: Network,
    /// Entries added to the step's `/etc/hosts` (`--add-host`).
    pub extra_hosts: Vec<ExtraHost>,
    /// `RUN --mount`s (and `lade run -v` volumes), mounted after the standard mounts.
    pub mounts: Vec<MountSpec>,
    /// Pass this process's stdin to the command (`lade run -i`); otherwise it reads nothing.
    pub interactive: bool,
    /// Seccomp, no-new-privileges and insecure mode.
    pub security: Security,
    /// Give the command a terminal (`lade run -t`): the runtime allocates a pty and joins it to this process's
    /// stdio, which must then be a terminal; the output reaches the terminal directly, not the `output` callback.
    pub terminal: bool,
    /// One stream in the order written (a build's RUN), or stdout and stderr apart (`lade run`).
    pub streams: Streams,
}

/// An `/etc/hosts` entry given as `--add-host HOST:IP` (or `HOST=IP`), as Docker takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    /// The host name, as written into `/etc/hosts`.
    pub(crate) name: String,
    /// Its address.
    pub(crate) ip: std::net::IpAddr,
}

impl std::str::FromStr for ExtraHost {
    type Err = String;

    /// Splits at the first `:` or `=`, so that an IPv6 address keeps its colons.
    fn from_str(text: &str) -> Result<ExtraHost, String> {
        let (name, ip) = text
            .split_once([':', '='])
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| format!("invalid --add-host {text:?}: expected HOST:IP"))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip = ip
            .parse()
            .map_err(|_| format!("invalid --add-host {text:?}: {ip:?} is not an IP address"))?;
        Ok(ExtraHost {
            name: name.to_string(),
            ip,
        })
    }
}

impl std::fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.ip)
    }
}

impl RunSpec {
    /// Every container path the runtime will mount onto; give them to
    /// [`crate::snapshot::Snapshot::record_mount_targets`] before running, so that targets the runtime has to create
    /// do not end up in the layer.
    pub fn mount_targets(&self) -> Result<Vec<PathBuf>, RuntimeError> {
        let mut targets = spec::standard_targets()?;
        targets.extend(self.mounts.iter().filter_map(MountSpec::target));
        Ok(targets)
    }
}

/// Which of a container's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's standard output.
    Stdout,
    /// The container's standard error.
    Stderr,
    /// Both through one pipe ([`Streams::Merged`]): in the order written, with no telling which wrote a chunk.
    Combined,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The command's exit code (128 + signal number when killed by a signal).
    pub exit_code: i32,
    /// The last [`TAIL_BYTES`] of stdout and stderr, interleaved as they came.
    pub output_tail: Vec<u8>,
}

/// What runs a RUN step's container in a snapshot: [`Runtime`] (runc or crun) in builds; the engine's tests give it
/// a fake that runs as a normal user.
pub trait ContainerRuntime: Sync {
    /// Runs `spec` over `snapshot`'s root filesystem, passing its output to `output` as it comes.
    fn run_in_snapshot(
        &self,
        snapshot: &mut Snapshot,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError>;
}

impl ContainerRuntime for Runtime {
    fn run_in_snapshot(
        &self,
        snapshot: &mut Snapshot,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        Runtime::run_in_snapshot(self, snapshot, spec, output)
    }
}

/// An OCI runtime binary known to run containers here.
#[derive(Debug, Clone)]
pub struct Runtime {
    binary: PathBuf,
    store: Store,
}

impl Runtime {
    /// Finds a working runtime: `explicit` (a path or a name on `PATH`) when given, else runc, then crun. Each
    /// candidate must run a test container (the host's `true`) successfully.
    pub fn detect(store: &Store, explicit: Option<&Path>) -> Result<Runtime, RuntimeError> {
        let names: Vec<PathBuf> = match explicit {
            Some(path) => vec![path.to_path_buf()],
            None => vec!["runc".into(), "crun".into()],
        };
        let found: Vec<PathBuf> = names.iter().filter_map(|n| find_binary(n)).collect();
        if found.is_empty() {
            let looked: Vec<String> = names.iter().map(|n| n.display().to_string()).collect();
            return Err(RuntimeError::NotInstalled(looked.join(", ")));
        }
        let mut failures = Vec::new();
        for binary in found {
            let runtime = Runtime {
                binary: binary.clone(),
                store: store.clone(),
            };
            runtime.reap_stale_containers();
            match runtime.probe_unless_known() {
                Ok(()) => return Ok(runtime),
                Err(e) => failures.push(format!("{}: {e}", binary.display())),
            }
        }
        Err(RuntimeError::NoneWorks(failures.join("; ")))
    }

    /// Deletes containers (and bundles) left by builds that died while a step ran.
    fn reap_stale_containers(&self) {
        let state_root = self.state_root();
        for (id, _) in crate::stale::dead_entries(&state_root, &["lade-"]) {
            let _ = Command::new(&self.binary)
                .arg("--root")
                .arg(&state_root)
                .args(["delete", "-f", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for (_, path) in crate::stale::dead_entries(
            &self.store.root().join("ingest"),
            &["bundle-", "runtime-probe-"],
        ) {
            let _ = fs::remove_dir_all(path);
        }
    }

    /// Where the runtime keeps the state of lade's containers.
    pub fn state_root(&self) -> PathBuf {
        self.store.root().join("runtime/state")
    }

    /// The runtime binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Probes the runtime unless an earlier probe of this same binary on this same kernel and cgroup layout
    /// succeeded: the verdict is remembered in the store, so a build does not pay for a test container every time.
    fn probe_unless_known(&self) -> Result<(), RuntimeError> {
        let stamp = self.probe_stamp();
        let record =
            self.store.root().join("runtime/probed").join(
                layerstore::Digest::sha256_of(self.binary.as_os_str().as_encoded_bytes()).hex(),
            );
        if stamp.is_some() && fs::read_to_string(&record).ok() == stamp {
            return Ok(());
        }
        self.probe()?;
        if let Some(stamp) = stamp {
            // Only a cache: failing to write it costs the next build a probe, nothing more.
            let _ = fs::create_dir_all(record.parent().unwrap_or(Path::new("/")))
                .and_then(|()| layerstore::fsutil::write_atomic(&record, stamp.as_bytes()));
        }
        Ok(())
    }

    /// What a probe's verdict depends on: the binary (path, size, modification time), the kernel release, and which
    /// cgroup hierarchy the host mounts. `None` when any of it cannot be read (then every build probes).
    fn probe_stamp(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let binary = fs::metadata(&self.binary).ok()?;
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let hybrid = Path::new("/sys/fs/cgroup/unified").exists();
        Some(format!(
            "{} {} {}.{} {} unified={unified} hybrid={hybrid}\n",
            self.binary.display(),
            binary.size(),
            binary.mtime(),
            binary.mtime_nsec(),
            kernel.trim(),
        ))
    }

    /// Runs `true` from the host's `/usr` in an otherwise empty root filesystem.
    fn probe(&self) -> Result<(), RuntimeError> {
        let scratch = self.store.temp_dir("runtime-probe-")?;
        let rootfs = scratch.path().join("rootfs");
        fs::create_dir(&rootfs).map_err(io_err(format!("creating {}", rootfs.display())))?;
        let mut mounts = Vec::new();
        for dir in ["bin", "sbin", "lib", "lib32", "lib64", "usr"] {
            let host = Path::new("/").join(dir);
            match fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let link = fs::read_link(&host)
                        .map_err(io_err(format!("reading {}", host.display())))?;
                    std::os::unix::fs::symlink(link, rootfs.join(dir))
                        .map_err(io_err(format!("linking {dir} in the probe rootfs")))?;
                }
                Ok(meta) if meta.is_dir() => mounts.push(MountSpec::Bind(BindMount {
                    target: host.clone(),
                    source: host,
                    readwrite: false,
                })),
                _ => {}
            }
        }
        let spec = RunSpec {
            rootfs,
            args: vec!["true".into()],
            env: Vec::new(),
            cwd: "/".into(),
            user: None,
            network: Network::None,
            extra_hosts: Vec::new(),
            mounts,
            interactive: false,
            security: Security::default(),
            terminal: false,
            streams: Streams::Merged,
        };
        let outcome = self.run(&spec, &mut |_, _| {})?;
        if outcome.exit_code != 0 {
            return Err(RuntimeError::NoneWorks(format!(
                "test container exited with {}: {}",
                outcome.exit_code,
                String::from_utf8_lossy(&outcome.output_tail).trim()
            )));
        }
        Ok(())
    }

    /// Runs a step in `snapshot` (whatever `spec.rootfs` says), recording the mount targets first so that the empty
    /// files the runtime creates to mount on stay out of the snapshot's layer. The usual way to run RUN.
    pub fn run_in_snapshot(
        &self,
        snapshot: &mut Snapshot,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        let spec = RunSpec {
            rootfs: snapshot.rootfs().to_path_buf(),
            ..spec.clone()
        };
        snapshot.record_mount_targets(&spec.mount_targets()?);
        self.run(&spec, output)
    }

    /// Runs one step, passing its output to `output` as it comes, each chunk with the stream it came from.
    pub fn run(
        &self,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        if spec.args.is_empty() {
            return Err(RuntimeError::EmptyCommand);
        }
        let identity = resolve_user(&spec.rootfs, spec.user.as_deref().unwrap_or("0"))?;
        let cwd_relative = spec.cwd.strip_prefix("/").unwrap_or(&spec.cwd);
        resolve_in_root(&spec.rootfs, cwd_relative, true).map_err(io_err(format!(
            "creating the working directory {}",
            spec.cwd.display()
        )))?;
        let state_root = self.state_root();
        fs::create_dir_all(&state_root)
            .map_err(io_err(format!("creating {}", state_root.display())))?;
        let mut container = container::Container {
            binary: self.binary.clone(),
            state_root,
            id: layerstore::fsutil::unique_name("lade-"),
            bundle: self.store.temp_dir("bundle-")?,
            init: None,
        };
        let prepared = mounts::prepare(&self.store, container.bundle.path(), &spec.mounts)?;
        let hosts_file = container.bundle.path().join("hosts");
        let mut hosts = spec::HOSTS_CONTENT.to_string();
        for host in &spec.extra_hosts {
            hosts.push_str(&format!("{}\t{}\n", host.ip, host.name));
        }
        fs::write(&hosts_file, hosts)
            .map_err(io_err(format!("writing {}", hosts_file.display())))?;
        let config = spec::build(spec::SpecInput {
            rootfs: &spec.rootfs,
            args: &spec.args,
            env: &spec.env,
            cwd: &spec.cwd,
            identity: &identity,
            network: spec.network,
            hosts_file: &hosts_file,
            extra_mounts: prepared.mounts.clone(),
            security: &spec.security,
            terminal: spec.terminal,
        })?;
        let config_path = container.bundle.path().join("config.json");
        let json = serde_json::to_vec_pretty(&config).expect("a runtime config serializes");
        fs::write(&config_path, json)
            .map_err(io_err(format!("writing {}", config_path.display())))?;
        let outcome = container.run(spec.interactive, spec.terminal, spec.streams, output)?;
        drop(prepared);
        Ok(outcome)
    }
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> RuntimeError {
    move |source| RuntimeError::Io { context, source }
}

/// A path as given, or a name looked up on `PATH` (plus the sbin directories, where Debian puts runc).
fn find_binary(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_says_how_to_install_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = Runtime::detect(&store, Some(Path::new("/nonexistent/runc"))).unwrap_err();
        assert!(matches!(err, RuntimeError::NotInstalled(_)));
        assert!(err.to_string().contains("apt-get install runc"), "{err}");
    }

    #[test]
    fn a_runtime_that_cannot_run_containers_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // `false` exists but is no OCI runtime: its "container" never runs.
        let err = Runtime::detect(&store, Some(Path::new("false"))).unwrap_err();
        assert!(matches!(err, RuntimeError::NoneWorks(_)), "{err}");
    }
}
