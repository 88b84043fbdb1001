//! COPY and ADD into a step's root filesystem, with Docker's path rules: destinations relative to WORKDIR, a
//! trailing `/` (or an existing directory) meaning "into", a directory source copying its contents, missing parents
//! created (0755, owned by the `--chown` owner), symlinks inside directories copied as links, `--chown`/`--chmod`,
//! `--exclude`, `--parents`; ADD unpacks local tar archives (plain, gzip, bzip2, xz) and downloads URLs
//! (`remote`).

mod archive;
pub(crate) mod remote;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use layerstore::layer::apply::{apply_layer, resolve_in_root, ApplyError};

use crate::context::{BuildContext, ContextError, Entry, Source};
use crate::dockerignore::{PatternError, PatternMatcher};
use crate::users::{resolve_chown, UserError};

/// Why a COPY or ADD failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source could not be selected or read from the build context (or stage, or image).
    #[error(transparent)]
    Context(#[from] ContextError),
    /// `--chown` names a user or group the destination root filesystem does not have.
    #[error("--chown: {0}")]
    Chown(#[from] UserError),
    /// An `--exclude` pattern does not compile.
    #[error("invalid --exclude pattern: {0}")]
    Exclude(#[from] PatternError),
    /// A directory source was copied to a destination that exists and is not a directory.
    #[error("cannot copy the directory {source_path} to non-directory: {target}")]
    NotADirectory {
        /// The source, relative to what it was copied from.
        source_path: String,
        /// The destination as written.
        target: String,
    },
    /// An ADD of a URL to a destination that is the root directory, where a file name is needed.
    #[error("the destination {0} names the root directory, not a file")]
    DestinationIsRoot(String),
    /// A file cannot be put where the destination says (a directory is in the way, a parent is a file).
    #[error("cannot copy {source_path} to {target}: {reason}")]
    Conflict {
        /// The source file.
        source_path: String,
        /// Where it was to go.
        target: String,
        /// What is in the way.
        reason: &'static str,
    },
    /// Reading a source or writing the destination failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// ADD could not download a URL (connection, HTTP status, no file name in the URL).
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// ADD `--checksum`: the downloaded content has another digest.
    #[error("the content of {url} has digest {actual}, but --checksum says {expected}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The digest `--checksum` gave.
        expected: layerstore::Digest,
        /// The digest of what was downloaded.
        actual: layerstore::Digest,
    },
    /// ADD of a local tar archive: unpacking it into the destination failed.
    #[error("unpacking {archive}: {source}")]
    Unpack {
        /// The archive, relative to the context.
        archive: String,
        /// Why unpacking failed.
        source: ApplyError,
    },
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> CopyError {
    move |source| CopyError::Io { context, source }
}

/// The flags of one COPY or ADD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// `--chown=user[:group]`, names resolved in the destination root filesystem.
    pub chown: Option<String>,
    /// `--chmod` (already parsed from octal: [`parse_chmod`]).
    pub chmod: Option<u32>,
    /// `--exclude` patterns, matched against context-relative paths.
    pub excludes: Vec<String>,
    /// `--parents`: keep each source's path (from the context root, or after a `/./` in the argument).
    pub parents: bool,
    /// The absolute WORKDIR that a relative destination is under.
    pub workdir: PathBuf,
    /// ADD: unpack local tar archives.
    pub unpack_archives: bool,
}

impl CopyOptions {
    /// The resolved `--chown`. Without it, files from the build context become root's and files from a stage or
    /// image keep their owner ([`BuildContext::keeps_owners`]); created directories are root's.
    pub fn chown_ids(&self, rootfs: &Path) -> Result<Option<(u32, u32)>, CopyError> {
        self.chown
            .as_deref()
            .map(|spec| resolve_chown(rootfs, spec))
            .transpose()
            .map_err(CopyError::from)
    }

    /// The compiled `--exclude` patterns.
    pub fn exclude_matcher(&self) -> Result<PatternMatcher, CopyError> {
        Ok(PatternMatcher::new(&self.excludes)?)
    }
}

/// A `--chmod` value as BuildKit v0.8 reads it (Go's `ParseUint(text, 8, 32)`); `None` when it is not one, which
/// v0.8 ignores rather than refuses (the copy keeps the sources' modes).
pub fn parse_chmod(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok()
}

/// Copies the sources `args` (as written in the instruction) selected from `from` to `dest` in `rootfs`; `written`
/// hears the bytes of each file's content (or local archive unpacked) as it is copied.
pub fn copy(
    from: &BuildContext,
    args: &[String],
    dest: &str,
    rootfs: &Path,
    options: &CopyOptions,
    written: &mut dyn FnMut(u64),
) -> Result<(), CopyError> {
    let chown = options.chown_ids(rootfs)?;
    let owner = chown.unwrap_or((0, 0));
    let owners = Owners {
        chown,
        keep: from.keeps_owners(),
    };
    let excludes = options.exclude_matcher()?;
    let mut selected: Vec<(Source, &String)> = Vec::new();
    for arg in args {
        for source in from.select(std::slice::from_ref(arg))? {
            selected.push((source, arg));
        }
    }
    let dest_relative = destination_in_root(dest, &options.workdir);
    let says_dir = dest.ends_with('/')
        || dest == "."
        || dest.ends_with("/.")
        || dest_relative.as_os_str().is_empty();
    for (source, arg) in &selected {
        let mut target = dest_relative.clone();
        if options.parents {
            target.push(parents_path(arg, &source.relative));
        }
        if options.unpack_archives && !source.is_dir {
            let archive = archive::open_archive(&source.path)
                .map_err(io_err(format!("reading {}", source.path.display())))?;
            if let Some(reader) = archive {
                let dir = ensure_dir(rootfs, &target, owner)?;
                apply_layer(reader, &dir).map_err(|e| CopyError::Unpack {
                    archive: source.relative.clone(),
                    source: e,
                })?;
                written(
                    fs::metadata(&source.path)
                        .map_err(io_err(format!("reading {}", source.path.display())))?
                        .len(),
                );
                continue;
            }
        }
        // Each source is copied onto the destination in turn, as BuildKit (v0.8) does for several sources or a glob's
        // matches: whether a file goes into it depends on what earlier sources made of it.
        let dest_is_dir = says_dir || options.parents || is_dir_in_root(rootfs, &dest_relative);
        if source.is_dir {
            if !says_dir && exists_as_non_dir(rootfs, &target) {
                return Err(CopyError::NotADirectory {
                    source_path: source.relative.clone(),
                    target: dest.to_string(),
                });
            }
            let entries = from.entries(source, &excludes)?;
            // The destination directory itself is not copied from the source: created 0755, `--chown`'s or
            // root's, and left alone by `--chmod` (as BuildKit does).
            let top = ensure_dir(rootfs, &target, owners.chown.unwrap_or((0, 0)))?;
            copy_dir(
                &entries,
                &source.relative,
                &top,
                owners,
                options.chmod,
                written,
            )?;
        } else {
            if dest_is_dir && !options.parents {
                // The name as selected: a symlink source keeps its own name, not its target's.
                target.push(Path::new(&source.relative).file_name().unwrap_or_default());
            }
            let parent = ensure_dir(rootfs, target.parent().unwrap_or(Path::new("")), owner)?;
            let name = target.file_name().ok_or_else(|| CopyError::Conflict {
                source_path: source.relative.clone(),
                target: dest.to_string(),
                reason: "the destination is the root directory",
            })?;
            let meta = fs::metadata(&source.path)
                .map_err(io_err(format!("reading {}", source.path.display())))?;
            let mut destination = parent.join(name);
            let names_a_link =
                fs::symlink_metadata(&destination).is_ok_and(|m| m.file_type().is_symlink());
            // Only a link the destination itself names is followed; one in a destination directory is replaced.
            if names_a_link && !dest_is_dir {
                let relative = destination
                    .strip_prefix(rootfs)
                    .unwrap_or(&target)
                    .to_path_buf();
                destination = follow_links_in_root(rootfs, &relative)
                    .map_err(io_err(format!("following the link at {dest}")))?;
            }
            write_entry(
                &source.path,
                &meta,
                &destination,
                owners.of(&meta),
                options.chmod,
                &source.relative,
                written,
            )?;
        }
    }
    Ok(())
}

/// The destination `dest` (absolute, or relative to `workdir`) as a path relative to the root, cleaned lexically
/// as Go's `path.Join` cleans it: `..` climbs (never above the root), `.` and empty components vanish.
pub fn destination_in_root(dest: &str, workdir: &Path) -> PathBuf {
    let joined = if dest.starts_with('/') {
        PathBuf::from(dest)
    } else {
        workdir.join(dest)
    };
    let mut cleaned = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::Normal(name) => cleaned.push(name),
            Component::ParentDir => {
                cleaned.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    cleaned
}

/// Whether `relative` exists in `rootfs` as something other than a directory (symlinks followed inside it).
fn exists_as_non_dir(rootfs: &Path, relative: &Path) -> bool {
    crate::tree::resolve_existing(rootfs, relative).is_some_and(|p| !p.is_dir())
}

/// Where a file copied onto the symlink at `relative` lands: BuildKit resolves the destination inside the root
/// filesystem, its last component too, so the copy writes where the link points (creating the file a dangling link
/// names) and the link stays.
fn follow_links_in_root(rootfs: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut relative = relative.to_path_buf();
    for _ in 0..40 {
        let path = resolve_in_root(rootfs, &relative, false)?;
        let link = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => fs::read_link(&path)?,
            _ => return Ok(path),
        };
        let at = path.strip_prefix(rootfs).unwrap_or(&path);
        relative = if link.is_absolute() {
            link.components()
                .filter(|c| !matches!(c, Component::RootDir))
                .collect()
        } else {
            at.parent().unwrap_or(Path::new("")).join(link)
        };
    }
    Err(io::Error::other(format!(
        "too many levels of symlinks at {}",
        relative.display()
    )))
}

/// Who owns copied entries.
#[derive(Debug, Clone, Copy)]
struct Owners {
    chown: Option<(u32, u32)>,
    /// Without `--chown`, keep the source's owner (stages and images) instead of root.
    keep: bool,
}

impl Owners {
    fn of(&self, meta: &fs::Metadata) -> (u32, u32) {
        match (self.chown, self.keep) {
            (Some(ids), _) => ids,
            (None, true) => (meta.uid(), meta.gid()),
            (None, false) => (0, 0),
        }
    }
}

/// The path `--parents` keeps for a source: from the context root, or from after a `/./` pivot in the argument.
fn parents_path(arg: &str, relative: &str) -> PathBuf {
    let cleaned = arg.trim_start_matches('/');
    match cleaned.find("/./") {
        Some(pivot) => {
            let strip = crate::dockerignore::clean(&cleaned[..pivot]);
            Path::new(relative)
                .strip_prefix(&strip)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| relative.into())
        }
        None => PathBuf::from(relative),
    }
}

/// Copies a source directory's `entries` (the directory itself first) into `top`, which exists; `shown_as` names
/// the source in errors.
fn copy_dir(
    entries: &[Entry],
    shown_as: &str,
    top: &Path,
    owners: Owners,
    chmod: Option<u32>,
    written: &mut dyn FnMut(u64),
) -> Result<(), CopyError> {
    // Files hard-linked to each other in the source are hard-linked in the copy too, as BuildKit copies them.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for entry in entries.iter().skip(1) {
        let destination = top.join(&entry.relative);
        let shown = format!("{shown_as}/{}", entry.relative.display());
        let inode = (entry.meta.dev(), entry.meta.ino());
        let linked = entry.meta.is_file() && entry.meta.nlink() > 1;
        if let Some(first) = links.get(&inode).filter(|_| linked) {
            link_entry(first, &destination, &shown)?;
            continue;
        }
        if linked {
            links.insert(inode, destination.clone());
        }
        write_entry(
            &entry.path,
            &entry.meta,
            &destination,
            owners.of(&entry.meta),
            chmod,
            &shown,
            written,
        )?;
    }
    // Directory times last: writing their children changed them.
    for entry in entries.iter().skip(1).filter(|e| e.meta.is_dir()).rev() {
        let destination = top.join(&entry.relative);
        set_mtime(&destination, &entry.meta)?;
    }
    Ok(())
}

/// Writes one entry (file, directory, symlink, other) at `target`, replacing a non-directory there; a file's bytes go
/// to `written`.
fn write_entry(
    source: &Path,
    meta: &fs::Metadata,
    target: &Path,
    owner: (u32, u32),
    chmod: Option<u32>,
    shown: &str,
    written: &mut dyn FnMut(u64),
) -> Result<(), CopyError> {
    let ctx = || format!("copying {shown} to {}", target.display());
    let existing = fs::symlink_metadata(target).ok();
    if meta.is_dir() {
        match existing {
            Some(e) if e.is_dir() => {}
            Some(_) => {
                fs::remove_file(target).map_err(io_err(ctx()))?;
                fs::create_dir(target).map_err(io_err(ctx()))?;
            }
            None => fs::create_dir(target).map_err(io_err(ctx()))?,
        }
    } else {
        if let Some(e) = existing {
            if e.is_dir() {
                return Err(CopyError::Conflict {
                    source_path: shown.to_string(),
                    target: target.display().to_string(),
                    reason: "a directory is in the way",
                });
            }
            fs::remove_file(target).map_err(io_err(ctx()))?;
        }
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link = fs::read_link(source).map_err(io_err(ctx()))?;
            std::os::unix::fs::symlink(link, target).map_err(io_err(ctx()))?;
        } else if kind.is_file() {
            let mut from = File::open(source).map_err(io_err(ctx()))?;
            let mut to = File::create(target).map_err(io_err(ctx()))?;
            written(io::copy(&mut from, &mut to).map_err(io_err(ctx()))?);
        } else {
            // Devices, fifos and sockets in a context are not copied (Docker skips them too).
            return Ok(());
        }
    }
    std::os::unix::fs::lchown(target, Some(owner.0), Some(owner.1)).map_err(io_err(ctx()))?;
    if !meta.file_type().is_symlink() {
        // `--chmod` replaces the permission bits only: setuid, setgid and sticky stay as the source has them, and
        // the ones in `--chmod` are ignored (Go's os.FileMode semantics, which BuildKit's copy inherits).
        let mode = match chmod {
            Some(chmod) => (meta.mode() & 0o7000) | (chmod & 0o777),
            None => meta.mode() & 0o7777,
        };
        fs::set_permissions(target, fs::Permissions::from_mode(mode)).map_err(io_err(ctx()))?;
    }
    set_mtime(target, meta)
}

/// Makes `target` another name of the already copied `first`, replacing a non-directory there.
fn link_entry(first: &Path, target: &Path, shown: &str) -> Result<(), CopyError> {
    let ctx = || format!("linking {shown} to {}", target.display());
    match fs::symlink_metadata(target) {
        Ok(existing) if existing.is_dir() => {
            return Err(CopyError::Conflict {
                source_path: shown.to_string(),
                target: target.display().to_string(),
                reason: "a directory is in the way",
            })
        }
        Ok(_) => fs::remove_file(target).map_err(io_err(ctx()))?,
        Err(_) => {}
    }
    fs::hard_link(first, target).map_err(io_err(ctx()))
}

fn set_mtime(target: &Path, meta: &fs::Metadata) -> Result<(), CopyError> {
    crate::tree::set_times(
        target,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
    .map_err(io_err(format!("setting the times of {}", target.display())))
}

/// Whether `relative` is a directory in `rootfs`, following symlinks as if `rootfs` were `/`.
fn is_dir_in_root(rootfs: &Path, relative: &Path) -> bool {
    crate::tree::resolve_existing(rootfs, relative).is_some_and(|p| p.is_dir())
}

/// Makes sure the directory `relative` exists in `rootfs` (symlinks followed inside it), creating missing ones
/// with mode 0755 and the given owner; returns its host path.
pub fn ensure_dir(rootfs: &Path, relative: &Path, owner: (u32, u32)) -> Result<PathBuf, CopyError> {
    let mut current = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(_) => {}
            // `a/b/../c` creates a/b too, as `mkdir -p` does.
            Component::ParentDir => {
                current.pop();
                continue;
            }
            _ => continue,
        }
        let candidate = current.join(component);
        let ctx = || format!("creating {} in the root filesystem", candidate.display());
        let resolved = resolve_in_root(rootfs, &candidate, false).map_err(io_err(ctx()))?;
        let next = match fs::symlink_metadata(&resolved) {
            Ok(m) if m.is_dir() => resolved,
            Ok(m) if m.file_type().is_symlink() => {
                resolve_in_root(rootfs, &candidate, true).map_err(io_err(ctx()))?
            }
            Ok(_) => {
                return Err(CopyError::Conflict {
                    source_path: relative.display().to_string(),
                    target: candidate.display().to_string(),
                    reason: "a parent is not a directory",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&resolved).map_err(io_err(ctx()))?;
                fs::set_permissions(&resolved, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(ctx()))?;
                std::os::unix::fs::lchown(&resolved, Some(owner.0), Some(owner.1))
                    .map_err(io_err(ctx()))?;
                resolved
            }
            Err(e) => return Err(io_err(ctx())(e)),
        };
        current = next.strip_prefix(rootfs).unwrap_or(&next).to_path_buf();
    }
    Ok(rootfs.join(current))
}

#[cfg(test)]
mod tests;
