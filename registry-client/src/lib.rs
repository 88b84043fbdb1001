//! A client for the OCI distribution API: auth, push, pull, copy between transports, progress.
//!
//! [`Session`] talks to one registry host: it chooses HTTP or HTTPS (plain HTTP for loopback and insecure
//! registries, TLS with the system roots plus `certs.d/<host:port>/ca.crt` otherwise), answers `WWW-Authenticate`
//! challenges (Basic, and the Bearer token flow with anonymous, password and refresh-token grants, tokens cached per
//! scope until they expire) and retries connection errors, 5xx and 429 with backoff. Credentials come from Docker's
//! `config.json` ([`credentials`]). [`pull`] streams an image's blobs into a [`layerstore::Store`], verifying every
//! digest and resuming interrupted downloads with `Range`; [`push`] uploads an image from a store (existence check,
//! cross-repository mount, monolithic or chunked upload resumed from the registry's offset, manifest last).
//! [`location`] names images in registries, OCI layouts, archives and the local store, and copies between them.

pub mod auth;
mod body;
pub mod compress;
pub mod connector;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod location;
pub mod multi;
pub mod pull;
pub mod push;
mod retry;
pub mod session;
mod tls;
mod upload;

pub use connector::Connector;
pub use endpoint::EndpointOptions;
pub use error::Error;
pub use location::{copy, Copied, CopyOptions, Location};
pub use pull::{pull, PullOptions, Pulled};
pub use push::{push, push_blob, PushOptions, Pushed};
pub use session::Session;

/// Every manifest media type this client accepts, for `Accept` headers.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
