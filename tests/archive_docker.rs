//! save/load against a real Docker engine: what lade saves, `docker load` accepts and runs; what Docker saves, lade
//! loads and saves again with the same image ID and the same files.

mod common;

use common::{BusyboxBase, Docker, Lade};

#[test]
fn imported_busybox_saved_by_lade_runs_in_docker() {
    let Some(docker) = Docker::get() else { return };
    let Some(base) = BusyboxBase::make(None) else {
        return;
    };
    let lade = Lade::new();
    let tag = "lade-test-import:1";
    let rootfs = base.rootfs();
    let id = lade.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        "-c",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        rootfs.to_str().unwrap(),
        tag,
    ]);
    let archive = lade.scratch.path().join("lade-import-save.tar");
    let archive = archive.to_str().unwrap();
    lade.ok(&["save", "-o", archive, tag]);
    let loaded = docker.ok(&["load", "-i", archive]);
    assert!(loaded.contains(&format!("Loaded image: {tag}")), "{loaded}");
    assert_eq!(docker.image_id(tag), id.trim());
    let out = docker.ok(&["run", "--rm", "--network=none", tag, "echo", "ok"]);
    assert_eq!(out, "ok\n");
    docker.ok(&["rmi", tag]);
    std::fs::remove_file(archive).unwrap();
}

const LAYERED: &str = r#"FROM busybox:local
RUN mkdir -p /data/dir && echo one > /data/a && echo two > /data/dir/b && echo gone > /data/gone && ln -s a /data/link
RUN rm /data/gone && echo three > /data/c && chmod 4755 /data/c && chown 1000:1000 /data/a
RUN rm -rf /data/dir && mkdir /data/dir && echo new > /data/dir/n
CMD ["cat", "/data/a"]
"#;

const LIST_FILES: &str = "find /data | sort | while read f; do stat -c '%n %A %u:%g %s' \"$f\"; \
                          [ -f \"$f\" ] && [ ! -L \"$f\" ] && md5sum \"$f\"; done; true";

#[test]
fn docker_built_image_round_trips_through_lade() {
    let Some(docker) = Docker::get() else { return };
    let Some(base) = BusyboxBase::make(Some(docker)) else {
        return;
    };
    docker.ok(&["load", "-i", base.docker_save().to_str().unwrap()]);
    let tag = "lade-test-layered:1";
    docker.build(tag, LAYERED, false);
    let original_id = docker.image_id(tag);
    let original_files = docker.ok(&["run", "--rm", "--network=none", tag, "sh", "-c", LIST_FILES]);
    assert!(original_files.contains("/data/dir/n") && !original_files.contains("/data/gone"));

    let work = tempfile::tempdir().unwrap();
    let from_docker = work.path().join("from-docker.tar");
    let from_lade = work.path().join("from-lade.tar");
    docker.ok(&["save", "-o", from_docker.to_str().unwrap(), tag]);
    let lade = Lade::new();
    let loaded = lade.ok(&["load", "-i", from_docker.to_str().unwrap()]);
    assert_eq!(loaded, format!("Loaded image: {tag}\n"));
    let inspect: serde_json::Value = serde_json::from_str(&lade.ok(&["inspect", tag])).unwrap();
    assert_eq!(inspect[0]["Id"], original_id.as_str());
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    // SIZE as Docker counts it: file content, not tar or compressed bytes.
    assert_eq!(
        inspect[0]["Size"].to_string(),
        docker
            .ok(&["image", "inspect", "--format", "{{.Size}}", tag])
            .trim()
    );
    let docker_history = docker.ok(&["history", "--human=false", "--format", "{{.Size}}", tag]);
    let lade_history: Vec<String> = lade
        .ok(&["history", "--format", "json", tag])
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["SizeBytes"].to_string()
        })
        .collect();
    assert_eq!(lade_history, docker_history.lines().collect::<Vec<_>>());
    lade.ok(&["save", "-o", from_lade.to_str().unwrap(), tag]);

    docker.ok(&["rmi", tag]);
    docker.ok(&["load", "-i", from_lade.to_str().unwrap()]);
    assert_eq!(docker.image_id(tag), original_id);
    let files = docker.ok(&["run", "--rm", "--network=none", tag, "sh", "-c", LIST_FILES]);
    assert_eq!(files, original_files);

    // The flattened export has the same tree.
    let exported = work.path().join("export.tar");
    lade.ok(&["export", "-o", exported.to_str().unwrap(), tag]);
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&exported)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_end_matches('/') == "data/dir/n"),
        "{listing}"
    );
    assert!(
        !listing.contains("data/gone")
            && !listing.contains("data/dir/b")
            && !listing.contains(".wh.")
    );
    docker.ok(&["rmi", tag]);
}

/// `lade copy` reads Docker's own tarball (the legacy `docker save` format: `layer.tar` files, no manifest) where it
/// lies: into an OCI layout umoci reads and into an archive Docker loads, with the same image ID and never through
/// the local store.
#[test]
fn copy_reads_a_docker_save_tarball_in_place() {
    let Some(docker) = Docker::get() else { return };
    let Some(base) = BusyboxBase::make(Some(docker)) else {
        return;
    };
    docker.ok(&["load", "-i", base.docker_save().to_str().unwrap()]);
    let tag = "lade-test-copy-in-place:1";
    docker.build(tag, LAYERED, false);
    let original_id = docker.image_id(tag);
    let lade = Lade::new();
    let from_docker = lade.scratch.path().join("from-docker.tar");
    docker.ok(&["save", "-o", from_docker.to_str().unwrap(), tag]);

    let layout = lade.scratch.path().join("layout");
    lade.ok(&[
        "copy",
        &format!("docker-archive:{}:{tag}", from_docker.display()),
        &format!("oci:{}:v1", layout.display()),
    ]);
    let copied = lade.scratch.path().join("copied.tar");
    lade.ok(&[
        "copy",
        &format!("docker-archive:{}", from_docker.display()),
        &format!("docker-archive:{}", copied.display()),
    ]);
    let stored = std::fs::read_dir(lade.root.path().join("blobs/sha256")).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "copy used the local store");
    let err = lade.fails(&[
        "copy",
        &format!("docker-archive:{}:nothere:1", from_docker.display()),
        &format!("oci:{}:v2", layout.display()),
    ]);
    assert!(err.contains("holds no image named nothere:1"), "{err}");

    docker.ok(&["rmi", tag]);
    let loaded = docker.ok(&["load", "-i", copied.to_str().unwrap()]);
    assert!(loaded.contains(&format!("Loaded image: {tag}")), "{loaded}");
    assert_eq!(docker.image_id(tag), original_id);
    assert_eq!(docker.ok(&["run", "--rm", "--network=none", tag]), "one\n");
    if common::have("umoci").is_ok() {
        let bundle = lade.scratch.path().join("bundle");
        let out = std::process::Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:v1", layout.display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let a = std::fs::read_to_string(bundle.join("rootfs/data/a")).unwrap();
        assert_eq!(a, "one\n");
    }
    docker.ok(&["rmi", tag]);
}
