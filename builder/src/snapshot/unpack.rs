//! The unpacked-layer cache: each layer of a chain unpacked once, in overlayfs format, into
//! `<store>/snapshots/layers/<chain id>`, for use as an overlay lower directory.
//!
//! In overlayfs format a deletion is a character device 0:0 and an opaque directory carries the xattr
//! `trusted.overlay.opaque=y`, so the OCI whiteouts of the layer tar become those. The uncompressed stream is
//! checked against the layer's diff ID before anything is unpacked.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[cfg(test)]
use std::os::unix::fs::FileTypeExt;

use layerstore::digest::{Algorithm, HashingReader};
use layerstore::layer::apply::apply_layer;
use layerstore::layer::compress::auto_decompress;
use layerstore::layer::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use layerstore::{Digest, Store};
use rustix::fs::{FileType, Mode, XattrFlags, CWD};

use super::{io_context, LayerRef, SnapshotError};

/// The xattr marking an opaque directory in an overlay upper or lower directory.
/// `trusted.overlay.opaque`, or `user.overlay.opaque` in a user namespace, where overlays are mounted with
/// `userxattr` (trusted xattrs are root's in the initial namespace only).
pub fn opaque_xattr() -> &'static str {
    if crate::runtime::spec::in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// The chain IDs of a stack of layers: `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[&Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => (*diff_id).clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Where the unpacked layer of a chain lives.
pub fn layer_dir(cache: &Path, chain_id: &Digest) -> PathBuf {
    cache.join(chain_id.hex())
}

/// Makes sure every layer of `layers` is unpacked in `cache`; returns their directories, bottom first.
pub fn unpack_chain(
    store: &Store,
    cache: &Path,
    layers: &[LayerRef],
) -> Result<Vec<PathBuf>, SnapshotError> {
    let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
    let mut dirs = Vec::with_capacity(layers.len());
    for (layer, chain_id) in layers.iter().zip(chain_ids(&diff_ids)) {
        let dir = layer_dir(cache, &chain_id);
        if !dir.is_dir() {
            unpack_one(store, cache, layer, &dir)?;
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

fn unpack_one(
    store: &Store,
    cache: &Path,
    layer: &LayerRef,
    dir: &Path,
) -> Result<(), SnapshotError> {
    let digest = &layer.descriptor.digest;
    let whiteouts = scan_whiteouts(store, layer)?;
    let tmp = cache.join(layerstore::fsutil::unique_name(".tmp-"));
    fs::create_dir(&tmp).map_err(io_context(|| format!("creating {}", tmp.display())))?;
    let result = (|| {
        let (_, reader) = auto_decompress(store.open_blob(digest)?)
            .map_err(io_context(|| format!("reading layer {digest}")))?;
        apply_layer(reader, &tmp).map_err(|source| SnapshotError::Apply {
            digest: digest.clone(),
            source,
        })?;
        for path in &whiteouts {
            mark_whiteout(&tmp, path).map_err(io_context(|| {
                format!("converting whiteout {} of layer {digest}", path.display())
            }))?;
        }
        match fs::rename(&tmp, dir) {
            // Another build unpacked the same layer meanwhile: keep theirs.
            Err(_) if dir.is_dir() => fs::remove_dir_all(&tmp)
                .map_err(io_context(|| format!("removing {}", tmp.display()))),
            other => other.map_err(io_context(|| {
                format!("storing unpacked layer {}", dir.display())
            })),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Reads the layer once to verify its diff ID and list its whiteout entries.
fn scan_whiteouts(store: &Store, layer: &LayerRef) -> Result<Vec<PathBuf>, SnapshotError> {
    let digest = &layer.descriptor.digest;
    let read_err = io_context(|| format!("reading layer {digest}"));
    let (_, reader) = auto_decompress(store.open_blob(digest)?).map_err(read_err)?;
    let mut hashing = HashingReader::new(reader, Algorithm::Sha256);
    let mut whiteouts = Vec::new();
    {
        let mut archive = layerstore::layer::tar_guard::archive(&mut hashing);
        for entry in archive
            .entries()
            .map_err(io_context(|| format!("reading layer {digest}")))?
        {
            let entry = entry.map_err(io_context(|| format!("reading layer {digest}")))?;
            let path = entry
                .path()
                .map_err(io_context(|| format!("reading layer {digest}")))?;
            let is_whiteout = path
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()));
            if is_whiteout {
                whiteouts.push(path.into_owned());
            }
        }
    }
    io::copy(&mut hashing, &mut io::sink())
        .map_err(io_context(|| format!("reading layer {digest}")))?;
    let (actual, _) = hashing.finish();
    if actual != layer.diff_id {
        return Err(SnapshotError::DiffIdMismatch {
            digest: digest.clone(),
            expected: layer.diff_id.clone(),
            actual,
        });
    }
    Ok(whiteouts)
}

/// Turns the OCI whiteout entry `path` into its overlayfs form inside the unpacked layer `root`.
fn mark_whiteout(root: &Path, path: &Path) -> io::Result<()> {
    let relative: PathBuf = path
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    let name = relative.file_name().unwrap_or_default().as_bytes();
    // Resolved as the layer applier did: symlinks in the layer are followed inside the root, never out of it.
    let Some(parent) =
        crate::tree::resolve_existing(root, relative.parent().unwrap_or(Path::new("")))
    else {
        return Ok(());
    };
    if !parent.is_dir() {
        return Ok(());
    }
    if name == OPAQUE_WHITEOUT.as_bytes() {
        rustix::fs::lsetxattr(&parent, opaque_xattr(), b"y", XattrFlags::empty())?;
        return Ok(());
    }
    let target = parent.join(OsStr::from_bytes(&name[WHITEOUT_PREFIX.len()..]));
    if fs::symlink_metadata(&target).is_ok() {
        return Ok(());
    }
    rustix::fs::mknodat(CWD, &target, FileType::CharacterDevice, Mode::empty(), 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let ids = chain_ids(&[&a, &b]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn whiteouts_become_overlay_markers_without_leaving_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: tar::EntryType, link: Option<&Path>| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_mode(0o755);
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append_data(&mut header, name, io::empty()).unwrap();
        };
        add("d", tar::EntryType::Directory, None);
        add("d/.wh..wh..opq", tar::EntryType::Regular, None);
        add("d/.wh.gone", tar::EntryType::Regular, None);
        add("link", tar::EntryType::Symlink, Some(&outside));
        add("link/.wh.escaped", tar::EntryType::Regular, None);
        let tar = builder.into_inner().unwrap();
        let digest = store.write_blob(&tar).unwrap();
        let layer = LayerRef {
            descriptor: layerstore::Descriptor::new(
                layerstore::media_types::OCI_LAYER,
                digest.clone(),
                tar.len() as u64,
            ),
            diff_id: digest,
        };
        let cache = dir.path().join("cache");
        fs::create_dir(&cache).unwrap();
        let dirs = unpack_chain(&store, &cache, &[layer]).unwrap();
        let gone = fs::symlink_metadata(dirs[0].join("d/gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        let mut value = [0u8; 1];
        let opaque = rustix::fs::lgetxattr(dirs[0].join("d"), opaque_xattr(), &mut value);
        assert_eq!((opaque.ok(), value[0]), (Some(1), b'y'));
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "a whiteout was made outside the layer"
        );
    }
}
