//! Turns a Dockerfile and a build context into images in the layer store.
//!
//! Holds the Dockerfile front end ([`dockerfile`]: parser, word expansion, typed instructions, stages). The build
//! plan's cache keys and the executor (snapshots, RUN through an OCI runtime) will live beside it.

pub mod dockerfile;
