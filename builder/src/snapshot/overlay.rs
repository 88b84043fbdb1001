//! Overlay mounts: read-only lower directories under a fresh upper directory, mounted on `merged`.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use super::{io_context, SnapshotError};

/// Options that keep the upper directory a plain changeset: no inode index, no redirected renames, no
/// metadata-only copy-ups.
const FIXED_OPTIONS: &str = "index=off,redirect_dir=off,metacopy=off";

/// The same in a user namespace (rootless lade): overlayfs keeps its marks in `user.overlay.*` xattrs there
/// (`userxattr`), which takes `redirect_dir=nofollow` instead of `off` (neither creates redirects).
const USER_NAMESPACE_OPTIONS: &str = "index=off,redirect_dir=nofollow,metacopy=off,userxattr";

/// The fixed options for where this process runs.
fn fixed_options() -> &'static str {
    if crate::runtime::spec::in_user_namespace() {
        USER_NAMESPACE_OPTIONS
    } else {
        FIXED_OPTIONS
    }
}

/// An overlay mounted at `<dir>/merged` with `<dir>/upper` and `<dir>/work`; unmounted when dropped.
pub struct OverlayMount {
    upper: PathBuf,
    merged: PathBuf,
    lowers: Vec<PathBuf>,
    mounted: bool,
}

impl OverlayMount {
    /// Mounts `lowers` (bottom first; an empty list gets an empty lower directory) under a new upper in `dir`.
    pub fn mount(dir: &Path, lowers: &[PathBuf]) -> Result<OverlayMount, SnapshotError> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        let mut lowers = lowers.to_vec();
        if lowers.is_empty() {
            lowers.push(dir.join("empty"));
        }
        for d in [&upper, &work, &merged].into_iter().chain(lowers.iter()) {
            fs::create_dir_all(d).map_err(io_context(|| format!("creating {}", d.display())))?;
        }
        let options = legacy_options(&lowers, &upper, &work);
        let mounted = match options {
            // Short enough for mount(2)'s one page of options, and every path expressible in them.
            Some(data) if data.len() <= 4095 => {
                let data = std::ffi::CString::new(data).expect("paths checked to have no NUL");
                mount(
                    "overlay",
                    &merged,
                    "overlay",
                    MountFlags::empty(),
                    data.as_c_str(),
                )
            }
            // Too many layers for one page: the new mount API takes lower directories one at a time.
            _ => mount_layer_by_layer(&lowers, &upper, &work, &merged),
        };
        mounted.map_err(|e| SnapshotError::Mount {
            target: merged.clone(),
            source: std::io::Error::other(format!(
                "{} ({} lower layers)",
                std::io::Error::from(e),
                lowers.len()
            )),
        })?;
        Ok(OverlayMount {
            upper,
            merged,
            lowers,
            mounted: true,
        })
    }

    /// The mount point: the step's root filesystem.
    pub(crate) fn merged(&self) -> &Path {
        &self.merged
    }

    /// The writable upper directory, which holds what the step changed.
    pub(crate) fn upper(&self) -> &Path {
        &self.upper
    }

    /// The lower directories, bottom first.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// Unmounts (idempotent); a busy mount is detached lazily.
    pub fn unmount(&mut self) -> Result<(), SnapshotError> {
        if !self.mounted {
            return Ok(());
        }
        if unmount(&self.merged, UnmountFlags::empty()).is_err() {
            unmount(&self.merged, UnmountFlags::DETACH).map_err(|e| SnapshotError::Mount {
                target: self.merged.clone(),
                source: e.into(),
            })?;
        }
        self.mounted = false;
        Ok(())
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// The `mount(2)` data for an overlay, or `None` when a path has a character the option syntax cannot carry.
fn legacy_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> Option<String> {
    let text = |p: &Path| {
        p.to_str()
            .filter(|t| !t.contains([':', ',', '\0']))
            .map(str::to_string)
    };
    let lowerdir: Vec<String> = lowers
        .iter()
        .rev()
        .map(|l| text(l))
        .collect::<Option<_>>()?;
    Some(format!(
        "lowerdir={},upperdir={},workdir={},{}",
        lowerdir.join(":"),
        text(upper)?,
        text(work)?,
        fixed_options()
    ))
}

/// Mounts with `fsopen`/`fsconfig` (`lowerdir+`, Linux 6.8 and later), which has no limit on the option length.
fn mount_layer_by_layer(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> rustix::io::Result<()> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags,
        FsOpenFlags, MountAttrFlags, MoveMountFlags,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for lower in lowers.iter().rev() {
        fsconfig_set_string(&fs, "lowerdir+", lower.as_path())?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)?;
    fsconfig_set_string(&fs, "workdir", work)?;
    for option in fixed_options().split(',') {
        match option.split_once('=') {
            Some((key, value)) => fsconfig_set_string(&fs, key, value)?,
            None => rustix::mount::fsconfig_set_flag(&fs, option)?,
        }
    }
    fsconfig_create(&fs)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        merged,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// Whether `path` is mounted on (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (fs::symlink_metadata(path), fs::symlink_metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Whether an overlay can be mounted under `scratch_parent` here (root with overlayfs support).
pub fn works(scratch_parent: &Path) -> bool {
    let dir = scratch_parent.join(layerstore::fsutil::unique_name(".probe-"));
    let ok = fs::create_dir_all(&dir).is_ok() && OverlayMount::mount(&dir, &[]).is_ok();
    let _ = fs::remove_dir_all(&dir);
    ok
}
