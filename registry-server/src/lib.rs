//! An OCI distribution API server (spec v1.1) that can stand in for CNCF Distribution's `registry:2`.
//!
//! It stores content in Distribution's filesystem layout ([`layout`]) behind a storage driver interface
//! ([`storage`]), so a root written by either registry is served by the other. Uploads stream to storage while
//! hashing and survive restarts ([`uploads`]); manifests are validated against the content they reference
//! ([`http`]); [`gc`] collects unreferenced blobs offline or while serving. [`proxy`] makes it a pull-through
//! mirror of another registry. [`ui`] renders a web page of the content. `lade registry serve` and
//! `lade registry gc` are thin wrappers over [`server::serve`] and [`gc::collect`].

pub mod check;
pub mod config;
pub mod error;
pub mod gc;
pub mod hashstate;
pub mod http;
pub mod layout;
pub mod lease;
pub mod names;
pub mod notify;
pub mod proxy;
pub mod registry;
pub mod registry2_config;
pub mod server;
pub mod storage;
pub mod ui;
pub mod uploads;

pub use config::Config;
pub use server::{serve, shutdown_signal, ServeError};
