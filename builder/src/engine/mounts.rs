//! `RUN --mount` flags turned into the runtime's mount specs: cache directories, binds from the context or another
//! stage, tmpfs, secrets given to the build with `--secret`, and SSH agent sockets given with `--ssh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::runtime::{BindMount, CacheMount, MountSpec, SecretMount, Sharing, TmpfsMount};
use lade_dockerfile::{CacheSharing, Mount, MountType};

use super::StepError;

/// The agent an SSH mount without `id=` uses, and the one `--ssh default` provides.
pub const DEFAULT_SSH_ID: &str = "default";

/// Where `RUN --mount type=bind` reads from: the context, or a prepared stage or image root filesystem.
pub trait BindSources {
    fn root_for(&self, from: Option<&str>) -> Result<PathBuf, StepError>;
    /// The root filesystem of `from` (a stage or image), with a stable key for its content.
    fn stage_root(&self, from: &str) -> Result<(PathBuf, String), StepError>;
}

/// A mount's `source=` inside the root it comes from, symlinks followed within that root.
fn resolve_source(root: &Path, relative: &str) -> Result<PathBuf, StepError> {
    layerstore::layer::apply::resolve_in_root(root, Path::new(relative), false).map_err(|source| {
        StepError::Io {
            context: format!("resolving the mount source {relative:?}"),
            source,
        }
    })
}

/// Converts the typed mounts of a RUN; `workdir` resolves relative targets.
pub fn to_specs(
    mounts: &[Mount],
    workdir: &Path,
    secrets: &BTreeMap<String, PathBuf>,
    ssh_agents: &BTreeMap<String, PathBuf>,
    sources: &dyn BindSources,
) -> Result<Vec<MountSpec>, StepError> {
    let target_of = |mount: &Mount| -> Option<PathBuf> {
        mount.target.as_ref().map(|t| {
            if t.starts_with('/') {
                PathBuf::from(t)
            } else {
                workdir.join(t)
            }
        })
    };
    let require_target = |mount: &Mount| {
        target_of(mount)
            .ok_or_else(|| StepError::Unsupported("RUN --mount needs a target".to_string()))
    };
    let mut specs = Vec::new();
    let ssh_index = ssh_positions(mounts);
    for (position, mount) in mounts.iter().enumerate() {
        let ssh_index = ssh_index[position];
        let spec = match mount.mount_type {
            MountType::Cache => {
                let target = require_target(mount)?;
                let mut id = mount
                    .id
                    .clone()
                    .unwrap_or_else(|| target.display().to_string());
                // `from=` seeds the cache with a stage's or image's directory; as in BuildKit, that is another
                // cache than the unseeded one of the same id, one per seed.
                let seed = match &mount.from {
                    Some(from) => {
                        let (root, identity) = sources.stage_root(from)?;
                        let relative = mount
                            .source
                            .as_deref()
                            .unwrap_or("")
                            .trim_start_matches('/');
                        id = format!("{id}\0{identity}\0{relative}");
                        Some(resolve_source(&root, relative)?)
                    }
                    None => None,
                };
                MountSpec::Cache(CacheMount {
                    id: Some(id),
                    target,
                    sharing: match mount.sharing.unwrap_or(CacheSharing::Shared) {
                        CacheSharing::Shared => Sharing::Shared,
                        CacheSharing::Private => Sharing::Private,
                        CacheSharing::Locked => Sharing::Locked,
                    },
                    readonly: mount.read_only,
                    uid: mount.uid.unwrap_or(0),
                    gid: mount.gid.unwrap_or(0),
                    mode: mount.mode.unwrap_or(0o755),
                    seed,
                })
            }
            MountType::Bind => {
                let root = sources.root_for(mount.from.as_deref())?;
                let relative = mount
                    .source
                    .as_deref()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let source = resolve_source(&root, relative)?;
                MountSpec::Bind(BindMount {
                    target: require_target(mount)?,
                    source,
                    readwrite: !mount.read_only,
                })
            }
            MountType::Tmpfs => MountSpec::Tmpfs(TmpfsMount {
                target: require_target(mount)?,
                size: mount.size,
            }),
            MountType::Secret => {
                let id = mount
                    .id
                    .clone()
                    .or_else(|| {
                        mount
                            .target
                            .as_ref()
                            .and_then(|t| Path::new(t).file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                    })
                    .ok_or_else(|| {
                        StepError::Unsupported(
                            "RUN --mount=type=secret needs an id or a target".to_string(),
                        )
                    })?;
                MountSpec::Secret(SecretMount {
                    source: secrets.get(&id).cloned(),
                    id,
                    target: target_of(mount),
                    required: mount.required,
                    uid: mount.uid.unwrap_or(0),
                    gid: mount.gid.unwrap_or(0),
                    mode: mount.mode.unwrap_or(0o400),
                })
            }
            MountType::Ssh => {
                let id = mount.id.as_deref().unwrap_or(DEFAULT_SSH_ID);
                match ssh_agents.get(id) {
                    Some(socket) => MountSpec::Bind(BindMount {
                        target: ssh_target(mount, ssh_index, workdir),
                        source: socket.clone(),
                        // A socket on a read-only bind still accepts connections.
                        readwrite: false,
                    }),
                    // As BuildKit: an SSH mount nobody provided is left out unless it is required.
                    None if !mount.required => continue,
                    None => {
                        return Err(StepError::Unsupported(format!(
                            "RUN --mount=type=ssh,id={id} is required, but the build was given no SSH agent for it \
                             (lade build --ssh {id}[=SOCKET])"
                        )))
                    }
                }
            }
        };
        specs.push(spec);
    }
    Ok(specs)
}

/// Each mount's index among the step's SSH mounts (BuildKit numbers the default targets by it).
fn ssh_positions(mounts: &[Mount]) -> Vec<usize> {
    let mut next = 0;
    mounts
        .iter()
        .map(|mount| {
            let index = next;
            if mount.mount_type == MountType::Ssh {
                next += 1;
            }
            index
        })
        .collect()
}

/// Where an SSH mount's socket appears: its target, else BuildKit's `/run/buildkit/ssh_agent.N`.
fn ssh_target(mount: &Mount, index: usize, workdir: &Path) -> PathBuf {
    match &mount.target {
        Some(target) => workdir.join(target),
        None => PathBuf::from(format!("/run/buildkit/ssh_agent.{index}")),
    }
}

/// The `SSH_AUTH_SOCK` BuildKit sets for a step with SSH mounts: the first one's socket (whether or not an agent was
/// provided for it).
pub fn ssh_auth_sock(mounts: &[Mount], workdir: &Path) -> Option<String> {
    let first = mounts.iter().find(|m| m.mount_type == MountType::Ssh)?;
    Some(ssh_target(first, 0, workdir).display().to_string())
}
