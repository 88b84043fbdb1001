//! A replica set on S3 for the conformance replays: a real S3 server (s3s-fs, started here on a free loopback
//! port, or the one `LADE_TEST_S3_ENDPOINT`/`_BUCKET`/`_ACCESS_KEY`/`_SECRET_KEY` name, as `scripts/test-fleet.sh`
//! sets them for Garage), three servers on one bucket, and a round-robin TCP balancer in front that sends each
//! connection to the next replica. The test client opens a connection per request, so consecutive requests of one
//! flow (an upload's POST, PATCHes and PUT; a push and the pull after it) land on different replicas.
//!
//! Without an S3 server the tests skip, saying so, except under `CI=true`, where that is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use registry_server::config::Storage;
use registry_server::Config;

use super::TestServer;

const ACCESS_KEY: &str = "conformance";
const SECRET_KEY: &str = "conformance-secret";
const REPLICAS: usize = 3;

/// The bucket the replicas share and what keeps it alive.
struct S3 {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the tests use an S3 server named by `LADE_TEST_S3_ENDPOINT` rather than an s3s-fs of their own.
pub fn external_s3() -> bool {
    std::env::var_os("LADE_TEST_S3_ENDPOINT").is_some()
}

/// The s3s-fs binary: `$S3S_FS`, `~/.cargo/bin/s3s-fs`, or `s3s-fs` on the PATH.
fn s3s_fs() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    if let Some(path) = home.filter(|p| p.is_file()) {
        return Some(path);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join("s3s-fs"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3 {
    fn start() -> Result<S3, String> {
        let dir = tempfile::tempdir().unwrap();
        if let (true, Ok(endpoint)) = (external_s3(), std::env::var("LADE_TEST_S3_ENDPOINT")) {
            let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
            return Ok(S3 {
                endpoint,
                bucket: var("LADE_TEST_S3_BUCKET")?,
                access_key: var("LADE_TEST_S3_ACCESS_KEY")?,
                secret_key: var("LADE_TEST_S3_SECRET_KEY")?,
                child: None,
                _dir: dir,
            });
        }
        let binary = s3s_fs().ok_or("s3s-fs is not installed (scripts/install-deps.sh)")?;
        let data = dir.path().join("s3");
        std::fs::create_dir_all(data.join("lade")).unwrap();
        let port = free_port();
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("s3s-fs exited with {status}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("s3s-fs did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "lade".into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            child: Some(child),
            _dir: dir,
        })
    }

    /// A root directory of its own on an external bucket, so that tests sharing it stay apart; none on an s3s-fs of
    /// this test's own, whose keys must stay short (see `sha512_fits` in `conformance_v2_s3.rs`).
    fn root_directory(&self) -> String {
        if self.child.is_some() {
            String::new()
        } else {
            format!("/conformance-{}", uuid::Uuid::new_v4().simple())
        }
    }

    /// The replicas' storage.
    fn storage(&self) -> Storage {
        let options = serde_json::json!({
            "bucket": self.bucket,
            "region": "us-east-1",
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "root_directory": self.root_directory(),
            "force_path_style": true,
            "chunk_size": 5 << 20,
        });
        Storage::S3(serde_json::from_value(options).expect("valid S3 options"))
    }
}

/// Forwards each accepted connection to the next backend, until dropped.
struct Balancer {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Balancer {
    fn start(backends: Vec<String>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut next = 0usize;
                loop {
                    let (mut client, _) = tokio::select! {
                        accepted = listener.accept() => accepted.unwrap(),
                        _ = &mut stopped => return,
                    };
                    let backend = backends[next % backends.len()].clone();
                    next += 1;
                    tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            });
        });
        Balancer {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a replica set keeps alive besides the replicas: the S3 server and the balancer.
pub struct ReplicaSet {
    replicas: Vec<TestServer>,
    _balancer: Balancer,
    _s3: S3,
}

impl ReplicaSet {
    /// The replicas (for tests that address one directly).
    pub fn replicas(&self) -> &[TestServer] {
        &self.replicas
    }
}

/// Three replicas of `configure`d servers on one S3 bucket behind a round-robin balancer: a [`TestServer`] whose
/// URL is the balancer's. `None` (after saying why) when there is no S3 server outside CI.
pub fn on_s3(configure: impl Fn(&mut Config)) -> Option<TestServer> {
    let s3 = match S3::start() {
        Ok(s3) => s3,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("an S3 server is required under CI=true: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIP: no S3 server for the replica set: {reason}");
            return None;
        }
    };
    let storage = s3.storage();
    let root = tempfile::tempdir().unwrap();
    let replicas: Vec<TestServer> = (0..REPLICAS)
        .map(|_| {
            let mut config = super::config(root.path());
            config.storage = storage.clone();
            configure(&mut config);
            TestServer::with_config(config)
        })
        .collect();
    let balancer = Balancer::start(
        replicas
            .iter()
            .map(|r| r.base.trim_start_matches("http://").to_string())
            .collect(),
    );
    let mut front = TestServer::detached(format!("http://127.0.0.1:{}", balancer.port));
    front.keep(root);
    front.keep_set(ReplicaSet {
        replicas,
        _balancer: balancer,
        _s3: s3,
    });
    Some(front)
}
