//! Operator niceties of the `lade` binary: shell completions, man pages, build information in `lade version`, and
//! the registry's structured logs, web-page switch and registry:2 environment variables.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::free_port;
use common::Lade;

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    let lade = Lade::new();
    let bash = lade.ok(&["completion", "bash"]);
    assert!(
        bash.contains("_lade()") && bash.contains("registry__subcmd__serve"),
        "bash script"
    );
    // bash loads it and registers the completion.
    let script = lade.scratch.path().join("lade.bash");
    std::fs::write(&script, &bash).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p lade", script.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_lade"));
    let zsh = lade.ok(&["completion", "zsh"]);
    assert!(zsh.starts_with("#compdef lade") && zsh.contains("--no-ui"));
    let fish = lade.ok(&["completion", "fish"]);
    assert!(fish.contains("complete -c lade") && fish.contains("log-format"));
    assert!(lade
        .fails(&["completion", "tcsh"])
        .contains("invalid value 'tcsh'"));
}

#[test]
fn man_pages_for_every_command() {
    let lade = Lade::new();
    let dir = lade.scratch.path().join("man1");
    let out = lade.ok(&["man", dir.to_str().unwrap()]);
    assert!(
        out.starts_with("wrote ") && out.contains("man pages"),
        "{out}"
    );
    for page in [
        "lade.1",
        "lade-build.1",
        "lade-registry-serve.1",
        "lade-image-ls.1",
        "lade-man.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"),
            "{page} is roff"
        );
    }
    let serve = std::fs::read_to_string(dir.join("lade-registry-serve.1")).unwrap();
    assert!(
        serve.contains("no\\-ui") && serve.contains("REGISTRY_HTTP_ADDR"),
        "{serve}"
    );
    // man(1) renders it, where installed.
    if Path::new("/usr/bin/man").exists() {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.join("lade-registry-serve.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("lade-registry-serve"));
    }
}

#[test]
fn version_tells_the_build() {
    let lade = Lade::new();
    let out = lade.ok(&["version"]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let commit = field("Git commit:");
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(common::workspace())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built from this checkout (HEAD may have moved on since, in a dirty working session).
        Some(_) => assert!(
            commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        ),
        None => assert_eq!(commit, "unknown"),
    }
    let built = field("Built:");
    assert!(
        time::OffsetDateTime::parse(&built, &time::format_description::well_known::Rfc3339).is_ok(),
        "{built}"
    );
    assert!(field("Rust version:").starts_with("rustc 1."));
    assert_eq!(field("Version:"), env!("CARGO_PKG_VERSION"));
}

/// `lade registry serve` with stderr captured to a file.
struct Served {
    child: Child,
    host: String,
    log: std::path::PathBuf,
}

impl Served {
    fn start(lade: &Lade, args: &[&str], env: &[(&str, String)]) -> Served {
        let port = free_port();
        let log = lade.scratch.path().join(format!("registry-{port}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_lade"));
        command
            .args(["registry", "serve"])
            .args(args)
            .env_remove("RUST_LOG")
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "no registry on {host}: {}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Served { child, host, log }
    }

    fn status(&self, path: &str) -> u16 {
        let mut stream = TcpStream::connect(&self.host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Stops the server (SIGTERM) and returns its log.
    fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        self.child.wait().unwrap();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn registry_logs_json_and_takes_registry2_environment() {
    let lade = Lade::new();
    let root = lade.scratch.path().join("registry-root");
    let served = Served::start(
        &lade,
        &["--log-format", "json"],
        &[(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            root.display().to_string(),
        )],
    );
    assert_eq!(served.status("/v2/"), 200);
    assert_eq!(served.status("/ui"), 200);
    assert_eq!(served.status("/readyz"), 200);
    let log = served.stop();
    assert!(root.is_dir(), "the root came from the environment");
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access = entries
        .iter()
        .find(|e| e["target"] == "lade::registry::access" && e["path"] == "/v2/")
        .unwrap_or_else(|| panic!("no access entry for /v2/ in {log}"));
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["status"], 200);
    assert_eq!(access["method"], "GET");
    assert!(access["timestamp"].is_string() && access["message"] == "request");
    assert!(entries
        .iter()
        .any(|e| e["message"] == "shutting down: finishing in-flight requests"));
}

#[test]
fn registry_log_and_ui_from_the_config_file() {
    let lade = Lade::new();
    let config = lade.scratch.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "root: {}\nui: false\nlog:\n  level: warn\n  formatter: json\n  accesslog: {{ disabled: true }}\n",
            lade.scratch.path().join("root").display()
        ),
    )
    .unwrap();
    let served = Served::start(&lade, &["--config", config.to_str().unwrap()], &[]);
    assert_eq!(served.status("/v2/"), 200);
    assert_eq!(served.status("/ui"), 404);
    assert_eq!(served.status("/"), 404);
    let log = served.stop();
    // At level warn with the access log off, a clean run logs nothing.
    assert_eq!(log.trim(), "", "{log}");

    // Text logs by default, and `--no-ui` switches the page off too.
    let served = Served::start(
        &lade,
        &[
            "--no-ui",
            "--root",
            lade.scratch.path().join("r2").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(served.status("/ui"), 404);
    assert_eq!(served.status("/v2/"), 200);
    let log = served.stop();
    let line = log
        .lines()
        .find(|l| l.contains("lade::registry::access") && l.contains("path=/v2/"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("INFO") && line.contains("status=200") && !line.starts_with('{'),
        "{line}"
    );
    // registry:2's `:PORT` form.
    let out = lade.fails(&["registry", "serve", "--addr", "nonsense"]);
    assert!(
        out.contains("\"nonsense\" is not an address (HOST:PORT or :PORT)"),
        "{out}"
    );
}
