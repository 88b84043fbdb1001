//! `RUN --mount` flags turned into the runtime's mount specs: cache directories, binds from the context or another
//! stage, tmpfs, and secrets given to the build with `--secret`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dockerfile::instructions::{CacheSharing, Mount, MountType};
use crate::runtime::{BindMount, CacheMount, MountSpec, SecretMount, Sharing, TmpfsMount};

use super::StepError;

/// Where `RUN --mount type=bind` reads from: the context, or a prepared stage or image root filesystem.
pub trait BindSources {
    fn root_for(&self, from: Option<&str>) -> Result<PathBuf, StepError>;
}

/// Converts the typed mounts of a RUN; `workdir` resolves relative targets.
pub fn to_specs(
    mounts: &[Mount],
    workdir: &Path,
    secrets: &BTreeMap<String, PathBuf>,
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
    for mount in mounts {
        let spec = match mount.mount_type {
            MountType::Cache => {
                let target = require_target(mount)?;
                MountSpec::Cache(CacheMount {
                    id: Some(
                        mount
                            .id
                            .clone()
                            .unwrap_or_else(|| target.display().to_string()),
                    ),
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
                })
            }
            MountType::Bind => {
                let root = sources.root_for(mount.from.as_deref())?;
                let relative = mount
                    .source
                    .as_deref()
                    .unwrap_or("")
                    .trim_start_matches('/');
                let source =
                    layerstore::layer::apply::resolve_in_root(&root, Path::new(relative), false)
                        .map_err(|source| StepError::Io {
                            context: format!("resolving the bind mount source {relative:?}"),
                            source,
                        })?;
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
            other => {
                return Err(StepError::Unsupported(format!(
                    "RUN --mount type {other:?} is not supported by lade yet"
                )))
            }
        };
        specs.push(spec);
    }
    Ok(specs)
}
