//! Mark-and-sweep garbage collection of a registry root, offline or while serving.
//!
//! Mark: every manifest revision of every repository (with `delete_untagged`, only those reachable from a tag,
//! from a kept index, or whose `subject` is kept; the others lose their revision link) and everything it references.
//! Sweep: unmarked blobs are deleted unless they were written or used within the grace period, which is what keeps
//! the blobs of an in-flight push alive. Repository links to swept blobs and stale upload sessions go too.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use layerstore::{Digest, ManifestKind};

use crate::layout;
use crate::registry::Registry;
use crate::storage::DriverError;

/// What to collect.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Only report what would be removed; delete nothing.
    pub dry_run: bool,
    /// Also remove manifests no tag reaches (directly, through a kept index or as a kept manifest's referrer).
    pub delete_untagged: bool,
    /// Blobs and manifests modified more recently than this are never removed.
    pub grace_period: Duration,
    /// Upload sessions untouched for longer than this are removed.
    pub upload_max_age: Duration,
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Manifest revisions unlinked, as (repository, digest).
    pub manifests_removed: Vec<(String, Digest)>,
    /// Blobs deleted from the blob store.
    pub blobs_removed: Vec<Digest>,
    /// The total size of the deleted blobs, in bytes.
    pub bytes_freed: u64,
    /// Blobs left in place: marked, or unmarked but within the grace period.
    pub blobs_kept: usize,
    /// Stale upload sessions deleted.
    pub uploads_removed: usize,
}

fn age(modified: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default()
}

fn ignore_missing(result: Result<(), DriverError>) -> Result<(), DriverError> {
    match result {
        Err(err) if err.is_not_found() => Ok(()),
        other => other,
    }
}

/// Everything a manifest points at: blobs and child manifests.
fn references(kind: &ManifestKind) -> Vec<Digest> {
    match kind {
        ManifestKind::Image(m) => std::iter::once(&m.config)
            .chain(&m.layers)
            .map(|d| d.digest.clone())
            .collect(),
        ManifestKind::Index(i) => i.manifests.iter().map(|d| d.digest.clone()).collect(),
    }
}

fn subject(kind: &ManifestKind) -> Option<&Digest> {
    match kind {
        ManifestKind::Image(m) => m.subject.as_ref().map(|s| &s.digest),
        ManifestKind::Index(i) => i.subject.as_ref().map(|s| &s.digest),
    }
}

/// The manifests of one repository that survive.
fn kept_manifests(
    registry: &Registry,
    repo: &str,
    parsed: &HashMap<Digest, ManifestKind>,
    revisions: &[Digest],
    options: &GcOptions,
) -> Result<HashSet<Digest>, DriverError> {
    if !options.delete_untagged {
        return Ok(revisions.iter().cloned().collect());
    }
    let present: HashSet<&Digest> = revisions.iter().collect();
    let mut keep: HashSet<Digest> = registry
        .tag_map(repo)?
        .into_values()
        .filter(|d| present.contains(d))
        .collect();
    for digest in revisions {
        let young = registry
            .driver()
            .last_used(&layout::blob_data(digest))
            .is_ok_and(|used| age(used) < options.grace_period);
        if young || !parsed.contains_key(digest) {
            keep.insert(digest.clone());
        }
    }
    loop {
        let before = keep.len();
        for (digest, kind) in parsed {
            if keep.contains(digest) {
                if let ManifestKind::Index(_) = kind {
                    keep.extend(references(kind).into_iter().filter(|d| present.contains(d)));
                }
            } else if subject(kind).is_some_and(|s| keep.contains(s)) {
                keep.insert(digest.clone());
            }
        }
        if keep.len() == before {
            return Ok(keep);
        }
    }
}

/// How long a collector's lease lasts; commits on every replica wait while it is held.
pub const LEASE_TTL: Duration = Duration::from_secs(15 * 60);

/// Runs one collection under the sweep lease (see [`crate::lease`]), so that it is safe while other replicas (or
/// processes) serve the same storage: `None` when another collector holds the lease. After taking the lease it
/// waits `settle` for commits that started before it to finish.
pub fn collect_leased(
    registry: &Registry,
    options: &GcOptions,
    commit_lock: &RwLock<()>,
    settle: Duration,
) -> Result<Option<GcReport>, DriverError> {
    let driver = registry.driver().clone();
    let holder = uuid::Uuid::new_v4().to_string();
    let Some(lease) = crate::lease::acquire(driver.as_ref(), &holder, LEASE_TTL)? else {
        return Ok(None);
    };
    std::thread::sleep(settle);
    let result = collect(registry, options, commit_lock);
    lease.release(driver.as_ref())?;
    result.map(Some)
}

/// Runs one collection. `commit_lock` is taken for writing around each deletion so that no push links a blob while
/// it is being removed.
pub fn collect(
    registry: &Registry,
    options: &GcOptions,
    commit_lock: &RwLock<()>,
) -> Result<GcReport, DriverError> {
    let driver = registry.driver().clone();
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    let repositories = registry.repository_dirs()?;
    for repo in &repositories {
        let revisions = registry.manifest_revisions(repo)?;
        let mut parsed = HashMap::new();
        for digest in &revisions {
            if let Some(bytes) = registry.get_manifest(repo, digest)? {
                if let Ok(kind) = ManifestKind::parse(&bytes, "") {
                    parsed.insert(digest.clone(), kind);
                }
            }
        }
        let keep = kept_manifests(registry, repo, &parsed, &revisions, options)?;
        for digest in &revisions {
            if !keep.contains(digest) {
                let _guard = commit_lock.write().unwrap_or_else(|e| e.into_inner());
                // A push that references this manifest touches it first; it then stays.
                let used_since = driver
                    .last_used(&layout::blob_data(digest))
                    .is_ok_and(|used| age(used) < options.grace_period);
                if !used_since {
                    report
                        .manifests_removed
                        .push((repo.clone(), digest.clone()));
                    if !options.dry_run {
                        ignore_missing(driver.delete(&layout::revision_link_dir(repo, digest)))?;
                    }
                    continue;
                }
            }
            marked.insert(digest.clone());
            if let Some(kind) = parsed.get(digest) {
                marked.extend(references(kind));
            }
        }
    }

    let root = layout::blobs_root();
    let list = |path: &str| match driver.list(path) {
        Err(err) if err.is_not_found() => Ok(Vec::new()),
        other => other,
    };
    let mut removed = HashSet::new();
    for algorithm in list(&root)? {
        for prefix in list(&format!("{root}/{algorithm}"))? {
            for hex in list(&format!("{root}/{algorithm}/{prefix}"))? {
                let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() else {
                    continue;
                };
                if marked.contains(&digest) {
                    report.blobs_kept += 1;
                    continue;
                }
                let _guard = commit_lock.write().unwrap_or_else(|e| e.into_inner());
                let info = match driver.stat(&layout::blob_data(&digest)) {
                    Ok(info) => info,
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(err),
                };
                let used = driver
                    .last_used(&layout::blob_data(&digest))
                    .unwrap_or(info.modified);
                if age(used) < options.grace_period {
                    report.blobs_kept += 1;
                    continue;
                }
                report.bytes_freed += info.size;
                if !options.dry_run {
                    ignore_missing(driver.delete(&layout::blob_dir(&digest)))?;
                }
                removed.insert(digest.clone());
                report.blobs_removed.push(digest);
            }
        }
    }

    for repo in &repositories {
        if !options.dry_run {
            let layers = layout::layers_dir(repo);
            for algorithm in list(&layers)? {
                for hex in list(&format!("{layers}/{algorithm}"))? {
                    if let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() {
                        if removed.contains(&digest) {
                            // Unless a push brought the blob back since it was swept.
                            let _guard = commit_lock.write().unwrap_or_else(|e| e.into_inner());
                            if registry.global_blob_size(&digest)?.is_none() {
                                ignore_missing(
                                    driver.delete(&layout::layer_link_dir(repo, &digest)),
                                )?;
                            }
                        }
                    }
                }
            }
        }
        report.uploads_removed +=
            purge_repository_uploads(registry, repo, options.upload_max_age, options.dry_run)?;
    }
    Ok(report)
}

/// Removes (or, in a dry run, counts) the upload sessions of one repository untouched for longer than `max_age`.
fn purge_repository_uploads(
    registry: &Registry,
    repo: &str,
    max_age: Duration,
    dry_run: bool,
) -> Result<usize, DriverError> {
    let driver = registry.driver();
    let uuids = match driver.list(&layout::uploads_dir(repo)) {
        Err(err) if err.is_not_found() => Vec::new(),
        other => other?,
    };
    let mut removed = 0;
    for uuid in uuids {
        let modified = driver
            .stat(&layout::upload_data(repo, &uuid))
            .or_else(|_| driver.stat(&layout::upload_dir(repo, &uuid)))
            .map(|info| info.modified);
        if modified.is_ok_and(|m| age(m) > max_age) {
            removed += 1;
            if !dry_run {
                ignore_missing(driver.delete(&layout::upload_dir(repo, &uuid)))?;
            }
        }
    }
    Ok(removed)
}

/// registry:2's upload purging on its own: removes upload sessions older than `max_age` in every repository and
/// returns how many (would have) gone.
pub fn purge_uploads(
    registry: &Registry,
    max_age: Duration,
    dry_run: bool,
) -> Result<usize, DriverError> {
    let mut removed = 0;
    for repo in registry.repository_dirs()? {
        removed += purge_repository_uploads(registry, &repo, max_age, dry_run)?;
    }
    Ok(removed)
}
