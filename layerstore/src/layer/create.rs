//! Layer creation: a tar stream from a whole directory, or from a changeset against a lower filesystem.
//!
//! Entries come in a deterministic order (sorted by name, parents before children). Names or link targets longer
//! than the ustar header allows, and extended attributes, go into PAX extended headers. Hard links within the layer
//! are kept as hard links, and `mtime_clamp` (for `SOURCE_DATE_EPOCH`) caps every modification time.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// How layer entries are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerOptions {
    /// When set, no entry has a modification time later than this (seconds since the epoch).
    pub mtime_clamp: Option<u64>,
}

/// One change of a changeset, by path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// The path was added or modified: its current state is written (a directory entry only, not its children).
    Write(PathBuf),
    /// The path was deleted: a whiteout is written.
    Delete(PathBuf),
    /// The directory replaced a lower one: an opaque whiteout hides the lower contents.
    Opaque(PathBuf),
}

impl Change {
    fn sort_key(&self) -> (Vec<u8>, u8) {
        match self {
            Change::Write(p) => (p.as_os_str().as_bytes().to_vec(), 1),
            Change::Opaque(p) => (p.join(OPAQUE_WHITEOUT).as_os_str().as_bytes().to_vec(), 0),
            Change::Delete(p) => (whiteout_path(p).as_os_str().as_bytes().to_vec(), 0),
        }
    }
}

fn whiteout_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    let mut whiteout = WHITEOUT_PREFIX.as_bytes().to_vec();
    whiteout.extend_from_slice(name.as_bytes());
    path.with_file_name(OsStr::from_bytes(&whiteout))
}

/// Writes the whole content of `root` (not `root` itself) as a layer to `out`.
pub fn write_directory<W: Write>(root: &Path, out: W, options: LayerOptions) -> io::Result<W> {
    let mut writer = EntryWriter::new(out, options);
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()))
    {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walk stays under root");
        writer.append_path(root, relative)?;
    }
    writer.finish()
}

/// Writes a changeset as a layer: the current state of written paths under `root`, whiteouts for deletions.
pub fn write_changes<W: Write>(
    root: &Path,
    changes: &[Change],
    out: W,
    options: LayerOptions,
) -> io::Result<W> {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| c.sort_key());
    let mut writer = EntryWriter::new(out, options);
    for change in sorted {
        match change {
            Change::Write(path) => writer.append_path(root, path)?,
            Change::Delete(path) => writer.append_marker(&whiteout_path(path))?,
            Change::Opaque(dir) => writer.append_marker(&dir.join(OPAQUE_WHITEOUT))?,
        }
    }
    writer.finish()
}

/// Appends entries to a tar stream, tracking hard links.
struct EntryWriter<W: Write> {
    builder: tar::Builder<W>,
    options: LayerOptions,
    /// (device, inode) of multiply-linked files already written → the name they were written under.
    links: HashMap<(u64, u64), PathBuf>,
}

/// The file type bits of `st_mode` (`S_IFDIR`, `S_IFREG`, …), which tar headers written by Go carry in their mode.
const S_IFMT: u32 = 0o170000;

impl<W: Write> EntryWriter<W> {
    fn new(out: W, options: LayerOptions) -> Self {
        EntryWriter {
            builder: tar::Builder::new(out),
            options,
            links: HashMap::new(),
        }
    }

    fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    fn mtime(&self, mtime: i64) -> u64 {
        let mtime = mtime.max(0) as u64;
        self.options
            .mtime_clamp
            .map_or(mtime, |clamp| mtime.min(clamp))
    }

    /// A zero-length whiteout entry.
    fn append_marker(&mut self, path: &Path) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(self.mtime(0));
        let mut pax = Vec::new();
        set_name(&mut header, path, &mut pax, "path")?;
        self.write(header, pax, io::empty())
    }

    fn append_path(&mut self, root: &Path, relative: &Path) -> io::Result<()> {
        let full = root.join(relative);
        let meta = fs::symlink_metadata(&full)?;
        let file_type = meta.file_type();
        let mut header = tar::Header::new_ustar();
        let mut pax = Vec::new();
        set_name(&mut header, relative, &mut pax, "path")?;
        // Permission bits plus the file type bits, as Go's archive/tar (and so Docker and BuildKit) writes them.
        header.set_mode(meta.mode() & (0o7777 | S_IFMT));
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(self.mtime(meta.mtime()));
        header.set_size(0);
        add_xattrs(&full, &mut pax);

        if file_type.is_file() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                header.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                set_name(&mut header, &first, &mut pax, "linkpath")?;
                return self.write(header, pax, io::empty());
            }
            self.links
                .insert((meta.dev(), meta.ino()), relative.to_path_buf());
        }

        if file_type.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(&full)?;
            self.write(header, pax, io::Read::take(file, meta.len()))
        } else if file_type.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            self.write(header, pax, io::empty())
        } else if file_type.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            set_name(&mut header, &fs::read_link(&full)?, &mut pax, "linkpath")?;
            self.write(header, pax, io::empty())
        } else if file_type.is_char_device() || file_type.is_block_device() {
            header.set_entry_type(if file_type.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            header.set_device_major(rustix::fs::major(rdev))?;
            header.set_device_minor(rustix::fs::minor(rdev))?;
            self.write(header, pax, io::empty())
        } else if file_type.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
            self.write(header, pax, io::empty())
        } else {
            // Sockets cannot be represented in a tar layer; Docker skips them too.
            Ok(())
        }
    }

    fn write(
        &mut self,
        mut header: tar::Header,
        pax: Vec<(String, Vec<u8>)>,
        data: impl io::Read,
    ) -> io::Result<()> {
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        header.set_cksum();
        self.builder.append(&header, data)
    }
}

/// Sets a name or link name on the header, falling back to a PAX record when it doesn't fit.
fn set_name(
    header: &mut tar::Header,
    name: &Path,
    pax: &mut Vec<(String, Vec<u8>)>,
    key: &str,
) -> io::Result<()> {
    let bytes = name.as_os_str().as_bytes();
    let fits = bytes.len() <= 100 && bytes.is_ascii();
    let ustar = header.as_ustar_mut().expect("ustar header");
    let field: &mut [u8; 100] = if key == "path" {
        &mut ustar.name
    } else {
        &mut ustar.linkname
    };
    let shown = if fits {
        bytes
    } else {
        &bytes[..bytes.len().min(99)]
    };
    field.fill(0);
    field[..shown.len()].copy_from_slice(shown);
    if !fits {
        pax.push((key.to_string(), bytes.to_vec()));
    }
    Ok(())
}

/// Whether an xattr is overlayfs's private bookkeeping, which layers never carry: `trusted.overlay.*`, or
/// `user.overlay.*` for an overlay mounted in a user namespace (`userxattr`).
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Adds `SCHILY.xattr.*` records for a path's extended attributes (best effort: none when unsupported).
fn add_xattrs(path: &Path, pax: &mut Vec<(String, Vec<u8>)>) {
    let mut names = vec![0u8; 4096];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names) else {
        return;
    };
    let mut sorted: Vec<&[u8]> = names[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    sorted.sort();
    for name in sorted {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        // overlayfs bookkeeping (origin, opaque, redirect) of a snapshot's upper dir is never image content.
        if is_overlay_xattr(name) {
            continue;
        }
        let mut value = vec![0u8; 65536];
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut value) {
            pax.push((format!("SCHILY.xattr.{name}"), value[..n].to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn directory_layer_is_sorted_with_links_and_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("a"), b"data").unwrap();
        fs::hard_link(root.join("a"), root.join("b/hard")).unwrap();
        std::os::unix::fs::symlink("../a", root.join("b/sym")).unwrap();
        let long = "x".repeat(150);
        fs::write(root.join("b/c").join(&long), b"long").unwrap();
        let out = write_directory(
            root,
            Vec::new(),
            LayerOptions {
                mtime_clamp: Some(5),
            },
        )
        .unwrap();
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["a", "b", "b/c", &format!("b/c/{long}"), "b/hard", "b/sym"]
        );
        assert_eq!(got[4].1, tar::EntryType::Link);
        assert_eq!(got[4].2.as_deref(), Some("a"));
        assert_eq!(got[5].2.as_deref(), Some("../a"));
        let mut archive = tar::Archive::new(&out[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert!(entry.header().mtime().unwrap() <= 5);
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
        }
        // Deterministic: the same tree gives the same bytes.
        assert_eq!(
            out,
            write_directory(
                root,
                Vec::new(),
                LayerOptions {
                    mtime_clamp: Some(5)
                }
            )
            .unwrap()
        );
    }

    #[test]
    fn changeset_writes_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/new"), b"n").unwrap();
        let changes = [
            Change::Write("d/new".into()),
            Change::Delete("gone".into()),
            Change::Write("d".into()),
            Change::Opaque("d".into()),
        ];
        let out = write_changes(dir.path(), &changes, Vec::new(), LayerOptions::default()).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|e| e.0).collect();
        assert_eq!(names, [".wh.gone", "d", "d/.wh..wh..opq", "d/new"]);
    }
}
