//! The whole mission in one go, daemonless: build an image, push it to lade's own registry, and in a fresh store
//! build FROM it — the missing base is pulled through the registry client — then save and hand it to Docker.

mod common;

use common::{
    have, lade_with_busybox, require, workspace, BusyboxBase, Docker, Lade, LadeRegistry,
};

#[test]
fn build_push_pull_base_and_build_again() {
    if require("runc", have("runc")).is_none() {
        return;
    }
    let Some(base) = BusyboxBase::make(None) else {
        return;
    };
    let registry_root = tempfile::tempdir().unwrap();
    let registry = LadeRegistry::start(&["--root", registry_root.path().to_str().unwrap()]);
    let host = registry.host.clone();

    let first = lade_with_busybox(&base);
    let hello = workspace().join("fixtures/hello");
    let remote_base = format!("{host}/base/busybox:1");
    first.ok(&["tag", "busybox:local", &remote_base]);
    first.ok(&["push", &remote_base]);
    first.ok(&[
        "build",
        "-q",
        "-t",
        &format!("{host}/app/hello:1"),
        hello.to_str().unwrap(),
    ]);
    let pushed = first.ok(&["push", &format!("{host}/app/hello:1")]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");

    // A machine with an empty store builds FROM the pushed base: it is pulled on demand.
    let second = Lade::new();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {remote_base}\nRUN echo built on the second machine > /note\nCMD [\"cat\", \"/note\"]\n"),
    )
    .unwrap();
    second.ok(&[
        "build",
        "-q",
        "-t",
        "second:1",
        context.path().to_str().unwrap(),
    ]);
    assert_eq!(
        second.ok(&["run", "--rm", "second:1"]),
        "built on the second machine\n"
    );
    second.ok(&["pull", &format!("{host}/app/hello:1")]);
    assert_eq!(
        second.ok(&["run", "--rm", &format!("{host}/app/hello:1")]),
        "Hello from lade (built by lade)\n"
    );

    // And what lade built runs in Docker after save/load.
    let Some(docker) = Docker::get() else { return };
    let archive = second.scratch.path().join("second.tar");
    second.ok(&["save", "-o", archive.to_str().unwrap(), "second:1"]);
    docker.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        docker.ok(&["run", "--rm", "--network=none", "second:1"]),
        "built on the second machine\n"
    );
    docker.ok(&["rmi", "second:1"]);
}
