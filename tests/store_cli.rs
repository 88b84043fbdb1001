//! The store's CLI semantics as Docker has them: tag, rmi (untag vs delete, by name, ID prefix or digest),
//! dangling images, images/history output, prune, and several lade processes sharing one store.

mod common;

use common::Lade;

fn rootfs(lade: &Lade, name: &str, content: &[u8]) -> String {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "file", content).unwrap();
    let path = lade.scratch.path().join(name);
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

fn images_json(lade: &Lade) -> Vec<serde_json::Value> {
    lade.ok(&["images", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn tag_rmi_and_prune_follow_docker() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    let id = lade.ok(&["import", &a, "app:1"]).trim().to_string();
    lade.ok(&["tag", "app:1", "app:2"]);
    lade.ok(&["tag", &id[7..19], "localhost:5000/other/app"]);
    let rows = images_json(&lade);
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .any(|r| r["Repository"] == "localhost:5000/other/app" && r["Tag"] == "latest"));

    // By ID with tags in several repositories: refused without -f.
    let err = lade.fails(&["rmi", &id]);
    assert!(err.contains("referenced in multiple repositories"), "{err}");
    // By name: untag only while other tags remain.
    assert_eq!(lade.ok(&["rmi", "app:2"]), "Untagged: app:2\n");
    assert_eq!(
        lade.ok(&["rmi", "localhost:5000/other/app"]),
        "Untagged: localhost:5000/other/app:latest\n"
    );
    // Moving the last tag away leaves the old image dangling.
    let b = rootfs(&lade, "b.tar", b"b");
    let id_b = lade.ok(&["import", &b, "app:1"]).trim().to_string();
    let rows = images_json(&lade);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r["Repository"] == "<none>" && r["ID"] == id[7..19]));
    assert_eq!(lade.ok(&["images", "-q"]).lines().count(), 2);
    // The dangling one goes by ID.
    assert_eq!(lade.ok(&["rmi", &id]), format!("Deleted: {id}\n"));
    let out = lade.ok(&["rmi", "app:1"]);
    assert_eq!(out, format!("Untagged: app:1\nDeleted: {id_b}\n"));
    assert!(images_json(&lade).is_empty());
    let err = lade.fails(&["rmi", "app:1"]);
    assert!(err.contains("No such image: app:1"), "{err}");
    let pruned = lade.ok(&["prune"]);
    assert!(pruned.starts_with("Deleted blobs: 6\n"), "{pruned}");
    assert_eq!(
        std::fs::read_dir(lade.root.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn invalid_references_are_rejected_like_docker() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    let err = lade.fails(&["import", &a, "App:1"]);
    assert!(err.contains("must be lowercase"), "{err}");
    lade.ok(&["import", &a, "app"]);
    // As Docker 20.10: an upper-case first component is no registry host.
    let err = lade.fails(&["tag", "app", "UPPER/case:tag"]);
    assert!(
        err.contains("invalid reference format: repository name must be lowercase"),
        "{err}"
    );
    let err = lade.fails(&["tag", "app", "bad tag"]);
    assert!(err.contains("invalid reference format"), "{err}");
    assert_eq!(images_json(&lade)[0]["Tag"], "latest");
}

#[test]
fn history_and_inspect_describe_the_image() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", "-m", "first", "-c", "LABEL x=y", &a, "app:1"]);
    let history = lade.ok(&["history", "--format", "json", "app:1"]);
    let step: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(step["Comment"], "first");
    let inspect: serde_json::Value = serde_json::from_str(&lade.ok(&["inspect", "app:1"])).unwrap();
    assert_eq!(inspect[0]["Config"]["Labels"]["x"], "y");
    assert_eq!(inspect[0]["RepoTags"][0], "app:1");
    let digest = inspect[0]["RepoDigests"][0].as_str().unwrap().to_string();
    let by_digest: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", &digest])).unwrap();
    assert_eq!(by_digest[0]["Id"], inspect[0]["Id"]);
    let err = lade.fails(&["inspect", "nope"]);
    assert!(err.contains("No such image: nope"));
}

#[test]
fn go_templates_format_like_dockers() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", "-c", "ENV A=1", "-c", "ENV B=2", &a, "app:1"]);
    assert_eq!(
        lade.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "app:1\n"
    );
    let table = lade.ok(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]);
    assert_eq!(table, "REPOSITORY   TAG\napp          1\n");
    let id = lade.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(lade.ok(&["inspect", "-f", "{{.Id}}", "app:1"]), id);
    assert_eq!(
        lade.ok(&["inspect", "--format", "{{join .Config.Env \",\"}}", "app:1"]),
        "A=1,B=2\n"
    );
    // An unknown field fails with exit 1 and Go's message, as in Docker.
    for (args, expected) in [
        (
            ["inspect", "-f", "{{.Nope}}", "app:1"],
            r#"template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#,
        ),
        (
            ["images", "--format", "{{.Tag}} {{.Nope}}", "app"],
            r#"template: :1:11: executing "" at <.Nope>: map has no entry for key "Nope""#,
        ),
    ] {
        let output = lade.run(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    let history = lade.ok(&["history", "--format", "{{.Size}}|{{.Comment}}", "app:1"]);
    assert!(history.lines().count() >= 1, "{history}");
    let err = lade.fails(&["images", "--format", "{{.Repository"]);
    assert!(err.contains("invalid --format template"), "{err}");
}

#[test]
fn concurrent_processes_share_one_store() {
    let lade = Lade::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let tar = rootfs(
                &lade,
                &format!("{i}.tar"),
                format!("content {i}").as_bytes(),
            );
            lade.command()
                .args(["import", &tar, &format!("app:{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let rows = images_json(&lade);
    assert_eq!(rows.len(), 8);
    for i in 0..8 {
        assert!(rows.iter().any(|r| r["Tag"] == *i.to_string()));
    }
}

#[test]
fn image_filters_follow_docker() {
    let lade = Lade::new();
    let first = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", "-c", "LABEL tier=web", &first, "web:1"]);
    let second = rootfs(&lade, "b.tar", b"b");
    lade.ok(&["import", "-c", "LABEL tier=db", &second, "db:1"]);
    let third = rootfs(&lade, "c.tar", b"c");
    // Taking the tag away leaves the first image dangling.
    lade.ok(&["import", &third, "web:1"]);
    let listed = |filters: &[&str]| {
        let mut args = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        let mut names: Vec<String> = lade.ok(&args).lines().map(str::to_string).collect();
        names.sort();
        names.join(" ")
    };
    assert_eq!(listed(&["reference=web"]), "web:1");
    assert_eq!(listed(&["reference=w*:1", "reference=db"]), "db:1 web:1");
    assert_eq!(listed(&["label=tier"]), "<none>:<none> db:1");
    assert_eq!(listed(&["label=tier=db"]), "db:1");
    assert_eq!(listed(&["dangling=true"]), "<none>:<none>");
    assert_eq!(listed(&["dangling=false"]), "db:1 web:1");
    assert_eq!(listed(&["since=db:1"]), "web:1");
    assert_eq!(listed(&["before=db:1"]), "<none>:<none>");
    assert_eq!(listed(&["dangling=false", "label=tier"]), "db:1");
    let err = lade.fails(&["images", "--filter", "bogus=1"]);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[test]
fn prune_deletes_dangling_images_like_docker_image_prune() {
    let lade = Lade::new();
    let first = rootfs(&lade, "a.tar", b"a");
    let dangling = lade.ok(&["import", &first, "app:1"]).trim().to_string();
    let second = rootfs(&lade, "b.tar", b"b");
    let kept = lade.ok(&["import", &second, "app:1"]).trim().to_string();
    let pruned = lade.ok(&["prune", "-f"]);
    assert!(
        pruned.starts_with(&format!("Deleted Images:\ndeleted: {dangling}\n")),
        "{pruned}"
    );
    assert_eq!(
        lade.ok(&["images", "-q", "--no-trunc"]),
        format!("{kept}\n")
    );
    assert!(lade.ok(&["prune"]).starts_with("Deleted blobs: 0\n"));
}

#[test]
fn version_names_the_store_root() {
    let lade = Lade::new();
    let out = lade.ok(&["version"]);
    assert!(
        out.contains(&format!(
            " Version:           {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            " Store root:        {}",
            lade.root.path().display()
        )),
        "{out}"
    );
    assert!(out.contains(" OCI runtime:"), "{out}");
}

#[test]
fn image_ls_rm_prune_are_the_verbs_they_name() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", &a, "app:1"]);
    assert_eq!(lade.ok(&["image", "ls"]), lade.ok(&["images"]));
    assert_eq!(
        lade.ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]),
        "app:1\n"
    );
    assert!(lade
        .ok(&["image", "rm", "app:1"])
        .contains("Untagged: app:1"));
    assert!(lade
        .ok(&["image", "prune", "-f"])
        .contains("Total reclaimed space"));
    assert_eq!(lade.ok(&["image", "ls", "-q"]), "");
}

#[test]
fn prune_all_removes_every_image_and_its_blobs_like_docker_image_prune_a() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    let first = lade.ok(&["import", &a, "app:1"]).trim().to_string();
    lade.ok(&["tag", "app:1", "other/app:2"]);
    let b = rootfs(&lade, "b.tar", b"b");
    lade.ok(&["import", &b]);
    let pruned = lade.ok(&["prune", "-a", "-f"]);
    assert!(pruned.contains(&format!("deleted: {first}")), "{pruned}");
    assert!(pruned.contains("untagged: other/app:2"), "{pruned}");
    assert_eq!(lade.ok(&["images", "-q"]), "");
    assert!(lade
        .root
        .path()
        .join("blobs/sha256")
        .read_dir()
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn system_df_counts_shared_blobs_once_and_info_describes_the_store() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", &a, "app:1"]);
    lade.ok(&["tag", "app:1", "app:2"]);
    let blob_bytes: u64 = lade
        .root
        .path()
        .join("blobs/sha256")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&lade.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(rows[0]["Type"], "Images");
    assert_eq!(rows[0]["TotalCount"], 1, "two tags, one image");
    assert_eq!(rows[0]["SizeBytes"], blob_bytes);
    assert_eq!(
        rows[0]["ReclaimableBytes"], blob_bytes,
        "no container uses it"
    );
    let table = lade.ok(&["system", "df"]);
    assert!(table.starts_with("TYPE "), "{table}");
    let info: serde_json::Value =
        serde_json::from_str(&lade.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["StoreRoot"], lade.root.path().to_str().unwrap());
    assert_eq!(
        (info["Images"].clone(), info["TaggedImages"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(info["BlobBytes"], blob_bytes);
}

#[test]
fn system_check_finds_and_repairs_a_corrupt_blob() {
    let lade = Lade::new();
    let a = rootfs(&lade, "a.tar", b"a");
    lade.ok(&["import", &a, "app:1"]);
    assert!(lade
        .ok(&["system", "check"])
        .contains("0 corrupt, 0 broken images"));
    let layer = lade.ok(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "app:1"]);
    let hex = layer.trim().trim_start_matches("sha256:").to_string();
    std::fs::write(
        lade.root.path().join("blobs/sha256").join(&hex),
        b"tampered",
    )
    .unwrap();
    let output = lade.run(&["system", "check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("found corrupt blob sha256:{hex}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("found broken image docker.io/library/app:1: layer"),
        "{stdout}"
    );
    let repaired = lade.ok(&["system", "check", "--repair"]);
    assert!(repaired.contains("(repaired)"), "{repaired}");
    assert_eq!(lade.ok(&["images", "-q"]), "");
    lade.ok(&["system", "check"]);
}
