//! Overlay mounts: read-only lower directories under a fresh upper directory, mounted on `merged`.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use super::{io_context, SnapshotError};

/// Options that keep the upper directory a plain changeset: no inode index, no redirected renames, no
/// metadata-only copy-ups.
const FIXED_OPTIONS: &str = "index=off,redirect_dir=off,metacopy=off";

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
        let mut lowerdir = String::new();
        for lower in lowers.iter().rev() {
            let text = lower.to_str().filter(|t| !t.contains([':', ',']));
            let Some(text) = text else {
                return Err(SnapshotError::Mount {
                    target: merged,
                    source: std::io::Error::other(format!(
                        "layer directory {} has a name overlayfs options cannot carry",
                        lower.display()
                    )),
                });
            };
            if !lowerdir.is_empty() {
                lowerdir.push(':');
            }
            lowerdir.push_str(text);
        }
        let data = format!(
            "lowerdir={lowerdir},upperdir={},workdir={},{FIXED_OPTIONS}",
            upper.display(),
            work.display()
        );
        if data.len() > 4095 {
            return Err(SnapshotError::TooManyLayers {
                layers: lowers.len(),
                len: data.len(),
            });
        }
        let data = std::ffi::CString::new(data).expect("paths checked above have no NUL");
        mount(
            "overlay",
            &merged,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| SnapshotError::Mount {
            target: merged.clone(),
            source: e.into(),
        })?;
        Ok(OverlayMount {
            upper,
            merged,
            lowers,
            mounted: true,
        })
    }

    pub fn merged(&self) -> &Path {
        &self.merged
    }

    pub fn upper(&self) -> &Path {
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

/// Whether an overlay can be mounted under `scratch_parent` here (root with overlayfs support).
pub fn works(scratch_parent: &Path) -> bool {
    let dir = scratch_parent.join(layerstore::fsutil::unique_name(".probe-"));
    let ok = fs::create_dir_all(&dir).is_ok() && OverlayMount::mount(&dir, &[]).is_ok();
    let _ = fs::remove_dir_all(&dir);
    ok
}
