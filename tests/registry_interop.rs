//! `lade registry` against real peers: skopeo copying in and out, CNCF Distribution (Debian's `docker-registry`)
//! serving a root lade wrote and the other way round, and a Docker engine pushing, pulling and running images,
//! with and without `docker login`.
//!
//! A peer that cannot be started makes its test skip with a printed reason, or fail when `CI=true`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use layerstore::Digest;
use serde_json::{json, Value};

/// Skips (or, under CI, fails) when a peer is missing.
fn require_peer(available: bool, reason: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("peer unavailable under CI: {reason}");
    }
    eprintln!("skipping: {reason}");
    false
}

/// Is `program` an executable on `PATH`?
fn runs(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Is `program` there, installing Debian's `package` with apt when it is not?
fn have(program: &str, package: &str) -> bool {
    if runs(program) {
        return true;
    }
    eprintln!("{program} is missing; installing {package} with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-qq", package]) {
        apt(&["update", "-qq"]);
        apt(&["install", "-y", "-qq", package]);
    }
    runs(program)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process stopped with SIGTERM (then SIGKILL) on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lade registry serve` on a random port.
struct Lade {
    _child: Guard,
    host: String,
}

fn lade(root: &Path, extra: &[&str]) -> Lade {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lade"))
        .args([
            "registry",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--enable-delete",
            "--root",
        ])
        .arg(root)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting lade");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let host = line
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_string();
    Lade {
        _child: Guard(child),
        host,
    }
}

/// A CNCF Distribution configuration for `root`, listening on `port`.
fn registry2_config(root: &Path, dir: &Path, port: u16) -> PathBuf {
    let config = dir.join(format!("registry2-{port}.yml"));
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.display()
        ),
    )
    .unwrap();
    config
}

/// CNCF Distribution serving `root`.
fn registry2(root: &Path, dir: &Path) -> (Guard, String) {
    let port = free_port();
    let config = registry2_config(root, dir, port);
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting docker-registry");
    let guard = Guard(child);
    wait_for_port(port);
    (guard, format!("127.0.0.1:{port}"))
}

/// Pushes a blob no manifest references (POST, then PUT: registry:2 ignores a body on POST).
fn push_stray_blob(host: &str, name: &str) -> Digest {
    let data = format!("stray blob for {host}");
    let digest = Digest::sha256_of(data.as_bytes());
    let head = run(Command::new("curl")
        .args(["-sf", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .arg(format!("http://{host}/v2/{name}/blobs/uploads/")));
    let location = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                .map(|(_, v)| v.trim())
        })
        .expect("upload location")
        .to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{host}{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    run(Command::new("curl")
        .args(["-sf", "-X", "PUT", "--data-binary", &data])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            &format!("{url}{separator}digest={digest}"),
        ]));
    digest
}

fn blob_file(root: &Path, digest: &Digest) -> PathBuf {
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &digest.hex()[..2],
        digest.hex()
    ))
}

/// The busybox rootfs tarball from the shared tool, made once per test process.
fn busybox_rootfs() -> &'static [u8] {
    static ROOTFS: OnceLock<Vec<u8>> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("/work/shared/tools/make-busybox-base.sh")
            .arg(dir.path())
            .env_remove("DOCKER_HOST"));
        std::fs::read(dir.path().join("busybox-rootfs.tar")).unwrap()
    })
}

fn small_layer(path: &str, content: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_600_000_000);
    builder
        .append_data(&mut header, path, content.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

fn write_blob(layout: &Path, data: &[u8]) -> (Digest, usize) {
    let digest = Digest::sha256_of(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), data).unwrap();
    (digest, data.len())
}

/// Writes an OCI layout with a runnable three-layer busybox image tagged `latest`; returns its manifest digest.
fn oci_image(layout: &Path) -> Digest {
    let layers = [
        busybox_rootfs().to_vec(),
        small_layer("hello.txt", "hello from lade\n"),
        small_layer("etc/lade-release", "interop\n"),
    ];
    let mut diff_ids = Vec::new();
    let mut descriptors = Vec::new();
    for tar in &layers {
        diff_ids.push(Digest::sha256_of(tar).to_string());
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).unwrap();
        let (digest, size) = write_blob(layout, &gz.finish().unwrap());
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest.to_string(), "size": size}));
    }
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = write_blob(layout, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_size},
        "layers": descriptors,
    });
    let (manifest_digest, manifest_size) =
        write_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest.to_string(), "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    manifest_digest
}

fn skopeo_copy(src: &str, dst: &str) {
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        src,
        dst,
    ]));
}

fn raw_manifest(image: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tags(image: &str) -> Vec<String> {
    let out = run(Command::new("skopeo").args(["list-tags", "--tls-verify=false", image]));
    let value: Value = serde_json::from_str(&out).unwrap();
    value["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Copies every blob an image in an OCI layout references and checks they match the source byte for byte.
fn assert_same_blobs(source: &Path, copy: &Path, manifest: &Digest) {
    let read = |layout: &Path, digest: &str| {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
    };
    let bytes = read(copy, &manifest.to_string()).expect("manifest copied unchanged");
    assert_eq!(bytes, read(source, &manifest.to_string()).unwrap());
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let mut digests = vec![value["config"]["digest"].as_str().unwrap().to_string()];
    digests.extend(
        value["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for digest in digests {
        assert_eq!(
            read(copy, &digest).unwrap(),
            read(source, &digest).unwrap(),
            "{digest}"
        );
    }
}

#[test]
fn skopeo_copies_in_and_out() {
    if !require_peer(have("skopeo", "skopeo"), "skopeo is not installed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let digest = oci_image(&source);
    let server = lade(&tmp.path().join("root"), &[]);
    let image = format!("docker://{}/interop/busybox:1", server.host);
    skopeo_copy(&format!("oci:{}:latest", source.display()), &image);
    skopeo_copy(
        &format!("oci:{}:latest", source.display()),
        &format!("docker://{}/interop/busybox:2", server.host),
    );
    assert_eq!(Digest::sha256_of(&raw_manifest(&image)), digest);
    assert_eq!(
        tags(&format!("docker://{}/interop/busybox", server.host)),
        vec!["1", "2"]
    );
    let out = tmp.path().join("out");
    skopeo_copy(&image, &format!("oci:{}:copied", out.display()));
    assert_same_blobs(&source, &out, &digest);
    // Into Docker's schema 2 format, which changes the manifest, and back out again.
    let v2s2 = format!("docker://{}/interop/converted:1", server.host);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
        .arg(format!("oci:{}:latest", source.display()))
        .arg(&v2s2));
    let manifest: Value = serde_json::from_slice(&raw_manifest(&v2s2)).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    skopeo_copy(
        &v2s2,
        &format!("oci:{}:converted", tmp.path().join("out2").display()),
    );
}

#[test]
fn skopeo_over_tls_with_basic_auth() {
    if !require_peer(have("skopeo", "skopeo"), "skopeo is not installed")
        || !require_peer(have("openssl", "openssl"), "openssl is not installed")
        || !require_peer(
            have("htpasswd", "apache2-utils"),
            "htpasswd is not installed",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    run(Command::new("openssl")
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
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let htpasswd = tmp.path().join("htpasswd");
    run(Command::new("htpasswd")
        .args(["-cbB"])
        .arg(&htpasswd)
        .args(["skopeo", "secret"]));
    let source = tmp.path().join("source");
    let digest = oci_image(&source);
    let server = lade(
        &tmp.path().join("root"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--htpasswd",
            htpasswd.to_str().unwrap(),
        ],
    );
    let image = format!("docker://{}/secure/img:1", server.host);
    let src = format!("oci:{}:latest", source.display());
    let denied = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", &src, &image])
        .output()
        .unwrap();
    assert!(!denied.status.success(), "pushed without credentials");
    let wrong = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "skopeo:wrong",
            &src,
            &image,
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "pushed with a wrong password");
    // The certificate is verified when skopeo is given the CA.
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--dest-creds", "skopeo:secret", "--dest-cert-dir"])
        .arg(&certs)
        .args([&src, &image]));
    let out = tmp.path().join("out");
    run(Command::new("skopeo")
        .args(["copy", "--src-creds", "skopeo:secret", "--src-cert-dir"])
        .arg(&certs)
        .arg(&image)
        .arg(format!("oci:{}:x", out.display())));
    assert_same_blobs(&source, &out, &digest);
}

/// Python's http.client sending a chunked `PATCH` of `size` bytes with no credentials; prints the status and the
/// challenge, or fails with what the connection did instead.
const UNAUTHENTICATED_PATCH: &str = r#"
import http.client, ssl, sys
port, ca, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=ca), timeout=60)
def body():
    for _ in range(size // 65536):
        yield bytes(65536)
connection.request("PATCH", "/v2/anon/blob/blobs/uploads/00000000-0000-0000-0000-000000000000", body=body(),
                   headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
response = connection.getresponse()
print(response.status, response.getheader("WWW-Authenticate"))
"#;

#[test]
fn unauthenticated_upload_over_tls_gets_its_401() {
    if !require_peer(have("python3", "python3"), "python3 is not installed")
        || !require_peer(have("openssl", "openssl"), "openssl is not installed")
        || !require_peer(
            have("htpasswd", "apache2-utils"),
            "htpasswd is not installed",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    let htpasswd = tmp.path().join("htpasswd");
    run(Command::new("htpasswd")
        .args(["-cbB"])
        .arg(&htpasswd)
        .args(["user", "secret"]));
    let server = lade(
        &tmp.path().join("root"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--htpasswd",
            htpasswd.to_str().unwrap(),
        ],
    );
    let port = server.host.rsplit(':').next().unwrap();
    // One 16 MiB chunk, the size lade, Docker and oras send: the client is still writing when auth refuses it.
    let out = run(Command::new("python3")
        .args(["-c", UNAUTHENTICATED_PATCH, port])
        .arg(&cert)
        .arg((16 << 20).to_string()));
    assert_eq!(out.trim(), "401 Basic realm=\"lade registry\"", "{out}");
}

#[test]
fn registry2_and_lade_serve_each_others_roots() {
    if !require_peer(have("skopeo", "skopeo"), "skopeo is not installed")
        || !require_peer(
            have("docker-registry", "docker-registry"),
            "docker-registry is not installed",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let digest = oci_image(&source);
    let src = format!("oci:{}:latest", source.display());

    // lade writes, registry:2 serves.
    let lade_root = tmp.path().join("lade-root");
    {
        let server = lade(&lade_root, &[]);
        skopeo_copy(
            &src,
            &format!("docker://{}/written/by-lade:v1", server.host),
        );
    }
    {
        let (_registry, host) = registry2(&lade_root, tmp.path());
        let image = format!("docker://{host}/written/by-lade:v1");
        assert_eq!(Digest::sha256_of(&raw_manifest(&image)), digest);
        assert_eq!(
            tags(&format!("docker://{host}/written/by-lade")),
            vec!["v1"]
        );
        let out = tmp.path().join("from-registry2");
        skopeo_copy(&image, &format!("oci:{}:x", out.display()));
        assert_same_blobs(&source, &out, &digest);
        // registry:2 can also add to the root lade wrote ...
        skopeo_copy(&src, &format!("docker://{host}/written/by-lade:v2"));
    }
    // ... and lade serves the result.
    {
        let server = lade(&lade_root, &[]);
        assert_eq!(
            tags(&format!("docker://{}/written/by-lade", server.host)),
            vec!["v1", "v2"]
        );
    }

    // registry:2 writes, lade serves.
    let r2_root = tmp.path().join("registry2-root");
    {
        let (_registry, host) = registry2(&r2_root, tmp.path());
        skopeo_copy(&src, &format!("docker://{host}/written/by-registry2:v1"));
    }
    let server = lade(&r2_root, &[]);
    let image = format!("docker://{}/written/by-registry2:v1", server.host);
    assert_eq!(Digest::sha256_of(&raw_manifest(&image)), digest);
    let out = tmp.path().join("from-lade");
    skopeo_copy(&image, &format!("oci:{}:x", out.display()));
    assert_same_blobs(&source, &out, &digest);
    let catalog = Command::new("curl")
        .args(["-sf", &format!("http://{}/v2/_catalog", server.host)])
        .output()
        .unwrap();
    let catalog: Value = serde_json::from_slice(&catalog.stdout).unwrap();
    assert_eq!(catalog["repositories"], json!(["written/by-registry2"]));
}

#[test]
fn garbage_collectors_agree_on_each_others_roots() {
    if !require_peer(have("skopeo", "skopeo"), "skopeo is not installed")
        || !require_peer(
            have("docker-registry", "docker-registry"),
            "docker-registry is not installed",
        )
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let digest = oci_image(&source);
    let src = format!("oci:{}:latest", source.display());
    let image_blobs = |root: &Path| {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(blob_file(root, &digest)).unwrap()).unwrap();
        let mut digests = vec![
            digest.clone(),
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        ];
        for layer in manifest["layers"].as_array().unwrap() {
            digests.push(layer["digest"].as_str().unwrap().parse().unwrap());
        }
        digests
    };

    // registry:2's garbage-collect on a root lade wrote removes only the unreferenced blob.
    let lade_root = tmp.path().join("lade-root");
    let stray = {
        let server = lade(&lade_root, &[]);
        skopeo_copy(&src, &format!("docker://{}/gc/image:v1", server.host));
        push_stray_blob(&server.host, "gc/image")
    };
    let config = registry2_config(&lade_root, tmp.path(), free_port());
    run(Command::new("docker-registry")
        .arg("garbage-collect")
        .arg(&config));
    assert!(
        !blob_file(&lade_root, &stray).exists(),
        "registry:2 kept the stray blob"
    );
    for blob in image_blobs(&lade_root) {
        assert!(
            blob_file(&lade_root, &blob).exists(),
            "registry:2 deleted {blob}"
        );
    }
    {
        let server = lade(&lade_root, &[]);
        let out = tmp.path().join("after-registry2-gc");
        skopeo_copy(
            &format!("docker://{}/gc/image:v1", server.host),
            &format!("oci:{}:x", out.display()),
        );
        assert_same_blobs(&source, &out, &digest);
    }

    // lade's gc on a root registry:2 wrote does the same.
    let r2_root = tmp.path().join("registry2-root");
    let stray = {
        let (_registry, host) = registry2(&r2_root, tmp.path());
        skopeo_copy(&src, &format!("docker://{host}/gc/image:v1"));
        push_stray_blob(&host, "gc/image")
    };
    let report = run(Command::new(env!("CARGO_BIN_EXE_lade"))
        .args(["registry", "gc", "--root"])
        .arg(&r2_root));
    assert!(
        report.contains(&format!("deleted blob {stray}")),
        "{report}"
    );
    for blob in image_blobs(&r2_root) {
        assert!(blob_file(&r2_root, &blob).exists(), "lade deleted {blob}");
    }
    let (_registry, host) = registry2(&r2_root, tmp.path());
    let out = tmp.path().join("after-lade-gc");
    skopeo_copy(
        &format!("docker://{host}/gc/image:v1"),
        &format!("oci:{}:x", out.display()),
    );
    assert_same_blobs(&source, &out, &digest);
}

/// A private Docker engine, stopped on drop.
struct Dockerd {
    dir: PathBuf,
    host: String,
}

impl Dockerd {
    fn start() -> Option<Dockerd> {
        let dir = PathBuf::from("/tmp/lade-dockerd-registry");
        let out = Command::new("/work/shared/tools/start-dockerd.sh")
            .arg(&dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let host = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export DOCKER_HOST="))?
            .to_string();
        Some(Dockerd { dir, host })
    }

    fn docker(&self) -> Command {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.env("DOCKER_HOST", &self.host);
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("/work/shared/tools/stop-dockerd.sh")
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn docker_engine_pushes_pulls_and_runs() {
    if !require_peer(have("skopeo", "skopeo"), "skopeo is not installed")
        || !require_peer(
            have("htpasswd", "apache2-utils"),
            "htpasswd is not installed",
        )
    {
        return;
    }
    let engine = Dockerd::start();
    if !require_peer(engine.is_some(), "could not start a Docker engine") {
        return;
    }
    let engine = engine.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    oci_image(&source);
    let server = lade(&tmp.path().join("root"), &[]);
    let seeded = format!("{}/docker/seed:1", server.host);
    skopeo_copy(
        &format!("oci:{}:latest", source.display()),
        &format!("docker://{seeded}"),
    );

    // Pull what skopeo pushed, run it, push it back under another name (Docker converts it to schema 2).
    run(engine.docker().args(["pull", &seeded]));
    let out = run(engine.docker().args([
        "run",
        "--rm",
        "--network=none",
        &seeded,
        "cat",
        "/hello.txt",
    ]));
    assert_eq!(out, "hello from lade\n");
    let pushed = format!("{}/docker/pushed:1", server.host);
    run(engine.docker().args(["tag", &seeded, &pushed]));
    run(engine.docker().args(["push", &pushed]));
    run(engine.docker().args(["rmi", &seeded, &pushed]));
    run(engine.docker().args(["pull", &pushed]));
    let out = run(engine.docker().args([
        "run",
        "--rm",
        "--network=none",
        &pushed,
        "cat",
        "/etc/lade-release",
    ]));
    assert_eq!(out, "interop\n");
    drop(server);

    // The same behind htpasswd authentication, after `docker login`.
    let hash = run(Command::new("htpasswd").args(["-nbB", "dockeruser", "dockerpass"]));
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, hash.trim()).unwrap();
    let server = lade(
        &tmp.path().join("auth-root"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let config_dir = tmp.path().join("docker-config");
    let docker = || {
        let mut cmd = engine.docker();
        cmd.arg("--config").arg(&config_dir);
        cmd
    };
    let login = |password: &str| {
        let mut child = docker()
            .args([
                "login",
                "-u",
                "dockeruser",
                "--password-stdin",
                &server.host,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait().unwrap().success()
    };
    let private = format!("{}/private/img:1", server.host);
    run(docker().args(["tag", &pushed, &private]));
    assert!(
        !docker()
            .args(["push", &private])
            .output()
            .unwrap()
            .status
            .success(),
        "pushed without login"
    );
    assert!(!login("wrong"), "docker login accepted a wrong password");
    assert!(login("dockerpass"), "docker login failed");
    run(docker().args(["push", &private]));
    run(docker().args(["rmi", &private, &pushed]));
    run(docker().args(["pull", &private]));
    let out = run(docker().args([
        "run",
        "--rm",
        "--network=none",
        &private,
        "cat",
        "/hello.txt",
    ]));
    assert_eq!(out, "hello from lade\n");
    run(docker().args(["rmi", &private]));
    run(docker().args(["logout", &server.host]));
    assert!(
        !docker()
            .args(["pull", &private])
            .output()
            .unwrap()
            .status
            .success(),
        "pulled without login"
    );
}
