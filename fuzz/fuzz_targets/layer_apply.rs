//! Fuzzes layer application (through the tar header guard) onto a fresh directory: no panic, nothing written
//! outside the target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outer = tempfile_dir();
    let target = outer.join("root");
    std::fs::create_dir_all(&target).unwrap();
    let _ = layerstore::layer::apply::apply_layer(data, &target);
    let escaped: Vec<_> = std::fs::read_dir(&outer)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "root")
        .collect();
    assert!(escaped.is_empty(), "written outside the target: {escaped:?}");
    let _ = std::fs::remove_dir_all(&outer);
});

fn tempfile_dir() -> std::path::PathBuf {
    let base = std::path::Path::new("/dev/shm").join(format!("lade-fuzz-apply-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    base
}
