//! `lade push`, `pull`, `login`, `logout` and `copy` against real registries (registry:2 with no auth, htpasswd,
//! TLS and Bearer tokens), with Docker and skopeo on the other side, through connections cut midway, and against a
//! registry serving a corrupt blob; multi-platform indexes copied whole, and pulled whole into the store
//! (`pull --all-platforms`) and pushed back unchanged.

mod common;

use std::process::{Command, Stdio};

use common::registry::{
    self_signed, CuttingProxy, Direction, LadeRegistry, Registry2, RegistryAuth, TokenServer,
    REFRESH_TOKEN,
};
use common::{have, require, BusyboxBase, Docker, Lade};

/// registry:2, or a skip (a failure under CI).
fn registry_available() -> bool {
    require("docker-registry", common::registry::have_registry()).is_some()
}

/// A lade store holding busybox as `name`.
fn lade_with_busybox(name: &str) -> Option<(Lade, BusyboxBase)> {
    let base = BusyboxBase::make(None)?;
    let lade = Lade::new();
    lade.ok(&[
        "import",
        "-c",
        r#"CMD ["/bin/sh"]"#,
        base.rootfs().to_str().unwrap(),
        name,
    ]);
    Some((lade, base))
}

/// Imports into `lade` an image whose one layer holds `size` bytes of incompressible data.
fn import_random_image(lade: &Lade, name: &str, size: usize) {
    let tar_path = lade.scratch.path().join(format!("random-{size}.tar"));
    let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let mut data = Vec::with_capacity(size);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "random.bin", &data[..])
        .unwrap();
    builder.into_inner().unwrap();
    lade.ok(&["import", tar_path.to_str().unwrap(), name]);
}

/// The manifest digest `lade push` printed (`TAG: digest: sha256:… size: N`).
fn pushed_digest(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.contains(": digest: "))
        .expect("a digest line");
    line.split_whitespace().nth(2).unwrap().to_string()
}

/// `lade inspect` of one image.
fn inspect(lade: &Lade, name: &str) -> serde_json::Value {
    let out: serde_json::Value = serde_json::from_str(&lade.ok(&["inspect", name])).unwrap();
    out[0].clone()
}

/// The manifest digest of an image in the lade store.
fn local_digest(lade: &Lade, name: &str) -> String {
    inspect(lade, name)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The image ID (config digest) of an image in the lade store.
fn local_id(lade: &Lade, name: &str) -> String {
    inspect(lade, name)["Id"].as_str().unwrap().to_string()
}

fn skopeo(args: &[&str]) -> String {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn skopeo_digest(image: &str) -> String {
    let info: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", image])).unwrap();
    info["Digest"].as_str().unwrap().to_string()
}

/// Files under the store's blob directory.
fn blob_count(lade: &Lade) -> usize {
    let dir = lade.root.path().join("blobs/sha256");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn push_and_pull_with_registry2_and_docker() {
    if !registry_available() {
        return;
    }
    let Some(docker) = Docker::get() else { return };
    let Some((lade, _base)) = lade_with_busybox("bb:push") else {
        return;
    };
    let registry = Registry2::start(RegistryAuth::None, None);
    let host = registry.host();

    // lade push → registry:2 → docker pull → docker run.
    let target = format!("{host}/lade/busybox:v1");
    let out = lade.ok(&["push", "bb:push", &target]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{host}/lade/busybox]"
        )),
        "{out}"
    );
    let digest = pushed_digest(&out);
    assert!(
        out.contains(&format!("v1: digest: {digest} size: ")),
        "{out}"
    );
    // A second push finds every blob present.
    let again = lade.run(&["push", "bb:push", &target]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // Pushing to another repository mounts the layer from the one the image is known by there.
    lade.ok(&["tag", "bb:push", &target]);
    let mounted = lade.run(&["push", &target, &format!("{host}/lade/mounted:v1")]);
    assert!(mounted.status.success());
    assert!(
        String::from_utf8_lossy(&mounted.stderr).contains("mounted"),
        "{}",
        String::from_utf8_lossy(&mounted.stderr)
    );

    docker.ok(&["pull", "-q", &target]);
    let pulled_digest = docker.ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoDigests 0}}",
        &target,
    ]);
    assert!(pulled_digest.trim().ends_with(&digest), "{pulled_digest}");
    let echo = docker.ok(&[
        "run",
        "--rm",
        "--network=none",
        &target,
        "echo",
        "hello from lade",
    ]);
    assert_eq!(echo.trim(), "hello from lade");

    // The loaded layer (stored uncompressed) went out gzip-compressed, as Docker pushes it.
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]))
    .unwrap();
    for layer in raw["layers"].as_array().unwrap() {
        assert!(
            layer["mediaType"].as_str().unwrap().ends_with("gzip"),
            "{raw}"
        );
    }

    // docker push → registry:2 → lade pull.
    let from_docker = format!("{host}/docker/busybox:v2");
    docker.ok(&["tag", &target, &from_docker]);
    docker.ok(&["push", "-q", &from_docker]);
    let fresh = Lade::new();
    let out = fresh.ok(&["pull", &from_docker]);
    assert_eq!(out.trim(), from_docker);
    assert_eq!(
        local_digest(&fresh, &from_docker),
        registry_digest(&registry, "docker/busybox", "v2")
    );
    assert_eq!(
        local_id(&fresh, &from_docker),
        docker.image_id(&from_docker)
    );
    // Pulling again downloads nothing; pulling by digest works.
    let again = fresh.run(&["pull", &from_docker]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Image is up to date"));
    let by_digest = format!(
        "{host}/docker/busybox@{}",
        local_digest(&fresh, &from_docker)
    );
    fresh.ok(&["pull", &by_digest]);
    fresh.ok(&["inspect", &by_digest]);
    docker.ok(&["rmi", &target, &from_docker]);
}

/// The digest registry:2 serves for a tag, read with a plain HTTP HEAD.
fn registry_digest(registry: &Registry2, repository: &str, tag: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
    write!(
        stream,
        "HEAD /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n",
        registry.host()
    )
    .unwrap();
    let mut headers = String::new();
    stream.read_to_string(&mut headers).unwrap();
    headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest in: {headers}"))
}

#[test]
fn skopeo_reads_what_lade_pushes_and_lade_pulls_what_skopeo_pushes() {
    if !registry_available() || require("skopeo", have("skopeo")).is_none() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:sk") else {
        return;
    };
    let registry = Registry2::start(RegistryAuth::None, None);
    let host = registry.host();
    let digest = pushed_digest(&lade.ok(&["push", "bb:sk", &format!("{host}/lade/bb:sk")]));
    assert_eq!(
        skopeo_digest(&format!("docker://{host}/lade/bb:sk")),
        digest
    );
    // skopeo copy verifies every blob on the way.
    let layout = lade.scratch.path().join("layout");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{host}/lade/bb:sk"),
        &format!("oci:{}:x", layout.display()),
    ]);
    // skopeo pushes (compressing the layer: a new digest) and lade pulls it.
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", layout.display()),
        &format!("docker://{host}/skopeo/bb:x"),
    ]);
    let fresh = Lade::new();
    fresh.ok(&["pull", &format!("{host}/skopeo/bb:x")]);
    assert_eq!(
        local_digest(&fresh, &format!("{host}/skopeo/bb:x")),
        skopeo_digest(&format!("docker://{host}/skopeo/bb:x"))
    );
    let config = inspect(&fresh, &format!("{host}/skopeo/bb:x"));
    assert_eq!(config["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
}

/// Runs `command` to success, sampling its peak resident set (`VmHWM`, a high-water mark) until it exits; in KiB.
fn peak_rss_kib(mut command: Command) -> u64 {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    peak
}

#[test]
fn large_layers_stream_in_bounded_memory() {
    if !registry_available() {
        return;
    }
    // Buffering the layer would take more than its 192 MiB; streaming stays far below the 64 MiB budget.
    let lade = Lade::new();
    import_random_image(&lade, "large:1", 192 << 20);
    let registry = Registry2::start(RegistryAuth::None, None);
    let target = format!("{}/large/image:1", registry.host());
    let mut push = lade.command();
    push.args(["push", "large:1", &target]);
    let push_peak = peak_rss_kib(push);
    let fresh = Lade::new();
    let mut pull = fresh.command();
    pull.args(["pull", &target]);
    let pull_peak = peak_rss_kib(pull);
    eprintln!("peak RSS: push {push_peak} KiB, pull {pull_peak} KiB");
    assert!(
        push_peak > 0 && push_peak < 64 << 10,
        "push peak RSS {push_peak} KiB"
    );
    assert!(
        pull_peak > 0 && pull_peak < 64 << 10,
        "pull peak RSS {pull_peak} KiB"
    );
    assert_eq!(local_id(&fresh, &target), local_id(&lade, "large:1"));
}

#[test]
fn push_compresses_uncompressed_layers_as_asked_and_keeps_the_image_id() {
    if !registry_available() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "plain:1", 3 << 20);
    let registry = Registry2::start(RegistryAuth::None, None);
    // (flag, repository, the layer media type's suffix): gzip is the default, as in Docker.
    for (flag, repository, suffix) in [
        (None, "gz", ".tar+gzip"),
        (Some("zstd"), "zst", ".tar+zstd"),
        (Some("none"), "plain", ".tar"),
    ] {
        let target = format!("{}/{repository}/image:1", registry.host());
        let mut args = vec!["push"];
        if let Some(flag) = flag {
            args.extend(["--compression", flag]);
        }
        args.extend(["plain:1", &target]);
        let output = lade.run(&args);
        assert!(output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        let digest = pushed_digest(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(
            digest == local_digest(&lade, "plain:1"),
            flag == Some("none"),
            "{flag:?}: only an uncompressed push keeps the stored manifest"
        );
        // skopeo reads what the registry holds.
        let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ]))
        .unwrap();
        let layer = &raw["layers"][0];
        assert!(
            layer["mediaType"].as_str().unwrap().ends_with(suffix),
            "{flag:?}: {layer}"
        );
        // Plain progress names every blob pushed, the small config too.
        for blob in [&layer["digest"], &raw["config"]["digest"]] {
            let short = &blob.as_str().unwrap()["sha256:".len()..][..12];
            assert!(stderr.contains(&format!("{short}: pushed")), "{stderr}");
        }
        let fresh = Lade::new();
        fresh.ok(&["pull", &target]);
        assert_eq!(local_digest(&fresh, &target), digest);
        assert_eq!(local_id(&fresh, &target), local_id(&lade, "plain:1"));
        // The layer went through the compressor: it decompresses to the diff ID.
        let blob = fresh.root.path().join("blobs/sha256").join(
            layer["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap(),
        );
        let file = std::fs::File::open(blob).unwrap();
        let mut decoded = Vec::new();
        match flag {
            None => {
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut decoded)
            }
            Some("zstd") => {
                std::io::Read::read_to_end(&mut zstd::Decoder::new(file).unwrap(), &mut decoded)
            }
            _ => std::io::Read::read_to_end(&mut &file, &mut decoded),
        }
        .unwrap();
        let diff_id = inspect(&fresh, &target)["RootFS"]["Layers"][0]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(layerstore::Digest::sha256_of(&decoded).to_string(), diff_id);
    }
}

#[test]
fn htpasswd_login_push_pull_logout() {
    if !registry_available() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:auth") else {
        return;
    };
    let registry = Registry2::start(
        RegistryAuth::Htpasswd {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        None,
    );
    let host = registry.host();
    let target = format!("{host}/private/bb:1");

    let err = lade.fails(&["push", "bb:auth", &target]);
    assert!(
        err.contains("unauthorized") && err.contains("no credentials"),
        "{err}"
    );
    let err = lade.fails(&["login", &host, "-u", "alice", "-p", "wrong"]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(!lade.docker_config_dir().join("config.json").exists());

    let mut login = lade
        .command()
        .args(["login", &host, "-u", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), b"s3cret\n").unwrap();
    let output = login.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "Login Succeeded"
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lade.docker_config_dir().join("config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["auths"][&host]["auth"], "YWxpY2U6czNjcmV0");

    let digest = pushed_digest(&lade.ok(&["push", "bb:auth", &target]));
    // Docker logs in to the same registry and runs what lade pushed.
    if let Some(docker) = Docker::get() {
        let docker_config = tempfile::tempdir().unwrap();
        let mut login = docker
            .command()
            .env("DOCKER_CONFIG", docker_config.path())
            .args(["login", "-u", "alice", "--password-stdin", &host])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut login.stdin.take().unwrap(), b"s3cret").unwrap();
        let output = login.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "docker login: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let run = docker
            .command()
            .env("DOCKER_CONFIG", docker_config.path())
            .args([
                "run",
                "--rm",
                "--network=none",
                "--pull=always",
                &target,
                "echo",
                "authenticated",
            ])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "authenticated");
        docker.ok(&["rmi", &target]);
    }
    let fresh = Lade::new();
    // Another store, the same credentials file.
    let pull = |l: &Lade| {
        l.command()
            .env("DOCKER_CONFIG", lade.docker_config_dir())
            .args(["pull", &target])
            .output()
            .unwrap()
    };
    let output = pull(&fresh);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(local_digest(&fresh, &target), digest);

    assert!(lade
        .ok(&["logout", &host])
        .contains("Removing login credentials"));
    let output = pull(&Lade::new());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unauthorized"));
}

#[test]
fn tls_registry_with_a_private_ca() {
    if !registry_available() || require("openssl", have("openssl")).is_none() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:tls") else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert) = common::registry::ca_signed(certs.path()).unwrap();
    let registry = Registry2::start(RegistryAuth::None, Some((&cert.cert, &cert.key)));
    let host = registry.host();
    let target = format!("{host}/tls/bb:1");

    // Without the CA, loopback means plain HTTP, which a TLS registry refuses.
    let err = lade.fails(&["push", "bb:tls", &target]);
    assert!(err.contains(&format!("http://{host}/v2/")), "{err}");

    let certs_d = certs.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).unwrap();
    std::fs::copy(&ca, certs_d.join(&host).join("ca.crt")).unwrap();
    let certs_dir = certs_d.to_str().unwrap();
    let digest = pushed_digest(&lade.ok(&["push", "--certs-dir", certs_dir, "bb:tls", &target]));
    let fresh = Lade::new();
    let output = fresh
        .command()
        .env("LADE_CERTS_DIR", certs_dir)
        .args(["pull", &target])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(local_digest(&fresh, &target), digest);
    // Docker (which skips verification for loopback registries) pulls and runs it over TLS.
    if let Some(docker) = Docker::get() {
        let echo = docker.ok(&[
            "run",
            "--rm",
            "--network=none",
            "--pull=always",
            &target,
            "echo",
            "over tls",
        ]);
        assert_eq!(echo.trim(), "over tls");
        docker.ok(&["rmi", &target]);
    }

    // A CA that did not sign the registry's certificate is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = self_signed(other_dir.path(), "other").unwrap();
    std::fs::copy(&other.cert, certs_d.join(&host).join("ca.crt")).unwrap();
    let err = Lade::new().fails(&["pull", "--certs-dir", certs_dir, &target]);
    assert!(
        err.contains(&format!("https://{host}/v2/")) && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// `lade login` with `password`, the password on stdin; returns the output.
fn login(
    lade: &Lade,
    extra: &[&str],
    host: &str,
    user: &str,
    password: &str,
) -> std::process::Output {
    let mut login = lade
        .command()
        .arg("login")
        .args(extra)
        .args([host, "-u", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), password.as_bytes()).unwrap();
    login.wait_with_output().unwrap()
}

#[test]
fn self_signed_tls_registries_login_push_pull() {
    if !registry_available() || require("openssl", have("openssl")).is_none() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:self-signed") else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    // The usual `openssl req -x509` certificate: self-signed, CA:TRUE, the server's own and its CA at once.
    let cert = self_signed(certs.path(), "registry").unwrap();
    let htpasswd = certs.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("s3cret", 5).unwrap()),
    )
    .unwrap();
    let registry2 = Registry2::start(
        RegistryAuth::Htpasswd {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        Some((&cert.cert, &cert.key)),
    );
    let lades = LadeRegistry::start(&[
        "--tls-cert".as_ref(),
        cert.cert.as_os_str(),
        "--tls-key".as_ref(),
        cert.key.as_os_str(),
        "--htpasswd".as_ref(),
        htpasswd.as_os_str(),
    ]);
    let certs_d = certs.path().join("certs.d");
    for host in [registry2.host(), lades.host()] {
        std::fs::create_dir_all(certs_d.join(&host)).unwrap();
        std::fs::copy(&cert.cert, certs_d.join(&host).join("ca.crt")).unwrap();
    }
    let certs_dir = ["--certs-dir", certs_d.to_str().unwrap()];
    for host in [registry2.host(), lades.host()] {
        let output = login(&lade, &certs_dir, &host, "alice", "s3cret");
        assert!(
            output.status.success(),
            "login to {host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let target = format!("{host}/self-signed/bb:1");
        let mut push = vec!["push", "bb:self-signed", &target];
        push.extend(certs_dir);
        let digest = pushed_digest(&lade.ok(&push));
        let fresh = Lade::new();
        let output = fresh
            .command()
            .env("DOCKER_CONFIG", lade.docker_config_dir())
            .env("LADE_CERTS_DIR", certs_d.to_str().unwrap())
            .args(["pull", &target])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pull from {host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(local_digest(&fresh, &target), digest);
    }

    // Full verification otherwise: a certificate for another name, though trusted byte for byte, is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=elsewhere",
            "-addext",
            "subjectAltName=DNS:elsewhere",
        ])
        .arg("-keyout")
        .arg(other_dir.path().join("key.pem"))
        .arg("-out")
        .arg(other_dir.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(other.status.success());
    let misnamed = LadeRegistry::start(&[
        "--tls-cert".as_ref(),
        other_dir.path().join("cert.pem").as_os_str(),
        "--tls-key".as_ref(),
        other_dir.path().join("key.pem").as_os_str(),
    ]);
    std::fs::create_dir_all(certs_d.join(misnamed.host())).unwrap();
    std::fs::copy(
        other_dir.path().join("cert.pem"),
        certs_d.join(misnamed.host()).join("ca.crt"),
    )
    .unwrap();
    let target = format!("{}/x/bb:1", misnamed.host());
    let mut push = vec!["push", "bb:self-signed", &target];
    push.extend(certs_dir);
    let err = lade.fails(&push);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn skopeo_and_umoci_read_the_store_with_one_tag_in_two_repositories() {
    if !registry_available()
        || require("skopeo", have("skopeo")).is_none()
        || require("umoci", have("umoci")).is_none()
    {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:same") else {
        return;
    };
    import_random_image(&lade, "other:same", 4096);
    let registry = Registry2::start(RegistryAuth::None, None);
    let host = registry.host();
    let (first, second) = (format!("{host}/one/app:1"), format!("{host}/two/app:1"));
    let first_digest = pushed_digest(&lade.ok(&["push", "bb:same", &first]));
    let second_digest = pushed_digest(&lade.ok(&["push", "other:same", &second]));
    let store = Lade::new();
    store.ok(&["pull", &first]);
    store.ok(&["pull", &second]);
    let root = store.root.path().display().to_string();
    for (name, digest) in [(&first, &first_digest), (&second, &second_digest)] {
        let info: serde_json::Value =
            serde_json::from_str(&skopeo(&["inspect", &format!("oci:{root}:{name}")])).unwrap();
        assert_eq!(info["Digest"].as_str().unwrap(), digest, "{name}");
    }
    let listed = Command::new("umoci")
        .args(["ls", "--layout", &root])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in [&first, &second] {
        assert!(listed.lines().any(|l| l == name.as_str()), "{listed}");
    }
    let stat = Command::new("umoci")
        .args(["stat", "--image", &format!("{root}:{second}")])
        .output()
        .unwrap();
    assert!(
        stat.status.success(),
        "{}",
        String::from_utf8_lossy(&stat.stderr)
    );

    // A Docker schema 2 image, copied to OCI layouts from the registry and from the store, gets OCI media types.
    let v2s2 = format!("{host}/v2s2/app:1");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker://{first}"),
        &format!("docker://{v2s2}"),
    ]);
    store.ok(&["pull", &v2s2]);
    // The store keeps the Docker manifest's bytes (its digest, a push sends it back unchanged) and shows other tools
    // an OCI view of it.
    let v2s2_digest = skopeo_digest(&format!("docker://{v2s2}"));
    assert_eq!(local_digest(&store, &v2s2), v2s2_digest);
    let back = format!("{host}/back/app:1");
    assert_eq!(
        pushed_digest(&store.ok(&["push", &v2s2, &back])),
        v2s2_digest
    );
    let view: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{root}:{v2s2}"),
    ]))
    .unwrap();
    assert_eq!(
        view["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let stat = Command::new("umoci")
        .args(["stat", "--image", &format!("{root}:{v2s2}")])
        .output()
        .unwrap();
    assert!(
        stat.status.success(),
        "{}",
        String::from_utf8_lossy(&stat.stderr)
    );
    for (source, layout) in [
        (format!("docker://{v2s2}"), "from-registry"),
        (format!("lade:{v2s2}"), "from-store"),
    ] {
        let dir = store.scratch.path().join(layout);
        let output = store.run(&["copy", &source, &format!("oci:{}:v1", dir.display())]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("Converted the Docker schema 2 manifest"),
            "{stderr}"
        );
        let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--raw",
            &format!("oci:{}:v1", dir.display()),
        ]))
        .unwrap();
        assert_eq!(
            raw["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            raw["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        // Converted in the layout, the Docker manifest is not left behind in its blobs.
        let blobs = std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count();
        let layers = raw["layers"].as_array().unwrap().len();
        assert_eq!(
            blobs,
            layers + 2,
            "only the OCI manifest, the config and the layers"
        );
        let stat = Command::new("umoci")
            .args(["stat", "--image", &format!("{}:v1", dir.display())])
            .output()
            .unwrap();
        assert!(
            stat.status.success(),
            "{}",
            String::from_utf8_lossy(&stat.stderr)
        );
    }
}

/// `skopeo inspect --raw` of a registry image, as bytes.
fn raw_manifest(image: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", image])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Pushes `multi:amd64` (in `lade` already), and random images as `multi:arm64` and `multi:s390x`, to registry:2's
/// `src/app`, and an OCI index of the three as `src/app:multi`; returns the repository and the index's bytes.
fn push_multi_platform_index(lade: &Lade, registry2: &Registry2) -> (String, String) {
    import_random_image(lade, "multi:arm64", 4096);
    import_random_image(lade, "multi:s390x", 2048);
    let source = format!("{}/src/app", registry2.host());
    let mut entries = Vec::new();
    for (tag, platform) in [
        ("amd64", r#"{"os":"linux","architecture":"amd64"}"#),
        (
            "arm64",
            r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#,
        ),
        ("s390x", r#"{"os":"linux","architecture":"s390x"}"#),
    ] {
        let target = format!("{source}:{tag}");
        let digest = pushed_digest(&lade.ok(&["push", &format!("multi:{tag}"), &target]));
        let raw = raw_manifest(&format!("docker://{target}"));
        let media_type = serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        entries.push(format!(
            r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{},"platform":{platform}}}"#,
            raw.len()
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        entries.join(",")
    );
    curl_put_manifest(
        &format!("http://{}/v2/src/app/manifests/multi", registry2.host()),
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    (source, index)
}

#[test]
fn copy_all_keeps_a_multi_platform_index_whole() {
    if !registry_available() || require("skopeo", have("skopeo")).is_none() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("multi:amd64") else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let lades = LadeRegistry::start(&[]);
    let (source, index) = push_multi_platform_index(&lade, &registry2);

    // registry:2 to lade's registry, whole: the index and every child byte for byte.
    let copy = format!("{}/dst/app:multi", lades.host());
    lade.ok(&[
        "copy",
        "--all",
        &format!("docker://{source}:multi"),
        &format!("docker://{copy}"),
    ]);
    assert_eq!(raw_manifest(&format!("docker://{copy}")), index.as_bytes());
    let parsed: serde_json::Value = serde_json::from_str(&index).unwrap();
    for entry in parsed["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(
            raw_manifest(&format!("docker://{}/dst/app@{digest}", lades.host())),
            raw_manifest(&format!("docker://{source}@{digest}"))
        );
    }
    // Back to registry:2 for two of the three platforms: an index of those two.
    let subset = format!("{}/subset/app:two", registry2.host());
    lade.ok(&[
        "copy",
        "--platform",
        "linux/arm64,linux/s390x",
        &format!("docker://{copy}"),
        &format!("docker://{subset}"),
    ]);
    let two: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&format!("docker://{subset}"))).unwrap();
    let platforms: Vec<&str> = two["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["arm64", "s390x"]);
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{subset}"),
        &format!("oci:{}:check", lade.scratch.path().join("check").display()),
    ]);
    // And to an OCI layout, whole.
    let layout = lade.scratch.path().join("layout");
    lade.ok(&[
        "copy",
        "--all",
        &format!("docker://{copy}"),
        &format!("oci:{}:multi", layout.display()),
    ]);
    assert_eq!(
        raw_manifest(&format!("oci:{}:multi", layout.display())),
        index.as_bytes()
    );
}

/// This machine's host name, when it resolves to a loopback address (as Debian's /etc/hosts makes it).
fn loopback_host_name() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()?
        .trim()
        .to_string();
    let loopback = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .any(|a| a.ip().is_loopback());
    (loopback && !name.is_empty() && name != "localhost").then_some(name)
}

#[test]
fn loopback_registries_are_insecure_by_default_and_failures_say_why() {
    if !registry_available() || require("openssl", have("openssl")).is_none() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "small:1", 1024);
    let plain = LadeRegistry::start(&[]);
    // A name that resolves to 127.0.0.1 is plain HTTP like 127.0.0.1 itself, as in Docker.
    if let Some(name) = loopback_host_name() {
        lade.ok(&[
            "push",
            "small:1",
            &format!("{name}:{}/by-name/small:1", plain.port),
        ]);
    } else {
        eprintln!("the host name does not resolve to loopback: not checking a loopback name");
    }

    let timed = |args: &[&str]| {
        let start = std::time::Instant::now();
        let err = lade.fails(args);
        (err, start.elapsed())
    };
    // Nothing listening: fail at once, naming the registry.
    let closed = format!("127.0.0.1:{}", common::registry::free_port());
    let (err, took) = timed(&["pull", &format!("{closed}/x:1")]);
    assert!(
        err.contains(&format!("nothing accepts connections at {closed}")),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(3), "{took:?}: {err}");

    // TLS asked for (a CA in certs.d) from a plain-HTTP registry: fail at once, suggesting --insecure.
    let certs = tempfile::tempdir().unwrap();
    let cert = self_signed(certs.path(), "ca").unwrap();
    let certs_d = certs.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(plain.host())).unwrap();
    std::fs::copy(&cert.cert, certs_d.join(plain.host()).join("ca.crt")).unwrap();
    let target = format!("{}/x/small:1", plain.host());
    let (err, took) = timed(&[
        "push",
        "--certs-dir",
        certs_d.to_str().unwrap(),
        "small:1",
        &target,
    ]);
    assert!(
        err.contains("does not speak TLS") && err.contains(&format!("--insecure {}", plain.host())),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(3), "{took:?}: {err}");
    // Which works: a declared insecure registry is plain HTTP whatever certs.d holds.
    lade.ok(&[
        "push",
        "--certs-dir",
        certs_d.to_str().unwrap(),
        "--insecure",
        &plain.host(),
        "small:1",
        &target,
    ]);

    // Plain HTTP to a loopback TLS registry: suggest certs.d.
    let tls = Registry2::start(RegistryAuth::None, Some((&cert.cert, &cert.key)));
    let err = lade.fails(&["push", "small:1", &format!("{}/x/small:1", tls.host())]);
    assert!(
        err.contains("hint:") && err.contains(&format!("{}/ca.crt", tls.host())),
        "{err}"
    );
}

#[test]
fn bearer_token_flow() {
    if !registry_available() || require("openssl", have("openssl")).is_none() {
        return;
    }
    let Some((lade, base)) = lade_with_busybox("bb:token") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let signer = self_signed(keys.path(), "token-signer").unwrap();
    let tokens = TokenServer::start(&signer, "bob", "hunter2");
    let registry = Registry2::start(
        RegistryAuth::Token {
            realm: tokens.realm(),
            cert: signer.cert.clone(),
        },
        None,
    );
    let host = registry.host();
    let target = format!("{host}/team/bb:1");

    // Anonymous tokens carry pull only: the push is refused.
    let err = lade.fails(&["push", "bb:token", &target]);
    assert!(err.contains("unauthorized"), "{err}");

    let err = lade.fails(&["login", &host, "-u", "bob", "-p", "nope"]);
    assert!(
        err.contains("token request") && err.contains("401"),
        "{err}"
    );
    lade.ok(&["login", &host, "-u", "bob", "-p", "hunter2"]);
    // The token server issued a refresh token: it is stored instead of the password.
    let config = std::fs::read_to_string(lade.docker_config_dir().join("config.json")).unwrap();
    assert!(
        config.contains(REFRESH_TOKEN) && !config.contains("hunter2"),
        "{config}"
    );
    let before = tokens.requests.load(std::sync::atomic::Ordering::SeqCst);
    let digest = pushed_digest(&lade.ok(&["push", "bb:token", &target]));
    let used = tokens.requests.load(std::sync::atomic::Ordering::SeqCst) - before;
    // One token for the repository's pull,push scope serves every request of the push.
    assert_eq!(used, 1, "token requests during the push");

    // Anonymous pull with an anonymous token.
    let anonymous = Lade::new();
    anonymous.ok(&["pull", &target]);
    assert_eq!(local_digest(&anonymous, &target), digest);

    // A refresh token (identitytoken) written by hand is exchanged by the OAuth2 POST grant too.
    let refresh = Lade::new();
    std::fs::create_dir_all(refresh.docker_config_dir()).unwrap();
    std::fs::write(
        refresh.docker_config_dir().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"","identitytoken":"{REFRESH_TOKEN}"}}}}}}"#),
    )
    .unwrap();
    refresh.ok(&["import", base.rootfs().to_str().unwrap(), "bb:refresh"]);
    refresh.ok(&["push", "bb:refresh", &format!("{host}/team/refreshed:1")]);
    // Cross-repository mount: copying within the registry mounts the layer instead of uploading it.
    let out = refresh.run(&[
        "copy",
        &format!("docker://{target}"),
        &format!("docker://{host}/other/bb:1"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mounted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes `big:1` through a proxy that cuts once at `cut`, in 4 MiB chunks; returns the pushed digest and stderr.
fn push_through_cut(lade: &Lade, port: u16, cut: Direction, repository: &str) -> (String, String) {
    let proxy = CuttingProxy::start(port, cut, 9 << 20);
    let target = format!("{}/{repository}:1", proxy.host());
    let output = lade
        .command()
        .env("LADE_LOG", "registry_client=info")
        .args(["push", "--chunk-size", "4194304", "big:1", &target])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    assert!(proxy.did_cut(), "the proxy never cut the connection");
    (
        pushed_digest(&String::from_utf8_lossy(&output.stdout)),
        stderr,
    )
}

#[test]
fn interrupted_push_resumes_or_restarts() {
    if !registry_available() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "big:1", 24 << 20);
    let registry = Registry2::start(RegistryAuth::None, None);

    // Cut between chunks: the session's status says how much arrived, and the upload goes on from there.
    let (digest, stderr) = push_through_cut(
        &lade,
        registry.port,
        Direction::UploadBeforeRequest("PATCH"),
        "resumed",
    );
    let resumed_at = stderr
        .lines()
        .find_map(|l| l.split("at byte ").nth(1))
        .unwrap_or_else(|| panic!("no resume in: {stderr}"));
    let resumed_at: u64 = resumed_at.trim().parse().unwrap();
    assert!(
        resumed_at >= 8 << 20 && resumed_at.is_multiple_of(4 << 20),
        "resumed at {resumed_at}"
    );

    // Cut midway through a chunk: registry:2 cannot resume that session, so lade starts the blob over.
    let (again, stderr) = push_through_cut(&lade, registry.port, Direction::Upload, "restarted");
    assert_eq!(again, digest);
    assert!(
        stderr.contains("asking the registry where to resume"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot resume it") && stderr.contains("starting the upload"),
        "{stderr}"
    );

    // Straight from the registry, both verify.
    for repository in ["resumed", "restarted"] {
        let fresh = Lade::new();
        let name = format!("{}/{repository}:1", registry.host());
        fresh.ok(&["pull", &name]);
        assert_eq!(local_digest(&fresh, &name), digest);
        assert_eq!(local_id(&fresh, &name), local_id(&lade, "big:1"));
    }
}

#[test]
fn interrupted_pull_resumes_with_range() {
    if !registry_available() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "big:2", 16 << 20);
    let registry = Registry2::start(RegistryAuth::None, None);
    let digest =
        pushed_digest(&lade.ok(&["push", "big:2", &format!("{}/big/image:2", registry.host())]));
    let proxy = CuttingProxy::start(registry.port, Direction::Download, 7 << 20);
    let fresh = Lade::new();
    let output = fresh
        .command()
        .env("LADE_LOG", "registry_client=warn")
        .args(["pull", &format!("{}/big/image:2", proxy.host())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(proxy.did_cut(), "the proxy never cut the connection");
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(
        local_digest(&fresh, &format!("{}/big/image:2", proxy.host())),
        digest
    );
    // The registry answered a ranged request (its access log: `"GET /v2/.../blobs/sha256:… HTTP/1.1" 206`).
    assert!(
        registry
            .log()
            .lines()
            .any(|l| l.contains("/blobs/sha256:") && l.contains("HTTP/1.1\" 206 ")),
        "no 206 in the registry log"
    );
}

#[test]
fn corrupt_blob_fails_the_pull_and_leaves_the_store_unchanged() {
    if !registry_available() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "victim:1", 1 << 20);
    let registry = Registry2::start(RegistryAuth::None, None);
    let target = format!("{}/victim/image:1", registry.host());
    // As stored, so that the registry's layer is the local one.
    lade.ok(&["push", "--compression", "none", "victim:1", &target]);
    let manifest_digest = local_digest(&lade, "victim:1");
    let manifest_path = lade
        .root
        .path()
        .join("blobs/sha256")
        .join(manifest_digest.strip_prefix("sha256:").unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = registry.blob_data(layer.trim());
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let fresh = Lade::new();
    fresh.ok(&["images"]);
    let before = fresh.store_snapshot();
    let err = fresh.fails(&["pull", &target]);
    assert!(
        err.contains("digest mismatch") && err.contains(layer.trim()),
        "{err}"
    );
    assert_eq!(fresh.store_snapshot(), before);
}

#[test]
fn copy_registry_to_archive_to_another_registry_without_a_store() {
    if !registry_available() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("bb:copy") else {
        return;
    };
    let first = Registry2::start(RegistryAuth::None, None);
    let second = Registry2::start(RegistryAuth::None, None);
    let digest =
        pushed_digest(&lade.ok(&["push", "bb:copy", &format!("{}/src/bb:1", first.host())]));

    let copier = Lade::new();
    let archive = copier.scratch.path().join("bb.tar");
    let out = copier.ok(&[
        "copy",
        &format!("docker://{}/src/bb:1", first.host()),
        &format!("oci-archive:{}:bb:1", archive.display()),
    ]);
    assert_eq!(out.trim(), digest);
    let out = copier.ok(&[
        "copy",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{}/dst/bb:2", second.host()),
    ]);
    assert_eq!(out.trim(), digest);
    assert_eq!(blob_count(&copier), 0, "copy used the local store");
    assert_eq!(registry_digest(&second, "dst/bb", "2"), digest);

    // The same archive reads as docker-archive, and oci: layouts work both ways.
    let layout = copier.scratch.path().join("layout");
    copier.ok(&[
        "copy",
        &format!("docker-archive:{}:bb:1", archive.display()),
        &format!("oci:{}:v1", layout.display()),
    ]);
    let out = copier.ok(&[
        "copy",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{}/dst/bb:3", second.host()),
    ]);
    assert_eq!(out.trim(), digest);
    assert_eq!(blob_count(&copier), 0, "copy used the local store");
    // And into the local store when asked.
    copier.ok(&[
        "copy",
        &format!("docker://{}/dst/bb:3", second.host()),
        "lade:copied:1",
    ]);
    assert_eq!(local_digest(&copier, "copied:1"), digest);
    assert!(
        !layout.join("ingest").exists(),
        "lade left its scratch directory in the layout"
    );
    if have("skopeo").is_ok() {
        skopeo(&["inspect", &format!("oci-archive:{}", archive.display())]);
        skopeo(&["inspect", &format!("oci:{}:v1", layout.display())]);
    }
}

/// lade's own registry keeps what arrived of a chunk cut midway, so the push resumes at that odd offset in the same
/// session instead of starting the blob over.
#[test]
fn interrupted_push_to_lades_registry_resumes_midway() {
    let lade = Lade::new();
    import_random_image(&lade, "big:1", 24 << 20);
    let root = tempfile::tempdir().unwrap();
    let registry = common::LadeRegistry::start(&["--root", root.path().to_str().unwrap()]);
    let port: u16 = registry.host.rsplit(':').next().unwrap().parse().unwrap();
    let (digest, stderr) = push_through_cut(&lade, port, Direction::Upload, "midway");
    let resumed_at: u64 = stderr
        .lines()
        .find_map(|l| l.split("at byte ").nth(1))
        .unwrap_or_else(|| panic!("no resume in: {stderr}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        resumed_at > 0 && !resumed_at.is_multiple_of(4 << 20),
        "resumed at {resumed_at}"
    );
    assert!(!stderr.contains("starting the upload"), "{stderr}");
    let fresh = Lade::new();
    let name = format!("{}/midway:1", registry.host);
    fresh.ok(&["pull", &name]);
    assert_eq!(local_digest(&fresh, &name), digest);
}

/// `lade build --pull` fetches a base again even when the store has it; without it the store's copy is used.
#[test]
fn build_pull_refreshes_a_base_that_changed_in_the_registry() {
    let Some((publisher, _base)) = lade_with_busybox("busybox:local") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let registry = common::LadeRegistry::start(&["--root", root.path().to_str().unwrap()]);
    let base = format!("{}/base:1", registry.host);
    let publish = |version: &str| {
        let context = tempfile::tempdir().unwrap();
        std::fs::write(context.path().join("version"), version).unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM busybox:local\nCOPY version /version\n",
        )
        .unwrap();
        publisher.ok(&["build", "-q", "-t", &base, context.path().to_str().unwrap()]);
        publisher.ok(&["push", "-q", &base]);
        publisher.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", &base])
    };
    let layers_of =
        |lade: &Lade, image: &str| lade.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let user = Lade::new();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nLABEL built=yes\n"),
    )
    .unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "-t", "app:1"];
        args.extend(extra);
        args.push(context.path().to_str().unwrap());
        user.ok(&args);
        layers_of(&user, "app:1")
    };
    let first = publish("one");
    assert_eq!(build(&[]), first, "a missing base is pulled");
    let second = publish("two");
    assert_ne!(first, second);
    assert_eq!(build(&[]), first, "without --pull the stored base is used");
    assert_eq!(build(&["--pull"]), second, "--pull fetches the new base");
    let other = if cfg!(target_arch = "s390x") {
        "linux/amd64"
    } else {
        "linux/s390x"
    };
    let err = user.fails(&[
        "build",
        "--platform",
        other,
        context.path().to_str().unwrap(),
    ]);
    assert!(err.contains("this host's platform"), "{err}");
    if cfg!(target_arch = "x86_64") {
        user.ok(&[
            "build",
            "-q",
            "--platform",
            "linux/amd64",
            context.path().to_str().unwrap(),
        ]);
    }
}

#[test]
fn push_all_tags_of_a_repository() {
    let lade = Lade::new();
    let root = tempfile::tempdir().unwrap();
    let registry = common::LadeRegistry::start(&["--root", root.path().to_str().unwrap()]);
    let repository = format!("{}/many", registry.host);
    import_random_image(&lade, &format!("{repository}:1"), 1 << 10);
    import_random_image(&lade, &format!("{repository}:2"), 2 << 10);
    import_random_image(&lade, &format!("{}/other:1", registry.host), 1 << 10);
    // As stored, so that the pushed digests are the local ones.
    let out = lade.ok(&[
        "push",
        "-q",
        "--compression",
        "none",
        "--all-tags",
        &repository,
    ]);
    assert_eq!(out.matches(": digest: sha256:").count(), 2, "{out}");
    let fresh = Lade::new();
    for tag in ["1", "2"] {
        let name = format!("{repository}:{tag}");
        fresh.ok(&["pull", "-q", &name]);
        assert_eq!(local_digest(&fresh, &name), local_digest(&lade, &name));
    }
    assert!(fresh
        .fails(&["pull", "-q", &format!("{}/other:1", registry.host)])
        .contains("other"));
    let err = lade.fails(&["push", "--all-tags", &format!("{repository}:1")]);
    assert!(err.contains("repository name alone"), "{err}");
}

#[test]
fn pull_of_a_single_platform_image_for_another_platform_warns() {
    if !registry_available() {
        return;
    }
    let lade = Lade::new();
    import_random_image(&lade, "amd:1", 1024);
    let registry = Registry2::start(RegistryAuth::None, None);
    let target = format!("{}/single/image:1", registry.host());
    lade.ok(&["push", "amd:1", &target]);
    let puller = Lade::new();
    // As Docker 20.10: the only image there is pulled, exit 0; unlike it, lade says it is another platform.
    let output = puller.run(&["pull", "--platform", "linux/arm64", &target]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let host = layerstore::Platform::host();
    assert!(
        stderr.contains(&format!(
            "WARNING: The image's platform ({}/{}) does not match the requested platform (linux/arm64)",
            host.os, host.architecture
        )),
        "{stderr}"
    );
    let output = puller.run(&[
        "pull",
        "--platform",
        &format!("{}/{}", host.os, host.architecture),
        &target,
    ]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("WARNING"));
}

/// `lade images --format json` rows of one reference.
fn image_rows(lade: &Lade, reference: &str) -> Vec<serde_json::Value> {
    lade.ok(&["images", "--no-trunc", "--format", "json", reference])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn pull_all_platforms_keeps_an_index_whole_in_the_store_and_push_sends_it_back_unchanged() {
    if !registry_available()
        || require("skopeo", have("skopeo")).is_none()
        || require("umoci", have("umoci")).is_none()
    {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("multi:amd64") else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let lades = LadeRegistry::start(&[]);
    let (source, index) = push_multi_platform_index(&lade, &registry2);
    let index_digest = layerstore::Digest::sha256_of(index.as_bytes()).to_string();
    let parsed: serde_json::Value = serde_json::from_str(&index).unwrap();
    let children: Vec<String> = parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();

    // From registry:2 into a fresh store, whole.
    let store = Lade::new();
    let from_registry2 = format!("{source}:multi");
    store.ok(&["pull", "--all-platforms", &from_registry2]);
    let root = store.root.path().display().to_string();
    assert_eq!(
        raw_manifest(&format!("oci:{root}:{from_registry2}")),
        index.as_bytes(),
        "the store root is an OCI layout holding the index byte for byte"
    );
    let rows = image_rows(&store, &from_registry2);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ID"], index_digest.as_str());
    assert_eq!(rows[0]["Digest"], index_digest.as_str());
    let described = inspect(&store, &from_registry2);
    assert_eq!(described["Id"], index_digest.as_str());
    assert_eq!(described["Descriptor"]["digest"], index_digest.as_str());
    assert_eq!(described["Architecture"], "amd64");
    assert_eq!(
        described["ImageManifestDescriptor"]["digest"],
        children[0].as_str()
    );
    // The host's image of the index is the image for everything that reads one.
    store.ok(&["history", &from_registry2]);
    if require("runc", have("runc")).is_some() {
        let out = store.ok(&["run", "--rm", &from_registry2, "uname", "-m"]);
        assert_eq!(out.trim(), "x86_64");
    }
    store.ok(&["system", "check"]);
    // OCI tools read the entry, every platform of it.
    let copied = store.scratch.path().join("copied");
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{root}:{from_registry2}"),
        &format!("oci:{}:all", copied.display()),
    ]);
    assert_eq!(
        raw_manifest(&format!("oci:{}:all", copied.display())),
        index.as_bytes()
    );
    let listed = Command::new("umoci")
        .args(["ls", "--layout", &root])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == from_registry2));

    // A prune keeps every platform of a tagged index.
    let before = blob_count(&store);
    store.ok(&["prune"]);
    assert_eq!(blob_count(&store), before);
    for child in &children {
        let hex = child.strip_prefix("sha256:").unwrap();
        assert!(store.root.path().join("blobs/sha256").join(hex).is_file());
    }

    // Pushed to lade's registry: the index byte for byte, every child by digest.
    let pushed = format!("{}/pushed/app:multi", lades.host());
    let out = store.ok(&["push", &from_registry2, &pushed]);
    assert_eq!(pushed_digest(&out), index_digest);
    assert_eq!(
        raw_manifest(&format!("docker://{pushed}")),
        index.as_bytes()
    );
    for child in &children {
        assert_eq!(
            raw_manifest(&format!("docker://{}/pushed/app@{child}", lades.host())),
            raw_manifest(&format!("docker://{source}@{child}"))
        );
    }

    // From lade's registry, whole, and back to registry:2 unchanged.
    let other = Lade::new();
    other.ok(&["pull", "--all-platforms", &pushed]);
    let again = format!("{}/again/app:multi", registry2.host());
    other.ok(&["push", &pushed, &again]);
    assert_eq!(raw_manifest(&format!("docker://{again}")), index.as_bytes());

    // A list of platforms: an index of those only.
    let two = format!("{}/two/app:multi", registry2.host());
    other.ok(&[
        "pull",
        "--all-platforms",
        "--platform",
        "linux/amd64,linux/arm64",
        &from_registry2,
    ]);
    other.ok(&["push", &from_registry2, &two]);
    let subset: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&format!("docker://{two}"))).unwrap();
    let arches: Vec<&str> = subset["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);

    // Saved, it goes whole (as Docker 25 saves one): lade loads the index back, skopeo reads every platform, and
    // Docker 20.10 (which reads manifest.json) loads the host's image.
    let tarball = store.scratch.path().join("multi.tar");
    store.ok(&["save", "-o", tarball.to_str().unwrap(), &from_registry2]);
    let loader = Lade::new();
    loader.ok(&["load", "-i", tarball.to_str().unwrap()]);
    assert_eq!(
        image_rows(&loader, &from_registry2)[0]["ID"],
        index_digest.as_str()
    );
    for child in &children {
        let hex = child.strip_prefix("sha256:").unwrap();
        assert!(loader.root.path().join("blobs/sha256").join(hex).is_file());
    }
    loader.ok(&["system", "check"]);
    let unpacked = store.scratch.path().join("from-archive");
    skopeo(&[
        "copy",
        "--all",
        &format!("oci-archive:{}", tarball.display()),
        &format!("oci:{}:all", unpacked.display()),
    ]);
    assert_eq!(
        raw_manifest(&format!("oci:{}:all", unpacked.display())),
        index.as_bytes()
    );
    // copy --all writes the same whole archive, from the store or from a registry.
    for (from, file) in [
        (format!("lade:{from_registry2}"), "copied-from-store.tar"),
        (
            format!("docker://{from_registry2}"),
            "copied-from-registry.tar",
        ),
    ] {
        let archive = store.scratch.path().join(file);
        let out = store.ok(&[
            "copy",
            "--all",
            &from,
            &format!("oci-archive:{}:{from_registry2}", archive.display()),
        ]);
        assert_eq!(out.trim(), index_digest, "{from}");
        let reloaded = Lade::new();
        reloaded.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(
            image_rows(&reloaded, &from_registry2)[0]["ID"],
            index_digest.as_str(),
            "{from}"
        );
    }
    if let Some(docker) = Docker::get() {
        docker.ok(&["load", "-i", tarball.to_str().unwrap()]);
        assert_eq!(
            docker.image_id(&from_registry2),
            local_id(&lade, "multi:amd64")
        );
        docker.ok(&["rmi", &from_registry2]);
    }

    // Tagged again, it is the same image (same ID); untagging one name leaves the other.
    store.ok(&["tag", &from_registry2, "local/multi:copy"]);
    assert_eq!(
        image_rows(&store, "local/multi:copy")[0]["ID"],
        index_digest.as_str()
    );
    let untagged = store.ok(&["rmi", "local/multi:copy"]);
    assert!(!untagged.contains("Deleted"), "{untagged}");
    let df: serde_json::Value =
        serde_json::from_str(&store.ok(&["system", "df", "--format", "json"])).unwrap();
    assert_eq!(df[0]["Type"], "Images", "{df}");
    assert_eq!(
        df[0]["TotalCount"], 1,
        "one image for the whole index: {df}"
    );

    // rmi takes the index whole; only then does a prune free its blobs.
    let removed = store.ok(&["rmi", &from_registry2]);
    assert!(
        removed.contains(&format!("Deleted: {index_digest}")),
        "{removed}"
    );
    assert!(image_rows(&store, &from_registry2).is_empty());
    store.ok(&["prune"]);
    assert_eq!(blob_count(&store), 0, "every blob of the index is freed");
    store.ok(&["system", "check"]);
}

#[test]
fn a_docker_manifest_list_pulled_whole_keeps_its_bytes_and_oci_tools_read_its_view() {
    if !registry_available() || require("skopeo", have("skopeo")).is_none() {
        return;
    }
    let Some((lade, _base)) = lade_with_busybox("multi:amd64") else {
        return;
    };
    let registry2 = Registry2::start(RegistryAuth::None, None);
    let lades = LadeRegistry::start(&[]);
    let (source, index) = push_multi_platform_index(&lade, &registry2);
    // The same platforms as Docker schema 2 manifests, in a Docker manifest list.
    let parsed: serde_json::Value = serde_json::from_str(&index).unwrap();
    let docker_repo = format!("{}/v2s2/app", registry2.host());
    let mut entries = Vec::new();
    for (entry, tag) in parsed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["amd64", "arm64", "s390x"])
    {
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &format!("docker://{source}:{tag}"),
            &format!("docker://{docker_repo}:{tag}"),
        ]);
        let raw = raw_manifest(&format!("docker://{docker_repo}:{tag}"));
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": layerstore::Digest::sha256_of(&raw).to_string(),
            "size": raw.len(),
            "platform": entry["platform"],
        }));
    }
    let list = serde_json::to_string(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": entries,
    }))
    .unwrap();
    curl_put_manifest(
        &format!("http://{}/v2/v2s2/app/manifests/multi", registry2.host()),
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &list,
    );
    let list_digest = layerstore::Digest::sha256_of(list.as_bytes()).to_string();

    let store = Lade::new();
    let name = format!("{docker_repo}:multi");
    store.ok(&["pull", "--all-platforms", &name]);
    let rows = image_rows(&store, &name);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ID"], list_digest.as_str());
    assert_eq!(inspect(&store, &name)["Architecture"], "amd64");
    store.ok(&["system", "check"]);
    // OCI tools see an OCI index of the platforms' OCI views, and copy every platform of it.
    let root = store.root.path().display().to_string();
    let view: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&format!("oci:{root}:{name}"))).unwrap();
    assert_eq!(view["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(view["manifests"].as_array().unwrap().len(), 3);
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{root}:{name}"),
        &format!("oci:{}:all", store.scratch.path().join("copied").display()),
    ]);
    // The list itself goes back to a registry byte for byte, after a prune.
    store.ok(&["prune"]);
    let pushed = format!("{}/pushed/app:list", lades.host());
    assert_eq!(
        pushed_digest(&store.ok(&["push", &name, &pushed])),
        list_digest
    );
    assert_eq!(raw_manifest(&format!("docker://{pushed}")), list.as_bytes());
    store.ok(&["rmi", &name]);
    store.ok(&["prune"]);
    assert_eq!(blob_count(&store), 0);
}

/// PUTs `body` as a manifest of `media_type` to `url` with curl, as a client other than lade would.
fn curl_put_manifest(url: &str, media_type: &str, body: &str) {
    let put = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .args(["--data-binary", body, url])
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
}
