//! The local filesystem storage driver: paths map below a root directory, small files are replaced atomically
//! (temporary file, fsync, rename) and moves are renames followed by a directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::{Driver, DriverError, FileInfo, FileWriter};

/// A [`Driver`] storing everything below one directory.
#[derive(Debug, Clone)]
pub struct FsDriver {
    root: PathBuf,
}

impl FsDriver {
    /// A driver storing paths below the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> FsDriver {
        FsDriver { root: root.into() }
    }

    fn full(&self, path: &str) -> Result<PathBuf, DriverError> {
        let relative = Path::new(path);
        let clean = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if path.is_empty() || !clean {
            return Err(DriverError::InvalidPath(path.to_string()));
        }
        Ok(self.root.join(relative))
    }
}

impl FsDriver {
    /// An exclusive `flock` on `<file>.lock`, held until the returned file is dropped: what makes the conditional
    /// writes atomic between processes sharing the root.
    fn lock_beside(&self, path: &str, full: &Path) -> Result<File, DriverError> {
        create_parent(full).map_err(|e| io_err(path, e))?;
        let mut lock_path = full.as_os_str().to_owned();
        lock_path.push(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(lock_path))
            .map_err(|e| io_err(path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(path, e.into()))?;
        Ok(file)
    }
}

fn io_err(path: &str, source: io::Error) -> DriverError {
    if source.kind() == io::ErrorKind::NotFound {
        DriverError::NotFound(path.to_string())
    } else {
        DriverError::Io {
            path: path.to_string(),
            source,
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_parent(full: &Path) -> io::Result<()> {
    match full.parent() {
        Some(parent) => fs::create_dir_all(parent),
        None => Ok(()),
    }
}

struct FsWriter {
    file: File,
    size: u64,
}

impl Write for FsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl FileWriter for FsWriter {
    fn size(&self) -> u64 {
        self.size
    }

    fn commit(self: Box<Self>) -> Result<(), DriverError> {
        self.file.sync_data().map_err(|e| io_err("upload", e))
    }
}

impl Driver for FsDriver {
    fn get_content(&self, path: &str) -> Result<Vec<u8>, DriverError> {
        fs::read(self.full(path)?).map_err(|e| io_err(path, e))
    }

    fn put_content(&self, path: &str, content: &[u8]) -> Result<(), DriverError> {
        let full = self.full(path)?;
        let write = || -> io::Result<()> {
            create_parent(&full)?;
            let dir = full.parent().unwrap_or(&self.root);
            let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            tmp.write_all(content)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&full).map_err(|e| e.error)?;
            sync_dir(dir)
        };
        write().map_err(|e| io_err(path, e))
    }

    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, DriverError> {
        let mut file = File::open(self.full(path)?).map_err(|e| io_err(path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_err(path, e))?;
        Ok(Box::new(file))
    }

    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, DriverError> {
        let full = self.full(path)?;
        create_parent(&full).map_err(|e| io_err(path, e))?;
        let file = OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&full)
            .map_err(|e| io_err(path, e))?;
        let size = file.metadata().map_err(|e| io_err(path, e))?.len();
        Ok(Box::new(FsWriter { file, size }))
    }

    fn stat(&self, path: &str) -> Result<FileInfo, DriverError> {
        let meta = fs::metadata(self.full(path)?).map_err(|e| io_err(path, e))?;
        Ok(FileInfo {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            is_dir: meta.is_dir(),
        })
    }

    fn list(&self, path: &str) -> Result<Vec<String>, DriverError> {
        let entries = fs::read_dir(self.full(path)?).map_err(|e| io_err(path, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(path, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if !name.starts_with(".tmp-") {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn seal(&self, path: &str) -> Result<(), DriverError> {
        // A file reads back as written; only its existence is checked.
        self.stat(path).map(drop)
    }

    fn move_to(&self, src: &str, dst: &str) -> Result<(), DriverError> {
        let from = self.full(src)?;
        let to = self.full(dst)?;
        create_parent(&to).map_err(|e| io_err(dst, e))?;
        fs::rename(&from, &to).map_err(|e| io_err(src, e))?;
        sync_dir(to.parent().unwrap_or(&self.root)).map_err(|e| io_err(dst, e))
    }

    fn delete(&self, path: &str) -> Result<(), DriverError> {
        let full = self.full(path)?;
        let meta = fs::symlink_metadata(&full).map_err(|e| io_err(path, e))?;
        let result = if meta.is_dir() {
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        };
        result.map_err(|e| io_err(path, e))
    }

    fn put_if_absent(&self, path: &str, content: &[u8]) -> Result<bool, DriverError> {
        let full = self.full(path)?;
        let _lock = self.lock_beside(path, &full)?;
        if full.exists() {
            return Ok(false);
        }
        self.put_content(path, content).map(|()| true)
    }

    fn replace_if(&self, path: &str, expected: &[u8], content: &[u8]) -> Result<bool, DriverError> {
        let full = self.full(path)?;
        let _lock = self.lock_beside(path, &full)?;
        match fs::read(&full) {
            Ok(current) if current == expected => self.put_content(path, content).map(|()| true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path, e)),
        }
    }

    fn touch(&self, path: &str) -> Result<(), DriverError> {
        let file = OpenOptions::new()
            .write(true)
            .open(self.full(path)?)
            .map_err(|e| io_err(path, e))?;
        file.set_modified(SystemTime::now())
            .map_err(|e| io_err(path, e))
    }

    /// The root directory must exist and be readable: it was created at startup, so its absence means the volume
    /// holding it is gone.
    fn check(&self) -> Result<(), DriverError> {
        let root = self.root.display().to_string();
        let mut entries = fs::read_dir(&self.root).map_err(|source| DriverError::Io {
            path: root.clone(),
            source,
        })?;
        match entries.next() {
            Some(Err(source)) => Err(DriverError::Io { path: root, source }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let d = FsDriver::new(dir.path());
        d.put_content("a/b/c", b"hello").unwrap();
        assert_eq!(d.get_content("a/b/c").unwrap(), b"hello");
        assert_eq!(d.list("a/b").unwrap(), vec!["c".to_string()]);
        let mut w = d.writer("a/up", true).unwrap();
        w.write_all(b"xy").unwrap();
        w.commit().unwrap();
        d.move_to("a/up", "z/moved").unwrap();
        assert_eq!(d.stat("z/moved").unwrap().size, 2);
        assert!(d.get_content("a/up").unwrap_err().is_not_found());
        assert!(matches!(
            d.get_content("../x"),
            Err(DriverError::InvalidPath(_))
        ));
        assert!(matches!(
            d.get_content("/etc/passwd"),
            Err(DriverError::InvalidPath(_))
        ));
        d.delete("a").unwrap();
        assert!(d.stat("a").unwrap_err().is_not_found());
    }
}
