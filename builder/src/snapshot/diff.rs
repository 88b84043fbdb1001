//! Changesets of a step: from an overlay upper directory, or by comparing a copied tree with its lower tree.

use std::collections::BTreeSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use layerstore::layer::create::{is_overlay_xattr, Change};

use super::unpack::opaque_xattr;
use crate::tree::read_xattrs;

/// The changes an overlay upper directory holds: whiteout devices (char 0:0) are deletions, directories marked
/// opaque replace the lower ones, everything else is written.
pub fn upper_changes(upper: &Path) -> io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for entry in walkdir::WalkDir::new(upper)
        .min_depth(1)
        .sort_by_file_name()
    {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(upper)
            .expect("under upper")
            .to_path_buf();
        let meta = entry.metadata().map_err(io::Error::other)?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            changes.push(Change::Delete(relative));
            continue;
        }
        if meta.is_dir() && is_opaque(entry.path()) {
            changes.push(Change::Opaque(relative.clone()));
        }
        changes.push(Change::Write(relative));
    }
    Ok(changes)
}

fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::lgetxattr(dir, opaque_xattr(), &mut value), Ok(1) if value[0] == b'y')
}

/// The changes that turn the tree `lower` into the tree `upper`, with every parent of a change written too.
pub fn tree_changes(lower: &Path, upper: &Path) -> io::Result<Vec<Change>> {
    let mut changes = BTreeSet::new();
    compare_dir(lower, upper, Path::new(""), &mut changes)?;
    let parents: Vec<PathBuf> = changes
        .iter()
        .flat_map(|c| {
            let path = match c {
                Change::Write(p) | Change::Delete(p) | Change::Opaque(p) => p,
            };
            path.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .collect();
    changes.extend(parents.into_iter().map(Change::Write));
    Ok(changes.into_iter().collect())
}

fn sorted_names(dir: &Path) -> io::Result<BTreeSet<std::ffi::OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

fn compare_dir(
    lower: &Path,
    upper: &Path,
    relative: &Path,
    out: &mut BTreeSet<Change>,
) -> io::Result<()> {
    let lower_names = sorted_names(&lower.join(relative))?;
    let upper_names = sorted_names(&upper.join(relative))?;
    for name in lower_names.difference(&upper_names) {
        out.insert(Change::Delete(relative.join(name)));
    }
    for name in &upper_names {
        let path = relative.join(name);
        let new = fs::symlink_metadata(upper.join(&path))?;
        if !lower_names.contains(name) {
            add_subtree(upper, &path, &new, out)?;
            continue;
        }
        let old = fs::symlink_metadata(lower.join(&path))?;
        if old.is_dir() && new.is_dir() {
            if !same_entry(&lower.join(&path), &old, &upper.join(&path), &new)? {
                out.insert(Change::Write(path.clone()));
            }
            compare_dir(lower, upper, &path, out)?;
        } else if !same_entry(&lower.join(&path), &old, &upper.join(&path), &new)? {
            add_subtree(upper, &path, &new, out)?;
        }
    }
    Ok(())
}

fn add_subtree(
    root: &Path,
    path: &Path,
    meta: &Metadata,
    out: &mut BTreeSet<Change>,
) -> io::Result<()> {
    out.insert(Change::Write(path.to_path_buf()));
    if meta.is_dir() {
        for entry in walkdir::WalkDir::new(root.join(path)).min_depth(1) {
            let entry = entry.map_err(io::Error::other)?;
            out.insert(Change::Write(
                entry
                    .path()
                    .strip_prefix(root)
                    .expect("under root")
                    .to_path_buf(),
            ));
        }
    }
    Ok(())
}

/// Whether two entries are the same: type, mode, owner, size, mtime, device, link target, xattrs, and content.
fn same_entry(a_path: &Path, a: &Metadata, b_path: &Path, b: &Metadata) -> io::Result<bool> {
    let same_meta = a.file_type() == b.file_type()
        && a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.rdev() == b.rdev()
        && (a.is_dir()
            || (a.size() == b.size()
                && a.mtime() == b.mtime()
                && a.mtime_nsec() == b.mtime_nsec()));
    if !same_meta || layer_xattrs(a_path) != layer_xattrs(b_path) {
        return Ok(false);
    }
    if a.file_type().is_symlink() {
        return Ok(fs::read_link(a_path)? == fs::read_link(b_path)?);
    }
    if a.is_file() {
        return same_content(a_path, b_path);
    }
    Ok(true)
}

fn layer_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    read_xattrs(path)
        .into_iter()
        .filter(|(n, _)| !is_overlay_xattr(n))
        .collect()
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    let (mut buf_a, mut buf_b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        let m = read_full(&mut b, &mut buf_b)?;
        if n != m || buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{copy_tree, set_times};

    #[test]
    fn tree_diff_finds_adds_deletes_and_modifications() {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        fs::create_dir_all(lower.join("etc/sub")).unwrap();
        fs::write(lower.join("etc/same"), b"same").unwrap();
        fs::write(lower.join("etc/edited"), b"aaaa").unwrap();
        fs::write(lower.join("etc/sub/gone"), b"x").unwrap();
        fs::write(lower.join("top"), b"t").unwrap();
        let upper = dir.path().join("upper");
        copy_tree(&lower, &upper).unwrap();
        assert!(tree_changes(&lower, &upper).unwrap().is_empty());

        // Same size and same mtime but other bytes: only the content comparison can see it.
        let meta = fs::metadata(upper.join("etc/edited")).unwrap();
        fs::write(upper.join("etc/edited"), b"bbbb").unwrap();
        set_times(
            &upper.join("etc/edited"),
            meta.mtime(),
            meta.mtime_nsec(),
            0,
            0,
        )
        .unwrap();
        fs::remove_file(upper.join("etc/sub/gone")).unwrap();
        fs::create_dir(upper.join("new")).unwrap();
        fs::write(upper.join("new/file"), b"n").unwrap();
        let changes = tree_changes(&lower, &upper).unwrap();
        let expected = [
            Change::Write("etc".into()),
            Change::Write("etc/edited".into()),
            Change::Write("etc/sub".into()),
            Change::Write("new".into()),
            Change::Write("new/file".into()),
            Change::Delete("etc/sub/gone".into()),
        ];
        assert_eq!(changes.len(), expected.len(), "{changes:?}");
        for change in expected {
            assert!(
                changes.contains(&change),
                "{change:?} missing from {changes:?}"
            );
        }
    }
}
