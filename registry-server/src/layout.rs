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

pub fn blobs_root() -> String {
    format!("{ROOT}/blobs")
}

pub fn repositories_root() -> String {
    format!("{ROOT}/repositories")
}

pub fn blob_dir(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{ROOT}/blobs/{}/{}/{hex}",
        digest.algorithm().name(),
        &hex[..2]
    )
}

pub fn blob_data(digest: &Digest) -> String {
    format!("{}/data", blob_dir(digest))
}

pub fn repo_dir(name: &str) -> String {
    format!("{ROOT}/repositories/{name}")
}

pub fn layers_dir(name: &str) -> String {
    format!("{}/_layers", repo_dir(name))
}

pub fn layer_link_dir(name: &str, digest: &Digest) -> String {
    format!(
        "{}/{}/{}",
        layers_dir(name),
        digest.algorithm().name(),
        digest.hex()
    )
}

pub fn layer_link(name: &str, digest: &Digest) -> String {
    format!("{}/link", layer_link_dir(name, digest))
}

pub fn revisions_dir(name: &str) -> String {
    format!("{}/_manifests/revisions", repo_dir(name))
}

pub fn revision_link_dir(name: &str, digest: &Digest) -> String {
    format!(
        "{}/{}/{}",
        revisions_dir(name),
        digest.algorithm().name(),
        digest.hex()
    )
}

pub fn revision_link(name: &str, digest: &Digest) -> String {
    format!("{}/link", revision_link_dir(name, digest))
}

pub fn tags_dir(name: &str) -> String {
    format!("{}/_manifests/tags", repo_dir(name))
}

pub fn tag_dir(name: &str, tag: &str) -> String {
    format!("{}/{tag}", tags_dir(name))
}

pub fn tag_current_link(name: &str, tag: &str) -> String {
    format!("{}/current/link", tag_dir(name, tag))
}

pub fn tag_index_link(name: &str, tag: &str, digest: &Digest) -> String {
    format!(
        "{}/index/{}/{}/link",
        tag_dir(name, tag),
        digest.algorithm().name(),
        digest.hex()
    )
}

pub fn uploads_dir(name: &str) -> String {
    format!("{}/_uploads", repo_dir(name))
}

pub fn upload_dir(name: &str, uuid: &str) -> String {
    format!("{}/{uuid}", uploads_dir(name))
}

pub fn upload_data(name: &str, uuid: &str) -> String {
    format!("{}/data", upload_dir(name, uuid))
}

pub fn upload_started_at(name: &str, uuid: &str) -> String {
    format!("{}/startedat", upload_dir(name, uuid))
}

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
