//! `lade registry serve` as a pull-through mirror (`proxy.remoteurl`) in front of real upstreams: Debian's registry:2
//! with htpasswd or Bearer-token auth, and a tiny fake upstream that lies about a blob or serves one slowly. Clients
//! are skopeo, lade and a private Docker engine configured with `--registry-mirror`.
//!
//! A peer that cannot be started makes its test skip with a printed reason, or fail when `CI=true`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::registry::{
    have_registry, self_signed, LadeRegistry, Registry2, RegistryAuth, TokenServer,
};
use common::{have, require, BusyboxBase, Lade};
use layerstore::Digest;
use serde_json::{json, Value};

fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn peers() -> bool {
    require("registry:2", have_registry()).is_some() && require("skopeo", have("skopeo")).is_some()
}

/// Blobs with their digests.
type Blobs = Vec<(Digest, Vec<u8>)>;

/// A gzipped one-file layer, its config and manifest: (manifest bytes, manifest digest, [config, layer] blobs).
fn small_image(seed: &str) -> (Vec<u8>, Digest, Blobs) {
    let mut tar = tar::Builder::new(Vec::new());
    let content = format!("{seed}\n").repeat(64);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "seed.txt", content.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(&tar).to_string()]},
    }))
    .unwrap();
    let (config_digest, layer_digest) = (Digest::sha256_of(&config), Digest::sha256_of(&layer));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": config_digest.to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": layer.len(), "digest": layer_digest.to_string()}],
    }))
    .unwrap();
    let digest = Digest::sha256_of(&manifest);
    (
        manifest,
        digest,
        vec![(config_digest, config), (layer_digest, layer)],
    )
}

/// Pushes `small_image(seed)` to `host/repo:tag` over plain HTTP; returns the manifest digest.
fn push_small(
    host: &str,
    creds: Option<(&str, &str)>,
    repo: &str,
    tag: &str,
    seed: &str,
) -> Digest {
    let client = http();
    let auth = |r: reqwest::blocking::RequestBuilder| match creds {
        Some((u, p)) => r.basic_auth(u, Some(p)),
        None => r,
    };
    let (manifest, digest, blobs) = small_image(seed);
    for (blob_digest, bytes) in blobs {
        let start = auth(client.post(format!("http://{host}/v2/{repo}/blobs/uploads/")))
            .send()
            .unwrap();
        assert_eq!(start.status(), 202, "upload start: {:?}", start.text());
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("http://{host}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = auth(client.put(format!("{location}{sep}digest={blob_digest}")))
            .body(bytes)
            .send()
            .unwrap();
        assert_eq!(put.status(), 201, "blob put: {:?}", put.text());
    }
    let put = auth(client.put(format!("http://{host}/v2/{repo}/manifests/{tag}")))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(put.status(), 201, "manifest put: {:?}", put.text());
    digest
}

/// Starts lade as a mirror of `remote` with a `proxy` section (plus `extra` YAML lines inside it).
fn start_mirror(remote: &str, extra: &str) -> (LadeRegistry, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, format!("proxy:\n  remoteurl: {remote}\n{extra}")).unwrap();
    let mirror = LadeRegistry::start(&["--config".as_ref(), config.as_os_str()]);
    (mirror, dir)
}

/// The manifest digest skopeo sees for `docker://host/reference`.
fn skopeo_digest(host: &str, reference: &str) -> Result<String, String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// `skopeo copy docker://host/reference oci:DIR`.
fn skopeo_copy(host: &str, reference: &str, dest: &Path) -> Result<(), String> {
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/{reference}"))
        .arg(format!("oci:{}", dest.display()))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// Blob files stored under a registry root.
fn stored_blobs(root: &Path) -> Vec<String> {
    let dir = root.join("docker/registry/v2/blobs/sha256");
    let mut found = Vec::new();
    for prefix in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for blob in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if blob.path().join("data").is_file() {
                found.push(format!("sha256:{}", blob.file_name().to_string_lossy()));
            }
        }
    }
    found.sort();
    found
}

/// registry:2 as a pull-through cache of `remote` (to compare answers with).
fn registry2_proxy(remote: &str, creds: Option<(&str, &str)>) -> Registry2 {
    Registry2::start_config(|dir, port| {
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nproxy:\n  remoteurl: {remote}\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = creds {
            config += &format!("  username: {user}\n  password: {password}\n");
        }
        config
    })
}

/// (status, error code) of a write request.
fn write_answer(host: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let client = http();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client
        .request(method, format!("http://{host}{path}"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(body.to_vec())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let code = body["errors"][0]["code"].as_str().unwrap_or("").to_string();
    (status, code)
}

#[test]
fn mirror_of_registry2_with_htpasswd_pulls_once_and_serves_with_the_upstream_down() {
    if !peers() {
        return;
    }
    let upstream = Registry2::start(
        RegistryAuth::Htpasswd {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        None,
    );
    let creds = Some(("alice", "s3cret"));
    let digest = push_small(&upstream.host(), creds, "library/small", "1.0", "one");
    let remote = format!("http://{}", upstream.host());
    let (mirror, _config) = start_mirror(&remote, "  username: alice\n  password: s3cret\n");
    let root = mirror.dir.path().join("root");

    // Without the proxy credentials registry:2 refuses: the mirror's credentials are what lets it through.
    assert_eq!(
        http()
            .get(format!("{remote}/v2/library/small/manifests/1.0"))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        skopeo_digest(&mirror.host(), "library/small:1.0").unwrap(),
        digest.to_string()
    );
    let out = tempfile::tempdir().unwrap();
    skopeo_copy(&mirror.host(), "library/small:1.0", &out.path().join("a")).unwrap();
    let (manifest, _, blobs) = small_image("one");
    let mut expected: Vec<String> = blobs.iter().map(|(d, _)| d.to_string()).collect();
    expected.push(digest.to_string());
    expected.sort();
    assert_eq!(
        stored_blobs(&root),
        expected,
        "the mirror stored what it served"
    );

    let lade = Lade::new();
    lade.ok(&["pull", &format!("{}/library/small:1.0", mirror.host())]);

    // Writes are refused as registry:2 in proxy mode refuses them.
    let reference = registry2_proxy(&remote, creds);
    let config_digest = &blobs[0].0;
    for (method, path) in [
        ("POST", "/v2/library/small/blobs/uploads/".to_string()),
        (
            "POST",
            format!("/v2/library/other/blobs/uploads/?mount={config_digest}&from=library/small"),
        ),
        ("PUT", "/v2/library/small/manifests/2.0".to_string()),
        ("DELETE", format!("/v2/library/small/manifests/{digest}")),
        ("DELETE", format!("/v2/library/small/blobs/{config_digest}")),
    ] {
        // A valid manifest: registry:2 parses a pushed one before its proxy store refuses it.
        let theirs = write_answer(&reference.host(), method, &path, &manifest);
        let ours = write_answer(&mirror.host(), method, &path, &manifest);
        assert_eq!(ours, theirs, "{method} {path}");
        assert_eq!(ours, (405, "UNSUPPORTED".to_string()), "{method} {path}");
    }

    drop(upstream);
    assert!(
        TcpStream::connect(&remote[7..]).is_err(),
        "upstream is down"
    );
    skopeo_copy(&mirror.host(), "library/small:1.0", &out.path().join("b"))
        .expect("served from the store with the upstream down");
    skopeo_copy(
        &mirror.host(),
        &format!("library/small@{digest}"),
        &out.path().join("c"),
    )
    .expect("by digest too");
    Lade::new().ok(&["pull", &format!("{}/library/small:1.0", mirror.host())]);
    // What was never fetched is a clear error naming the upstream, not a hang or a 404.
    let missing = http()
        .get(format!(
            "http://{}/v2/library/small/manifests/2.0",
            mirror.host()
        ))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 502);
    assert!(missing.text().unwrap().contains("upstream"));
}

#[test]
fn mirror_fetches_bearer_tokens_from_the_upstreams_realm() {
    if !peers() || require("openssl", have("openssl")).is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let signer = self_signed(keys.path(), "token-signer").unwrap();
    let tokens = TokenServer::start(&signer, "bob", "hunter2");
    let upstream = Registry2::start(
        RegistryAuth::Token {
            realm: tokens.realm(),
            cert: signer.cert.clone(),
        },
        None,
    );
    // Push with a token the same server issues.
    let token: Value = http()
        .get(format!(
            "{}?service={}&scope=repository:team/app:pull,push",
            tokens.realm(),
            common::registry::TOKEN_SERVICE
        ))
        .basic_auth("bob", Some("hunter2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let bearer = token["token"].as_str().unwrap().to_string();
    let (manifest, digest, blobs) = small_image("token");
    let client = http();
    let host = upstream.host();
    for (blob_digest, bytes) in blobs {
        let start = client
            .post(format!("http://{host}/v2/team/app/blobs/uploads/"))
            .bearer_auth(&bearer)
            .send()
            .unwrap();
        assert_eq!(start.status(), 202);
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = client
            .put(format!("{location}{sep}digest={blob_digest}"))
            .bearer_auth(&bearer)
            .body(bytes)
            .send()
            .unwrap();
        assert_eq!(put.status(), 201);
    }
    let put = client
        .put(format!("http://{host}/v2/team/app/manifests/v1"))
        .bearer_auth(&bearer)
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    let before = tokens.requests.load(Ordering::SeqCst);
    let (mirror, _config) = start_mirror(
        &format!("http://{host}"),
        "  username: bob\n  password: hunter2\n",
    );
    let out = tempfile::tempdir().unwrap();
    skopeo_copy(&mirror.host(), "team/app:v1", &out.path().join("a")).unwrap();
    assert_eq!(
        skopeo_digest(&mirror.host(), "team/app:v1").unwrap(),
        digest.to_string()
    );
    assert!(
        tokens.requests.load(Ordering::SeqCst) > before,
        "the mirror asked the realm"
    );
}

#[test]
fn mirror_rechecks_a_tag_after_the_ttl_and_falls_back_to_the_cached_digest() {
    if !peers() {
        return;
    }
    let upstream = Registry2::start(RegistryAuth::None, None);
    let first = push_small(&upstream.host(), None, "app", "latest", "first");
    let (mirror, _config) = start_mirror(&format!("http://{}", upstream.host()), "  ttl: 3s\n");
    assert_eq!(
        skopeo_digest(&mirror.host(), "app:latest").unwrap(),
        first.to_string()
    );
    let second = push_small(&upstream.host(), None, "app", "latest", "second");
    assert_ne!(first, second);
    // Within the ttl the stored tag is served.
    assert_eq!(
        skopeo_digest(&mirror.host(), "app:latest").unwrap(),
        first.to_string()
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        skopeo_digest(&mirror.host(), "app:latest").unwrap(),
        second.to_string(),
        "re-checked upstream after the ttl"
    );
    let out = tempfile::tempdir().unwrap();
    skopeo_copy(&mirror.host(), "app:latest", &out.path().join("a")).unwrap();
    drop(upstream);
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        skopeo_digest(&mirror.host(), "app:latest").unwrap(),
        second.to_string(),
        "past the ttl with the upstream down, the cached digest is served"
    );
    skopeo_copy(&mirror.host(), "app:latest", &out.path().join("b")).unwrap();
}

/// A fake upstream: serves a fixed set of paths (manifests and blobs), optionally slowly, and counts GETs per path.
struct FakeUpstream {
    port: u16,
    gets: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl FakeUpstream {
    /// `routes`: path → (content type, body); `slow` paths are sent in 4 KiB pieces 5 ms apart.
    fn start(routes: HashMap<String, (String, Vec<u8>)>, slow: Vec<String>) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let gets = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let slow = Arc::new(slow);
        {
            let (gets, stop) = (gets.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let (routes, slow, gets) = (routes.clone(), slow.clone(), gets.clone());
                    std::thread::spawn(move || serve_fake(stream, &routes, &slow, &gets));
                }
            });
        }
        FakeUpstream { port, gets, stop }
    }

    fn gets(&self, path: &str) -> usize {
        self.gets.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_fake(
    stream: TcpStream,
    routes: &HashMap<String, (String, Vec<u8>)>,
    slow: &[String],
    gets: &Mutex<HashMap<String, usize>>,
) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut stream = stream;
    let Some((content_type, body)) = routes.get(path) else {
        let status = if path == "/v2/" {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    };
    if method == "GET" {
        *gets.lock().unwrap().entry(path.to_string()).or_default() += 1;
    }
    let digest = Digest::sha256_of(body);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "GET" {
        return;
    }
    if slow.iter().any(|s| s == path) {
        for piece in body.chunks(4096) {
            if stream.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    } else {
        let _ = stream.write_all(body);
    }
}

/// The bytes of a blob GET through `host`, or the error the body ended with.
fn get_blob(host: &str, repo: &str, digest: &Digest) -> Result<Vec<u8>, String> {
    let response = http()
        .get(format!("http://{host}/v2/{repo}/blobs/{digest}"))
        .send()
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut body = Vec::new();
    let mut reader = response;
    reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

#[test]
fn mirror_refuses_a_lying_upstream_and_fetches_a_blob_once_for_concurrent_clients() {
    if require("skopeo", have("skopeo")).is_none() {
        return;
    }
    // A manifest whose layer the upstream serves with other bytes of the same length.
    let (manifest, manifest_digest, blobs) = small_image("lies");
    let (config_digest, config) = blobs[0].clone();
    let (layer_digest, layer) = blobs[1].clone();
    let mut forged = layer.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    // A large honest blob, served slowly, for the concurrent clients.
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let big_digest = Digest::sha256_of(&big);
    let octet = "application/octet-stream".to_string();
    let mut routes = HashMap::new();
    let manifest_type = "application/vnd.docker.distribution.manifest.v2+json".to_string();
    routes.insert(
        "/v2/liar/manifests/v1".into(),
        (manifest_type.clone(), manifest.clone()),
    );
    routes.insert(
        format!("/v2/liar/manifests/{manifest_digest}"),
        (manifest_type, manifest),
    );
    routes.insert(
        format!("/v2/liar/blobs/{config_digest}"),
        (octet.clone(), config.clone()),
    );
    routes.insert(
        format!("/v2/liar/blobs/{layer_digest}"),
        (octet.clone(), forged),
    );
    let big_path = format!("/v2/liar/blobs/{big_digest}");
    routes.insert(big_path.clone(), (octet, big.clone()));
    let upstream = FakeUpstream::start(routes, vec![big_path.clone()]);
    let (mirror, _config) = start_mirror(&format!("http://127.0.0.1:{}", upstream.port), "");
    let root = mirror.dir.path().join("root");

    assert_eq!(
        get_blob(&mirror.host(), "liar", &config_digest).unwrap(),
        config
    );
    let lie = get_blob(&mirror.host(), "liar", &layer_digest);
    assert!(
        lie.is_err(),
        "a body that does not match its digest must fail the request"
    );
    assert!(
        !stored_blobs(&root).contains(&layer_digest.to_string()),
        "nothing of the forged blob is stored"
    );
    let uploads = root.join("docker/registry/v2/repositories/liar/_uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0),
        0,
        "no partial fetch left behind"
    );
    assert!(
        get_blob(&mirror.host(), "liar", &layer_digest).is_err(),
        "still refused"
    );
    assert_eq!(
        upstream.gets(&format!("/v2/liar/blobs/{layer_digest}")),
        2,
        "nothing cached"
    );
    let out = tempfile::tempdir().unwrap();
    let err = skopeo_copy(&mirror.host(), "liar:v1", &out.path().join("x")).unwrap_err();
    assert!(!err.is_empty());

    // Four clients at once, one upstream GET; all get the right bytes, streamed while the fetch runs.
    let host = mirror.host();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (host, digest) = (host.clone(), big_digest.clone());
            std::thread::spawn(move || get_blob(&host, "liar", &digest))
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap().unwrap(), big);
    }
    assert_eq!(
        upstream.gets(&big_path),
        1,
        "fetched once for four concurrent clients"
    );
    assert!(stored_blobs(&root).contains(&big_digest.to_string()));
    // And later from the store, with a range.
    let ranged = http()
        .get(format!("http://{host}/v2/liar/blobs/{big_digest}"))
        .header("range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().unwrap().as_ref(), &big[10..20]);
    assert_eq!(upstream.gets(&big_path), 1);
}

/// A private Docker engine whose `registry-mirrors` is `mirror`, stopped on drop.
struct MirroredDocker {
    child: Child,
    dir: tempfile::TempDir,
}

impl MirroredDocker {
    fn start(mirror: &str) -> Result<MirroredDocker, String> {
        have("dockerd")?;
        if !rustix::process::geteuid().is_root() {
            return Err("dockerd needs root".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("ldm")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let sock = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("root"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .arg(format!("--registry-mirror=http://{mirror}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let docker = MirroredDocker { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if docker
                .command()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Ok(docker);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(format!("dockerd did not start: {}", docker.log()))
    }

    fn command(&self) -> Command {
        let cli = if Path::new("/usr/bin/docker").exists() {
            PathBuf::from("/usr/bin/docker")
        } else {
            PathBuf::from("docker")
        };
        let mut command = Command::new(cli);
        command.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        );
        command.env("DOCKER_CONFIG", self.dir.path().join("client"));
        command
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }
}

impl Drop for MirroredDocker {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn docker_registry_mirrors_pulls_busybox_through_lade() {
    if !peers() {
        return;
    }
    let Some(base) = BusyboxBase::make(None) else {
        return;
    };
    let upstream = Registry2::start(RegistryAuth::None, None);
    // library/busybox:latest on the upstream, from the busybox rootfs.
    let lade = common::lade_with_busybox(&base);
    let scratch = tempfile::tempdir().unwrap();
    let archive = scratch.path().join("busybox.tar");
    lade.ok(&["save", "-o", archive.to_str().unwrap(), "busybox:local"]);
    let copy = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!(
            "docker://{}/library/busybox:latest",
            upstream.host()
        ))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let (mirror, _config) = start_mirror(&format!("http://{}", upstream.host()), "");
    let Some(docker) = require(
        "dockerd with --registry-mirror",
        MirroredDocker::start(&mirror.host()),
    ) else {
        return;
    };
    let pull = docker.command().args(["pull", "busybox"]).output().unwrap();
    assert!(
        pull.status.success(),
        "docker pull busybox through the mirror: {}\n{}",
        String::from_utf8_lossy(&pull.stderr),
        docker.log()
    );
    let root = mirror.dir.path().join("root");
    assert!(
        root.join("docker/registry/v2/repositories/library/busybox/_manifests/tags/latest")
            .is_dir(),
        "the pull went through lade"
    );
    let run = docker
        .command()
        .args([
            "run",
            "--rm",
            "--network=none",
            "busybox",
            "echo",
            "mirrored",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "mirrored");
}
