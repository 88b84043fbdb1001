//! The storage driver interface the registry keeps its content behind.
//!
//! It is shaped like CNCF Distribution's storage drivers: a flat namespace of `/`-separated paths holding byte
//! contents, with no assumption that a rename is cheap or atomic across "directories". Everything the registry writes
//! goes through [`Driver::put_content`] (whole small files, atomically replaced), [`Driver::writer`] (appendable
//! upload data) and [`Driver::move_to`] (which an object store implements as copy + delete). Two drivers ship: the
//! filesystem ([`fs`]) and object stores ([`object`]: S3, or memory). [`suite`] holds the tests every driver passes.

pub mod fs;
pub mod object;
#[cfg(test)]
pub(crate) mod suite;

use std::io::{Read, Write};
use std::time::SystemTime;

/// What a storage operation failed with.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Nothing is stored at the path.
    #[error("path not found: {0}")]
    NotFound(String),
    /// The path is not a relative, `/`-separated path without `.` or `..` components.
    #[error("invalid storage path {0:?}")]
    InvalidPath(String),
    /// The underlying filesystem or object store failed.
    #[error("storage I/O on {path}: {source}")]
    Io {
        /// The storage path operated on.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl DriverError {
    /// Does this error mean the path does not exist?
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriverError::NotFound(_))
    }
}

/// Metadata of one path.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    /// The file's size in bytes (0 for a directory).
    pub size: u64,
    /// When the file was last written (or touched).
    pub modified: SystemTime,
    /// Whether the path is a directory (a prefix of other paths, for object stores).
    pub is_dir: bool,
}

/// An open, appendable file. Bytes are durable only after [`FileWriter::commit`].
pub trait FileWriter: Write + Send {
    /// The size of the file including everything written so far.
    fn size(&self) -> u64;
    /// Flushes everything written to durable storage.
    fn commit(self: Box<Self>) -> Result<(), DriverError>;
}

/// A store of byte contents addressed by `/`-separated relative paths.
pub trait Driver: Send + Sync + 'static {
    /// The whole content of a (small) file.
    fn get_content(&self, path: &str) -> Result<Vec<u8>, DriverError>;
    /// Atomically creates or replaces a file with `content`.
    fn put_content(&self, path: &str, content: &[u8]) -> Result<(), DriverError>;
    /// Reads a file from `offset` on.
    fn reader(&self, path: &str, offset: u64) -> Result<Box<dyn Read + Send>, DriverError>;
    /// Opens a file for writing, appending to it when `append` is set and truncating it otherwise.
    fn writer(&self, path: &str, append: bool) -> Result<Box<dyn FileWriter>, DriverError>;
    /// Metadata of a file or directory.
    fn stat(&self, path: &str) -> Result<FileInfo, DriverError>;
    /// The size of a file written through [`Driver::writer`], committed so far or complete: [`Driver::stat`]'s, by
    /// default; drivers that keep unfinished files apart look there first.
    fn appendable_size(&self, path: &str) -> Result<u64, DriverError> {
        Ok(self.stat(path)?.size)
    }
    /// The names of the direct children of a directory.
    fn list(&self, path: &str) -> Result<Vec<String>, DriverError>;
    /// Makes an appendable file readable as it stands; nothing may be appended to it afterwards. Files of a
    /// filesystem always are; an object store's upload in progress is completed in place.
    fn seal(&self, path: &str) -> Result<(), DriverError>;
    /// Moves a file to `dst`, replacing whatever is there.
    fn move_to(&self, src: &str, dst: &str) -> Result<(), DriverError>;
    /// Deletes a file or a whole directory tree.
    fn delete(&self, path: &str) -> Result<(), DriverError>;
    /// Sets a file's modification time to now (garbage collection treats recently touched blobs as in use).
    fn touch(&self, path: &str) -> Result<(), DriverError>;
    /// Checks that the storage answers, for readiness probes. By default a stat of the registry's top path, where
    /// "not found" only means an empty registry.
    fn check(&self) -> Result<(), DriverError> {
        match self.stat("docker") {
            Err(err) if !err.is_not_found() => Err(err),
            _ => Ok(()),
        }
    }
    /// Creates a small file only if nothing is there (S3's `If-None-Match: *`); false when something was.
    fn put_if_absent(&self, path: &str, content: &[u8]) -> Result<bool, DriverError>;
    /// Replaces a small file only if its content is still `expected` (a compare-and-swap: S3's `If-Match` on the
    /// ETag read with it); false when it changed or is gone.
    fn replace_if(&self, path: &str, expected: &[u8], content: &[u8]) -> Result<bool, DriverError>;
    /// When a file was last written or touched (what garbage collection's grace period is measured against).
    fn last_used(&self, path: &str) -> Result<SystemTime, DriverError> {
        Ok(self.stat(path)?.modified)
    }
}
