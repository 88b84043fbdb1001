//! Crash consistency: `lade load`, `build`, `push`, `pull`, `registry serve` (mid-upload) and `registry gc` are
//! killed with SIGKILL at random points, many times, and after each kill the store or registry root must check clean
//! (`lade system check`, `lade registry check`: every blob matches its digest, every tag resolves to a whole image)
//! and the interrupted command must then run to completion.
//!
//! Each kill lands at a uniformly random moment within the time an uninterrupted run of the same command took, so
//! the points spread over the whole command whatever the machine's speed. `LADE_CRASH_ROUNDS` sets the kills per
//! command (CI runs the default, 5); `LADE_CRASH_SEED` replays a run (the seed is printed).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require, BusyboxBase, Lade, LadeRegistry};

/// A small deterministic generator (xorshift64*), so a failing run can be replayed from its seed.
struct Random(u64);

impl Random {
    fn from_env() -> Random {
        let seed = std::env::var("LADE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("crash harness seed: LADE_CRASH_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, limit: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let fraction =
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        limit.mul_f64(fraction)
    }
}

fn rounds() -> usize {
    std::env::var("LADE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// How long `command` takes uninterrupted (it must succeed).
fn timed_run(mut command: Command) -> Duration {
    let start = Instant::now();
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed()
}

/// Starts `command`, kills it with SIGKILL after `delay` (if still running), and reaps it.
fn kill_after(mut command: Command, delay: Duration) -> bool {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("command starts");
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// `lade system check` of the store must find nothing wrong (leftovers of killed commands are allowed: nothing
/// reads them); returns its summary line.
fn assert_store_checks_clean(lade: &Lade, after: &str) -> String {
    let output = lade.run(&["system", "check"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "the store is inconsistent after {after}:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_registry_checks_clean(lade: &Lade, root: &std::path::Path, after: &str) {
    let output = lade.run(&["registry", "check", "--root", root.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "the registry root is inconsistent after {after}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A rootfs tarball with `megabytes` of random data in a few files, so that commands run long enough to be hit
/// at many points.
fn random_rootfs(dir: &std::path::Path, megabytes: usize) -> std::path::PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for file in 0..4 {
        let mut data = vec![0u8; megabytes * (1 << 20) / 4];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("data/file{file}"), &data[..])
            .unwrap();
    }
    let path = dir.join("rootfs.tar");
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path
}

#[test]
fn kill_9_of_load_leaves_a_consistent_store() {
    let source = Lade::new();
    let rootfs = random_rootfs(source.scratch.path(), 48);
    source.ok(&["import", rootfs.to_str().unwrap(), "big:1"]);
    let archive = source.scratch.path().join("big.tar");
    source.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);

    let lade = Lade::new();
    let load = || {
        let mut command = lade.command();
        command.args(["load", "-q", "-i", archive.to_str().unwrap()]);
        command
    };
    let full = timed_run(load());
    lade.ok(&["rmi", "big:1"]);
    lade.ok(&["prune"]);
    let mut random = Random::from_env();
    for round in 0..rounds() {
        kill_after(load(), random.below(full));
        assert_store_checks_clean(&lade, &format!("kill -9 of load (round {round})"));
        lade.ok(&["images"]);
    }
    lade.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    lade.ok(&["system", "check", "--repair"]);
    let summary = assert_store_checks_clean(&lade, "the final load");
    assert!(summary.contains("0 leftovers"), "{summary}");
    assert_eq!(
        source.ok(&["inspect", "-f", "{{.Id}}", "big:1"]),
        lade.ok(&["inspect", "-f", "{{.Id}}", "big:1"])
    );
}

#[test]
fn kill_9_of_build_leaves_a_consistent_store_and_the_next_build_works() {
    let Some(base) = BusyboxBase::make(None) else {
        return;
    };
    let Some(()) = require("runc", common::have("runc")) else {
        return;
    };
    let lade = common::lade_with_busybox(&base);
    let context = tempfile::tempdir().unwrap();
    let mut payload = std::fs::File::create(context.path().join("payload")).unwrap();
    payload.write_all(&vec![7u8; 8 << 20]).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM busybox:local\nCOPY payload /payload\n\
         RUN dd if=/dev/urandom of=/random bs=1M count=24 2>/dev/null && sync\n\
         RUN sha256sum /payload /random > /sums\n",
    )
    .unwrap();
    let build = |no_cache: bool| {
        let mut command = lade.command();
        command.args(["build", "-q", "-t", "crash:1"]);
        if no_cache {
            command.arg("--no-cache");
        }
        command.arg(context.path());
        command
    };
    let full = timed_run(build(true));
    let mut random = Random::from_env();
    for round in 0..rounds() {
        kill_after(build(true), random.below(full));
        assert_store_checks_clean(&lade, &format!("kill -9 of build (round {round})"));
    }
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "crash:1",
        context.path().to_str().unwrap(),
    ]);
    let sums = lade.ok(&["run", "--rm", "crash:1", "sha256sum", "-c", "/sums"]);
    assert!(sums.contains("/random: OK"), "{sums}");
    assert_store_checks_clean(&lade, "the final build");
}

#[test]
fn kill_9_of_push_pull_and_the_registry_leaves_everything_consistent() {
    let source = Lade::new();
    let rootfs = random_rootfs(source.scratch.path(), 48);
    source.ok(&["import", rootfs.to_str().unwrap(), "big:1"]);
    let registry_root = tempfile::tempdir().unwrap();
    let root_arg = registry_root.path().to_str().unwrap().to_string();
    let mut random = Random::from_env();

    // Kill the client mid-push.
    let registry = LadeRegistry::start(&["--root", &root_arg]);
    let target = format!("{}/crash/big:1", registry.host);
    let push = |target: &str| {
        let mut command = source.command();
        command.args(["push", "--compression", "none", "big:1", target]);
        command
    };
    let full = timed_run(push(&target));
    for round in 0..rounds() {
        // A fresh root each round, so the push has everything to send again.
        wipe_root(registry_root.path());
        kill_after(push(&target), random.below(full));
        assert_registry_checks_clean(
            &source,
            registry_root.path(),
            &format!("kill -9 of push (round {round})"),
        );
        source.ok(&["push", "--compression", "none", "big:1", &target]);
    }

    // Kill the client mid-pull.
    let puller = Lade::new();
    let pull = || {
        let mut command = puller.command();
        command.args(["pull", &target]);
        command
    };
    let full_pull = timed_run(pull());
    for round in 0..rounds() {
        puller.run(&["rmi", &target]);
        puller.ok(&["prune"]);
        kill_after(pull(), random.below(full_pull));
        assert_store_checks_clean(&puller, &format!("kill -9 of pull (round {round})"));
    }
    puller.ok(&["pull", &target]);
    assert_store_checks_clean(&puller, "the final pull");
    drop(registry);

    // Kill the registry mid-upload; a restarted registry on the same root serves a retried push.
    for round in 0..rounds() {
        wipe_root(registry_root.path());
        let registry = LadeRegistry::start(&["--root", &root_arg]);
        let target = format!("{}/crash/big:1", registry.host);
        let mut client = push(&target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(random.below(full));
        let pid = rustix::process::Pid::from_raw(registry.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let _ = client.wait();
        drop(registry);
        assert_registry_checks_clean(
            &source,
            registry_root.path(),
            &format!("kill -9 of registry serve mid-push (round {round})"),
        );
        let registry = LadeRegistry::start(&["--root", &root_arg]);
        source.ok(&[
            "push",
            "--compression",
            "none",
            "big:1",
            &format!("{}/crash/big:1", registry.host),
        ]);
    }

    // Kill offline garbage collection mid-sweep: delete the tag, then collect untagged content.
    let registry = LadeRegistry::start(&["--root", &root_arg]);
    let host = registry.host.clone();
    let gc = || {
        let mut command = source.command();
        command.args(["registry", "gc", "--delete-untagged", "--root", &root_arg]);
        command
    };
    for round in 0..rounds() {
        source.ok(&[
            "push",
            "--compression",
            "none",
            "big:1",
            &format!("{host}/crash/big:1"),
        ]);
        let tag_dir = registry_root
            .path()
            .join("docker/registry/v2/repositories/crash/big/_manifests/tags/1");
        std::fs::remove_dir_all(&tag_dir).unwrap();
        let full_gc = timed_run(gc());
        source.ok(&[
            "push",
            "--compression",
            "none",
            "big:1",
            &format!("{host}/crash/big:1"),
        ]);
        std::fs::remove_dir_all(&tag_dir).unwrap();
        kill_after(gc(), random.below(full_gc));
        assert_registry_checks_clean(
            &source,
            registry_root.path(),
            &format!("kill -9 of gc (round {round})"),
        );
    }
    source.ok(&[
        "push",
        "--compression",
        "none",
        "big:1",
        &format!("{host}/crash/big:1"),
    ]);
    assert_registry_checks_clean(&source, registry_root.path(), "the final push");
}

fn wipe_root(root: &std::path::Path) {
    match std::fs::remove_dir_all(root.join("docker")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            panic!("wiping the registry root: {e}")
        }
        _ => {}
    }
}
