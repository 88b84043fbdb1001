//! Paths of CNCF Distribution's storage layout, so that a root written by one registry is served by the other.
//!
//! ```text
//! docker/registry/v2/blobs/<alg>/<hex[0..2]>/<hex>/data
//! docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//! docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//! docker/registry/v2/repositories/<name>/_uploads/<uuid>/{data,startedat}
//! docker/registry/v2/repositories/<name>/_uploads/<uuid>/hashstates/sha256/<offset>
//! ```
//!
//! A `link` file holds the digest string (`sha256:…`) with no trailing newline.

use layerstore::Digest;

const ROOT: &str = "docker/registry/v2";

/// `docker/registry/v2/blobs`: the directory of the global blob store.
pub fn blobs_root() -> String {
    format!("{ROOT}/blobs")
}

/// `docker/registry/v2/repositories`: the directory holding every repository.
pub fn repositories_root() -> String {
    format!("{ROOT}/repositories")
}

/// A blob's directory: `blobs/<alg>/<hex[0..2]>/<hex>`.
pub fn blob_dir(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{ROOT}/blobs/{}/{}/{hex}",
        digest.algorithm().name(),
        &hex[..2]
    )
}

/// A blob's content file: `blobs/<alg>/<hex[0..2]>/<hex>/data`.
pub fn blob_data(digest: &Digest) -> String {
    format!("{}/data", blob_dir(digest))
}

/// A repository's directory: `repositories/<name>`.
pub fn repo_dir(name: &str) -> String {
    format!("{ROOT}/repositories/{name}")
}

/// A repository's blob links: `repositories/<name>/_layers`.
pub fn layers_dir(name: &str) -> String {
    format!("{}/_layers", repo_dir(name))
}

/// The directory of a repository's link to a blob: `_layers/<alg>/<hex>`.
pub fn layer_link_dir(name: &str, digest: &Digest) -> String {
    format!(
        "{}/{}/{}",
        layers_dir(name),
        digest.algorithm().name(),
        digest.hex()
    )
}

/// A repository's link to a blob (its presence puts the blob in the repository): `_layers/<alg>/<hex>/link`.
pub fn layer_link(name: &str, digest: &Digest) -> String {
    format!("{}/link", layer_link_dir(name, digest))
}

/// A repository's manifest revisions: `_manifests/revisions`.
pub fn revisions_dir(name: &str) -> String {
    format!("{}/_manifests/revisions", repo_dir(name))
}

/// The directory of a manifest revision's link: `_manifests/revisions/<alg>/<hex>`.
pub fn revision_link_dir(name: &str, digest: &Digest) -> String {
    format!(
        "{}/{}/{}",
        revisions_dir(name),
        digest.algorithm().name(),
        digest.hex()
    )
}

/// A manifest revision's link (its presence puts the manifest in the repository):
/// `_manifests/revisions/<alg>/<hex>/link`.
pub fn revision_link(name: &str, digest: &Digest) -> String {
    format!("{}/link", revision_link_dir(name, digest))
}

/// A repository's tags: `_manifests/tags`.
pub fn tags_dir(name: &str) -> String {
    format!("{}/_manifests/tags", repo_dir(name))
}

/// One tag's directory: `_manifests/tags/<tag>`.
pub fn tag_dir(name: &str, tag: &str) -> String {
    format!("{}/{tag}", tags_dir(name))
}

/// The link holding the digest a tag points at now: `_manifests/tags/<tag>/current/link`.
pub fn tag_current_link(name: &str, tag: &str) -> String {
    format!("{}/current/link", tag_dir(name, tag))
}

/// A tag's history entry for a digest it has pointed at: `_manifests/tags/<tag>/index/<alg>/<hex>/link`.
pub fn tag_index_link(name: &str, tag: &str, digest: &Digest) -> String {
    format!(
        "{}/index/{}/{}/link",
        tag_dir(name, tag),
        digest.algorithm().name(),
        digest.hex()
    )
}

/// A repository's upload sessions: `_uploads`.
pub fn uploads_dir(name: &str) -> String {
    format!("{}/_uploads", repo_dir(name))
}

/// One upload session's directory: `_uploads/<uuid>`.
pub fn upload_dir(name: &str, uuid: &str) -> String {
    format!("{}/{uuid}", uploads_dir(name))
}

/// The bytes received so far by an upload session: `_uploads/<uuid>/data`.
pub fn upload_data(name: &str, uuid: &str) -> String {
    format!("{}/data", upload_dir(name, uuid))
}

/// When an upload session started (RFC 3339 text): `_uploads/<uuid>/startedat`.
pub fn upload_started_at(name: &str, uuid: &str) -> String {
    format!("{}/startedat", upload_dir(name, uuid))
}

/// The saved sha256 state of an upload after `offset` bytes: `_uploads/<uuid>/hashstates/sha256/<offset>`.
pub fn upload_hash_state(name: &str, uuid: &str, offset: u64) -> String {
    format!("{}/hashstates/sha256/{offset}", upload_dir(name, uuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_distribution() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            blob_data(&d),
            "docker/registry/v2/blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/data"
        );
        assert_eq!(
            tag_index_link("a/b", "v1", &d),
            format!(
                "docker/registry/v2/repositories/a/b/_manifests/tags/v1/index/sha256/{}/link",
                d.hex()
            )
        );
    }
}
