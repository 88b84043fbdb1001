//! Shared test fixtures: a busybox base image in a fresh store, the runtime, layer inspection.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use builder::runtime::{Runtime, RuntimeError};
use builder::snapshot::{CommittedLayer, LayerRef};
use layerstore::import::{import_rootfs, ImportOptions};
use layerstore::layer::compress::auto_decompress;
use layerstore::{Descriptor, Image, Store};

/// The busybox rootfs tarball made by the shared tool, once per target directory (made in a private directory and
/// renamed into place, so concurrent test processes never see a partial one).
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let shared = tmp.join("busybox-rootfs.tar");
        if shared.is_file() {
            return shared;
        }
        let out = tmp.join(format!("busybox-{}", std::process::id()));
        let status = Command::new("/work/shared/tools/make-busybox-base.sh")
            .arg(&out)
            .env_remove("DOCKER_HOST")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running make-busybox-base.sh");
        assert!(status.success(), "make-busybox-base.sh failed");
        std::fs::rename(out.join("busybox-rootfs.tar"), &shared).unwrap();
        std::fs::remove_dir_all(&out).unwrap();
        shared
    })
}

/// A store holding the busybox image; returns its layers.
pub fn store_with_busybox(dir: &Path) -> (Store, Vec<LayerRef>) {
    let store = Store::open(dir).unwrap();
    let file = std::fs::File::open(busybox_tar()).unwrap();
    let (descriptor, _) = import_rootfs(&store, file, ImportOptions::default(), &[]).unwrap();
    let image = Image::read(&store, &descriptor).unwrap();
    let layers = LayerRef::of_image(&image);
    (store, layers)
}

/// The runtime, or `None` (with the reason printed) when none is installed; under `CI=true` that fails, and so does
/// an installed runtime that cannot run containers.
pub fn runtime(store: &Store) -> Option<Runtime> {
    match Runtime::detect(store, None) {
        Ok(runtime) => Some(runtime),
        Err(e @ RuntimeError::NotInstalled(_)) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: {e}");
            None
        }
        // Installed but failing, or missing under CI: a real failure.
        Err(e) => panic!("the OCI runtime does not work: {e}"),
    }
}

/// Whether this process may mount (overlay tests need root); CI runs as root, so there it must.
pub fn can_mount() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI runs these tests as root");
    }
    if !root {
        eprintln!("skipping: not root");
    }
    root
}

/// The entries of a stored gzip layer: (path, entry type, size); fails on overlayfs xattrs in the layer.
pub fn layer_entries(store: &Store, layer: &Descriptor) -> Vec<(String, tar::EntryType, u64)> {
    let (_, reader) = auto_decompress(store.open_blob(&layer.digest).unwrap()).unwrap();
    let mut archive = tar::Archive::new(reader);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            if let Some(pax) = e.pax_extensions().unwrap() {
                for record in pax {
                    let key = record.unwrap().key().unwrap().to_string();
                    assert!(
                        !key.starts_with("SCHILY.xattr.trusted.overlay."),
                        "overlay xattr {key} in a layer"
                    );
                }
            }
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
                content.len() as u64,
            )
        })
        .collect()
}

pub fn names(entries: &[(String, tar::EntryType, u64)]) -> Vec<&str> {
    entries.iter().map(|e| e.0.as_str()).collect()
}

/// Fails when anything under `root` is still mounted.
pub fn assert_no_mounts_under(root: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = root.to_string_lossy();
    let leaked: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(root.as_ref()))
        .collect();
    assert!(leaked.is_empty(), "mounts left behind: {leaked:#?}");
}

/// Asserts that a committed step left only these directories in its layer: ones that existed and whose time moved,
/// and ones the runtime made for mount targets (whose empty files were removed again), as in BuildKit's layers.
pub fn assert_only_touched_parents(store: &Store, layer: CommittedLayer, parents: &[&str]) {
    let entries = layer_entries(store, &layer.descriptor);
    for (name, kind, _) in &entries {
        assert!(
            *kind == tar::EntryType::Directory && parents.contains(&name.as_str()),
            "the step leaked {name} into its layer: {:?}",
            names(&entries)
        );
    }
}
