//! The image model and everything about image bytes at rest.
//!
//! Digests, descriptors, manifests, indexes and configs (OCI and Docker media types), Docker-compatible image
//! references, a content-addressed blob store in OCI image layout with tags, layer tar creation and application
//! (with whiteouts), and reading and writing docker-archive and OCI layout tarballs.

pub mod archive;
pub mod check;
pub mod config;
pub mod content_size;
pub mod digest;
pub mod fsutil;
pub mod image;
pub mod import;
pub mod index_entry;
pub mod layer;
pub mod lease;
pub mod limits;
pub mod manifest;
pub mod media_types;
pub mod mutate;
pub mod progress;
pub mod prune;
pub mod reference;
pub mod store;
pub mod tags;
#[cfg(test)]
mod test_images;
pub mod transport;
pub mod unique_keys;

pub use config::ImageConfig;
pub use digest::{Algorithm, Digest};
pub use image::Image;
pub use manifest::{Descriptor, Index, Manifest, ManifestKind, Platform, PlatformError};
pub use reference::Reference;
pub use store::{Store, StoreError};
pub use tags::{FoundImage, ImageRecord};
