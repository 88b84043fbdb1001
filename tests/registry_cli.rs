//! `lade registry` as a process: configuration file and flags, graceful shutdown on SIGTERM with a request in
//! flight, and offline garbage collection with `lade registry gc`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use layerstore::Digest;

mod common;

use common::LadeRegistry as Server;

/// A minimal HTTP/1.1 exchange: returns the status and the raw response head.
fn request(host: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String) {
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

fn header(response: &str, name: &str) -> String {
    response
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn blob_path(root: &Path, digest: &Digest) -> std::path::PathBuf {
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{}/data",
        &digest.hex()[..2],
        digest.hex()
    ))
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(&["--root", tmp.path().to_str().unwrap()]);
    let (status, head) = request(&server.host, "POST", "/v2/graceful/blobs/uploads/", b"");
    assert_eq!(status, 202);
    let location = header(&head, "location");
    let mut stream = TcpStream::connect(&server.host).unwrap();
    write!(
        stream,
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nContent-Length: 10\r\nConnection: close\r\n\r\nfirst",
        server.host
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    // No new connections are served once shutdown has begun ...
    let refused = TcpStream::connect(&server.host)
        .map(|mut s| {
            let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read_to_string(&mut buf);
            !buf.starts_with("HTTP/1.1 200")
        })
        .unwrap_or(true);
    assert!(refused, "a new request was served after SIGTERM");
    // ... but the upload in flight completes.
    stream.write_all(b"-last").unwrap();
    let (status, head) = read_response(stream);
    assert_eq!(status, 202, "{head}");
    assert_eq!(header(&head, "range"), "0-9");
    assert!(
        server.wait(Duration::from_secs(10)),
        "lade exited unsuccessfully"
    );
}

#[test]
fn config_file_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "root: {}\ndelete: false\nlimits:\n  manifest_max_bytes: 100\n",
            root.display()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let (status, _) = request(
        &server.host,
        "PUT",
        "/v2/cfg/manifests/latest",
        &[b'{'; 200],
    );
    assert_eq!(status, 413);
    let digest = Digest::sha256_of(b"x");
    let (status, _) = request(
        &server.host,
        "POST",
        &format!("/v2/cfg/blobs/uploads/?digest={digest}"),
        b"x",
    );
    assert_eq!(status, 201);
    assert!(
        blob_path(&root, &digest).exists(),
        "the config file's root is used"
    );
    let (status, _) = request(
        &server.host,
        "DELETE",
        &format!("/v2/cfg/blobs/{digest}"),
        b"",
    );
    assert_eq!(status, 405);
    drop(server);
    // The flag overrides the file.
    let server = Server::start(&["--config", config.to_str().unwrap(), "--enable-delete"]);
    let (status, _) = request(
        &server.host,
        "DELETE",
        &format!("/v2/cfg/blobs/{digest}"),
        b"",
    );
    assert_eq!(status, 202);
    drop(server);
    // Deletes are on by default (the spec's content management); --disable-delete refuses them as registry:2 does.
    let z = Digest::sha256_of(b"z");
    for (flags, expected) in [(&[][..], 202), (&["--disable-delete"][..], 405)] {
        let default_root = tempfile::tempdir().unwrap();
        let mut args = vec!["--root", default_root.path().to_str().unwrap()];
        args.extend(flags);
        let server = Server::start(&args);
        let upload = format!("/v2/d/blobs/uploads/?digest={z}");
        assert_eq!(request(&server.host, "POST", &upload, b"z").0, 201);
        let (status, _) = request(&server.host, "DELETE", &format!("/v2/d/blobs/{z}"), b"");
        assert_eq!(status, expected, "{flags:?}");
    }
    // Mounting without `from` finds a blob of another repository only when asked for.
    let y = Digest::sha256_of(b"y");
    let mount = format!("/v2/other/blobs/uploads/?mount={y}");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let upload = format!("/v2/cfg/blobs/uploads/?digest={y}");
    assert_eq!(request(&server.host, "POST", &upload, b"y").0, 201);
    assert_eq!(request(&server.host, "POST", &mount, b"").0, 202);
    drop(server);
    let server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--automatic-crossmount",
    ]);
    assert_eq!(request(&server.host, "POST", &mount, b"").0, 201);
    drop(server);
    assert!(Command::new(env!("CARGO_BIN_EXE_lade"))
        .args(["registry", "serve", "--config"])
        .arg(tmp.path().join("missing.yml"))
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap());
}

#[test]
fn offline_gc_command() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let garbage = Digest::sha256_of(b"garbage");
    {
        let server = Server::start(&["--root", root]);
        let (status, _) = request(
            &server.host,
            "POST",
            &format!("/v2/gc/blobs/uploads/?digest={garbage}"),
            b"garbage",
        );
        assert_eq!(status, 201);
    }
    let gc = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lade"))
            .args(["registry", "gc", "--root", root])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.contains(&format!("would delete blob {garbage}")),
        "{dry}"
    );
    assert!(blob_path(tmp.path(), &garbage).exists());
    let kept = gc(&["--grace-period", "3600"]);
    assert!(kept.contains("0 blobs"), "{kept}");
    assert!(blob_path(tmp.path(), &garbage).exists());
    let real = gc(&[]);
    assert!(real.contains(&format!("deleted blob {garbage}")), "{real}");
    assert!(!blob_path(tmp.path(), &garbage).exists());
    let status = Command::new(env!("CARGO_BIN_EXE_lade"))
        .args(["registry", "gc", "--root"])
        .arg(tmp.path().join("does-not-exist"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

/// The first line `lade registry serve` prints, started with `global` flags before `registry`, and `env`.
fn serve_banner(global: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lade"));
    command
        .args(global)
        .args(["registry", "serve", "--addr", "127.0.0.1:0"])
        .env_remove("LADE_ROOT")
        .env_remove("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn the_default_registry_root_moves_with_the_store_root() {
    let store = tempfile::tempdir().unwrap();
    let banner = serve_banner(&[], &[("LADE_ROOT", store.path())]);
    let expected = store.path().join("registry");
    assert!(banner.contains(expected.to_str().unwrap()), "{banner}");
    // `--root` names the registry root itself, before `registry` as after `serve`.
    let other = tempfile::tempdir().unwrap();
    let banner = serve_banner(&["--root", other.path().to_str().unwrap()], &[]);
    assert!(
        banner.contains(&format!("(root {})", other.path().display())),
        "{banner}"
    );
    let explicit = tempfile::tempdir().unwrap();
    let banner = serve_banner(
        &[],
        &[
            ("LADE_ROOT", store.path()),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", explicit.path()),
        ],
    );
    assert!(
        banner.contains(explicit.path().to_str().unwrap()),
        "{banner}"
    );
}
