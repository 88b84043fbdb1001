//! Reading an image tarball's namespace safely: every regular file's sha256 is computed as it streams past, symlinks
//! and hard links are only recorded (never created), and no name may escape the archive. Paths are then resolved
//! against this recorded namespace.
//!
//! A tar stream ([`stage`]) has its files copied to numbered files in a scratch directory; an uncompressed tar file
//! ([`index_in_place`]) is only read, and its files are then read where they sit in it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::progress::Progress;

/// Why an archive could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("reading the archive (is it truncated, or not a tar archive?): {0}")]
    Read(io::Error),
    #[error("the archive is truncated: entry {path} ends after {got} of {expected} bytes")]
    Truncated {
        path: String,
        got: u64,
        expected: u64,
    },
    #[error("unsafe archive entry {0:?}: {1}")]
    Unsafe(String, &'static str),
    #[error("archive entry {0:?} has unsupported type {1:?}")]
    EntryType(String, tar::EntryType),
    #[error("writing scratch files: {0}")]
    Write(io::Error),
    #[error("the archive has no file {0:?}")]
    Missing(String),
}

/// A staged regular file: where its bytes are and what they hash to.
#[derive(Debug, Clone)]
pub struct StagedFile {
    /// The scratch file holding the bytes, or the archive itself for a file read in place.
    pub path: PathBuf,
    /// Where the bytes start in `path`: 0 for a scratch file, the entry's data offset in an archive read in place.
    pub offset: u64,
    pub sha256: Digest,
    pub size: u64,
}

impl StagedFile {
    /// Whether the bytes sit in a scratch file of their own, which may be moved into a store.
    pub fn is_scratch_file(&self) -> bool {
        self.offset == 0
    }

    /// The file's bytes.
    pub fn open(&self) -> io::Result<io::Take<File>> {
        let mut file = File::open(&self.path)?;
        file.seek(io::SeekFrom::Start(self.offset))?;
        Ok(file.take(self.size))
    }
}

/// What is in a staged archive.
pub struct Staged {
    files: HashMap<String, StagedFile>,
    links: HashMap<String, Link>,
}

enum Link {
    Symbolic(String),
    Hard(String),
}

/// Reads the whole tar stream `reader`, copying its files into `scratch`.
pub fn stage(
    reader: impl Read,
    scratch: &Path,
    progress: &dyn Progress,
) -> Result<Staged, StagingError> {
    walk(reader, progress, &mut |number, _, entry, name, progress| {
        let path = scratch.join(number.to_string());
        let file = File::create(&path).map_err(StagingError::Write)?;
        let mut writer = HashingWriter::new(
            io::BufWriter::with_capacity(1 << 20, file),
            Algorithm::Sha256,
        );
        let got = copy_with_progress(entry, &mut writer, name, progress)?;
        let (buffered, sha256, size) = writer.finish();
        buffered
            .into_inner()
            .map_err(|e| StagingError::Write(e.into_error()))?;
        debug_assert_eq!(got, size);
        Ok(StagedFile {
            path,
            offset: 0,
            sha256,
            size,
        })
    })
}

/// Reads the uncompressed tar file at `archive` once, hashing its files, which are then read in place.
pub fn index_in_place(archive: &Path, progress: &dyn Progress) -> Result<Staged, StagingError> {
    let file = File::open(archive).map_err(StagingError::Read)?;
    let reader = io::BufReader::with_capacity(1 << 20, file);
    walk(reader, progress, &mut |_, offset, entry, name, progress| {
        let mut writer = HashingWriter::new(io::sink(), Algorithm::Sha256);
        copy_with_progress(entry, &mut writer, name, progress)?;
        let (_, sha256, size) = writer.finish();
        Ok(StagedFile {
            path: archive.to_path_buf(),
            offset,
            sha256,
            size,
        })
    })
}

/// The callback [`walk`] hands each regular file to: its entry number, its data's offset in the tar stream, the
/// entry to read it from, and its cleaned name.
type FileVisitor<'a, R> = dyn FnMut(
        usize,
        u64,
        &mut tar::Entry<'_, crate::layer::tar_guard::TarGuard<R>>,
        &str,
        &dyn Progress,
    ) -> Result<StagedFile, StagingError>
    + 'a;

/// Walks the tar stream `reader`, recording its namespace; `visit` reads each regular file and says where it is.
fn walk<R: Read>(
    reader: R,
    progress: &dyn Progress,
    visit: &mut FileVisitor<'_, R>,
) -> Result<Staged, StagingError> {
    let mut archive = crate::layer::tar_guard::archive(reader);
    let mut staged = Staged {
        files: HashMap::new(),
        links: HashMap::new(),
    };
    for (number, entry) in archive.entries().map_err(StagingError::Read)?.enumerate() {
        let mut entry = entry.map_err(StagingError::Read)?;
        let raw = entry
            .path()
            .map_err(StagingError::Read)?
            .to_string_lossy()
            .into_owned();
        let name = clean_archive_path(&raw)?;
        if name.is_empty() {
            continue;
        }
        let link_name = || -> Result<String, StagingError> {
            let link = entry.link_name().map_err(StagingError::Read)?;
            Ok(link
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let expected = entry.header().size().map_err(StagingError::Read)?;
                let offset = entry.raw_file_position();
                progress.start(&name, expected);
                let file = visit(number, offset, &mut entry, &name, progress)?;
                if file.size != expected {
                    return Err(StagingError::Truncated {
                        path: name,
                        got: file.size,
                        expected,
                    });
                }
                progress.finish(&name, "read");
                staged.files.insert(name, file);
            }
            tar::EntryType::Symlink => {
                let target = link_name()?;
                staged.links.insert(name, Link::Symbolic(target));
            }
            tar::EntryType::Link => {
                let target = clean_archive_path(&link_name()?)?;
                staged.links.insert(name, Link::Hard(target));
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            other => return Err(StagingError::EntryType(name, other)),
        }
    }
    staged.check_no_entry_through_symlink()?;
    Ok(staged)
}

fn copy_with_progress(
    reader: &mut impl Read,
    writer: &mut impl Write,
    name: &str,
    progress: &dyn Progress,
) -> Result<u64, StagingError> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer).map_err(StagingError::Read)?;
        if n == 0 {
            return Ok(total);
        }
        writer
            .write_all(&buffer[..n])
            .map_err(StagingError::Write)?;
        total += n as u64;
        progress.advance(name, n as u64);
    }
}

/// A relative, normalized archive path; `..` and absolute names are refused.
fn clean_archive_path(raw: &str) -> Result<String, StagingError> {
    if raw.starts_with('/') {
        return Err(StagingError::Unsafe(
            raw.to_string(),
            "absolute names are not allowed",
        ));
    }
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(StagingError::Unsafe(raw.to_string(), "'..' is not allowed"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(StagingError::Unsafe(
                    raw.to_string(),
                    "absolute names are not allowed",
                ))
            }
        }
    }
    Ok(parts.join("/"))
}

impl Staged {
    /// Refuses archives where an entry's parent directory is a symlink (an entry "through" a link).
    fn check_no_entry_through_symlink(&self) -> Result<(), StagingError> {
        for name in self.files.keys().chain(self.links.keys()) {
            let mut prefix = String::new();
            for part in name
                .split('/')
                .collect::<Vec<_>>()
                .split_last()
                .map_or(&[][..], |(_, p)| p)
            {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if matches!(self.links.get(&prefix), Some(Link::Symbolic(_))) {
                    return Err(StagingError::Unsafe(
                        name.clone(),
                        "it is inside a symlinked directory",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the archive has a file (after following links) at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.file(path).is_ok()
    }

    /// The regular file at `path`, following symlinks and hard links inside the archive.
    pub fn file(&self, path: &str) -> Result<&StagedFile, StagingError> {
        let mut current = clean_archive_path(path)?;
        for _ in 0..40 {
            if let Some(file) = self.files.get(&current) {
                return Ok(file);
            }
            current = match self.links.get(&current) {
                Some(Link::Hard(target)) => target.clone(),
                Some(Link::Symbolic(target)) => {
                    let base = Path::new(&current).parent().unwrap_or(Path::new(""));
                    resolve_relative(base, target).ok_or_else(|| {
                        StagingError::Unsafe(
                            current.clone(),
                            "its symlink points outside the archive",
                        )
                    })?
                }
                None => return Err(StagingError::Missing(path.to_string())),
            };
        }
        Err(StagingError::Unsafe(
            path.to_string(),
            "too many levels of links",
        ))
    }

    /// Reads a small file whole.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, StagingError> {
        let mut bytes = Vec::new();
        self.file(path)?
            .open()
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(StagingError::Write)?;
        Ok(bytes)
    }
}

/// Joins a link target onto its directory; `None` when it climbs above the archive root.
fn resolve_relative(base: &Path, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<String> = base
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}
