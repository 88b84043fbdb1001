//! Test harness: a real server on a random loopback port (its own runtime thread, stopped on drop), a blocking
//! HTTP client, and helpers that push blobs and manifests the way registry clients do.
#![allow(dead_code)]

pub mod replicas;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use layerstore::{Algorithm, Digest};
use registry_server::Config;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A running server; dropping it shuts the server down and waits for it.
pub struct TestServer {
    pub base: String,
    pub root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// The replicas behind `base`, when it is a balancer's.
    set: Option<Box<replicas::ReplicaSet>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A configuration with deletes enabled, storing under `root`.
pub fn config(root: &Path) -> Config {
    Config {
        root: root.to_path_buf(),
        delete: true,
        ..Config::default()
    }
}

impl TestServer {
    /// A server with deletes enabled on a fresh temporary root.
    pub fn start() -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut server = TestServer::with_config(config(tmp.path()));
        server._tmp = Some(tmp);
        server
    }

    /// A server with the given configuration (its `root` is used as is).
    pub fn with_config(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let root = config.root.clone();
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(registry_server::serve(config, listener, async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        let server = TestServer {
            base: format!("{scheme}://127.0.0.1:{port}"),
            root,
            _tmp: None,
            set: None,
            stop: Some(stop),
            thread: Some(thread),
        };
        if scheme == "http" {
            for _ in 0..100 {
                if client().get(server.url("/healthz")).send().is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        server
    }

    /// Keeps a temporary root alive as long as the server.
    pub fn keep(&mut self, tmp: tempfile::TempDir) {
        self._tmp = Some(tmp);
    }

    /// A server this process does not run, at `base` (a balancer in front of replicas).
    pub fn detached(base: String) -> TestServer {
        TestServer {
            base,
            root: PathBuf::new(),
            _tmp: None,
            set: None,
            stop: None,
            thread: None,
        }
    }

    /// Keeps the replicas behind a balancer's address alive as long as it.
    pub fn keep_set(&mut self, set: replicas::ReplicaSet) {
        self.set = Some(Box::new(set));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a `Location` header against the server.
    pub fn location(&self, response: &Response) -> String {
        let location = header(response, "location");
        if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn client() -> Client {
    // reqwest is built without a default TLS provider (the workspace uses ring); install it once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A connection per request: behind a balancer, consecutive requests go to different replicas.
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The first error code of a spec error body.
pub fn error_code(response: Response) -> String {
    let body: Value = response.json().expect("error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asserts a status and an error code.
pub fn expect_error(response: Response, status: u16, code: &str) {
    assert_eq!(
        response.status().as_u16(),
        status,
        "unexpected status for {}",
        response.url()
    );
    assert_eq!(error_code(response), code);
}

/// Pushes a blob with POST + PUT and returns its digest.
pub fn push_blob(server: &TestServer, name: &str, data: &[u8]) -> Digest {
    push_blob_with(server, name, data, Algorithm::Sha256)
}

pub fn push_blob_with(
    server: &TestServer,
    name: &str,
    data: &[u8],
    algorithm: Algorithm,
) -> Digest {
    let digest = Digest::of(algorithm, data);
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{name}/blobs/uploads/")))
        .send()
        .unwrap();
    let status = post.status();
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "POST: {}",
        post.text().unwrap_or_default()
    );
    let put = c
        .put(server.location(&post))
        .query(&[("digest", digest.to_string())])
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED, "{:?}", put.text());
    digest
}

/// An OCI image manifest over a config and layers already pushed.
pub fn image_manifest(config: &(Digest, usize), layers: &[(Digest, usize)]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.0.to_string(), "size": config.1},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": OCI_LAYER, "digest": d.to_string(), "size": s})).collect::<Vec<_>>(),
    })
}

/// Pushes a config and `n` layers of distinct content and returns the manifest bytes (not yet pushed).
pub fn image(server: &TestServer, name: &str, seed: &str, layers: usize) -> Vec<u8> {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
    let config = (push_blob(server, name, config.as_bytes()), config.len());
    let layers: Vec<_> = (0..layers)
        .map(|i| {
            let data = format!("layer {i} of {seed}").repeat(100);
            (push_blob(server, name, data.as_bytes()), data.len())
        })
        .collect();
    serde_json::to_vec(&image_manifest(&config, &layers)).unwrap()
}

/// PUTs a manifest and returns the response.
pub fn put_manifest(
    server: &TestServer,
    name: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> Response {
    client()
        .put(server.url(&format!("/v2/{name}/manifests/{reference}")))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .unwrap()
}

/// Every regular file below `dir`, relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for entry in walk(dir) {
        out.push(entry.strip_prefix(dir).unwrap().display().to_string());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
