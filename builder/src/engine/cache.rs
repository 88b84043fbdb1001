//! The build cache: for each layer-producing step, its content-addressed key maps to the layer it made (or to "no
//! changes") and the time it was made, so a rebuild reuses both. Keys chain from the base image's manifest digest
//! through every instruction and the inputs it can see; they never include tags or the project's path.
//!
//! Beside the keys, the cache remembers the inputs each Dockerfile position saw last time, so a miss can be
//! explained ("COPY sources changed").

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use layerstore::{Descriptor, Digest, Store};
use serde::{Deserialize, Serialize};

use crate::snapshot::LayerRef;

/// The version of what steps make from their inputs: bumped when a fix changes a step's output (copy modes, mount
/// points, tar headers, several COPY sources and --chown names without an entry; 6: Docker's seccomp profile and
/// BuildKit's mounts in RUN), so that layers cached by an older lade are not reused for the same inputs.
const STEP_SEMANTICS: &str = "6";

/// The key a stage's chain starts from: its base image's manifest digest, or `scratch`.
pub fn base_key(base: &str) -> Digest {
    Digest::sha256_of(format!("lade-base v{STEP_SEMANTICS} {base}").as_bytes())
}

/// What a cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The layer the step made.
    pub(crate) layer: CachedLayer,
    /// RFC 3339 creation time, reused in the history so a cached rebuild gives the same image.
    pub created: String,
}

/// A layer in a cache record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedLayer {
    /// The layer's blob (compressed) in the store.
    pub(crate) descriptor: Descriptor,
    /// The digest of the layer's uncompressed tar.
    pub(crate) diff_id: Digest,
}

impl From<&LayerRef> for CachedLayer {
    fn from(layer: &LayerRef) -> Self {
        CachedLayer {
            descriptor: layer.descriptor.clone(),
            diff_id: layer.diff_id.clone(),
        }
    }
}

impl From<CachedLayer> for LayerRef {
    fn from(layer: CachedLayer) -> Self {
        LayerRef {
            descriptor: layer.descriptor,
            diff_id: layer.diff_id,
        }
    }
}

/// The inputs of a step, by name, for cache keys and miss explanations.
pub type Inputs = BTreeMap<&'static str, String>;

/// The cache under `<store>/buildcache`.
#[derive(Debug, Clone)]
pub struct StepCache {
    keys: PathBuf,
    positions: PathBuf,
    store: Store,
}

impl StepCache {
    /// Opens the store's step cache (`buildcache/` under the store root), creating its directories when missing.
    pub fn open(store: &Store) -> std::io::Result<StepCache> {
        let root = store.root().join("buildcache");
        let cache = StepCache {
            keys: root.join("keys"),
            positions: root.join("positions"),
            store: store.clone(),
        };
        fs::create_dir_all(&cache.keys)?;
        fs::create_dir_all(&cache.positions)?;
        Ok(cache)
    }

    /// The key of a step from its inputs (which include its parent's key as `parent`).
    pub fn key(inputs: &Inputs) -> Digest {
        let mut text = String::from("lade-step-v1\n");
        for (name, value) in inputs {
            text.push_str(&format!("{name} {}:{value}\n", value.len()));
        }
        Digest::sha256_of(text.as_bytes())
    }

    /// The record for `key`, when present and its layer is still in the store.
    pub fn get(&self, key: &Digest) -> Option<CacheRecord> {
        let bytes = fs::read(self.keys.join(key.hex())).ok()?;
        let record: CacheRecord = serde_json::from_slice(&bytes).ok()?;
        self.store
            .has_blob(&record.layer.descriptor.digest)
            .then_some(record)
    }

    /// Records what the step with `key` produced, replacing any earlier record.
    pub(crate) fn put(&self, key: &Digest, record: &CacheRecord) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(record).expect("a cache record serializes");
        layerstore::fsutil::write_atomic(&self.keys.join(key.hex()), &bytes)
    }

    /// The inputs a Dockerfile position saw in its previous build.
    pub fn previous_inputs(&self, position: &Digest) -> Option<BTreeMap<String, String>> {
        let bytes = fs::read(self.positions.join(position.hex())).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Remembers the inputs a Dockerfile position saw, for explaining the next build's cache miss there.
    pub(crate) fn remember_inputs(
        &self,
        position: &Digest,
        inputs: &Inputs,
    ) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(inputs).expect("inputs serialize");
        layerstore::fsutil::write_atomic(&self.positions.join(position.hex()), &bytes)
    }

    /// Every layer blob the cache refers to (kept by `lade prune`).
    pub fn layer_digests(&self) -> std::io::Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for entry in fs::read_dir(&self.keys)? {
            let bytes = fs::read(entry?.path())?;
            if let Ok(record) = serde_json::from_slice::<CacheRecord>(&bytes) {
                digests.push(record.layer.descriptor.digest);
            }
        }
        Ok(digests)
    }

    /// Forgets every record (`lade builder prune`).
    pub fn clear(&self) -> std::io::Result<u64> {
        let mut removed = 0;
        for dir in [&self.keys, &self.positions] {
            for entry in fs::read_dir(dir)? {
                fs::remove_file(entry?.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Says which inputs differ between a previous build of a step and this one.
pub fn explain_miss(previous: Option<&BTreeMap<String, String>>, current: &Inputs) -> String {
    let Some(previous) = previous else {
        return "not built before".to_string();
    };
    let changed: Vec<&str> = current
        .iter()
        .filter(|(name, value)| previous.get(**name) != Some(*value))
        .map(|(name, _)| *name)
        .collect();
    match changed.as_slice() {
        [] => "unchanged inputs, but the cached layer is gone".to_string(),
        ["parent"] => "a previous step changed".to_string(),
        _ => {
            let own: Vec<&str> = changed
                .into_iter()
                .filter(|name| *name != "parent")
                .collect();
            format!("changed: {}", own.join(", "))
        }
    }
}

/// What `lade builder prune` removed.
#[derive(Debug, Default, Clone)]
pub struct BuilderPruneReport {
    /// How many step records were deleted.
    pub cache_records: u64,
    /// Unpacked layers kept because a running container uses them.
    pub skipped_snapshots: u64,
    /// The blobs deleted, and those kept because they are in use.
    pub blobs: layerstore::prune::PruneReport,
}

fn io_error(context: &str) -> impl FnOnce(std::io::Error) -> layerstore::StoreError {
    let context = context.to_string();
    move |source| layerstore::StoreError::Io { context, source }
}

/// `lade prune`: deletes blobs that neither an image, the build cache nor a running container uses.
pub fn prune_unused(
    store: &Store,
) -> Result<layerstore::prune::PruneReport, layerstore::StoreError> {
    store.prune_with(|_| {
        let cache = StepCache::open(store).map_err(io_error("opening the build cache"))?;
        cache
            .layer_digests()
            .map_err(io_error("reading the build cache"))
    })
}

/// `lade builder prune`: forgets the build cache (step records, unpacked layers, cache mounts), then deletes the
/// blobs no image uses any more. Builds in progress finish first (they hold the store's writer lock); the unpacked
/// layers of running containers (their leases name them) are kept and counted.
pub fn prune_builder(store: &Store) -> Result<BuilderPruneReport, layerstore::StoreError> {
    let mut cache_records = 0;
    let mut skipped_snapshots = 0;
    let blobs = store.prune_with(|leases| {
        let cache = StepCache::open(store).map_err(io_error("opening the build cache"))?;
        cache_records = cache
            .clear()
            .map_err(io_error("clearing the build cache"))?;
        let in_use: std::collections::HashSet<&str> = leases
            .iter()
            .flat_map(|l| &l.snapshots)
            .map(Digest::hex)
            .collect();
        let layers = store.root().join("snapshots/layers");
        match fs::read_dir(&layers) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_error("reading snapshots/layers"))?;
                    if in_use.contains(entry.file_name().to_string_lossy().as_ref()) {
                        skipped_snapshots += 1;
                        continue;
                    }
                    fs::remove_dir_all(entry.path())
                        .map_err(io_error(&format!("removing {}", entry.path().display())))?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("reading snapshots/layers")(e)),
        }
        match fs::remove_dir_all(store.root().join("cache-mounts")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("removing cache-mounts")(e));
            }
            _ => {}
        }
        Ok(Vec::new())
    })?;
    Ok(BuilderPruneReport {
        cache_records,
        skipped_snapshots,
        blobs,
    })
}
