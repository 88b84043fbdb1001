//! Operations: basic authentication (with and without anonymous pulls), TLS, and garbage collection offline and
//! while serving.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::RwLock;
use std::time::Duration;

use common::*;
use layerstore::Digest;
use registry_server::config::{AuthConfig, TlsConfig};
use registry_server::gc::{self, GcOptions};
use registry_server::registry::Registry;
use registry_server::storage::fs::FsDriver;
use reqwest::StatusCode;

const NAME: &str = "ops/repo";

fn htpasswd(dir: &Path, user: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join("htpasswd");
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(&path, format!("# users\n{user}:{hash}\n")).unwrap();
    path
}

fn auth_server(anonymous_read: bool) -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&tmp.path().join("root"));
    cfg.auth = Some(AuthConfig {
        htpasswd: htpasswd(tmp.path(), "alice", "s3cret"),
        realm: "test realm".to_string(),
        anonymous_read,
    });
    (TestServer::with_config(cfg), tmp)
}

#[test]
fn metrics_need_credentials_or_move_to_the_debug_address() {
    let (server, _tmp) = auth_server(true);
    let c = client();
    let r = c.get(server.url("/metrics")).send().unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "anonymous reads do not cover /metrics"
    );
    let r = c
        .get(server.url("/metrics"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .unwrap()
        .contains("lade_registry_http_requests_total"));
    drop(server);

    let tmp = tempfile::tempdir().unwrap();
    let debug = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let debug_addr = debug.local_addr().unwrap();
    drop(debug);
    let mut cfg = config(&tmp.path().join("root"));
    cfg.auth = Some(AuthConfig {
        htpasswd: htpasswd(tmp.path(), "alice", "s3cret"),
        realm: "test realm".to_string(),
        anonymous_read: false,
    });
    cfg.debug.addr = Some(debug_addr);
    let server = TestServer::with_config(cfg);
    let r = c
        .get(server.url("/metrics"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no metrics on the main address"
    );
    let r = c
        .get(format!("http://{debug_addr}/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .unwrap()
        .contains("lade_registry_http_requests_total"));
}

#[test]
fn basic_auth_guards_everything() {
    let (server, _tmp) = auth_server(false);
    let c = client();
    let r = c.get(server.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&r, "www-authenticate"), "Basic realm=\"test realm\"");
    assert_eq!(error_code(r), "UNAUTHORIZED");
    let r = c
        .get(server.url("/v2/"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(server.url("/v2/"))
        .basic_auth("mallory", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..3 {
        let r = c
            .get(server.url("/v2/"))
            .basic_auth("alice", Some("s3cret"))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Unauthenticated writes store nothing.
    let r = c
        .post(server.url(&format!(
            "/v2/{NAME}/blobs/uploads/?digest={}",
            Digest::sha256_of(b"x")
        )))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(files_under(&server.root).is_empty());
    assert_eq!(
        c.get(server.url("/v2/_catalog")).send().unwrap().status(),
        401
    );
    // Health and metrics stay open.
    assert_eq!(c.get(server.url("/healthz")).send().unwrap().status(), 200);
    // Authenticated push and pull.
    let post = c
        .post(server.url(&format!(
            "/v2/{NAME}/blobs/uploads/?digest={}",
            Digest::sha256_of(b"x")
        )))
        .basic_auth("alice", Some("s3cret"))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(post.status(), StatusCode::CREATED);
    let get = c
        .get(server.location(&post))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(get.bytes().unwrap().as_ref(), b"x");
}

#[test]
fn anonymous_read_allows_pulls_only() {
    let (server, _tmp) = auth_server(true);
    let c = client();
    let digest = Digest::sha256_of(b"public");
    let r = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/?digest={digest}")))
        .basic_auth("alice", Some("s3cret"))
        .body("public")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        c.get(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    // Writes still need credentials, and so does the base endpoint (so `docker login` checks them).
    let r = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.delete(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(c.get(server.url("/v2/")).send().unwrap().status(), 401);
}

#[test]
fn serves_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut cfg = config(&tmp.path().join("root"));
    cfg.tls = Some(TlsConfig {
        cert: cert.clone(),
        key,
    });
    let server = TestServer::with_config(cfg);
    let url = server.url("/v2/");
    let mut output = None;
    for _ in 0..100 {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&cert)
            .args(["-D", "-", &url])
            .output()
            .expect("curl is needed for the TLS test");
        if out.status.success() {
            output = Some(String::from_utf8_lossy(&out.stdout).to_lowercase());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = output.expect("TLS server did not answer");
    assert!(output.starts_with("http/"), "{output}");
    assert!(output.contains(" 200"), "{output}");
    assert!(
        output.contains("docker-distribution-api-version: registry/2.0"),
        "{output}"
    );
    // Plain HTTP on the TLS port does not get a registry answer.
    let plain = client().get(url.replace("https://", "http://")).send();
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}

fn gc_options(delete_untagged: bool) -> GcOptions {
    GcOptions {
        dry_run: false,
        delete_untagged,
        grace_period: Duration::ZERO,
        upload_max_age: Duration::from_secs(3600),
    }
}

fn offline_gc(root: &Path, options: &GcOptions) -> gc::GcReport {
    let registry = Registry::new(std::sync::Arc::new(FsDriver::new(root)));
    gc::collect(&registry, options, &RwLock::new(())).unwrap()
}

fn blob_exists(root: &Path, digest: &Digest) -> bool {
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &digest.hex()[..2],
        digest.hex()
    ))
    .exists()
}

#[test]
fn offline_gc_sweeps_unreferenced_blobs_and_repush_works() {
    let tmp = tempfile::tempdir().unwrap();
    let (kept, dropped, stray);
    {
        let server = TestServer::with_config(config(tmp.path()));
        kept = image(&server, NAME, "kept", 2);
        dropped = image(&server, NAME, "dropped", 1);
        stray = push_blob(&server, NAME, b"never referenced");
        assert_eq!(
            put_manifest(&server, NAME, "kept", OCI_MANIFEST, &kept).status(),
            201
        );
        assert_eq!(
            put_manifest(&server, NAME, "dropped", OCI_MANIFEST, &dropped).status(),
            201
        );
        let d = Digest::sha256_of(&dropped);
        assert_eq!(
            client()
                .delete(server.url(&format!("/v2/{NAME}/manifests/{d}")))
                .send()
                .unwrap()
                .status(),
            202
        );
    }
    let dry = offline_gc(
        tmp.path(),
        &GcOptions {
            dry_run: true,
            ..gc_options(false)
        },
    );
    assert_eq!(
        dry.blobs_removed.len(),
        4,
        "dropped manifest, its config and layer, and the stray blob"
    );
    assert!(blob_exists(tmp.path(), &stray));
    let report = offline_gc(tmp.path(), &gc_options(false));
    assert_eq!(report.blobs_removed.len(), 4);
    assert!(!blob_exists(tmp.path(), &stray));
    assert!(blob_exists(tmp.path(), &Digest::sha256_of(&kept)));
    let server = TestServer::with_config(config(tmp.path()));
    let c = client();
    let r = c
        .get(server.url(&format!("/v2/{NAME}/manifests/kept")))
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &kept[..]);
    assert_eq!(
        c.head(server.url(&format!("/v2/{NAME}/blobs/{stray}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    // Pushing the swept content again works.
    let again = image(&server, NAME, "dropped", 1);
    assert_eq!(again, dropped);
    assert_eq!(
        put_manifest(&server, NAME, "dropped", OCI_MANIFEST, &again).status(),
        201
    );
    assert_eq!(push_blob(&server, NAME, b"never referenced"), stray);
}

#[test]
fn gc_delete_untagged_keeps_referrers_of_kept_images() {
    let tmp = tempfile::tempdir().unwrap();
    let (tagged, untagged, referrer);
    {
        let server = TestServer::with_config(config(tmp.path()));
        tagged = image(&server, NAME, "tagged", 1);
        untagged = image(&server, NAME, "untagged", 1);
        assert_eq!(
            put_manifest(&server, NAME, "v1", OCI_MANIFEST, &tagged).status(),
            201
        );
        let ud = Digest::sha256_of(&untagged);
        assert_eq!(
            put_manifest(&server, NAME, &ud.to_string(), OCI_MANIFEST, &untagged).status(),
            201
        );
        // An untagged signature-like artifact whose subject is the tagged image.
        let empty = push_blob(&server, NAME, b"{}");
        let mut artifact = image_manifest(&(empty, 2), &[]);
        artifact["subject"] = serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": Digest::sha256_of(&tagged).to_string(), "size": tagged.len(),
        });
        referrer = serde_json::to_vec(&artifact).unwrap();
        let rd = Digest::sha256_of(&referrer);
        assert_eq!(
            put_manifest(&server, NAME, &rd.to_string(), OCI_MANIFEST, &referrer).status(),
            201
        );
    }
    let report = offline_gc(tmp.path(), &gc_options(true));
    assert_eq!(report.manifests_removed.len(), 1);
    assert_eq!(report.manifests_removed[0].1, Digest::sha256_of(&untagged));
    assert!(blob_exists(tmp.path(), &Digest::sha256_of(&tagged)));
    assert!(blob_exists(tmp.path(), &Digest::sha256_of(&referrer)));
    assert!(!blob_exists(tmp.path(), &Digest::sha256_of(&untagged)));
}

#[test]
fn online_gc_respects_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.gc.enabled = true;
    cfg.gc.interval_secs = 1;
    cfg.gc.grace_period_secs = 2;
    let server = TestServer::with_config(cfg);
    // An in-flight push: blobs uploaded, manifest not yet pushed. GC runs every second but must not sweep them.
    let manifest = image(&server, NAME, "inflight", 2);
    let stray = push_blob(&server, NAME, b"garbage");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        put_manifest(&server, NAME, "v1", OCI_MANIFEST, &manifest).status(),
        201
    );
    // The unreferenced blob is swept once it is older than the grace period.
    let mut swept = false;
    for _ in 0..50 {
        if !blob_exists(tmp.path(), &stray) {
            swept = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(swept, "online GC never swept the unreferenced blob");
    let r = client()
        .get(server.url(&format!("/v2/{NAME}/manifests/v1")))
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &manifest[..]);
    for blob in serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["layers"]
        .as_array()
        .unwrap()
    {
        let digest: Digest = blob["digest"].as_str().unwrap().parse().unwrap();
        assert!(blob_exists(tmp.path(), &digest));
    }
    // And re-pushing the swept blob works without a restart.
    assert_eq!(push_blob(&server, NAME, b"garbage"), stray);
    assert_eq!(
        client()
            .head(server.url(&format!("/v2/{NAME}/blobs/{stray}")))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn blob_size_limit_applies_to_streamed_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.limits.blob_max_bytes = Some(1000);
    let server = TestServer::with_config(cfg);
    let c = client();
    let small = push_blob(&server, NAME, &[7u8; 1000]);
    assert_eq!(
        c.head(server.url(&format!("/v2/{NAME}/blobs/{small}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    let big = vec![8u8; 5000];
    let r = c
        .post(server.url(&format!(
            "/v2/{NAME}/blobs/uploads/?digest={}",
            Digest::sha256_of(&big)
        )))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            big.clone(),
        )))
        .send()
        .unwrap();
    expect_error(r, 413, "SIZE_INVALID");
    let uploads = server
        .root
        .join(format!("docker/registry/v2/repositories/{NAME}/_uploads"));
    assert!(files_under(&uploads).is_empty());
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let patch = c
        .patch(server.location(&post))
        .body(vec![1u8; 600])
        .send()
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    let location = server.location(&patch);
    expect_error(
        c.patch(&location).body(vec![1u8; 600]).send().unwrap(),
        413,
        "SIZE_INVALID",
    );
    let status = c.get(&location).send().unwrap();
    let end: u64 = header(&status, "range")
        .trim_start_matches("0-")
        .parse()
        .unwrap();
    assert!(end < 1000, "the upload grew past the limit: {end}");
}

#[test]
fn read_only_mode_denies_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = {
        let server = TestServer::with_config(config(tmp.path()));
        push_blob(&server, NAME, b"before")
    };
    let mut cfg = config(tmp.path());
    cfg.read_only = true;
    let server = TestServer::with_config(cfg);
    let c = client();
    expect_error(
        c.post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
            .send()
            .unwrap(),
        403,
        "DENIED",
    );
    expect_error(
        c.delete(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
            .send()
            .unwrap(),
        403,
        "DENIED",
    );
    expect_error(
        put_manifest(&server, NAME, "x", OCI_MANIFEST, b"{}"),
        403,
        "DENIED",
    );
    let r = c
        .get(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), b"before");
}

#[test]
fn requests_beyond_the_concurrency_limit_get_429() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.limits.max_concurrent_requests = Some(1);
    let server = TestServer::with_config(cfg);
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = header(&post, "location");
    // Hold the only permit with an upload whose body is still arriving.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    write!(
        slow,
        "PATCH {location} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhalf"
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = c.get(server.url("/v2/")).send().unwrap();
    assert_eq!(header(&r, "retry-after"), "1");
    expect_error(r, 429, "TOOMANYREQUESTS");
    // Health checks are not limited.
    assert_eq!(c.get(server.url("/healthz")).send().unwrap().status(), 200);
    slow.write_all(b"done").unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut slow, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    drop(slow);
    let mut ok = false;
    for _ in 0..50 {
        if c.get(server.url("/v2/")).send().unwrap().status() == StatusCode::OK {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "the permit was not released");
}

#[test]
fn gc_purges_stale_upload_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let (stale, fresh) = {
        let server = TestServer::with_config(config(tmp.path()));
        let c = client();
        let stale = c
            .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
            .send()
            .unwrap();
        let stale = header(&stale, "docker-upload-uuid");
        std::thread::sleep(Duration::from_millis(1500));
        let fresh = c
            .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
            .send()
            .unwrap();
        (stale, header(&fresh, "docker-upload-uuid"))
    };
    let uploads = tmp
        .path()
        .join(format!("docker/registry/v2/repositories/{NAME}/_uploads"));
    let options = GcOptions {
        upload_max_age: Duration::from_secs(1),
        ..gc_options(false)
    };
    let report = offline_gc(tmp.path(), &options);
    assert_eq!(report.uploads_removed, 1);
    assert!(!uploads.join(&stale).exists());
    assert!(uploads.join(&fresh).join("data").exists());
}

#[test]
fn slow_requests_time_out() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.limits.request_timeout_secs = 1;
    let server = TestServer::with_config(cfg);
    let post = client()
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = header(&post, "location");
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "PATCH {location} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 100\r\nConnection: close\r\n\r\nslow"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
