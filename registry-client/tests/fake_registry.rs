//! The client against a scripted in-process registry: platform selection from an OCI index and a Docker manifest
//! list, both image manifest types, retries of 503 (honouring `Retry-After`) and 429 responses, a manifest over
//! the size limit, and an index pulled whole (a child served with the wrong bytes refused).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use layerstore::progress::NoProgress;
use layerstore::{Digest, Platform, Reference, Store};
use registry_client::{pull, EndpointOptions, PullOptions, Session};
use serde_json::json;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What the fake serves: path → (content type, body), and paths that fail once with a status and headers.
struct Content {
    documents: HashMap<String, (String, Vec<u8>)>,
    fail_once: HashMap<String, (u16, &'static str)>,
    failed: Mutex<HashSet<String>>,
    log: Mutex<Vec<String>>,
}

struct FakeRegistry {
    port: u16,
    content: Arc<Content>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistry {
    fn start(content: Content) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let content = Arc::new(content);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (content, stop) = (content.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            serve(stream, &content);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FakeRegistry {
            port,
            content,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self, path: &str) -> usize {
        self.content
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.as_str() == path)
            .count()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, content: &Content) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    content.log.lock().unwrap().push(path.clone());
    let mut stream = stream;
    // A client that refuses a body midway may keep the connection open: never block on it for long.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if let Some((status, headers)) = content.fail_once.get(&path) {
        if content.failed.lock().unwrap().insert(path.clone()) {
            let _ = write!(stream, "HTTP/1.1 {status} Failing\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
    }
    let (status, content_type, body) = match path.as_str() {
        "/v2/" => (200, "application/json".to_string(), b"{}".to_vec()),
        _ => match content.documents.get(&path) {
            Some((content_type, body)) => (200, content_type.clone(), body.clone()),
            None => (
                404,
                "application/json".to_string(),
                br#"{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}"#.to_vec(),
            ),
        },
    };
    let digest = Digest::sha256_of(&body);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nDocker-Content-Digest: {digest}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

/// An image for one architecture: its manifest bytes, plus its config and layer as documents.
fn image(
    arch: &str,
    manifest_type: &str,
    documents: &mut HashMap<String, (String, Vec<u8>)>,
) -> (Digest, usize) {
    let layer = format!("layer of {arch}").repeat(1000).into_bytes();
    let layer_digest = Digest::sha256_of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }))
    .unwrap();
    let config_digest = Digest::sha256_of(&config);
    let (config_type, layer_type) = if manifest_type == OCI_MANIFEST {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        )
    } else {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = Digest::sha256_of(&manifest);
    documents.insert(
        format!("/v2/fake/img/blobs/{layer_digest}"),
        ("application/octet-stream".into(), layer),
    );
    documents.insert(
        format!("/v2/fake/img/blobs/{config_digest}"),
        ("application/octet-stream".into(), config),
    );
    let size = manifest.len();
    documents.insert(
        format!("/v2/fake/img/manifests/{manifest_digest}"),
        (manifest_type.into(), manifest),
    );
    (manifest_digest, size)
}

fn fake() -> (FakeRegistry, Digest, Digest) {
    let mut documents = HashMap::new();
    let (amd64, amd64_size) = image("amd64", DOCKER_MANIFEST, &mut documents);
    let (arm64, arm64_size) = image("arm64", OCI_MANIFEST, &mut documents);
    let entries = json!([
        {"mediaType": DOCKER_MANIFEST, "digest": amd64.to_string(), "size": amd64_size,
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": arm64.to_string(), "size": arm64_size,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    ]);
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
    )
    .unwrap();
    let list = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}),
    )
    .unwrap();
    documents.insert(
        "/v2/fake/img/manifests/multi".into(),
        (OCI_INDEX.into(), index),
    );
    documents.insert(
        "/v2/fake/img/manifests/list".into(),
        (DOCKER_LIST.into(), list),
    );
    documents.insert(
        "/v2/fake/img/manifests/huge".into(),
        (OCI_MANIFEST.into(), vec![b' '; 5 << 20]),
    );
    let amd64_layer = Digest::sha256_of(&"layer of amd64".repeat(1000).into_bytes());
    let fail_once = HashMap::from([
        (
            "/v2/fake/img/manifests/multi".to_string(),
            (503, "Retry-After: 1\r\n"),
        ),
        (format!("/v2/fake/img/blobs/{amd64_layer}"), (429, "")),
    ]);
    let content = Content {
        documents,
        fail_once,
        failed: Mutex::default(),
        log: Mutex::default(),
    };
    (FakeRegistry::start(content), amd64, arm64)
}

fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
    let mut platform = Platform::host();
    platform.os = os.into();
    platform.architecture = arch.into();
    platform.variant = variant.map(str::to_string);
    platform
}

#[tokio::test]
async fn pulls_the_right_platform_and_retries_503_and_429() {
    let (fake, amd64, arm64) = fake();
    let host = format!("127.0.0.1:{}", fake.port);
    let registry = Session::connect(&host, &EndpointOptions::default(), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let progress = NoProgress;

    let reference = Reference::parse_tagged(&format!("{host}/fake/img:multi")).unwrap();
    let options = PullOptions {
        platform: platform("linux", "amd64", None),
        jobs: 2,
    };
    let started = Instant::now();
    let pulled = pull(
        &registry,
        &store,
        &reference,
        std::slice::from_ref(&reference),
        &options,
        &progress,
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(pulled.descriptor.digest, amd64);
    assert_eq!(pulled.descriptor.media_type, DOCKER_MANIFEST);
    assert_eq!(pulled.downloaded, 2);
    assert_eq!(fake.requests("/v2/fake/img/manifests/multi"), 2);
    let layer = Digest::sha256_of(&"layer of amd64".repeat(1000).into_bytes());
    assert_eq!(fake.requests(&format!("/v2/fake/img/blobs/{layer}")), 2);
    let found = store.find_image(&reference.to_string()).unwrap();
    assert_eq!(found.image.digest(), &amd64);

    // A Docker manifest list, an arm64/v8 choice, an OCI manifest.
    let reference = Reference::parse_tagged(&format!("{host}/fake/img:list")).unwrap();
    let options = PullOptions {
        platform: platform("linux", "arm64", Some("v8")),
        jobs: 2,
    };
    let pulled = pull(&registry, &store, &reference, &[], &options, &progress)
        .await
        .unwrap();
    assert_eq!(pulled.descriptor.digest, arm64);
    assert_eq!(pulled.descriptor.media_type, OCI_MANIFEST);

    // A platform the index lacks.
    let options = PullOptions {
        platform: platform("linux", "s390x", None),
        jobs: 2,
    };
    let err = pull(&registry, &store, &reference, &[], &options, &progress)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("linux/s390x") && message.contains("linux/arm64/v8"),
        "{message}"
    );

    // A missing tag: the error names the request and the registry's reason.
    let reference = Reference::parse_tagged(&format!("{host}/fake/img:missing")).unwrap();
    let err = pull(&registry, &store, &reference, &[], &options, &progress)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("GET http://") && message.contains("404") && message.contains("NOT_FOUND"),
        "{message}"
    );
}

#[tokio::test]
async fn refuses_a_manifest_over_the_metadata_limit() {
    let (fake, _, _) = fake();
    let host = format!("127.0.0.1:{}", fake.port);
    let registry = Session::connect(&host, &EndpointOptions::default(), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference = Reference::parse_tagged(&format!("{host}/fake/img:huge")).unwrap();
    let options = PullOptions {
        platform: Platform::host(),
        jobs: 2,
    };
    let err = pull(&registry, &store, &reference, &[], &options, &NoProgress)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("/manifests/huge: the manifest is 5242880 bytes or more, larger than the 4194304-byte limit"),
        "{message}"
    );
}

#[tokio::test]
async fn pulls_an_index_whole_and_refuses_a_child_that_does_not_match_its_digest() {
    let (fake, amd64, arm64) = fake();
    let host = format!("127.0.0.1:{}", fake.port);
    let registry = Session::connect(&host, &EndpointOptions::default(), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference = Reference::parse_tagged(&format!("{host}/fake/img:list")).unwrap();
    let pulled = registry_client::multi::pull_index(
        &registry,
        &store,
        &reference,
        std::slice::from_ref(&reference),
        &registry_client::multi::Platforms::All,
        2,
        &NoProgress,
    )
    .await
    .unwrap()
    .expect("an index");
    assert_eq!(pulled.descriptor.media_type, DOCKER_LIST);
    assert_eq!(pulled.downloaded, 4);
    for (wanted, digest) in [
        (platform("linux", "amd64", None), &amd64),
        (platform("linux", "arm64", Some("v8")), &arm64),
    ] {
        let found = store
            .find_image_on(&reference.to_string(), &wanted)
            .unwrap();
        assert_eq!(found.image.digest(), digest);
        assert_eq!(found.id(), &pulled.descriptor.digest);
    }
    assert!(!store.check(false).unwrap().has_problems());

    // An index whose child the registry serves with other bytes: nothing is tagged.
    let mut documents = HashMap::new();
    let (child, size) = image("amd64", OCI_MANIFEST, &mut documents);
    let path = format!("/v2/fake/img/manifests/{child}");
    documents.get_mut(&path).unwrap().1.push(b' ');
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child.to_string(), "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]}),
    )
    .unwrap();
    documents.insert(
        "/v2/fake/img/manifests/tampered".into(),
        (OCI_INDEX.into(), index),
    );
    let tampered = FakeRegistry::start(Content {
        documents,
        fail_once: HashMap::new(),
        failed: Mutex::default(),
        log: Mutex::default(),
    });
    let host = format!("127.0.0.1:{}", tampered.port);
    let registry = Session::connect(&host, &EndpointOptions::default(), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reference = Reference::parse_tagged(&format!("{host}/fake/img:tampered")).unwrap();
    let err = registry_client::multi::pull_index(
        &registry,
        &store,
        &reference,
        std::slice::from_ref(&reference),
        &registry_client::multi::Platforms::All,
        2,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    assert!(store.image_records().unwrap().is_empty());
}
