//! Packaging: the registry image that lade builds from `packaging/registry/Dockerfile`, run by a real Docker engine
//! with a named volume, pushed to and pulled from by Docker; and the systemd unit, checked by `systemd-analyze`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::registry::free_port;
use common::{have, require, workspace, BusyboxBase, Docker, Lade};

/// Removes the test's container, volume and images from the shared engine, whatever happens.
struct Cleanup<'a> {
    docker: &'a Docker,
    containers: Vec<String>,
    volume: String,
    images: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = self.docker.command().args(["rm", "-f", container]).output();
        }
        let _ = self
            .docker
            .command()
            .args(["volume", "rm", "-f", &self.volume])
            .output();
        for image in &self.images {
            let _ = self.docker.command().args(["rmi", "-f", image]).output();
        }
    }
}

fn http_status(host: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn http_body(host: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn wait_ready(docker: &Docker, container: &str, host: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_status(host, "/readyz") != Some(200) {
        if Instant::now() > deadline {
            let logs = docker.command().args(["logs", container]).output().unwrap();
            panic!(
                "the registry container never got ready: {}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the registry image detached with the named volume. The shared test engine has no bridge network
/// (`--bridge=none`), so `-p` cannot publish a port there: the container shares the host's network and listens on
/// a free loopback port through registry:2's `REGISTRY_HTTP_ADDR`. On an ordinary engine
/// `docker run -d -p 5000:5000 -v reg:/var/lib/registry IMAGE` is the whole command.
fn run_registry(docker: &Docker, image: &str, volume: &str, port: u16) -> String {
    docker
        .ok(&[
            "run",
            "-d",
            "--network",
            "host",
            "-e",
            &format!("REGISTRY_HTTP_ADDR=127.0.0.1:{port}"),
            "-v",
            &format!("{volume}:/var/lib/registry"),
            image,
        ])
        .trim()
        .to_string()
}

#[test]
fn the_registry_image_built_by_lade_serves_docker() {
    let Some(docker) = Docker::get() else { return };
    // Loads busybox:local into the engine, the image pushed below.
    let Some(_base) = BusyboxBase::make(Some(docker)) else {
        return;
    };
    let lade = Lade::new();
    let port = free_port();
    let image = format!("lade-registry-test:{port}");
    let pushed = format!("127.0.0.1:{port}/test/busybox:1");
    let mut cleanup = Cleanup {
        docker,
        containers: Vec::new(),
        volume: format!("lade-registry-test-{port}"),
        images: vec![image.clone(), pushed.clone()],
    };

    // The context from the binary under test, then `lade build` of packaging/registry/Dockerfile.
    let context = lade.scratch.path().join("context");
    let made = Command::new("bash")
        .arg(workspace().join("packaging/registry/make-context.sh"))
        .arg(env!("CARGO_BIN_EXE_lade"))
        .arg(&context)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    lade.ok(&["build", "-q", "-t", &image, context.to_str().unwrap()]);

    // lade save | docker load.
    let mut save = lade
        .command()
        .args(["save", &image])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = docker
        .command()
        .arg("load")
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let config = docker.ok(&["image", "inspect", "--format", "{{json .Config}}", &image]);
    assert!(
        config.contains("\"/var/lib/registry\":{}") && config.contains("\"5000/tcp\""),
        "{config}"
    );

    // docker run -d with a named volume, then docker push and pull through it.
    let container = run_registry(docker, &image, &cleanup.volume, port);
    cleanup.containers.push(container.clone());
    let host = format!("127.0.0.1:{port}");
    wait_ready(docker, &container, &host);
    docker.ok(&["tag", "busybox:local", &pushed]);
    docker.ok(&["push", &pushed]);
    let id = docker.image_id(&pushed);
    docker.ok(&["rmi", &pushed]);
    docker.ok(&["pull", &pushed]);
    assert_eq!(
        docker.image_id(&pushed),
        id,
        "the pulled image is the pushed one"
    );
    let page = http_body(&host, "/ui/repo?name=test%2Fbusybox");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains(">1</a>"),
        "{page}"
    );

    // docker stop: SIGTERM, a clean exit; the volume keeps the content for the next container.
    docker.ok(&["stop", "-t", "20", &container]);
    let code = docker.ok(&["inspect", "-f", "{{.State.ExitCode}}", &container]);
    assert_eq!(code.trim(), "0", "lade exits 0 on SIGTERM");
    let again = run_registry(docker, &image, &cleanup.volume, port);
    cleanup.containers.push(again.clone());
    wait_ready(docker, &again, &host);
    docker.ok(&["rmi", &pushed]);
    docker.ok(&["pull", &pushed]);
    assert_eq!(docker.image_id(&pushed), id);
}

#[test]
fn the_systemd_unit_verifies() {
    if require("systemd-analyze", have("systemd-analyze")).is_none() {
        return;
    }
    let unit = std::fs::read_to_string(workspace().join("packaging/systemd/lade-registry.service"))
        .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/lade registry serve"));
    // Verify the unit as installed, with the binary under test where the unit expects lade.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lade-registry.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/lade", env!("CARGO_BIN_EXE_lade")),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // The hardening keeps the exposure score at 2.0 or under ("OK" in systemd's words).
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "exposure above 2.0: {report}");
}
