//! The registry's integrity check (`lade registry check`): every blob is re-hashed against its path, every manifest
//! revision is parsed and followed to what it references, every tag and layer link is resolved.
//!
//! Upload sessions in progress are not problems: they are invisible until committed, and resume or expire. With
//! `repair`, corrupt blobs, stale layer links, broken manifest revisions and the tags that point at them are
//! removed, so every name the API serves resolves to whole content again. It works through the storage driver, so
//! it checks any backend, and should run while no server writes (as offline `lade registry gc` does).

use std::collections::{BTreeSet, HashSet};
use std::io;

use layerstore::digest::HashingReader;
use layerstore::{Descriptor, Digest, ManifestKind};

use crate::layout;
use crate::registry::Registry;
use crate::storage::DriverError;

/// One problem, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The repository, or empty for the global blob store.
    pub repository: String,
    /// The blob digest, `digest` of a revision, or tag name.
    pub subject: String,
    /// What is wrong.
    pub reason: String,
}

/// What a check found (and, with repair, removed).
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    /// Blobs re-hashed, and their bytes.
    pub blobs_checked: u64,
    /// The total size of the blobs re-hashed, in bytes.
    pub bytes_checked: u64,
    /// Blobs whose content does not hash to their path.
    pub corrupt_blobs: Vec<Digest>,
    /// Repository links to blobs that are missing or corrupt. No client sees them (a blob is served only when it is
    /// there), and a garbage collection killed between deleting blobs and their links leaves them, so they are
    /// not problems; repair removes them.
    pub stale_links: Vec<Problem>,
    /// Manifest revisions that are missing, corrupt, unparsable or reference missing content.
    pub broken_manifests: Vec<Problem>,
    /// Tags that do not resolve to a sound revision of their repository.
    pub broken_tags: Vec<Problem>,
    /// Upload sessions in progress (not problems).
    pub uploads: usize,
    /// Whether the problems were removed.
    pub repaired: bool,
}

impl CheckReport {
    /// Would a client see anything wrong?
    pub fn has_problems(&self) -> bool {
        !(self.corrupt_blobs.is_empty()
            && self.broken_manifests.is_empty()
            && self.broken_tags.is_empty())
    }
}

fn ignore_missing(result: Result<(), DriverError>) -> Result<(), DriverError> {
    match result {
        Err(err) if err.is_not_found() => Ok(()),
        other => other,
    }
}

fn problem(repository: &str, subject: impl ToString, reason: impl Into<String>) -> Problem {
    Problem {
        repository: repository.to_string(),
        subject: subject.to_string(),
        reason: reason.into(),
    }
}

/// Checks a registry; with `repair`, removes what is broken.
pub fn check(registry: &Registry, repair: bool) -> Result<CheckReport, DriverError> {
    let mut report = CheckReport::default();
    let sound = check_blobs(registry, &mut report)?;
    for repo in registry.repository_dirs()? {
        check_repository(registry, &repo, &sound, &mut report)?;
    }
    if repair {
        remove_problems(registry, &report)?;
        report.repaired = true;
    }
    Ok(report)
}

/// Re-hashes every blob; returns the sound ones.
fn check_blobs(
    registry: &Registry,
    report: &mut CheckReport,
) -> Result<HashSet<Digest>, DriverError> {
    let driver = registry.driver();
    let list = |path: &str| match driver.list(path) {
        Err(err) if err.is_not_found() => Ok(Vec::new()),
        other => other,
    };
    let root = layout::blobs_root();
    let mut sound = HashSet::new();
    for algorithm in list(&root)? {
        for prefix in list(&format!("{root}/{algorithm}"))? {
            for hex in list(&format!("{root}/{algorithm}/{prefix}"))? {
                let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                    continue;
                };
                let path = layout::blob_data(&digest);
                let reader = match driver.reader(&path, 0) {
                    Ok(reader) => reader,
                    // A blob directory without data is no blob: nothing serves it.
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(err),
                };
                let mut hashing = HashingReader::new(reader, digest.algorithm());
                io::copy(&mut hashing, &mut io::sink()).map_err(|source| DriverError::Io {
                    path: path.clone(),
                    source,
                })?;
                let (actual, size) = hashing.finish();
                report.blobs_checked += 1;
                report.bytes_checked += size;
                if actual == digest {
                    sound.insert(digest);
                } else {
                    report.corrupt_blobs.push(digest);
                }
            }
        }
    }
    report.corrupt_blobs.sort();
    Ok(sound)
}

fn check_repository(
    registry: &Registry,
    repo: &str,
    sound: &HashSet<Digest>,
    report: &mut CheckReport,
) -> Result<(), DriverError> {
    let driver = registry.driver();
    let layers = layout::layers_dir(repo);
    for algorithm in optional_list(registry, &layers)? {
        for hex in optional_list(registry, &format!("{layers}/{algorithm}"))? {
            let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                continue;
            };
            if registry
                .read_link(&layout::layer_link(repo, &digest))?
                .is_some()
                && !sound.contains(&digest)
            {
                report.stale_links.push(problem(
                    repo,
                    &digest,
                    "the blob it links is missing or corrupt",
                ));
            }
        }
    }
    let revisions = registry.manifest_revisions(repo)?;
    let mut broken: BTreeSet<Digest> = BTreeSet::new();
    for digest in &revisions {
        if let Some(reason) = manifest_problem(registry, repo, digest, sound, &revisions)? {
            report.broken_manifests.push(problem(repo, digest, reason));
            broken.insert(digest.clone());
        }
    }
    for (tag, digest) in registry.tag_map(repo)? {
        let reason = if broken.contains(&digest) {
            format!("its manifest {digest} is broken")
        } else if !revisions.contains(&digest) {
            format!("its manifest {digest} is not in the repository")
        } else {
            continue;
        };
        report.broken_tags.push(problem(repo, tag, reason));
    }
    if let Ok(uploads) = driver.list(&layout::uploads_dir(repo)) {
        report.uploads += uploads.len();
    }
    Ok(())
}

fn optional_list(registry: &Registry, path: &str) -> Result<Vec<String>, DriverError> {
    match registry.driver().list(path) {
        Err(err) if err.is_not_found() => Ok(Vec::new()),
        other => other,
    }
}

/// Why a revision cannot be served whole, if it cannot.
fn manifest_problem(
    registry: &Registry,
    repo: &str,
    digest: &Digest,
    sound: &HashSet<Digest>,
    revisions: &[Digest],
) -> Result<Option<String>, DriverError> {
    if !sound.contains(digest) {
        return Ok(Some("its blob is missing or corrupt".into()));
    }
    let Some(bytes) = registry.get_manifest(repo, digest)? else {
        return Ok(Some("its blob is missing".into()));
    };
    let missing = |d: &Descriptor, what: &str| {
        (!sound.contains(&d.digest))
            .then(|| format!("its {what} {} is missing or corrupt", d.digest))
    };
    Ok(match ManifestKind::parse(&bytes, "") {
        Err(e) => Some(format!("it does not parse: {e}")),
        Ok(ManifestKind::Image(manifest)) => missing(&manifest.config, "config").or_else(|| {
            manifest
                .layers
                .iter()
                // Foreign layers live elsewhere by design.
                .filter(|layer| {
                    !layer.media_type.contains("nondistributable")
                        && !layer.media_type.contains("foreign")
                })
                .find_map(|layer| missing(layer, "layer"))
        }),
        Ok(ManifestKind::Index(index)) => index.manifests.iter().find_map(|child| {
            (!revisions.contains(&child.digest)).then(|| {
                format!(
                    "its child manifest {} is not in the repository",
                    child.digest
                )
            })
        }),
    })
}

fn remove_problems(registry: &Registry, report: &CheckReport) -> Result<(), DriverError> {
    let driver = registry.driver();
    for digest in &report.corrupt_blobs {
        ignore_missing(driver.delete(&layout::blob_dir(digest)))?;
    }
    for link in &report.stale_links {
        if let Ok(digest) = link.subject.parse::<Digest>() {
            ignore_missing(driver.delete(&layout::layer_link_dir(&link.repository, &digest)))?;
        }
    }
    for manifest in &report.broken_manifests {
        if let Ok(digest) = manifest.subject.parse::<Digest>() {
            ignore_missing(
                driver.delete(&layout::revision_link_dir(&manifest.repository, &digest)),
            )?;
        }
    }
    for tag in &report.broken_tags {
        ignore_missing(driver.delete(&layout::tag_dir(&tag.repository, &tag.subject)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::fs::FsDriver;

    fn registry_with_image(dir: &std::path::Path) -> (Registry, Digest, Digest) {
        let registry = Registry::new(Arc::new(FsDriver::new(dir)));
        let driver = registry.driver().clone();
        let put_blob = |bytes: &[u8]| {
            let digest = Digest::sha256_of(bytes);
            driver
                .put_content(&layout::blob_data(&digest), bytes)
                .unwrap();
            registry.link_blob("app", &digest).unwrap();
            digest
        };
        let config = put_blob(b"{}");
        let layer = put_blob(b"layer");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":5}}]}}"#
        );
        let digest = Digest::sha256_of(manifest.as_bytes());
        driver
            .put_content(&layout::blob_data(&digest), manifest.as_bytes())
            .unwrap();
        driver
            .put_content(
                &layout::revision_link("app", &digest),
                digest.to_string().as_bytes(),
            )
            .unwrap();
        registry.tag("app", "1", &digest).unwrap();
        (registry, layer, digest)
    }

    #[test]
    fn a_sound_registry_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, _, _) = registry_with_image(dir.path());
        let report = check(&registry, false).unwrap();
        assert!(!report.has_problems(), "{report:?}");
        assert_eq!(report.blobs_checked, 3);
    }

    #[test]
    fn a_corrupt_layer_breaks_link_manifest_and_tag_and_repair_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, layer, manifest) = registry_with_image(dir.path());
        registry
            .driver()
            .put_content(&layout::blob_data(&layer), b"LAYER")
            .unwrap();
        let report = check(&registry, false).unwrap();
        assert_eq!(report.corrupt_blobs, std::slice::from_ref(&layer));
        assert_eq!(report.stale_links.len(), 1);
        assert_eq!(report.broken_manifests[0].subject, manifest.to_string());
        assert!(
            report.broken_manifests[0].reason.contains("layer"),
            "{report:?}"
        );
        assert_eq!(report.broken_tags[0].subject, "1");
        assert_eq!(
            registry.resolve_tag("app", "1").unwrap(),
            Some(manifest.clone())
        );
        let report = check(&registry, true).unwrap();
        assert!(report.repaired);
        assert_eq!(registry.resolve_tag("app", "1").unwrap(), None);
        assert!(!registry.manifest_exists("app", &manifest).unwrap());
        assert_eq!(registry.global_blob_size(&layer).unwrap(), None);
        assert!(!check(&registry, false).unwrap().has_problems());
    }

    #[test]
    fn a_tag_to_a_missing_revision_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, _, _) = registry_with_image(dir.path());
        let other = Digest::sha256_of(b"elsewhere");
        registry.tag("app", "gone", &other).unwrap();
        let report = check(&registry, false).unwrap();
        assert_eq!(report.broken_tags.len(), 1);
        assert!(report.broken_tags[0]
            .reason
            .contains("not in the repository"));
        assert!(report.broken_manifests.is_empty());
    }
}
