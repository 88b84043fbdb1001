//! Turns a Dockerfile and a build context into images in the layer store.
//!
//! The front end, the `lade-dockerfile` crate ([`lade_dockerfile`]), parses, types and plans Dockerfiles;
//! [`platform`] parses the platforms it keeps as text. The engine, [`engine`], runs a plan: [`context`] reads the
//! build context (with [`dockerignore`] rules and [`glob`] source patterns) and checksums COPY sources;
//! [`snapshot`] gives each step a writable root filesystem over the parent image's layers and turns what the step
//! changed into a layer; [`copy`] does COPY/ADD into it and [`runtime`] runs RUN in it through runc. [`users`]
//! resolves USER and `--chown` in the image, [`export`] writes `-o` outputs, `tree` copies trees, `stale` finds what dead
//! builds left behind.

pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod engine;
pub mod export;
pub mod glob;
pub mod platform;
pub mod runtime;
pub mod snapshot;
mod stale;
mod tree;
pub mod users;
