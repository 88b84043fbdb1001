//! Copying directory trees with everything a layer records: type, mode, owner, times, xattrs, symlinks (never
//! followed), hard links within the tree, device nodes and fifos.
//!
//! Used for copied snapshots where overlayfs is unavailable and for the throwaway copy of a `RUN --mount=type=bind,rw`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

/// Copies the contents of `src` into the directory `dst` (created when missing, its metadata taken from `src`).
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_entry(src, dst, &mut links)
}

fn copy_entry(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        match fs::create_dir(dst) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => {}
            other => other?,
        }
        let mut names: Vec<_> = fs::read_dir(src)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            copy_entry(&src.join(&name), &dst.join(&name), links)?;
        }
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, dst);
            }
            links.insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        let mut from = File::open(src)?;
        let mut to = File::create(dst)?;
        io::copy(&mut from, &mut to)?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            // Sockets cannot be copied (nor stored in a layer).
            return Ok(());
        };
        rustix::fs::mknodat(
            CWD,
            dst,
            kind,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )?;
    }
    copy_metadata(src, &meta, dst)
}

/// Where `relative` leads inside `root` when every symlink, the last one too, is followed as if `root` were `/`;
/// `None` when that does not exist. Nothing is created.
pub fn resolve_existing(root: &Path, relative: &Path) -> Option<std::path::PathBuf> {
    let mut relative = relative.to_path_buf();
    for _ in 0..40 {
        let path = layerstore::layer::apply::resolve_in_root(root, &relative, false).ok()?;
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(path);
        }
        let link = fs::read_link(&path).ok()?;
        let parent = path.parent().unwrap_or(root);
        let base = parent.strip_prefix(root).unwrap_or(Path::new(""));
        relative = if link.is_absolute() {
            link
        } else {
            base.join(link)
        };
    }
    None
}

/// Gives `dst` the owner, mode, xattrs and times of `src` (whose metadata is `meta`); symlinks are not followed.
fn copy_metadata(src: &Path, meta: &fs::Metadata, dst: &Path) -> io::Result<()> {
    let is_link = meta.file_type().is_symlink();
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    copy_xattrs(src, dst);
    if !is_link {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    set_times(
        dst,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.atime(),
        meta.atime_nsec(),
    )
}

/// Sets access and modification times of a path without following a symlink.
pub fn set_times(
    path: &Path,
    mtime: i64,
    mtime_nsec: i64,
    atime: i64,
    atime_nsec: i64,
) -> io::Result<()> {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: atime,
            tv_nsec: atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: mtime,
            tv_nsec: mtime_nsec as _,
        },
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The extended attributes of a path (not following symlinks), sorted by name; empty when unsupported.
pub fn read_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let mut value = vec![0u8; 65536];
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut value) {
            out.push((name.to_string(), value[..n].to_vec()));
        }
    }
    out.sort();
    out
}

/// Copies xattrs best effort: a filesystem or namespace refusing one (e.g. `trusted.*` when not root) is skipped.
fn copy_xattrs(src: &Path, dst: &Path) {
    for (name, value) in read_xattrs(src) {
        let _ = rustix::fs::lsetxattr(dst, name.as_str(), &value, rustix::fs::XattrFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_types_metadata_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/f"), b"content").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/nowhere", src.join("link")).unwrap();
        rustix::fs::mknodat(
            CWD,
            src.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        set_times(&src.join("d"), 1000, 5, 1000, 0).unwrap();
        let dst = dir.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        assert_eq!(fs::read(dst.join("d/f")).unwrap(), b"content");
        let f = fs::metadata(dst.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o640);
        assert_eq!(f.ino(), fs::metadata(dst.join("hard")).unwrap().ino());
        assert_eq!(
            fs::read_link(dst.join("link")).unwrap(),
            Path::new("/nowhere")
        );
        assert!(fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let d = fs::metadata(dst.join("d")).unwrap();
        assert_eq!((d.mtime(), d.mtime_nsec()), (1000, 5));
        assert!(dst.join("d/e").is_dir());
    }
}
