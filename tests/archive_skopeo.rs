//! skopeo (containers/image) reads what lade saves as both `docker-archive:` and `oci-archive:`, and lade loads what
//! skopeo writes in both formats.

mod common;

use std::process::Command;

use common::{have, require, BusyboxBase, Lade};

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn skopeo_reads_lade_archives_and_lade_reads_skopeo_archives() {
    if require("skopeo", have("skopeo")).is_none() {
        return;
    }
    let Some(base) = BusyboxBase::make(None) else {
        return;
    };
    let lade = Lade::new();
    let id = lade.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        base.rootfs().to_str().unwrap(),
        "bb:sk",
    ]);
    let id = id.trim();
    let work = tempfile::tempdir().unwrap();
    let saved = work.path().join("saved.tar");
    lade.ok(&["save", "-o", saved.to_str().unwrap(), "bb:sk"]);

    for transport in ["docker-archive", "oci-archive"] {
        let info: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--config",
            &format!("{transport}:{}", saved.display()),
        ]))
        .unwrap();
        assert_eq!(info["config"]["Cmd"][0], "/bin/sh", "{transport}");
        // Copying verifies every blob's digest.
        let copy_dir = work.path().join(format!("copy-{transport}"));
        skopeo(&[
            "copy",
            "-q",
            &format!("{transport}:{}", saved.display()),
            &format!("dir:{}", copy_dir.display()),
        ]);
    }

    let from_docker_archive = work.path().join("skopeo-docker.tar");
    let from_oci_archive = work.path().join("skopeo-oci.tar");
    let source = format!("oci-archive:{}", saved.display());
    skopeo(&[
        "copy",
        "-q",
        &source,
        &format!(
            "docker-archive:{}:bb:from-docker",
            from_docker_archive.display()
        ),
    ]);
    skopeo(&[
        "copy",
        "-q",
        &source,
        &format!("oci-archive:{}:bb:from-oci", from_oci_archive.display()),
    ]);

    let other = Lade::new();
    let out = other.ok(&["load", "-i", from_docker_archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: bb:from-docker\n");
    let out = other.ok(&["load", "-i", from_oci_archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: bb:from-oci\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&other.ok(&["inspect", "bb:from-docker", "bb:from-oci"])).unwrap();
    // The docker-archive copy keeps the config bytes, hence the image ID.
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[1]["Config"]["Cmd"][0], "/bin/sh");
    // Both flatten to the busybox tree.
    let exported = work.path().join("export.tar");
    other.ok(&["export", "-o", exported.to_str().unwrap(), "bb:from-oci"]);
    let listing = Command::new("tar")
        .arg("tf")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout)
        .lines()
        .any(|l| l == "bin/busybox"));
}
