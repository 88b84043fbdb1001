//! Small filesystem helpers: atomic file replacement, directory fsync, advisory locks, unique temp names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;

/// Writes `data` to `path` atomically: a temp file beside it, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(unique_name(".tmp-"));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A name unique within this machine: prefix, pid, time and a counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An advisory lock on a file, released when dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes an exclusive lock, waiting for other holders.
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        FileLock::take(path, FlockOperation::LockExclusive)
    }

    /// Takes a shared lock, waiting for an exclusive holder.
    pub fn shared(path: &Path) -> io::Result<FileLock> {
        FileLock::take(path, FlockOperation::LockShared)
    }

    fn take(path: &Path, operation: FlockOperation) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        rustix::fs::flock(file.as_fd(), operation)?;
        Ok(FileLock { _file: file })
    }

    /// Tries to lock an existing file or directory exclusively without waiting: `None` when another open file holds
    /// a lock on it (a live process is using it).
    pub fn try_exclusive_existing(path: &Path) -> io::Result<Option<FileLock>> {
        let file = File::open(path)?;
        match rustix::fs::flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Marks a file as in use by this process for as long as `file` stays open (see
/// [`FileLock::try_exclusive_existing`]).
pub fn hold_in_use(file: &File) -> io::Result<()> {
    rustix::fs::flock(file.as_fd(), FlockOperation::LockExclusive)?;
    Ok(())
}

/// A directory removed (recursively) when dropped. While it exists, it is locked (see [`hold_in_use`]), so a store
/// check can tell a live process's scratch space from what a killed one left behind.
pub struct TempDir {
    path: PathBuf,
    _in_use: File,
}

impl TempDir {
    /// Creates a fresh directory under `parent`.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<TempDir> {
        let path = parent.join(unique_name(prefix));
        fs::create_dir_all(&path)?;
        let in_use = File::open(&path)?;
        hold_in_use(&in_use)?;
        Ok(TempDir {
            path,
            _in_use: in_use,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
