//! Image tarballs: `docker save`-style archives and OCI layout archives.
//!
//! [`save`] writes Docker 25's dual format (legacy `manifest.json` + `repositories` beside an OCI layout), which
//! every Docker version, podman and skopeo read. [`load`] reads that, the legacy format of older Docker versions,
//! plain OCI layout archives, and gzip- or zstd-compressed tarballs of any of them.

pub mod load;
pub mod save;
pub mod source;
mod staging;

use serde::{Deserialize, Serialize};

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveManifestEntry {
    /// The path of the image's config JSON inside the archive (`Config`).
    pub config: String,
    /// The image's names, such as `busybox:latest` (`RepoTags`); absent or empty for an untagged image.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// The paths of the layer tars inside the archive, base layer first (`Layers`).
    pub layers: Vec<String>,
}

/// Where a blob sits inside an archive (OCI layout): `blobs/<alg>/<hex>`.
fn blob_path(digest: &crate::digest::Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}
