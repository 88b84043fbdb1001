//! Helpers shared by the end-to-end tests: the built `lade` binary with a private store, and real peers (a Docker
//! engine, skopeo) started through `../shared/tools`. A test that needs a peer skips, saying why, when the peer is
//! unavailable — except under `CI=true`, where it fails.

#![allow(dead_code)]

pub mod compare;
pub mod fleet;
pub mod registry;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project.
pub fn shared() -> PathBuf {
    workspace().join("../shared")
}

/// A `lade` with its own store root, removed at the end of the test.
pub struct Lade {
    pub root: tempfile::TempDir,
    /// A directory for the test's own files, beside the store.
    pub scratch: tempfile::TempDir,
}

impl Lade {
    pub fn new() -> Lade {
        Lade {
            root: tempfile::tempdir().expect("temp dir"),
            scratch: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lade"));
        command
            .arg("--root")
            .arg(self.root.path())
            .arg("--progress=plain")
            // Registry credentials and settings stay private to the test.
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("LADE_CONFIG", self.scratch.path().join("lade-config.json"))
            .env_remove("LADE_CERTS_DIR");
        command
    }

    /// The `DOCKER_CONFIG` directory lade uses for credentials.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.scratch.path().join("docker-config")
    }

    /// Runs lade with `args`, returning its output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("lade runs")
    }

    /// Runs lade and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "lade {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Runs lade and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "lade {args:?} unexpectedly succeeded"
        );
        String::from_utf8(output.stderr).expect("utf-8 output")
    }

    /// A listing of every file in the store with its size and content hash, for "store unchanged" checks.
    pub fn store_snapshot(&self) -> Vec<String> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(self.root.path()).sort_by_file_name() {
            let entry = entry.expect("walk store");
            if entry.file_type().is_file()
                && !entry.file_name().to_string_lossy().ends_with(".lock")
            {
                let bytes = std::fs::read(entry.path()).expect("read store file");
                let digest = layerstore::Digest::sha256_of(&bytes);
                files.push(format!(
                    "{} {}",
                    entry
                        .path()
                        .strip_prefix(self.root.path())
                        .unwrap()
                        .display(),
                    digest
                ));
            }
        }
        files
    }
}

/// Is this a CI run, where missing peers are failures?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skips the test (returning `None`) when a peer is unavailable, or panics in CI.
pub fn require<T>(peer: &str, result: Result<T, String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(reason) if in_ci() => {
            panic!("{peer} is required under CI=true but unavailable: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIP: {peer} unavailable: {reason}");
            None
        }
    }
}

fn run_capture(command: &mut Command) -> Result<Output, String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A Docker engine (started once by `start-dockerd.sh`, shared by the tests of a run).
pub struct Docker {
    host: String,
}

impl Docker {
    pub fn get() -> Option<&'static Docker> {
        static DOCKER: OnceLock<Result<Docker, String>> = OnceLock::new();
        let result = DOCKER.get_or_init(|| {
            let script = shared().join("tools/start-dockerd.sh");
            if !script.exists() {
                return Err(format!("{} not found", script.display()));
            }
            let dir = std::env::var("LADE_TEST_DOCKERD_DIR")
                .unwrap_or_else(|_| "/tmp/lade-dockerd".into());
            let output = run_capture(Command::new("bash").arg(&script).arg(dir))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let host = stdout
                .lines()
                .find_map(|l| l.strip_prefix("export DOCKER_HOST="))
                .ok_or_else(|| format!("start-dockerd.sh printed no DOCKER_HOST: {stdout}"))?;
            Ok(Docker {
                host: host.trim().to_string(),
            })
        });
        require("dockerd", result.as_ref().map_err(Clone::clone)).map(|d| d as &Docker)
    }

    pub fn command(&self) -> Command {
        let cli = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut command = Command::new(cli);
        command.env("DOCKER_HOST", &self.host);
        command
    }

    /// Runs docker and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("docker runs");
        assert!(
            output.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Builds `dockerfile` in a temp context with the classic builder (or BuildKit) and tags it.
    pub fn build(&self, tag: &str, dockerfile: &str, buildkit: bool) {
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        let output = self
            .command()
            .env("DOCKER_BUILDKIT", if buildkit { "1" } else { "0" })
            .args(["build", "--network=none", "-q", "-t", tag])
            .arg(context.path())
            .output()
            .expect("docker build runs");
        assert!(
            output.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The image ID (config digest) of a local image.
    pub fn image_id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .trim()
            .to_string()
    }
}

/// The busybox base: a rootfs tarball, and `busybox:local` loaded into Docker when an engine is given.
pub struct BusyboxBase {
    pub dir: tempfile::TempDir,
}

impl BusyboxBase {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("busybox-rootfs.tar")
    }

    pub fn docker_save(&self) -> PathBuf {
        self.dir.path().join("busybox-docker-save.tar")
    }

    /// Makes the base with `make-busybox-base.sh`; with an engine, `busybox:local` is also imported into it.
    pub fn make(docker: Option<&Docker>) -> Option<BusyboxBase> {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = shared().join("tools/make-busybox-base.sh");
        let mut command = Command::new("bash");
        command.arg(&script).arg(dir.path());
        match docker {
            Some(docker) => command.env("DOCKER_HOST", &docker.host),
            None => command.env_remove("DOCKER_HOST"),
        };
        require("make-busybox-base.sh", run_capture(&mut command))?;
        Some(BusyboxBase { dir })
    }
}

/// Is a command on PATH?
pub fn have(program: &str) -> Result<(), String> {
    which(program)
        .map(|_| ())
        .ok_or_else(|| format!("{program} is not installed (apt-get install {program})"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// A lade store holding `busybox:local`: loaded from Docker's save of it when an engine made one (so both tools
/// hold the identical base), else imported from the rootfs with the changes in `fixtures/base/changes`.
pub fn lade_with_busybox(base: &BusyboxBase) -> Lade {
    let lade = Lade::new();
    if base.docker_save().exists() {
        lade.ok(&["load", "-i", base.docker_save().to_str().unwrap()]);
    } else {
        let changes = std::fs::read_to_string(workspace().join("fixtures/base/changes"))
            .expect("fixtures/base/changes");
        let mut args = vec!["import".to_string()];
        for change in changes.lines().filter(|l| !l.trim().is_empty()) {
            args.push("-c".into());
            args.push(change.to_string());
        }
        args.push(base.rootfs().to_str().unwrap().to_string());
        args.push("busybox:local".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lade.ok(&args);
    }
    lade
}

/// Copies a fixture context into a fresh directory (so a test may edit it).
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(workspace().join("fixtures").join(name).join("."))
        .arg(dir.path())
        .status()
        .expect("cp runs");
    assert!(status.success());
    dir
}

/// `lade registry serve` on a free loopback port, killed when dropped.
pub struct LadeRegistry {
    pub child: Child,
    pub host: String,
}

impl LadeRegistry {
    /// Starts the registry with extra `serve` flags; returns once it listens.
    pub fn start(args: &[&str]) -> LadeRegistry {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lade"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let host = line
            .split("://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        LadeRegistry { child, host }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lade did not exit within {limit:?}");
    }
}

impl Drop for LadeRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
