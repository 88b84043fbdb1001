//! Fuzzes `lade load`'s reader (docker-archive, OCI layout archives, compressed or not) into a fresh store: no
//! panic, and whatever it accepts checks clean.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = std::path::Path::new("/dev/shm").join(format!("lade-fuzz-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = layerstore::Store::open(&root).unwrap();
    let progress = layerstore::progress::NoProgress;
    if layerstore::archive::load::load(&store, data, &progress).is_ok() {
        let report = store.check(false).unwrap();
        assert!(!report.has_problems(), "an accepted archive left a broken store: {report:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
});
