//! registry:2's webhook notifications from `lade registry serve`, against the real thing: the same
//! `notifications` configuration on Debian's registry:2 and on lade, the same requests through each, and a webhook
//! receiver in the test that must get the same sequence of events from both; and a receiver that refuses the first
//! deliveries, which lade must retry.
//!
//! A peer that cannot be started makes its test skip with a printed reason, or fail when `CI=true`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::registry::{have_registry, LadeRegistry, Registry2};
use common::{have, require};
use layerstore::Digest;
use serde_json::{json, Value};

fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A webhook receiver: records each delivery's content type and events; refuses the first `fail_first` with 500.
struct Receiver {
    port: u16,
    deliveries: Arc<Mutex<Vec<(String, Value)>>>,
    attempts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (deliveries, attempts, stop) = (deliveries.clone(), attempts.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let (deliveries, attempts) = (deliveries.clone(), attempts.clone());
                    std::thread::spawn(move || receive(stream, fail_first, &deliveries, &attempts));
                }
            });
        }
        Receiver {
            port,
            deliveries,
            attempts,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.port)
    }

    /// The events received, once `count` have arrived (or after 15 s, whatever arrived).
    fn events(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events: Vec<Value> = self
                .deliveries
                .lock()
                .unwrap()
                .iter()
                .flat_map(|(_, body)| body["events"].as_array().cloned().unwrap_or_default())
                .collect();
            if events.len() >= count || Instant::now() > deadline {
                // A little longer, to catch events beyond the expected ones.
                std::thread::sleep(Duration::from_millis(300));
                return self
                    .deliveries
                    .lock()
                    .unwrap()
                    .iter()
                    .flat_map(|(_, b)| b["events"].as_array().cloned().unwrap_or_default())
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn receive(
    stream: TcpStream,
    fail_first: usize,
    deliveries: &Mutex<Vec<(String, Value)>>,
    attempts: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let attempt = attempts.fetch_add(1, Ordering::SeqCst);
    let mut stream = stream;
    if attempt < fail_first {
        let _ = stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    if let Ok(value) = serde_json::from_slice(&body) {
        deliveries.lock().unwrap().push((content_type, value));
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

/// The notifications section both registries get.
fn notifications_yaml(url: &str, extra: &str) -> String {
    format!(
        "notifications:\n  endpoints:\n    - name: test\n      url: {url}\n      headers:\n        X-Test: [lade]\n      timeout: 2s\n{extra}"
    )
}

/// registry:2 with notifications and deletes on.
fn registry2(notifications: &str) -> Registry2 {
    Registry2::start_config(|dir, port| {
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{notifications}",
            dir.join("data").display()
        )
    })
}

fn lade_with(notifications: &str) -> (LadeRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, notifications).unwrap();
    (
        LadeRegistry::start(&["--config".as_ref(), config.as_os_str()]),
        dir,
    )
}

/// An uploaded blob: POST then PUT with the digest.
fn push_blob(host: &str, repo: &str, bytes: &[u8]) -> Digest {
    let client = http();
    let digest = Digest::sha256_of(bytes);
    let start = client
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("http://{host}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = client
        .put(format!("{location}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201, "{:?}", put.text());
    digest
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The same requests, in the same order, against `host`.
fn exercise(host: &str) {
    let client = http();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a layer, but a blob all the same";
    let config_digest = push_blob(host, "team/app", config);
    let layer_digest = push_blob(host, "team/app", layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": layer.len(), "digest": layer_digest}],
    }))
    .unwrap();
    let digest = Digest::sha256_of(&manifest);
    let put = client
        .put(format!("http://{host}/v2/team/app/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    let ok = |response: reqwest::blocking::Response| {
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().unwrap();
    };
    ok(client
        .head(format!("http://{host}/v2/team/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap());
    ok(client
        .get(format!("http://{host}/v2/team/app/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap());
    ok(client
        .get(format!("http://{host}/v2/team/app/manifests/{digest}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap());
    ok(client
        .head(format!("http://{host}/v2/team/app/blobs/{layer_digest}"))
        .send()
        .unwrap());
    for blob in [&config_digest, &layer_digest] {
        ok(client
            .get(format!("http://{host}/v2/team/app/blobs/{blob}"))
            .send()
            .unwrap());
    }
    let mount = client
        .post(format!(
            "http://{host}/v2/team/other/blobs/uploads/?mount={layer_digest}&from=team/app"
        ))
        .send()
        .unwrap();
    assert_eq!(mount.status(), 201);
    // Unknown things send nothing.
    assert_eq!(
        client
            .get(format!("http://{host}/v2/team/app/manifests/nope"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let delete = client
        .delete(format!("http://{host}/v2/team/app/manifests/{digest}"))
        .send()
        .unwrap();
    assert_eq!(delete.status(), 202);
    let delete = client
        .delete(format!("http://{host}/v2/team/other/blobs/{layer_digest}"))
        .send()
        .unwrap();
    assert_eq!(delete.status(), 202);
}

/// What the comparison looks at in each event.
fn summary(event: &Value) -> String {
    let t = &event["target"];
    format!(
        "{} {} {} {} {} {} size={} length={} url={}",
        event["action"].as_str().unwrap_or("-"),
        t["mediaType"].as_str().unwrap_or("-"),
        t["digest"].as_str().unwrap_or("-"),
        t["repository"].as_str().unwrap_or("-"),
        t["tag"].as_str().unwrap_or("-"),
        t["fromRepository"].as_str().unwrap_or("-"),
        t["size"],
        t["length"],
        t["url"]
            .as_str()
            .map(|u| u.split_once("/v2/").map_or(u, |(_, path)| path))
            .unwrap_or("-"),
    )
}

#[test]
fn lade_sends_the_events_registry2_sends() {
    if require("registry:2", have_registry()).is_none() {
        return;
    }
    let theirs = Receiver::start(0);
    let ours = Receiver::start(0);
    let reference = registry2(&notifications_yaml(&theirs.url(), ""));
    let (lade, _config) = lade_with(&notifications_yaml(&ours.url(), ""));
    exercise(&format!("127.0.0.1:{}", reference.port));
    exercise(&lade.host());
    let expected = theirs.events(13);
    let got = ours.events(expected.len());
    let expected_summary: Vec<String> = expected.iter().map(summary).collect();
    let got_summary: Vec<String> = got.iter().map(summary).collect();
    assert_eq!(got_summary, expected_summary);
    assert!(
        expected.len() >= 13,
        "registry:2 sent {expected_summary:#?}"
    );
    for (delivery, _) in ours.deliveries.lock().unwrap().iter() {
        assert_eq!(
            delivery,
            "application/vnd.docker.distribution.events.v1+json"
        );
    }
    // The envelope's records, as registry:2 fills them.
    let (ours_first, theirs_first) = (&got[0], &expected[0]);
    for key in ["id", "timestamp"] {
        assert!(
            ours_first[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key}"
        );
    }
    assert_eq!(
        ours_first["request"]["method"],
        theirs_first["request"]["method"]
    );
    assert_eq!(ours_first["request"]["host"], lade.host());
    assert!(ours_first["request"]["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(
        ours_first["request"]["useragent"],
        theirs_first["request"]["useragent"]
    );
    assert_eq!(ours_first["actor"], theirs_first["actor"]);
    let (our_source, their_source) = (&ours_first["source"], &theirs_first["source"]);
    assert_eq!(
        our_source["addr"].as_str().unwrap().split(':').next(),
        their_source["addr"].as_str().unwrap().split(':').next(),
        "source.addr is the host name and port"
    );
    assert!(our_source["instanceID"]
        .as_str()
        .is_some_and(|s| s.len() == 36));
    assert_eq!(
        ours_first["target"]["url"].as_str().unwrap(),
        format!(
            "http://{}/v2/team/app/blobs/{}",
            lade.host(),
            ours_first["target"]["digest"].as_str().unwrap()
        )
    );
}

#[test]
fn lade_retries_a_failing_endpoint_and_never_slows_the_request() {
    if require("curl", have("curl")).is_none() {
        return;
    }
    let receiver = Receiver::start(3);
    let (lade, _config) = lade_with(&notifications_yaml(
        &receiver.url(),
        "      threshold: 2\n      backoff: 400ms\n      ignore:\n        actions: [pull]\n",
    ));
    let started = Instant::now();
    let digest = push_blob(&lade.host(), "retry/me", b"deliver me eventually");
    // A pull, which this endpoint ignores.
    http()
        .get(format!("http://{}/v2/retry/me/blobs/{digest}", lade.host()))
        .send()
        .unwrap();
    let answered = started.elapsed();
    let events = receiver.events(1);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["action"], "push");
    assert_eq!(events[0]["target"]["digest"], digest.to_string());
    assert_eq!(
        receiver.attempts.load(Ordering::SeqCst),
        4,
        "three refusals, then delivered"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the third attempt came after the backoff"
    );
    assert!(
        answered < Duration::from_millis(400),
        "the requests did not wait for the endpoint"
    );
}
