//! RUN against the real OCI runtime over real snapshots (root only; CI must have runc).

mod common;

use std::fs;
use std::path::PathBuf;

use builder::runtime::{
    CacheMount, MountSpec, Network, RunOutcome, RunSpec, Runtime, Seccomp, SecretMount, Security,
    Sharing, Stream, Streams,
};
use builder::snapshot::{LayerRef, Snapshot, SnapshotMode, Snapshotter};
use common::*;
use layerstore::layer::create::LayerOptions;
use layerstore::Store;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Store,
    layers: Vec<LayerRef>,
    runtime: Runtime,
}

fn fixture() -> Option<Fixture> {
    if !can_mount() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (store, layers) = store_with_busybox(dir.path());
    let runtime = runtime(&store)?;
    Some(Fixture {
        _dir: dir,
        root,
        store,
        layers,
        runtime,
    })
}

fn sh(rootfs: &std::path::Path, script: &str) -> RunSpec {
    RunSpec {
        rootfs: rootfs.to_path_buf(),
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![],
        cwd: "/".into(),
        user: None,
        network: Network::Host,
        extra_hosts: vec![],
        mounts: vec![],
        interactive: false,
        security: Security::default(),
        terminal: false,
        streams: Streams::Merged,
    }
}

fn run(f: &Fixture, snapshot: &mut Snapshot, spec: &RunSpec) -> (RunOutcome, String) {
    let mut streamed = Vec::new();
    let outcome = f
        .runtime
        .run_in_snapshot(snapshot, spec, &mut |_, chunk| {
            streamed.extend_from_slice(chunk)
        })
        .unwrap();
    (outcome, String::from_utf8(streamed).unwrap())
}

fn run_sh(f: &Fixture, snapshot: &mut Snapshot, script: &str) -> (RunOutcome, String) {
    let spec = sh(snapshot.rootfs(), script);
    run(f, snapshot, &spec)
}

#[test]
fn echo_output_is_streamed_and_exit_codes_pass_through() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    assert_eq!(snapshots.mode(), SnapshotMode::Overlay);
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let (outcome, out) = run_sh(&f, &mut snapshot, "echo hello; echo oops >&2; hostname");
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert!(out.contains("hello\n") && out.contains("oops\n"), "{out}");
    assert!(out.contains("buildkitsandbox"), "{out}");
    assert_eq!(String::from_utf8_lossy(&outcome.output_tail), out);
    let (outcome, _) = run_sh(&f, &mut snapshot, "exit 42");
    assert_eq!(outcome.exit_code, 42);
    drop(snapshot);
    assert_no_mounts_under(&f.root);
}

#[test]
fn stdout_and_stderr_come_in_the_order_they_were_written() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let spec = sh(
        snapshot.rootfs(),
        "for i in $(seq 1 200); do echo out$i; echo err$i >&2; done; exit 1",
    );
    let mut chunks = Vec::new();
    let outcome = f
        .runtime
        .run_in_snapshot(&mut snapshot, &spec, &mut |stream, chunk| {
            chunks.push((stream, chunk.to_vec()))
        })
        .unwrap();
    assert_eq!(outcome.exit_code, 1);
    let expected: String = (1..=200).map(|i| format!("out{i}\nerr{i}\n")).collect();
    let streamed: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(String::from_utf8(streamed).unwrap(), expected);
    assert_eq!(String::from_utf8_lossy(&outcome.output_tail), expected);
    assert!(chunks.iter().all(|(stream, _)| *stream == Stream::Combined));
}

#[test]
fn streams_kept_apart_are_marked() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let spec = RunSpec {
        streams: Streams::Apart,
        ..sh(
            snapshot.rootfs(),
            "echo out1; echo err1 >&2; echo out2; exit 7",
        )
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let outcome = f
        .runtime
        .run_in_snapshot(&mut snapshot, &spec, &mut |stream, chunk| match stream {
            Stream::Stdout => stdout.extend_from_slice(chunk),
            Stream::Stderr => stderr.extend_from_slice(chunk),
            Stream::Combined => panic!("combined output from streams kept apart"),
        })
        .unwrap();
    assert_eq!(outcome.exit_code, 7);
    assert_eq!(String::from_utf8(stdout).unwrap(), "out1\nout2\n");
    assert_eq!(String::from_utf8(stderr).unwrap(), "err1\n");
}

#[test]
fn a_container_abandoned_midway_is_killed_and_deleted() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let spec = sh(snapshot.rootfs(), "echo started; exec sleep 1234");
    let started = std::time::Instant::now();
    // A panic in the middle of the run (here, in the output callback) unwinds through the container's cleanup.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        f.runtime
            .run_in_snapshot(&mut snapshot, &spec, &mut |_, _| panic!("abandoned"))
    }));
    assert!(unwound.is_err());
    assert!(
        started.elapsed().as_secs() < 30,
        "the run was not cut short"
    );
    let list = std::process::Command::new(f.runtime.binary())
        .arg("--root")
        .arg(f.runtime.state_root())
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "");
    let sleeping = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| fs::read(entry.path().join("cmdline")).ok())
        .any(|cmdline| cmdline == b"sleep\x001234\x00");
    assert!(!sleeping, "the container's process outlived it");
}

#[test]
fn network_none_has_only_loopback() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let mut spec = sh(
        snapshot.rootfs(),
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    );
    spec.network = Network::None;
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);
}

#[test]
fn user_and_workdir_apply() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let mut spec = sh(
        snapshot.rootfs(),
        "id -u; id -g; pwd; echo $PATH; echo $HOME",
    );
    spec.user = Some("app".into());
    spec.cwd = "/home/app/work".into();
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["1000", "1000", "/home/app/work"]);
    assert!(lines[3].contains("/usr/bin"), "{out}");
    assert_eq!(lines[4], "/home/app");
}

fn changes_end_up_in_the_layer(mode: SnapshotMode) {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::with_mode(&f.store, mode).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let script =
        "echo data > /root/new && rm /bin/vi && rm -rf /home && mkdir /home && touch /home/fresh";
    let (outcome, out) = run_sh(&f, &mut snapshot, script);
    assert_eq!(outcome.exit_code, 0, "{out}");
    let layer = snapshot.commit(LayerOptions::default()).unwrap();
    let entries = layer_entries(&f.store, &layer.descriptor);
    let names = names(&entries);
    assert!(
        entries.contains(&("root/new".into(), tar::EntryType::Regular, 5)),
        "{names:?}"
    );
    assert!(names.contains(&"root"), "parent dir written: {names:?}");
    assert!(names.contains(&"bin/.wh.vi"), "{names:?}");
    assert!(names.contains(&"home/fresh"), "{names:?}");
    match mode {
        SnapshotMode::Overlay => assert!(names.contains(&"home/.wh..wh..opq"), "{names:?}"),
        SnapshotMode::Copy => assert!(names.contains(&"home/.wh.app"), "{names:?}"),
    }
    for leaked in ["etc/hosts", "etc/resolv.conf", "proc", "dev", "sys"] {
        assert!(!names.contains(&leaked), "{leaked} leaked into {names:?}");
    }
    // The next step starts from the new layer.
    let mut next = snapshots.prepare(&layer.layers).unwrap();
    let (outcome, out) = run_sh(
        &f,
        &mut next,
        "cat /root/new; test -e /bin/vi || echo novi; ls /home",
    );
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert_eq!(out, "data\nnovi\nfresh\n");
    drop(next);
    assert_no_mounts_under(&f.root);
}

#[test]
fn overlay_changes_end_up_in_the_layer() {
    changes_end_up_in_the_layer(SnapshotMode::Overlay);
}

#[test]
fn copied_snapshot_changes_end_up_in_the_layer() {
    changes_end_up_in_the_layer(SnapshotMode::Copy);
}

fn nothing_leaks(mode: SnapshotMode) {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::with_mode(&f.store, mode).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let secret = f.root.join("token.txt");
    fs::write(&secret, "s3cret").unwrap();
    let mut spec = sh(
        snapshot.rootfs(),
        "cat /run/secrets/token; echo; cat /etc/hosts >/dev/null; ls /run/secrets; test -w /run/secrets/token || echo ro",
    );
    spec.mounts = vec![MountSpec::Secret(SecretMount {
        id: "token".into(),
        source: Some(secret),
        target: None,
        required: true,
        uid: 0,
        gid: 0,
        mode: 0o400,
    })];
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert!(out.starts_with("s3cret\ntoken\n"), "{out}");
    let layer = snapshot.commit(LayerOptions::default()).unwrap();
    // The secret file goes; the directories made for it stay, as BuildKit (v0.8) leaves them.
    assert_only_touched_parents(&f.store, layer, &["etc", "run", "run/secrets"]);
    assert_no_mounts_under(&f.root);
}

#[test]
fn mount_targets_and_secrets_do_not_leak_overlay() {
    nothing_leaks(SnapshotMode::Overlay);
}

#[test]
fn mount_targets_and_secrets_do_not_leak_copy() {
    nothing_leaks(SnapshotMode::Copy);
}

#[test]
fn cache_mount_persists_across_runs_and_stays_out_of_the_layer() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let cache = MountSpec::Cache(CacheMount {
        target: "/var/cache/thing".into(),
        id: None,
        sharing: Sharing::Locked,
        readonly: false,
        uid: 1000,
        gid: 1000,
        mode: 0o700,
        seed: None,
    });
    let mut first = snapshots.prepare(&f.layers).unwrap();
    let mut spec = sh(
        first.rootfs(),
        "stat -c '%u %a' /var/cache/thing; echo kept > /var/cache/thing/file",
    );
    spec.mounts = vec![cache.clone()];
    let (outcome, out) = run(&f, &mut first, &spec);
    assert_eq!((outcome.exit_code, out.as_str()), (0, "1000 700\n"));
    // The mount point stays, empty, as BuildKit leaves it; the cache's contents do not.
    assert_layer_has_only_directories(
        &f.store,
        first.commit(LayerOptions::default()).unwrap(),
        &["etc", "var", "var/cache", "var/cache/thing"],
    );
    let mut second = snapshots.prepare(&f.layers).unwrap();
    let mut spec = sh(second.rootfs(), "cat /var/cache/thing/file");
    spec.mounts = vec![cache];
    let (outcome, out) = run(&f, &mut second, &spec);
    assert_eq!((outcome.exit_code, out.as_str()), (0, "kept\n"));
}

#[test]
fn bind_mounts_are_read_only_unless_rw_and_rw_changes_are_thrown_away() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let context = f.root.join("context");
    fs::create_dir(&context).unwrap();
    fs::write(context.join("a"), "A").unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let bind = |readwrite| {
        MountSpec::Bind(builder::runtime::BindMount {
            target: "/src".into(),
            source: context.clone(),
            readwrite,
        })
    };
    let mut spec = sh(snapshot.rootfs(), "cat /src/a; echo x > /src/b");
    spec.mounts = vec![bind(false)];
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_ne!(outcome.exit_code, 0, "{out}");
    assert!(
        out.contains('A') && out.contains("Read-only file system"),
        "{out}"
    );
    spec.mounts = vec![bind(true)];
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert!(
        !context.join("b").exists(),
        "rw bind wrote through to the source"
    );
    let mut tmpfs = sh(
        snapshot.rootfs(),
        "echo t > /scratch/t && grep ' /scratch ' /proc/mounts",
    );
    tmpfs.mounts = vec![MountSpec::Tmpfs(builder::runtime::TmpfsMount {
        target: "/scratch".into(),
        size: Some(1 << 20),
    })];
    let (outcome, out) = run(&f, &mut snapshot, &tmpfs);
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    // A file bind's stub goes; directory mount points stay, empty, as BuildKit (v0.8) leaves them.
    let mut file_bind = sh(snapshot.rootfs(), "cat /files/a");
    file_bind.mounts = vec![MountSpec::Bind(builder::runtime::BindMount {
        target: "/files/a".into(),
        source: context.join("a"),
        readwrite: false,
    })];
    let (outcome, out) = run(&f, &mut snapshot, &file_bind);
    assert_eq!((outcome.exit_code, out.as_str()), (0, "A"));
    assert_layer_has_only_directories(
        &f.store,
        snapshot.commit(LayerOptions::default()).unwrap(),
        &["etc", "src", "scratch", "files"],
    );
}

/// Asserts that a layer holds exactly these directories (mount points, or parents whose time changed) and nothing
/// else; `etc` may be absent.
fn assert_layer_has_only_directories(
    store: &Store,
    layer: builder::snapshot::CommittedLayer,
    expected: &[&str],
) {
    let entries = layer_entries(store, &layer.descriptor);
    let mut found: Vec<&str> = Vec::new();
    for (name, kind, _) in &entries {
        assert_eq!(
            *kind,
            tar::EntryType::Directory,
            "{name} in {:?}",
            names(&entries)
        );
        found.push(name.trim_end_matches('/'));
    }
    let mut expected: Vec<&str> = expected.to_vec();
    if !found.contains(&"etc") {
        expected.retain(|e| *e != "etc");
    }
    found.sort();
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn no_containers_are_left_behind() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let (outcome, _) = run_sh(&f, &mut snapshot, "exit 3");
    assert_eq!(outcome.exit_code, 3);
    let list = std::process::Command::new(f.runtime.binary())
        .arg("--root")
        .arg(f.root.join("runtime/state"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    assert!(list.status.success());
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "");
}

#[test]
fn containers_of_dead_builds_are_deleted() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let snapshot = snapshots.prepare(&f.layers).unwrap();
    // What a build killed mid-step leaves: a container whose id names a dead process.
    let bundle = f.root.join("stale-bundle");
    fs::create_dir(&bundle).unwrap();
    let identity = builder::users::resolve_user(snapshot.rootfs(), "0").unwrap();
    let args = vec!["true".to_string()];
    let config = builder::runtime::spec::build(builder::runtime::spec::SpecInput {
        rootfs: snapshot.rootfs(),
        args: &args,
        env: &[],
        cwd: std::path::Path::new("/"),
        identity: &identity,
        network: Network::None,
        hosts_file: &bundle.join("hosts"),
        extra_mounts: vec![],
        security: &Security::default(),
        terminal: false,
    })
    .unwrap();
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    fs::write(bundle.join("hosts"), builder::runtime::spec::HOSTS_CONTENT).unwrap();
    let runc = |args: &[&str], capture: bool| {
        let mut command = std::process::Command::new(f.runtime.binary());
        command
            .arg("--root")
            .arg(f.runtime.state_root())
            .args(args)
            .stdin(std::process::Stdio::null());
        if !capture {
            // A created container's init keeps inherited pipes open: give it none.
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        command.output().unwrap()
    };
    /// Deletes the container even when an assertion fails, so no `runc init` outlives the test.
    struct Cleanup<'a>(&'a dyn Fn());
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let delete = || {
        runc(&["delete", "-f", "lade-999999999-1-0"], false);
    };
    let _cleanup = Cleanup(&delete);
    let created = runc(
        &[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "lade-999999999-1-0",
        ],
        false,
    );
    assert!(created.status.success());
    let list = || String::from_utf8(runc(&["list", "-q"], true).stdout).unwrap();
    assert_eq!(list().trim(), "lade-999999999-1-0");
    Runtime::detect(&f.store, None).unwrap();
    assert_eq!(list().trim(), "");
}

#[test]
fn a_working_runtime_is_probed_once_per_binary_and_kernel() {
    let Some(f) = fixture() else { return };
    // A wrapper that logs each invocation before handing over to the real runtime.
    let wrapper = f.root.join("logging-runtime");
    let log = f.root.join("invocations.log");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            f.runtime.binary().display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let runs = || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" run "))
            .count()
    };
    Runtime::detect(&f.store, Some(&wrapper)).unwrap();
    assert_eq!(runs(), 1, "the first detection runs a test container");
    Runtime::detect(&f.store, Some(&wrapper)).unwrap();
    assert_eq!(runs(), 1, "a remembered verdict is trusted");
    // A changed binary is probed again.
    let mut script = fs::read_to_string(&wrapper).unwrap();
    script.push_str("# changed\n");
    fs::write(&wrapper, script).unwrap();
    Runtime::detect(&f.store, Some(&wrapper)).unwrap();
    assert_eq!(runs(), 2, "a changed binary is probed again");
}

/// What `/proc/self/status` says of the sandbox, and whether `unshare -U` (which Docker's profile forbids without
/// CAP_SYS_ADMIN) and `chroot` (allowed with CAP_SYS_CHROOT) work.
const SANDBOX_PROBE: &str = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
    unshare -U true 2>&1; echo unshare=$?; chroot / true; echo chroot=$?";

fn probe_sandbox(f: &Fixture, security: Security) -> String {
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let spec = RunSpec {
        security,
        ..sh(snapshot.rootfs(), SANDBOX_PROBE)
    };
    let (outcome, out) = run(f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    out
}

#[test]
fn steps_run_under_dockers_default_seccomp_profile() {
    let Some(f) = fixture() else { return };
    let out = probe_sandbox(&f, Security::default());
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0\n"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb\n"), "{out}");
    // EPERM, as under Docker: busybox reports the failed unshare(CLONE_NEWUSER).
    assert!(
        out.contains("unshare(0x10000000): Operation not permitted") && out.contains("unshare=1"),
        "{out}"
    );
    assert!(out.contains("chroot=0"), "{out}");
}

#[test]
fn seccomp_can_be_turned_off_or_replaced() {
    let Some(f) = fixture() else { return };
    let out = probe_sandbox(
        &f,
        Security {
            seccomp: Seccomp::Unconfined,
            no_new_privileges: true,
            ..Security::default()
        },
    );
    assert!(out.contains("Seccomp:\t0\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1\n"), "{out}");
    assert!(out.contains("unshare=0"), "{out}");

    // A profile of one's own: everything allowed but chroot, which fails with EACCES.
    let file = f.root.join("profile.json");
    fs::write(
        &file,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chroot"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let security = Security::from_options(&[format!("seccomp={}", file.display())]).unwrap();
    let out = probe_sandbox(&f, security);
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("unshare=0"), "{out}");
    assert!(
        out.contains("chroot=1") && out.contains("Permission denied"),
        "{out}"
    );
}

#[test]
fn insecure_steps_get_every_capability_and_no_confinement() {
    let Some(f) = fixture() else { return };
    let snapshots = Snapshotter::new(&f.store).unwrap();
    let mut snapshot = snapshots.prepare(&f.layers).unwrap();
    let spec = RunSpec {
        security: Security {
            insecure: true,
            ..Security::default()
        },
        user: Some("app".into()),
        ..sh(
            snapshot.rootfs(),
            "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep -c ' /proc/' /proc/self/mountinfo; \
             grep ' /sys ' /proc/self/mountinfo",
        )
    };
    let (outcome, out) = run(&f, &mut snapshot, &spec);
    assert_eq!(outcome.exit_code, 0, "{out}");
    assert!(out.contains("Seccomp:\t0\n"), "{out}");
    // The 38 capabilities BuildKit grants (those of them this process has), kept by a non-root user through the
    // ambient set.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let host = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    let expected = format!("CapEff:\t{:016x}\n", host & 0x3f_ffff_ffff);
    assert!(out.contains(&expected), "{expected} in {out}");
    assert!(
        out.contains("\n0\n"),
        "no masked or read-only /proc paths: {out}"
    );
    assert!(out.contains(" /sys rw,"), "{out}");
}
