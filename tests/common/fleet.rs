//! A registry fleet on S3 for the end-to-end tests: `s3s-fs` (a real S3 server) on a free loopback port over a temp
//! directory, `lade registry serve` replicas and registry:2 started from one registry:2 `config.yml` (each told its
//! own `REGISTRY_HTTP_ADDR`), and nginx round-robin in front (its config written into a temp prefix, run in the
//! foreground). `LADE_TEST_S3_ENDPOINT` points the tests at another S3 server instead (the Garage cluster of
//! `scripts/test-fleet.sh`), with `LADE_TEST_S3_BUCKET`, `LADE_TEST_S3_ACCESS_KEY` and `LADE_TEST_S3_SECRET_KEY`.
//! Every process stops when its guard drops.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::registry::free_port;

pub const ACCESS_KEY: &str = "lade-test";
pub const SECRET_KEY: &str = "lade-test-secret";

/// Waits until something accepts connections on `port`, or panics with the log.
pub fn wait_for_port(port: u16, what: &str, log: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Is `s3s-fs` installed (by scripts/install-deps.sh)?
pub fn s3s_fs() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/s3s-fs");
    if installed.exists() {
        return Ok(installed);
    }
    super::have("s3s-fs").map(|_| PathBuf::from("s3s-fs"))
}

/// An S3 server with one bucket: a private `s3s-fs`, or the one `LADE_TEST_S3_ENDPOINT` names.
pub struct S3 {
    child: Option<Child>,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// The s3s-fs data directory (the bucket is a directory in it); None for an external server.
    pub data: Option<PathBuf>,
    pub dir: tempfile::TempDir,
}

impl S3 {
    pub fn start() -> Result<S3, String> {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(endpoint) = std::env::var("LADE_TEST_S3_ENDPOINT") {
            let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
            // A fresh root directory per test keeps tests on one bucket apart.
            return Ok(S3 {
                child: None,
                endpoint,
                bucket: var("LADE_TEST_S3_BUCKET")?,
                access_key: var("LADE_TEST_S3_ACCESS_KEY")?,
                secret_key: var("LADE_TEST_S3_SECRET_KEY")?,
                data: None,
                dir,
            });
        }
        let binary = s3s_fs()?;
        let data = dir.path().join("s3");
        std::fs::create_dir_all(data.join("registry")).unwrap();
        let port = free_port();
        let log_path = dir.path().join("s3s-fs.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting s3s-fs: {e}"))?;
        wait_for_port(port, "s3s-fs", &log_path, &mut child);
        Ok(S3 {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "registry".into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            data: Some(data),
            dir,
        })
    }

    /// A registry:2 `config.yml` on this bucket below `root` (no `http.addr`: each process gets its own through
    /// `REGISTRY_HTTP_ADDR`).
    pub fn registry2_config(&self, root: &str) -> PathBuf {
        let text = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  s3:\n    accesskey: {}\n    secretkey: {}\n    region: us-east-1\n    regionendpoint: {}\n    bucket: {}\n    rootdirectory: {root}\n    forcepathstyle: true\n    secure: false\n    v4auth: true\n    chunksize: 5242880\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  secret: fleet-test-secret\n",
            self.access_key, self.secret_key, self.endpoint, self.bucket
        );
        let path = self
            .dir
            .path()
            .join(format!("config-{}.yml", root.replace('/', "_")));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Stops the server (to test storage failures).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A registry process (lade or registry:2) started from a config file, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// `lade registry serve --config CONFIG` on a free port given as `REGISTRY_HTTP_ADDR`.
    pub fn lade(config: &Path, log_dir: &Path, name: &str) -> Server {
        Server::start(
            Command::new(env!("CARGO_BIN_EXE_lade"))
                .args(["registry", "serve", "--config"])
                .arg(config),
            log_dir,
            name,
        )
    }

    /// Debian's registry:2 (`docker-registry serve CONFIG`) likewise.
    pub fn registry2(config: &Path, log_dir: &Path, name: &str) -> Server {
        Server::start(
            // Its AWS SDK cannot honour a custom CA bundle with its transport, and exits when one is set.
            Command::new("docker-registry")
                .arg("serve")
                .arg(config)
                .env_remove("AWS_CA_BUNDLE"),
            log_dir,
            name,
        )
    }

    /// `lade registry serve --config CONFIG --addr 127.0.0.1:PORT` (for lade's own config format).
    pub fn lade_on(config: &Path, log_dir: &Path, name: &str) -> Server {
        let port = free_port();
        Server::start_on(
            Command::new(env!("CARGO_BIN_EXE_lade"))
                .args(["registry", "serve", "--config"])
                .arg(config)
                .arg("--addr")
                .arg(format!("127.0.0.1:{port}")),
            log_dir,
            name,
            port,
        )
    }

    fn start(command: &mut Command, log_dir: &Path, name: &str) -> Server {
        Server::start_on(command, log_dir, name, free_port())
    }

    fn start_on(command: &mut Command, log_dir: &Path, name: &str, port: u16) -> Server {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = command
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        wait_for_port(port, name, &log, &mut child);
        Server { child, port, log }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx round-robin over `backends`, in the foreground with a temp prefix.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(backends: &[String]) -> Result<Nginx, String> {
        let binary = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| Path::new(b).exists() || super::have(b).is_ok())
            .ok_or("nginx is not installed")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = dir.path().display().to_string();
        let servers: String = backends
            .iter()
            .map(|b| format!("    server {b} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n  fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n  upstream lade {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 0;\n    proxy_request_buffering off;\n    proxy_buffering off;\n    proxy_http_version 1.1;\n    proxy_read_timeout 600s;\n    proxy_send_timeout 600s;\n    location / {{\n      proxy_pass http://lade;\n      proxy_set_header Host $http_host;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.path().join("error.log");
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting nginx: {e}"))?;
        wait_for_port(port, "nginx", &log, &mut child);
        Ok(Nginx { child, port, dir })
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl with `args`, returning (status, headers and body as text); `-D -` puts the headers first.
pub fn curl(args: &[&str]) -> (u16, String) {
    let output: Output = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A response header's value (case-insensitive name) from curl's `-D -` output.
pub fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
