//! Turns a Dockerfile and a build context into images in the layer store.
//!
//! Will hold the Dockerfile front end (parser, word expansion, typed instructions, stages), the build plan (stages,
//! content-addressed cache keys) and the executor (snapshots, RUN through an OCI runtime).

pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod glob;
pub mod runtime;
pub mod snapshot;
pub mod stale;
pub mod tree;
pub mod users;
