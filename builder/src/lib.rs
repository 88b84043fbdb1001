//! Turns a Dockerfile and a build context into images in the layer store.
//!
//! Holds the Dockerfile front end ([`dockerfile`]: parser, word expansion, typed instructions, stages), the build
//! context ([`context`], [`dockerignore`], [`glob`]), file operations for COPY/ADD ([`copy`], [`tree`], [`users`]),
//! snapshots of root filesystems ([`snapshot`]) and RUN through an OCI runtime ([`runtime`]).

pub mod build;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod dockerignore;
pub mod glob;
pub mod runtime;
pub mod snapshot;
pub mod tree;
pub mod users;
