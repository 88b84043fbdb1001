//! Snapshots: the writable root filesystem of one build step, and the layer it produces.
//!
//! With overlayfs (root, and a mount that works) image layers are unpacked once into a cache keyed by chain ID
//! ([`unpack`]) and stacked as lower directories under a fresh upper directory; the step's changes are read back
//! from the upper directory. Without it, the layers are applied into a lower tree, copied into the root filesystem,
//! and the two trees are compared afterwards (`diff`).
//!
//! Mount targets that the runtime had to create (`/proc`, `/etc/hosts`, a secret's `/run/secrets/ID`, ...) are not
//! content of the step: [`Snapshot::record_mount_targets`] notes which did not exist before, and the commit drops
//! them again when they are still empty.

mod diff;
pub mod overlay;
pub mod unpack;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use layerstore::digest::HashingReader;
use layerstore::layer::apply::{apply_layer, resolve_in_root, ApplyError};
use layerstore::layer::compress::{auto_decompress, CompressingWriter};
use layerstore::layer::create::{write_changes, Change, LayerOptions};
use layerstore::media_types::{Compression, OCI_LAYER_GZIP};
use layerstore::{Descriptor, Digest, Image, Store, StoreError};

use overlay::OverlayMount;

/// Why a snapshot could not be made or committed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The layer store failed (reading a layer blob, writing a new layer).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation on a snapshot's directories failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// A layer could not be unpacked into its directory.
    #[error("unpacking layer {digest}: {source}")]
    Apply {
        /// The layer's blob digest.
        digest: Digest,
        /// Why unpacking failed.
        source: ApplyError,
    },
    /// A layer's uncompressed content does not have the diff ID the image config gives it.
    #[error(
        "layer {digest} uncompresses to {actual}, but the image config gives diff ID {expected}"
    )]
    DiffIdMismatch {
        /// The layer's blob digest.
        digest: Digest,
        /// The diff ID in the image config.
        expected: Digest,
        /// The digest of the uncompressed content.
        actual: Digest,
    },
    /// Mounting or unmounting an overlay failed.
    #[error("mounting overlay on {target}: {source}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The error of mount(2) or umount(2).
        source: io::Error,
    },
}

pub(crate) fn io_context<C: FnOnce() -> String>(
    context: C,
) -> impl FnOnce(io::Error) -> SnapshotError {
    move |source| SnapshotError::Io {
        context: context(),
        source,
    }
}

/// One layer of the image a step starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRef {
    /// The layer blob in the store.
    pub descriptor: Descriptor,
    /// The digest of the layer's uncompressed tar (the image config's diff ID).
    pub diff_id: Digest,
}

impl LayerRef {
    /// The layers of an image, bottom first.
    pub fn of_image(image: &Image) -> Vec<LayerRef> {
        image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
            .map(|(descriptor, diff_id)| LayerRef {
                descriptor: descriptor.clone(),
                diff_id: diff_id.clone(),
            })
            .collect()
    }
}

/// How snapshots are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Overlay mounts over cached unpacked layers.
    Overlay,
    /// Copied trees compared after the step (no mounts needed).
    Copy,
}

/// A layer made by committing a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedLayer {
    /// The gzip-compressed layer blob, now in the store.
    pub descriptor: Descriptor,
    /// The digest of the layer's uncompressed tar (its diff ID).
    pub(crate) diff_id: Digest,
    /// The layer stack including this layer, to start the next step from.
    pub layers: Vec<LayerRef>,
}

/// Makes snapshots under `<store>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    store: Store,
    mode: SnapshotMode,
}

impl Snapshotter {
    /// Uses overlayfs when a test mount of it succeeds here (in a user namespace too, on Linux 5.11 and later),
    /// copies otherwise.
    pub fn new(store: &Store) -> Result<Snapshotter, SnapshotError> {
        let snapshotter = Snapshotter::with_mode(store, SnapshotMode::Copy)?;
        let mode = if overlay::works(&snapshotter.work_root()) {
            SnapshotMode::Overlay
        } else {
            SnapshotMode::Copy
        };
        Ok(Snapshotter {
            mode,
            ..snapshotter
        })
    }

    /// Uses the given mode (an overlay mount fails later when unavailable).
    pub fn with_mode(store: &Store, mode: SnapshotMode) -> Result<Snapshotter, SnapshotError> {
        let snapshotter = Snapshotter {
            store: store.clone(),
            mode,
        };
        for dir in [snapshotter.layer_cache(), snapshotter.work_root()] {
            fs::create_dir_all(&dir)
                .map_err(io_context(|| format!("creating {}", dir.display())))?;
        }
        snapshotter.reap_stale();
        Ok(snapshotter)
    }

    /// Removes the step directories (unmounting them first) and half-unpacked layers of builds that died.
    fn reap_stale(&self) {
        for (_, path) in crate::stale::dead_entries(&self.work_root(), &["step-", ".probe-"]) {
            let merged = path.join("merged");
            let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
            // Never delete through a mount that is still there.
            if !overlay::is_mount_point(&merged) {
                let _ = fs::remove_dir_all(&path);
            }
        }
        for (_, path) in crate::stale::dead_entries(&self.layer_cache(), &[".tmp-"]) {
            let _ = fs::remove_dir_all(&path);
        }
    }

    /// How this snapshotter makes snapshots.
    pub fn mode(&self) -> SnapshotMode {
        self.mode
    }

    fn layer_cache(&self) -> PathBuf {
        self.store.root().join("snapshots/layers")
    }

    fn work_root(&self) -> PathBuf {
        self.store.root().join("snapshots/work")
    }

    /// A writable root filesystem holding `layers` (bottom first; empty for `FROM scratch`).
    pub fn prepare(&self, layers: &[LayerRef]) -> Result<Snapshot, SnapshotError> {
        // Beside the layer cache, so that a committed upper directory can be renamed into it.
        let dir = self
            .work_root()
            .join(layerstore::fsutil::unique_name("step-"));
        fs::create_dir(&dir).map_err(io_context(|| format!("creating {}", dir.display())))?;
        // The snapshot owns `dir` from here on: an error below removes it (and unmounts) on drop.
        let mut snapshot = Snapshot {
            store: self.store.clone(),
            layer_cache: self.layer_cache(),
            dir: dir.clone(),
            layers: layers.to_vec(),
            kind: SnapshotKind::Copy {
                lower: dir.join("lower"),
                rootfs: dir.join("rootfs"),
            },
            created_targets: BTreeSet::new(),
        };
        match self.mode {
            SnapshotMode::Overlay => {
                let lowers = unpack::unpack_chain(&self.store, &self.layer_cache(), layers)?;
                snapshot.kind = SnapshotKind::Overlay(OverlayMount::mount(&dir, &lowers)?);
            }
            SnapshotMode::Copy => {
                let (lower, rootfs) = (dir.join("lower"), dir.join("rootfs"));
                fs::create_dir(&lower)
                    .map_err(io_context(|| format!("creating {}", lower.display())))?;
                for layer in layers {
                    apply_verified(&self.store, layer, &lower)?;
                }
                crate::tree::copy_tree(&lower, &rootfs).map_err(io_context(|| {
                    format!("copying {} to {}", lower.display(), rootfs.display())
                }))?;
            }
        }
        Ok(snapshot)
    }
}

/// Applies a layer onto `dir`, checking that its uncompressed stream is its diff ID.
fn apply_verified(store: &Store, layer: &LayerRef, dir: &Path) -> Result<(), SnapshotError> {
    let digest = &layer.descriptor.digest;
    let read_err = || format!("reading layer {digest}");
    let (_, reader) = auto_decompress(store.open_blob(digest)?).map_err(io_context(read_err))?;
    let mut hashing = HashingReader::new(reader, layerstore::Algorithm::Sha256);
    apply_layer(&mut hashing, dir).map_err(|source| SnapshotError::Apply {
        digest: digest.clone(),
        source,
    })?;
    // The tar reader stops at the end-of-archive blocks: hash any padding after them too.
    io::copy(&mut hashing, &mut io::sink()).map_err(io_context(read_err))?;
    let (actual, _) = hashing.finish();
    if actual != layer.diff_id {
        return Err(SnapshotError::DiffIdMismatch {
            digest: digest.clone(),
            expected: layer.diff_id.clone(),
            actual,
        });
    }
    Ok(())
}

enum SnapshotKind {
    Overlay(OverlayMount),
    Copy { lower: PathBuf, rootfs: PathBuf },
}

/// The root filesystem of one step. Dropping it without committing discards it (unmounting when needed).
pub struct Snapshot {
    store: Store,
    layer_cache: PathBuf,
    dir: PathBuf,
    layers: Vec<LayerRef>,
    kind: SnapshotKind,
    /// Mount targets (relative to the root) that did not exist before the step ran.
    created_targets: BTreeSet<PathBuf>,
}

impl Snapshot {
    /// The directory to run or copy into.
    pub fn rootfs(&self) -> &Path {
        match &self.kind {
            SnapshotKind::Overlay(mount) => mount.merged(),
            SnapshotKind::Copy { rootfs, .. } => rootfs,
        }
    }

    /// Notes which of these container paths (mount targets) do not exist yet, so that the commit drops the empty
    /// files the runtime creates to mount files on. Call it before running. As in BuildKit (v0.8), directories the
    /// runtime creates (mount points, and the parents of any target) stay in the layer.
    pub fn record_mount_targets(&mut self, targets: &[PathBuf]) {
        for target in targets {
            let relative: PathBuf = target
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            let Some(resolved) = self.resolve(&relative) else {
                continue;
            };
            if fs::symlink_metadata(self.rootfs().join(&resolved)).is_err() {
                self.created_targets.insert(resolved);
            }
        }
    }

    /// Where `relative` is in the root filesystem once its symlinked parents are followed, relative to the root.
    fn resolve(&self, relative: &Path) -> Option<PathBuf> {
        let parent = relative.parent().unwrap_or(Path::new(""));
        let resolved_parent = resolve_in_root(self.rootfs(), parent, false).ok()?;
        let parent_rel = resolved_parent
            .strip_prefix(self.rootfs())
            .ok()?
            .to_path_buf();
        Some(parent_rel.join(relative.file_name()?))
    }

    /// Ends the step and stores its changes as a gzip layer, an empty one when the step changed nothing (BuildKit
    /// keeps those too). The caller holds the store's writer lock until the image referencing the layer is recorded.
    pub fn commit(mut self, options: LayerOptions) -> Result<CommittedLayer, SnapshotError> {
        let (root, mut changes) = match &mut self.kind {
            SnapshotKind::Overlay(mount) => {
                mount.unmount()?;
                let upper = mount.upper().to_path_buf();
                let changes = diff::upper_changes(&upper).map_err(io_context(|| {
                    format!("reading changes from {}", upper.display())
                }))?;
                (upper, changes)
            }
            SnapshotKind::Copy { lower, rootfs } => {
                let changes = diff::tree_changes(lower, rootfs).map_err(io_context(|| {
                    format!("comparing {} with {}", rootfs.display(), lower.display())
                }))?;
                (rootfs.clone(), changes)
            }
        };
        self.drop_created_targets(&root, &mut changes)?;
        let mut blob = self.store.blob_writer(layerstore::Algorithm::Sha256)?;
        let compressing = CompressingWriter::new(&mut blob, Compression::Gzip)
            .map_err(io_context(|| "starting layer compression".into()))?;
        let compressing =
            write_changes(&root, &changes, compressing, options).map_err(io_context(|| {
                format!("writing the layer of {}", root.display())
            }))?;
        let (_, digests) = compressing
            .finish()
            .map_err(io_context(|| "finishing the layer".into()))?;
        blob.commit(Some(&digests.digest))?;
        let new_layer = LayerRef {
            descriptor: Descriptor::new(OCI_LAYER_GZIP, digests.digest.clone(), digests.size),
            diff_id: digests.diff_id.clone(),
        };
        let mut layers = self.layers.clone();
        layers.push(new_layer.clone());
        if let SnapshotKind::Overlay(_) = self.kind {
            self.adopt_upper(&root, &layers)?;
        }
        Ok(CommittedLayer {
            descriptor: new_layer.descriptor,
            diff_id: new_layer.diff_id,
            layers,
        })
    }

    /// Removes the mount targets the runtime created as files and that are still empty, from `root` and the changes.
    fn drop_created_targets(
        &self,
        root: &Path,
        changes: &mut Vec<Change>,
    ) -> Result<(), SnapshotError> {
        for path in &self.created_targets {
            let full = root.join(path);
            // The step may have replaced a parent with a symlink: never follow one out of the root.
            let parent = path.parent().unwrap_or(Path::new(""));
            if crate::tree::resolve_existing(root, parent) != Some(root.join(parent)) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&full) else {
                continue;
            };
            // BuildKit removes a created target only when its size is 0, which a directory's never is.
            if meta.is_dir() || meta.len() != 0 {
                continue;
            }
            fs::remove_file(&full).map_err(io_context(|| {
                format!("removing mount target {}", full.display())
            }))?;
            changes.retain(|c| !matches!(c, Change::Write(p) | Change::Opaque(p) if p == path));
        }
        // Directories keep their change: created ones stay, and existing ones have a new modification time.
        Ok(())
    }

    /// Moves the committed upper directory into the layer cache as the unpacked form of its chain.
    fn adopt_upper(&self, upper: &Path, layers: &[LayerRef]) -> Result<(), SnapshotError> {
        let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        let chain = unpack::chain_ids(&diff_ids)
            .pop()
            .expect("at least the new layer");
        let target = unpack::layer_dir(&self.layer_cache, &chain);
        if target.exists() {
            return Ok(());
        }
        match fs::rename(upper, &target) {
            Err(_) if target.is_dir() => Ok(()),
            other => other.map_err(io_context(|| format!("caching layer {}", target.display()))),
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let SnapshotKind::Overlay(mount) = &mut self.kind {
            let _ = mount.unmount();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diff ID of a tar with no entries (1024 zero bytes), which Docker's BuildKit gives a step that changed
    /// nothing.
    const EMPTY_TAR_DIFF_ID: &str =
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

    #[test]
    fn a_step_that_changed_nothing_commits_an_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let snapshots = Snapshotter::with_mode(&store, SnapshotMode::Copy).unwrap();
        let step = snapshots.prepare(&[]).unwrap();
        let layer = step.commit(LayerOptions::default()).unwrap();
        assert_eq!(layer.diff_id.to_string(), EMPTY_TAR_DIFF_ID);
        assert_eq!(layer.layers.len(), 1);
    }

    #[test]
    fn layers_whose_content_is_not_their_diff_id_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "f", &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let digest = store.write_blob(&tar).unwrap();
        let layer = |diff_id| LayerRef {
            descriptor: Descriptor::new(
                layerstore::media_types::OCI_LAYER,
                digest.clone(),
                tar.len() as u64,
            ),
            diff_id,
        };
        let wrong = layer(Digest::sha256_of(b"something else"));
        for mode in [SnapshotMode::Overlay, SnapshotMode::Copy] {
            let snapshots = Snapshotter::with_mode(&store, mode).unwrap();
            let err = snapshots
                .prepare(std::slice::from_ref(&wrong))
                .err()
                .expect("refused");
            assert!(
                matches!(err, SnapshotError::DiffIdMismatch { .. }),
                "{mode:?}: {err}"
            );
        }
        let right = layer(digest.clone());
        let copied = Snapshotter::with_mode(&store, SnapshotMode::Copy)
            .unwrap()
            .prepare(&[right])
            .unwrap();
        assert_eq!(fs::read(copied.rootfs().join("f")).unwrap(), b"x");
        // Failed preparations leave nothing behind.
        drop(copied);
        assert_eq!(
            fs::read_dir(dir.path().join("snapshots/work"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn dropping_created_targets_never_follows_a_symlinked_parent_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let host = dir.path().join("host");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("hosts"), b"").unwrap();
        let snapshots = Snapshotter::with_mode(&store, SnapshotMode::Copy).unwrap();
        let mut step = snapshots.prepare(&[]).unwrap();
        step.record_mount_targets(&[PathBuf::from("/etc/hosts")]);
        // The step replaced /etc with a link to a host directory holding an empty `hosts`.
        std::os::unix::fs::symlink(&host, step.rootfs().join("etc")).unwrap();
        let layer = step.commit(LayerOptions::default()).unwrap();
        assert!(
            host.join("hosts").exists(),
            "a host file was removed through the link"
        );
        assert_ne!(
            layer.diff_id.to_string(),
            EMPTY_TAR_DIFF_ID,
            "the link itself is a change"
        );
    }
}
