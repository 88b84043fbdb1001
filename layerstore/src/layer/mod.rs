//! Layers: tar archives of filesystem changes, with OCI whiteouts for deletions.
//!
//! [`create`] makes a layer from a directory or from a changeset, [`apply`] unpacks one onto a directory without ever
//! writing outside it, and [`compress`] streams a layer through gzip or zstd computing both the diffID (uncompressed
//! digest) and the blob digest in one pass, with gzip on every core ([`parallel_gzip`]). Every tar read from outside
//! goes through [`tar_guard`], which refuses over-long extension headers in bounded memory.

pub mod apply;
pub mod compress;
pub mod create;
pub mod parallel_gzip;
pub(crate) mod path;
pub mod tar_guard;

/// Prefix of a whiteout entry: `.wh.NAME` deletes `NAME` from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// An entry with this name makes its directory opaque: lower layers' contents of it are hidden.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
