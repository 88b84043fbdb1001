//! COPY into snapshots and the layers that come out, without running anything (root only, for mounts and chown).

mod common;

use std::fs;
use std::path::Path;

use builder::context::BuildContext;
use builder::copy::{copy, CopyOptions};
use builder::snapshot::{SnapshotMode, Snapshotter};
use common::*;
use layerstore::layer::create::LayerOptions;
use layerstore::Store;

fn copy_makes_a_layer(mode: SnapshotMode) {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, layers) = store_with_busybox(&dir.path().join("store"));
    let context = dir.path().join("context");
    fs::create_dir_all(context.join("app/lib")).unwrap();
    fs::write(context.join("app/main.sh"), "echo hi\n").unwrap();
    fs::write(context.join("app/lib/util.sh"), "true\n").unwrap();
    fs::write(context.join("app/secret.env"), "X=1\n").unwrap();
    fs::write(context.join(".dockerignore"), "**/*.env\n").unwrap();
    let ctx = BuildContext::open(&context, Path::new("Dockerfile")).unwrap();
    let snapshots = Snapshotter::with_mode(&store, mode).unwrap();
    let snapshot = snapshots.prepare(&layers).unwrap();
    let options = CopyOptions {
        chown: Some("app".into()),
        workdir: "/srv".into(),
        ..CopyOptions::default()
    };
    copy(
        &ctx,
        &["app".to_string()],
        "code/",
        snapshot.rootfs(),
        &options,
        &mut |_| {},
    )
    .unwrap();
    let layer = snapshot.commit(LayerOptions::default()).unwrap();
    let (_, reader) = layerstore::layer::compress::auto_decompress(
        store.open_blob(&layer.descriptor.digest).unwrap(),
    )
    .unwrap();
    let mut archive = tar::Archive::new(reader);
    let entries: Vec<(String, u64, u32)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.mode().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "srv",
            "srv/code",
            "srv/code/lib",
            "srv/code/lib/util.sh",
            "srv/code/main.sh"
        ]
    );
    assert!(entries.iter().all(|e| e.1 == 1000), "{entries:?}");
    assert_eq!(entries[0].2 & 0o7777, 0o755);
}

#[test]
fn copy_into_an_overlay_snapshot_makes_a_layer() {
    copy_makes_a_layer(SnapshotMode::Overlay);
}

#[test]
fn copy_into_a_copied_snapshot_makes_a_layer() {
    copy_makes_a_layer(SnapshotMode::Copy);
}

#[test]
fn deep_layer_stacks_mount_past_the_option_length_limit() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let snapshots = Snapshotter::with_mode(&store, SnapshotMode::Overlay).unwrap();
    let mut layers = Vec::new();
    // Each lower directory costs about 100 bytes of options: 60 of them are past mount(2)'s one page.
    for i in 0..60 {
        let snapshot = snapshots.prepare(&layers).unwrap();
        fs::write(snapshot.rootfs().join(format!("file{i}")), i.to_string()).unwrap();
        layers = snapshot.commit(LayerOptions::default()).unwrap().layers;
    }
    let snapshot = snapshots.prepare(&layers).unwrap();
    assert_eq!(
        fs::read_to_string(snapshot.rootfs().join("file0")).unwrap(),
        "0"
    );
    assert_eq!(
        fs::read_to_string(snapshot.rootfs().join("file59")).unwrap(),
        "59"
    );
    drop(snapshot);
    assert_no_mounts_under(dir.path());
}

#[test]
fn steps_of_dead_builds_are_unmounted_and_removed() {
    if !can_mount() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Snapshotter::with_mode(&store, SnapshotMode::Overlay).unwrap();
    // What a build killed mid-step leaves: a mounted overlay in a step directory named after a dead process.
    let stale = dir.path().join("snapshots/work/step-999999999-1-0");
    fs::create_dir_all(&stale).unwrap();
    std::mem::forget(builder::snapshot::overlay::OverlayMount::mount(&stale, &[]).unwrap());
    assert!(builder::snapshot::overlay::is_mount_point(
        &stale.join("merged")
    ));
    Snapshotter::with_mode(&store, SnapshotMode::Overlay).unwrap();
    assert!(!stale.exists());
    assert_no_mounts_under(dir.path());
}
