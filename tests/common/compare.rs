//! Comparing images independently of timestamps: the config with every `created` removed, and the merged
//! filesystem as a sorted listing of (path, type, mode, owner, size, content hash, link target).

use std::io::Read;

use super::Lade;

/// The image config of `image` in lade's store, without creation times.
pub fn normalized_config(lade: &Lade, image: &str) -> serde_json::Value {
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", image])).expect("inspect JSON");
    let descriptor = &inspect[0]["Descriptor"];
    let manifest_digest = descriptor["digest"].as_str().expect("manifest digest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&read_blob(lade, manifest_digest)).expect("manifest");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let mut config: serde_json::Value =
        serde_json::from_slice(&read_blob(lade, config_digest)).expect("config");
    strip_times(&mut config);
    config
}

fn read_blob(lade: &Lade, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    std::fs::read(lade.root.path().join("blobs/sha256").join(hex)).expect("blob in store")
}

fn strip_times(config: &mut serde_json::Value) {
    if let Some(object) = config.as_object_mut() {
        object.remove("created");
    }
    if let Some(history) = config["history"].as_array_mut() {
        for step in history {
            if let Some(object) = step.as_object_mut() {
                object.remove("created");
            }
        }
    }
}

/// The merged filesystem of `image`, one line per entry, sorted.
pub fn filesystem(lade: &Lade, image: &str) -> Vec<String> {
    let output = lade
        .command()
        .args(["export", image])
        .output()
        .expect("lade export runs");
    assert!(
        output.status.success(),
        "lade export {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut archive = tar::Archive::new(&output.stdout[..]);
    let mut lines = Vec::new();
    for entry in archive.entries().expect("export is a tar") {
        let mut entry = entry.expect("tar entry");
        let header = entry.header().clone();
        let path = entry
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let link = entry
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("entry content");
        lines.push(format!(
            "{path} {:?} {:o} {}:{} {} {} {link}",
            header.entry_type(),
            header.mode().unwrap_or(0),
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            content.len(),
            if content.is_empty() {
                String::new()
            } else {
                layerstore::Digest::sha256_of(&content).short().to_string()
            },
        ));
    }
    lines.sort();
    lines
}
