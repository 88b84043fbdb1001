//! The build cache for CI fleets end to end: `--cache-to` a real registry:2, lade's own registry, an OCI layout
//! directory and inline in a pushed image, then `--cache-from` on fresh stores. Every RUN goes through an OCI
//! runtime wrapper that logs each container it starts, so "no RUN executed" is what the log says, not what lade
//! prints.

mod common;

use std::path::{Path, PathBuf};

use common::registry::{have_registry, LadeRegistry, Registry2, RegistryAuth};
use common::{fixture_copy, have, lade_with_busybox, require, BusyboxBase, Lade};

/// A runtime that logs every invocation to `log` and runs runc.
struct LoggingRuntime {
    dir: tempfile::TempDir,
}

impl LoggingRuntime {
    fn new() -> LoggingRuntime {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("runtime");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nkind=other\nfor a in \"$@\"; do\n  if [ \"$prev\" = --bundle ]; then\n    if grep -q runtime-probe- \"$a/config.json\"; then kind=probe; else kind=step; fi\n  fi\n  prev=$a\ndone\necho \"$kind $*\" >> {}\nexec runc \"$@\"\n",
                dir.path().join("log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        LoggingRuntime { dir }
    }

    fn path(&self) -> String {
        self.dir.path().join("runtime").display().to_string()
    }

    /// The RUN steps executed so far (the runtime's probe container, whose root is in `runtime-probe-…`, is not one).
    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("step "))
            .map(str::to_string)
            .collect()
    }

    /// Every invocation, the probe and deletes included.
    fn invocations(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// The base image every store of a test loads, so that all of them hold the same `busybox:local` manifest (a cache
/// key starts from it), as machines of a CI fleet pulling one base do.
struct Base {
    archive: tempfile::NamedTempFile,
}

impl Base {
    /// A fresh store holding the base.
    fn store(&self) -> Lade {
        let lade = Lade::new();
        lade.ok(&["load", "-q", "-i", self.archive.path().to_str().unwrap()]);
        lade
    }
}

fn setup() -> Option<Base> {
    require("runc", have("runc"))?;
    let busybox = BusyboxBase::make(None)?;
    let first = lade_with_busybox(&busybox);
    let archive = tempfile::NamedTempFile::new().unwrap();
    first.ok(&[
        "save",
        "-o",
        archive.path().to_str().unwrap(),
        "busybox:local",
    ]);
    Some(Base { archive })
}

/// `lade build` of `context` with a fresh logging runtime; returns (stderr, image ID, runtime).
fn build(lade: &Lade, context: &Path, extra: &[&str]) -> (String, String, LoggingRuntime) {
    let runtime = LoggingRuntime::new();
    let iidfile = lade.scratch.path().join("iid");
    let mut args = vec![
        "build".to_string(),
        "--network=none".into(),
        "--explain-cache".into(),
        "--runtime".into(),
        runtime.path(),
        "--iidfile".into(),
        iidfile.display().to_string(),
        "-t".into(),
        "app:1".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(context.display().to_string());
    let output = lade.command().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "lade {args:?} failed:\n{stderr}");
    let id = std::fs::read_to_string(&iidfile).unwrap();
    (stderr, id, runtime)
}

/// The `--explain-cache` lines of a step, by the step's text.
fn step_notes(stderr: &str, step: &str) -> Vec<String> {
    let id = stderr
        .lines()
        .find(|l| l.contains(step))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step {step:?} in:\n{stderr}"))
        .to_string();
    stderr
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{id} cache ")) || l.starts_with(&format!("{id} warning"))
        })
        .map(str::to_string)
        .collect()
}

fn fixture() -> tempfile::TempDir {
    fixture_copy("cicache")
}

#[test]
fn mode_max_through_registry2_lade_registry_and_a_directory_runs_no_run_on_fresh_stores() {
    let Some(base) = setup() else { return };
    let Some(()) = require("registry:2", have_registry()) else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let lade_registry = LadeRegistry::start(&[]);
    let context = fixture();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("cache");
    let to_registry2 = format!("type=registry,ref={}/ci/app:buildcache", registry2.host());
    let to_lade = format!(
        "type=registry,ref={}/ci/app:buildcache",
        lade_registry.host()
    );

    let a = base.store();
    let (stderr_a, id_a, runtime_a) = build(
        &a,
        context.path(),
        &[
            "--cache-to",
            &format!("{to_registry2},mode=max"),
            "--cache-to",
            &format!("{to_lade},mode=max"),
            "--cache-to",
            &format!("type=local,dest={},mode=max", local.display()),
        ],
    );
    assert_eq!(
        runtime_a.runs().len(),
        5,
        "store A runs every RUN:\n{stderr_a}"
    );
    assert!(stderr_a.contains("exporting cache to"), "{stderr_a}");

    let sources = [
        to_registry2.clone(),
        to_lade.clone(),
        format!("type=local,src={}", local.display()),
    ];
    for source in &sources {
        let b = base.store();
        let (stderr, id, runtime) = build(&b, context.path(), &["--cache-from", source]);
        assert_eq!(
            runtime.invocations(),
            0,
            "a fresh store with --cache-from {source} started containers:\n{stderr}"
        );
        assert_eq!(
            id, id_a,
            "--cache-from {source} gives another image:\n{stderr}"
        );
        for step in [
            "RUN echo \"tool two\"",
            "RUN cat src/*.txt",
            "RUN ls /opt/tools",
        ] {
            let notes = step_notes(&stderr, step);
            assert!(
                notes.iter().any(|n| n.contains("cache hit: from type=")),
                "{step} with --cache-from {source}: {notes:?}\n{stderr}"
            );
        }
        // The records it imported are local now: a rebuild hits them locally.
        let (again, id_again, runtime) = build(&b, context.path(), &["--cache-from", source]);
        assert_eq!(runtime.invocations(), 0);
        assert_eq!(id_again, id_a);
        assert!(step_notes(&again, "RUN cat src/*.txt")
            .iter()
            .any(|n| n.contains("cache hit: local")));
    }
    // The cache is BuildKit's layout: an image manifest whose config is the cache document.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |digest: &str| {
        local
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).unwrap()).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.buildkit.cacheconfig.v0"
    );
    let document: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    // mode=max: the tools stage's steps too (2 RUN, 1 COPY), and the app's 7 layer steps.
    assert_eq!(
        document["records"].as_array().unwrap().len(),
        10,
        "{document}"
    );
    assert!(manifest["layers"][0]["annotations"]["containerd.io/uncompressed"].is_string());
}

#[test]
fn a_one_file_change_rebuilds_only_later_steps_and_an_unchanged_stage_still_hits() {
    let Some(base) = setup() else { return };
    let context = fixture();
    let dir = tempfile::tempdir().unwrap();
    let local = format!("type=local,dest={},mode=max", dir.path().display());
    let a = base.store();
    build(&a, context.path(), &["--cache-to", &local]);

    std::fs::write(context.path().join("src/a.txt"), "edited on machine B\n").unwrap();
    let b = base.store();
    let (stderr, _, runtime) = build(
        &b,
        context.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", dir.path().display()),
        ],
    );
    let runs = runtime.runs();
    assert_eq!(
        runs.len(),
        2,
        "only the two RUN after COPY src/ run:\n{stderr}"
    );
    for step in [
        "RUN mkdir -p /opt/tools",
        "RUN echo \"tool two\"",
        "COPY tools.txt",
        "COPY package.json",
        "RUN mkdir -p deps",
    ] {
        assert!(
            step_notes(&stderr, step)
                .iter()
                .any(|n| n.contains("cache hit: from type=local")),
            "{step} should be hit: {stderr}"
        );
    }
    assert!(step_notes(&stderr, "COPY src/")
        .iter()
        .any(|n| n.contains("cache miss") && n.contains("not in type=local")));
    assert_eq!(
        b.ok(&["run", "--rm", "app:1"]),
        "edited on machine B\nsecond source file\n"
    );
}

#[test]
fn mode_min_exports_the_image_steps_only() {
    let Some(base) = setup() else { return };
    let context = fixture();
    let dir = tempfile::tempdir().unwrap();
    let a = base.store();
    let (_, id_a, _) = build(
        &a,
        context.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={}", dir.path().display()),
        ],
    );
    let b = base.store();
    let (stderr, id_b, runtime) = build(
        &b,
        context.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", dir.path().display()),
        ],
    );
    // The tools stage is not in the image: its two RUN run again; every step of the image's stage is hit.
    assert_eq!(runtime.runs().len(), 2, "{stderr}");
    assert!(step_notes(&stderr, "RUN ls /opt/tools")
        .iter()
        .any(|n| n.contains("cache hit: from")));
    assert_eq!(id_a, id_b);
}

#[test]
fn an_inline_cache_in_a_pushed_image_feeds_a_fresh_store() {
    let Some(base) = setup() else { return };
    let Some(()) = require("registry:2", have_registry()) else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let context = fixture_copy("nodeapp");
    let image = format!("{}/ci/node:1", registry2.host());
    let a = base.store();
    let (_, id_a, runtime_a) = build(
        &a,
        context.path(),
        &["--cache-to", "type=inline", "-t", &image],
    );
    assert_eq!(runtime_a.runs().len(), 2);
    a.ok(&["push", &image]);

    let b = base.store();
    let (stderr, id_b, runtime) = build(
        &b,
        context.path(),
        &["--cache-from", &image, "--cache-to", "type=inline"],
    );
    assert_eq!(runtime.invocations(), 0, "{stderr}");
    assert_eq!(id_a, id_b, "{stderr}");
    // Without the inline cache the image differs only by it: still no RUN.
    let c = base.store();
    let (_, id_c, runtime) = build(
        &c,
        context.path(),
        &["--cache-from", &format!("type=registry,ref={image}")],
    );
    assert_eq!(runtime.invocations(), 0);
    assert_ne!(id_c, id_a);
}

#[test]
fn a_missing_or_corrupt_cache_blob_is_a_miss_with_a_warning() {
    let Some(base) = setup() else { return };
    let context = fixture();
    let dir = tempfile::tempdir().unwrap();
    let a = base.store();
    let (_, id_a, _) = build(
        &a,
        context.path(),
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", dir.path().display()),
        ],
    );
    // Corrupt the layer of `RUN cat` and delete the one of `RUN ls` (the two last RUN layers of the image).
    let image: serde_json::Value = serde_json::from_str(&a.ok(&["inspect", "app:1"])).unwrap();
    let layers = image[0]["RootFS"]["Layers"].as_array().unwrap().len();
    assert!(layers >= 4);
    let manifest = manifest_layers_field(&a, "app:1", "digest");
    let blob = |digest: &str| {
        dir.path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let cat = &manifest[manifest.len() - 3];
    let ls = &manifest[manifest.len() - 1];
    let mut bytes = std::fs::read(blob(cat)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(blob(cat), bytes).unwrap();
    std::fs::remove_file(blob(ls)).unwrap();

    let b = base.store();
    let (stderr, id_b, runtime) = build(
        &b,
        context.path(),
        &[
            "--cache-from",
            &format!("type=local,src={}", dir.path().display()),
        ],
    );
    assert_eq!(
        runtime.runs().len(),
        2,
        "the two steps whose blobs are bad run:\n{stderr}"
    );
    assert!(
        stderr.contains("[Warning] cache from type=local") && stderr.contains("is corrupt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is unusable, so the step is built"),
        "{stderr}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "app:1"]),
        "first source file\nsecond source file\n"
    );
    // Layers are not reproducible without SOURCE_DATE_EPOCH: the rebuilt steps make another image.
    assert_ne!(id_a, id_b);
}

/// An image's manifest in a store.
fn manifest_of(lade: &Lade, image: &str) -> serde_json::Value {
    let root = lade.root.path();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["io.containerd.image.name"]
                .as_str()
                .is_some_and(|n| n.ends_with(&format!("/{image}")))
        })
        .expect("the image is in the store");
    let path: PathBuf = root.join("blobs/sha256").join(
        entry["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A field of each layer of an image's manifest, in order.
fn manifest_layers_field(lade: &Lade, image: &str, field: &str) -> Vec<String> {
    manifest_of(lade, image)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn secrets_enter_neither_a_cache_key_nor_a_cache_layer() {
    let Some(base) = setup() else { return };
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=secret,id=token cp /run/secrets/token /tmp/seen && wc -c /tmp/seen > /size && rm /tmp/seen\n",
    )
    .unwrap();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s3cr3t-value-4217").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = base.store();
    let secret_arg = format!("id=token,src={}", secret.path().display());
    let (_, _, runtime) = build(
        &a,
        context.path(),
        &[
            "--secret",
            &secret_arg,
            "--cache-to",
            &format!("type=local,dest={},mode=max", dir.path().display()),
        ],
    );
    assert_eq!(runtime.runs().len(), 1);
    for entry in walkdir::WalkDir::new(dir.path()) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let raw = std::fs::read(entry.path()).unwrap();
        let mut plain = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&raw[..]),
            &mut plain,
        );
        for bytes in [&raw, &plain] {
            assert!(
                !String::from_utf8_lossy(bytes).contains("s3cr3t-value-4217"),
                "{} holds the secret",
                entry.path().display()
            );
        }
    }
    // Another secret value is the same step: a fresh store hits the cache (the key has the id, not the content).
    std::fs::write(secret.path(), "another-value").unwrap();
    let b = base.store();
    let (stderr, _, runtime) = build(
        &b,
        context.path(),
        &[
            "--secret",
            &secret_arg,
            "--cache-from",
            &format!("type=local,src={}", dir.path().display()),
        ],
    );
    assert_eq!(runtime.invocations(), 0, "{stderr}");
}

#[test]
fn bad_cache_options_are_refused_before_building() {
    let lade = Lade::new();
    let context = fixture();
    let path = context.path().to_str().unwrap();
    for (option, value, expected) in [
        ("--cache-to", "type=s3,bucket=x", "unsupported type \"s3\""),
        (
            "--cache-to",
            "type=registry,ref=localhost:5000/c:1,colour=red",
            "unknown option \"colour\"",
        ),
        ("--cache-to", "type=local", "type=local needs dest=DIR"),
        (
            "--cache-from",
            "type=local,dest=/x",
            "unknown option \"dest\"",
        ),
        ("--cache-to", "type=inline,mode=max", "mode=min only"),
    ] {
        let stderr = lade.fails(&["build", option, value, path]);
        assert!(stderr.contains(expected), "{option} {value}: {stderr}");
    }
}

#[test]
fn an_unreachable_or_empty_cache_source_is_a_warning() {
    let Some(base) = setup() else { return };
    let context = fixture_copy("hello");
    let lade = base.store();
    let empty = tempfile::tempdir().unwrap();
    let (stderr, _, _) = build(
        &lade,
        context.path(),
        &[
            "--cache-from",
            // Nothing listens there.
            "type=registry,ref=127.0.0.1:9/none/cache:1",
            "--cache-from",
            &format!("type=local,src={}", empty.path().display()),
        ],
    );
    assert!(
        stderr.contains(
            "[Warning] cache from type=registry,ref=127.0.0.1:9/none/cache:1 is not used"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "type=local,{}:latest: 0 records",
            empty.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn zstd_and_docker_media_type_caches_give_the_same_image() {
    let Some(base) = setup() else { return };
    let Some(()) = require("registry:2", have_registry()) else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let context = fixture();
    let zstd = format!("{}/ci/app:zstd", registry2.host());
    let docker = format!("{}/ci/app:docker", registry2.host());
    let a = base.store();
    let (_, id_a, _) = build(
        &a,
        context.path(),
        &[
            "--cache-to",
            &format!("type=registry,ref={zstd},mode=max,compression=zstd"),
            "--cache-to",
            &format!("type=registry,ref={docker},mode=max,oci-mediatypes=false"),
        ],
    );
    for (source, layer_type) in [
        (&zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
        (&docker, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ] {
        let b = base.store();
        let (stderr, id_b, runtime) = build(&b, context.path(), &["--cache-from", source]);
        assert_eq!(runtime.invocations(), 0, "{source}: {stderr}");
        assert_eq!(id_b, id_a, "{source}: {stderr}");
        let layers = manifest_layers_field(&b, "app:1", "mediaType");
        assert!(
            layers.iter().any(|t| t == layer_type),
            "{source}: {layers:?}"
        );
    }
}
