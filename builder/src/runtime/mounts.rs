//! `RUN --mount` mounts: what the build asks for, and the host side prepared for one run (cache directories and
//! their locks, throwaway copies for `rw` binds, secret files).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use layerstore::{Digest, Store};
use oci_spec::runtime::{Mount, MountBuilder};
use rustix::fs::FlockOperation;

use super::RuntimeError;

/// How concurrent builds share a cache mount (`sharing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Everyone uses the same directory at once.
    #[default]
    Shared,
    /// A user that finds the directory in use gets another one.
    Private,
    /// Users wait for each other.
    Locked,
}

/// `--mount=type=cache`: a directory under the store that persists across builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMount {
    /// The mount point in the container.
    pub target: PathBuf,
    /// Defaults to the target.
    pub id: Option<String>,
    /// How concurrent builds share the directory.
    pub sharing: Sharing,
    /// Mount it read-only.
    pub readonly: bool,
    /// Owner and mode of the directory when it is first created (BuildKit defaults: 0, 0, 0o755).
    pub uid: u32,
    /// Group of the directory when it is first created.
    pub gid: u32,
    /// Permission bits of the directory when it is first created.
    pub mode: u32,
    /// A directory whose contents the cache starts with (`from=` a stage or image, at `source=`), instead of empty.
    pub seed: Option<PathBuf>,
}

/// `--mount=type=bind`: a host directory or file (from the context or another stage's root filesystem, resolved by
/// the caller), read-only unless `readwrite`, in which case the run gets a copy whose changes are thrown away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The mount point in the container.
    pub target: PathBuf,
    /// The host path mounted, already resolved.
    pub source: PathBuf,
    /// Give the run a throwaway copy it may write to, instead of a read-only bind.
    pub readwrite: bool,
}

impl BindMount {
    /// A bind of `source` (a path inside `root`: the context or a stage's root filesystem, symlinks resolved as if
    /// `root` were `/`, never leaving it) at `target`.
    pub fn within(
        root: &Path,
        source: &str,
        target: PathBuf,
        readwrite: bool,
    ) -> Result<BindMount, RuntimeError> {
        let relative: PathBuf = Path::new(source)
            .components()
            .filter(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::ParentDir
                )
            })
            .collect();
        let resolved = crate::tree::resolve_existing(root, &relative).ok_or_else(|| {
            RuntimeError::BindSource {
                source_path: source.to_string(),
                root: root.to_path_buf(),
            }
        })?;
        Ok(BindMount {
            target,
            source: resolved,
            readwrite,
        })
    }
}

/// `--mount=type=tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// The mount point in the container.
    pub target: PathBuf,
    /// Size limit in bytes.
    pub size: Option<u64>,
}

/// `--mount=type=secret`: a host file mounted read-only at `target` (default `/run/secrets/<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// The secret's id (`id=`, which `--secret id=…` gives a file for).
    pub id: String,
    /// The host file given for this id with `--secret`; `None` when the build was given none.
    pub source: Option<PathBuf>,
    /// The mount point; `None` is `/run/secrets/<id>`.
    pub target: Option<PathBuf>,
    /// Fail when no source was given (otherwise the mount is skipped).
    pub required: bool,
    /// Owner of the mounted file (BuildKit default 0).
    pub uid: u32,
    /// Group of the mounted file (BuildKit default 0).
    pub gid: u32,
    /// BuildKit's default is 0o400.
    pub mode: u32,
}

/// A `RUN --mount`, or a `lade run -v` volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// `type=cache`.
    Cache(CacheMount),
    /// `type=bind`.
    Bind(BindMount),
    /// `type=tmpfs`.
    Tmpfs(TmpfsMount),
    /// `type=secret`.
    Secret(SecretMount),
    /// `lade run -v HOST:CONTAINER[:ro]`: a host path mounted as is, writes going through to the host unless
    /// read-only.
    Volume(BindMount),
}

impl MountSpec {
    /// Where the mount appears in the container; `None` for an optional secret that was not given.
    pub fn target(&self) -> Option<PathBuf> {
        match self {
            MountSpec::Cache(m) => Some(m.target.clone()),
            MountSpec::Bind(m) | MountSpec::Volume(m) => Some(m.target.clone()),
            MountSpec::Tmpfs(m) => Some(m.target.clone()),
            MountSpec::Secret(m) if m.source.is_none() && !m.required => None,
            MountSpec::Secret(m) => Some(
                m.target
                    .clone()
                    .unwrap_or_else(|| Path::new("/run/secrets").join(&m.id)),
            ),
        }
    }
}

/// Host-side resources of a run's mounts, released when dropped (locks held until then).
#[derive(Default)]
pub struct PreparedMounts {
    pub mounts: Vec<Mount>,
    _locks: Vec<File>,
}

/// The host directory of a cache mount id (hashed, so any id is a safe name).
fn cache_dir(store: &Store, id: &str) -> PathBuf {
    store
        .root()
        .join("cache-mounts")
        .join(&Digest::sha256_of(id.as_bytes()).hex()[..32])
}

fn bind(target: &Path, source: &Path, readonly: bool) -> Result<Mount, RuntimeError> {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".to_string());
    }
    Ok(MountBuilder::default()
        .destination(target)
        .typ("bind")
        .source(source)
        .options(options)
        .build()?)
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> RuntimeError {
    move |source| RuntimeError::Io { context, source }
}

/// Prepares the host side of `specs` for a run whose scratch directory is `scratch`.
pub fn prepare(
    store: &Store,
    scratch: &Path,
    specs: &[MountSpec],
) -> Result<PreparedMounts, RuntimeError> {
    let mut prepared = PreparedMounts::default();
    for (index, spec) in specs.iter().enumerate() {
        match spec {
            MountSpec::Cache(cache) => {
                let id = cache
                    .id
                    .clone()
                    .unwrap_or_else(|| cache.target.display().to_string());
                let (dir, lock) = acquire_cache_dir(store, &id, cache.sharing)?;
                if let Some(lock) = lock {
                    prepared._locks.push(lock);
                }
                if !dir.exists() {
                    create_cache_dir(&dir, cache)?;
                }
                prepared
                    .mounts
                    .push(bind(&cache.target, &dir, cache.readonly)?);
            }
            MountSpec::Bind(b) => {
                if !b.readwrite {
                    prepared.mounts.push(bind(&b.target, &b.source, true)?);
                    continue;
                }
                let copy = scratch.join(format!("bind-{index}"));
                crate::tree::copy_tree(&b.source, &copy).map_err(io_err(format!(
                    "copying {} for a rw bind mount",
                    b.source.display()
                )))?;
                prepared.mounts.push(bind(&b.target, &copy, false)?);
            }
            MountSpec::Volume(v) => prepared
                .mounts
                .push(bind(&v.target, &v.source, !v.readwrite)?),
            MountSpec::Tmpfs(t) => {
                let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(size) = t.size {
                    options.push(format!("size={size}"));
                }
                prepared.mounts.push(
                    MountBuilder::default()
                        .destination(&t.target)
                        .typ("tmpfs")
                        .source("tmpfs")
                        .options(options)
                        .build()?,
                );
            }
            MountSpec::Secret(secret) => {
                let Some(target) = spec.target() else {
                    continue;
                };
                let source = secret
                    .source
                    .as_ref()
                    .ok_or_else(|| RuntimeError::SecretMissing(secret.id.clone()))?;
                let copy = scratch.join(format!("secret-{index}"));
                fs::copy(source, &copy).map_err(io_err(format!(
                    "reading secret {} from {}",
                    secret.id,
                    source.display()
                )))?;
                fs::set_permissions(&copy, fs::Permissions::from_mode(secret.mode))
                    .map_err(io_err(format!("setting the mode of secret {}", secret.id)))?;
                std::os::unix::fs::chown(&copy, Some(secret.uid), Some(secret.gid))
                    .map_err(io_err(format!("setting the owner of secret {}", secret.id)))?;
                prepared.mounts.push(bind(&target, &copy, true)?);
            }
        }
    }
    Ok(prepared)
}

/// Picks the directory for a cache id under its sharing mode, with the lock that keeps it.
fn acquire_cache_dir(
    store: &Store,
    id: &str,
    sharing: Sharing,
) -> Result<(PathBuf, Option<File>), RuntimeError> {
    let base = cache_dir(store, id);
    let parent = base.parent().expect("cache dirs have a parent");
    fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    let open_lock = |dir: &Path| {
        let path = dir.with_extension("lock");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("opening {}", path.display())))
    };
    match sharing {
        Sharing::Shared => {
            // Shared users take a shared lock so that a private user sees the directory as busy.
            let file = open_lock(&base)?;
            rustix::fs::flock(file.as_fd(), FlockOperation::LockShared)
                .map_err(|e| io_err(format!("locking cache {id}"))(e.into()))?;
            Ok((base, Some(file)))
        }
        Sharing::Locked => {
            let file = open_lock(&base)?;
            rustix::fs::flock(file.as_fd(), FlockOperation::LockExclusive)
                .map_err(|e| io_err(format!("locking cache {id}"))(e.into()))?;
            Ok((base, Some(file)))
        }
        Sharing::Private => {
            for n in 0.. {
                let dir = if n == 0 {
                    base.clone()
                } else {
                    base.with_file_name(format!(
                        "{}-{n}",
                        base.file_name().unwrap_or_default().to_string_lossy()
                    ))
                };
                let file = open_lock(&dir)?;
                if rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive).is_ok()
                {
                    return Ok((dir, Some(file)));
                }
            }
            unreachable!("the loop only ends by returning")
        }
    }
}

fn create_cache_dir(dir: &Path, cache: &CacheMount) -> Result<(), RuntimeError> {
    let tmp = dir.with_extension(layerstore::fsutil::unique_name("new-"));
    match &cache.seed {
        // A seeded cache is a copy of its seed, owner and mode included.
        Some(seed) => crate::tree::copy_tree(seed, &tmp).map_err(io_err(format!(
            "seeding the cache mount {} from {}",
            cache.target.display(),
            seed.display()
        )))?,
        None => {
            fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(cache.mode))
                .map_err(io_err(format!("setting the mode of {}", tmp.display())))?;
            std::os::unix::fs::chown(&tmp, Some(cache.uid), Some(cache.gid))
                .map_err(io_err(format!("setting the owner of {}", tmp.display())))?;
        }
    }
    if fs::rename(&tmp, dir).is_err() {
        // Another build created it meanwhile.
        let _ = fs::remove_dir(&tmp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(sharing: Sharing) -> MountSpec {
        MountSpec::Cache(CacheMount {
            target: "/root/.cache".into(),
            id: Some("pip".into()),
            sharing,
            readonly: false,
            uid: 0,
            gid: 0,
            mode: 0o755,
            seed: None,
        })
    }

    fn sources(p: &PreparedMounts) -> Vec<PathBuf> {
        p.mounts
            .iter()
            .map(|m| m.source().clone().unwrap())
            .collect()
    }

    #[test]
    fn private_caches_split_while_in_use_and_shared_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let scratch = dir.path().join("scratch");
        let a = prepare(&store, &scratch, &[cache(Sharing::Private)]).unwrap();
        let b = prepare(&store, &scratch, &[cache(Sharing::Private)]).unwrap();
        assert_ne!(sources(&a), sources(&b));
        drop(b);
        let c = prepare(&store, &scratch, &[cache(Sharing::Private)]).unwrap();
        assert_ne!(sources(&a), sources(&c));
        drop((a, c));
        let s1 = prepare(&store, &scratch, &[cache(Sharing::Shared)]).unwrap();
        let s2 = prepare(&store, &scratch, &[cache(Sharing::Shared)]).unwrap();
        assert_eq!(sources(&s1), sources(&s2));
        assert!(sources(&s1)[0].is_dir());
    }

    #[test]
    fn bind_sources_stay_inside_their_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("src/pkg")).unwrap();
        std::os::unix::fs::symlink("/../../etc", root.join("escape")).unwrap();
        let bind = BindMount::within(&root, "/src/pkg", "/mnt".into(), false).unwrap();
        assert_eq!(bind.source, root.join("src/pkg"));
        let inside = BindMount::within(&root, "../../src", "/mnt".into(), false).unwrap();
        assert_eq!(inside.source, root.join("src"));
        // The link resolves to <root>/etc, which does not exist: not the host's /etc.
        assert!(matches!(
            BindMount::within(&root, "escape", "/mnt".into(), false),
            Err(RuntimeError::BindSource { .. })
        ));
        assert!(
            BindMount::within(&root, ".", "/mnt".into(), true)
                .unwrap()
                .readwrite
        );
    }

    #[test]
    fn a_required_secret_without_source_fails_and_an_optional_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let secret = |required| {
            MountSpec::Secret(SecretMount {
                id: "token".into(),
                source: None,
                target: None,
                required,
                uid: 0,
                gid: 0,
                mode: 0o400,
            })
        };
        assert!(matches!(
            prepare(&store, dir.path(), &[secret(true)]),
            Err(RuntimeError::SecretMissing(id)) if id == "token"
        ));
        assert!(prepare(&store, dir.path(), &[secret(false)])
            .unwrap()
            .mounts
            .is_empty());
        assert_eq!(
            secret(true).target(),
            Some(PathBuf::from("/run/secrets/token"))
        );
    }
}
