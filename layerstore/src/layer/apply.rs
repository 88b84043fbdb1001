//! Layer application: unpacks a layer tar onto a directory, honouring OCI whiteouts, never writing outside it.
//!
//! Entry names with `..` are refused. Absolute names are taken relative to the target. Symlinks already in the
//! target are followed as if the target were the root (like a chroot), so a link pointing outside cannot redirect a
//! later entry out of the tree; hard links must point at a path inside the tree.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use super::path::clean_entry_path;
use super::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The layer tar is malformed or unsafe: a name climbing out of the root, a link without a target or to the root, an unsupported entry type; says which.
    #[error("invalid layer: {0}")]
    Invalid(String),
    /// Creating, writing or removing a file for one entry failed.
    #[error("applying layer entry {path}: {source}")]
    Io {
        /// The entry's path inside the layer.
        path: String,
        /// What the file system reported.
        source: io::Error,
    },
    /// Reading the layer tar stream failed.
    #[error("reading layer: {0}")]
    Read(io::Error),
}

/// What applying a layer did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApplyStats {
    /// The number of tar entries processed, whiteouts included.
    pub entries: u64,
    /// The bytes of regular-file content written.
    pub bytes: u64,
}

/// Unpacks the (uncompressed) layer tar from `reader` onto `target`.
pub fn apply_layer(reader: impl Read, target: &Path) -> Result<ApplyStats, ApplyError> {
    let preserve_owner = rustix::process::geteuid().is_root();
    let mut archive = super::tar_guard::archive(reader);
    let mut stats = ApplyStats::default();
    let mut written: HashSet<PathBuf> = HashSet::new();
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    for entry in archive.entries().map_err(ApplyError::Read)? {
        let mut entry = entry.map_err(ApplyError::Read)?;
        let raw_name = entry.path().map_err(ApplyError::Read)?.into_owned();
        let Some(name) = clean_entry_path(&raw_name).map_err(ApplyError::Invalid)? else {
            continue;
        };
        let io_err = |source: io::Error| ApplyError::Io {
            path: name.display().to_string(),
            source,
        };
        let base = name
            .file_name()
            .expect("cleaned names end in a component")
            .to_owned();
        let parent_rel = name.parent().unwrap_or(Path::new(""));
        let parent = resolve_in_root(target, parent_rel, true).map_err(io_err)?;
        stats.entries += 1;

        if base.as_bytes() == OPAQUE_WHITEOUT.as_bytes() {
            clear_directory_except(&parent, target, &written).map_err(io_err)?;
            continue;
        }
        if let Some(hidden) = base.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            remove_all(&parent.join(std::ffi::OsStr::from_bytes(hidden))).map_err(io_err)?;
            continue;
        }

        let path = parent.join(&base);
        let header = entry.header().clone();
        let kind = header.entry_type();
        if let Ok(existing) = fs::symlink_metadata(&path) {
            if !(existing.is_dir() && kind.is_dir()) {
                remove_all(&path).map_err(io_err)?;
            }
        }
        let mode = header.mode().map_err(ApplyError::Read)? & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if !path.is_dir() {
                    fs::create_dir(&path).map_err(io_err)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut file = File::create(&path).map_err(io_err)?;
                stats.bytes += io::copy(&mut entry, &mut file).map_err(io_err)?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(ApplyError::Read)?
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!("symlink {} has no target", name.display()))
                    })?;
                std::os::unix::fs::symlink(&link, &path).map_err(io_err)?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(ApplyError::Read)?
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!("hard link {} has no target", name.display()))
                    })?;
                let link_rel = clean_entry_path(&link)
                    .map_err(ApplyError::Invalid)?
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!(
                            "hard link {} points at the root",
                            name.display()
                        ))
                    })?;
                let source = resolve_in_root(target, &link_rel, false).map_err(io_err)?;
                fs::hard_link(&source, &path).map_err(io_err)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                rustix::fs::mknodat(CWD, &path, file_type, Mode::from_raw_mode(mode), dev)
                    .map_err(|e| io_err(e.into()))?;
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName => continue,
            other => {
                return Err(ApplyError::Invalid(format!(
                    "entry {} has unsupported type {:?}",
                    name.display(),
                    other
                )))
            }
        }
        if kind != tar::EntryType::Link {
            set_metadata(&path, &mut entry, &header, mode, preserve_owner).map_err(io_err)?;
            let mtime = header.mtime().unwrap_or(0);
            if kind.is_dir() {
                dir_times.push((path.clone(), mtime));
            }
        }
        written.insert(path);
    }
    // Directory times last: writing children changed them.
    for (dir, mtime) in dir_times.iter().rev() {
        set_mtime(dir, *mtime).map_err(|source| ApplyError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(stats)
}

fn set_metadata(
    path: &Path,
    entry: &mut tar::Entry<impl Read>,
    header: &tar::Header,
    mode: u32,
    preserve_owner: bool,
) -> io::Result<()> {
    let is_symlink = header.entry_type() == tar::EntryType::Symlink;
    if preserve_owner {
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        rustix::fs::chownat(
            CWD,
            path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if let Ok(key) = extension.key() {
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    // Best effort, as Docker: some filesystems refuse some namespaces.
                    let _ = rustix::fs::lsetxattr(
                        path,
                        attr,
                        extension.value_bytes(),
                        rustix::fs::XattrFlags::empty(),
                    );
                }
            }
        }
    }
    if !is_symlink {
        // After chown, which clears set-id bits.
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    set_mtime(path, header.mtime().unwrap_or(0))
}

fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let time = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Removes a path of any type; a missing path is fine.
fn remove_all(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Empties a directory of what lower layers put there, keeping what this layer already wrote.
fn clear_directory_except(dir: &Path, root: &Path, keep: &HashSet<PathBuf>) -> io::Result<()> {
    if dir == root && !dir.exists() {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !keep.contains(&path) {
            remove_all(&path)?;
        }
    }
    Ok(())
}

/// Resolves `relative` inside `root` as if `root` were `/`: symlinks are followed but can never leave it.
/// With `create`, missing directories are created (0755); otherwise the last component is not followed.
pub fn resolve_in_root(root: &Path, relative: &Path, create: bool) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = relative
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_owned()),
            // `..` steps back within the root (never above it), as in a chroot.
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        if component == ".." {
            resolved.pop();
            continue;
        }
        if component == "." {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&component);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() && (create || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other(format!(
                        "too many levels of symlinks at {}",
                        candidate.display()
                    )));
                }
                let link = fs::read_link(&candidate)?;
                if link.is_absolute() {
                    resolved.clear();
                }
                for c in link.components().rev() {
                    match c {
                        Component::Normal(p) => pending.push(p.to_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(meta) if !meta.is_dir() && !is_last => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    candidate.display()
                )));
            }
            Ok(_) => resolved.push(component),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&candidate)?;
                fs::set_permissions(&candidate, fs::Permissions::from_mode(0o755))?;
                resolved.push(component);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => resolved.push(component),
            Err(e) => return Err(e),
        }
    }
    let mut path = root.to_path_buf();
    path.extend(&resolved);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        // Write the raw name so hostile names reach the applier unchanged.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    #[test]
    fn whiteouts_delete_and_opaque_hides() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("keep")).unwrap();
        fs::write(root.join("gone"), b"x").unwrap();
        fs::create_dir_all(root.join("opq/old")).unwrap();
        let l = layer(|b| {
            file(b, ".wh.gone", b"");
            file(b, "opq/new", b"n");
            file(b, "opq/.wh..wh..opq", b"");
        });
        apply_layer(&l[..], &root).unwrap();
        assert!(!root.join("gone").exists());
        assert!(root.join("keep").is_dir());
        assert!(!root.join("opq/old").exists());
        assert_eq!(fs::read(root.join("opq/new")).unwrap(), b"n");
    }

    #[test]
    fn never_writes_outside_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let dotdot = layer(|b| file(b, "a/../../escape", b"x"));
        assert!(matches!(
            apply_layer(&dotdot[..], &root),
            Err(ApplyError::Invalid(_))
        ));
        assert!(!dir.path().join("escape").exists());

        let through_symlink = layer(|b| {
            symlink(b, "evil", "/..");
            file(b, "evil/escaped", b"x");
            symlink(b, "rel", "../../..");
            file(b, "rel/escaped2", b"x");
        });
        apply_layer(&through_symlink[..], &root).unwrap();
        assert!(!dir.path().join("escaped").exists());
        assert!(!dir.path().join("escaped2").exists());
        assert!(root.join("escaped").is_file() && root.join("escaped2").is_file());

        let absolute = layer(|b| file(b, "/abs", b"x"));
        apply_layer(&absolute[..], &root).unwrap();
        assert!(root.join("abs").is_file());
    }

    #[test]
    fn round_trip_with_create() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), b"hello").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("d/f"), src.join("h")).unwrap();
        std::os::unix::fs::symlink("d/f", src.join("s")).unwrap();
        let tar =
            super::super::create::write_directory(&src, Vec::new(), Default::default()).unwrap();
        let dst = dir.path().join("dst");
        fs::create_dir(&dst).unwrap();
        apply_layer(&tar[..], &dst).unwrap();
        assert_eq!(fs::read(dst.join("h")).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(dst.join("d/f")).unwrap().permissions().mode() & 0o7777,
            0o4751
        );
        assert_eq!(fs::read_link(dst.join("s")).unwrap(), Path::new("d/f"));
        let again =
            super::super::create::write_directory(&dst, Vec::new(), Default::default()).unwrap();
        assert_eq!(tar, again);
    }
}
