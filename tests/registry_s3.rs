//! lade's registry on S3 (a real S3 server, s3s-fs) from registry:2's own `config.yml`: registry:2 and lade start
//! from one file and serve each other's bucket; three lade replicas behind nginx act as one registry (an upload
//! moved between replicas, manifests visible at once, concurrent pushes, Docker through nginx, a replica killed
//! mid-push); storage failures give clear errors.

mod common;

use std::process::Command;
use std::time::Duration;

use common::fleet::{curl, header, Nginx, Server, S3};
use common::{require, Lade};

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Deterministic incompressible bytes.
fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(size + 8);
    let mut state = 0x9E37_79B9_7F4A_7C15 ^ seed;
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);
    data
}

fn s3() -> Option<S3> {
    require("s3s-fs", S3::start())
}

fn registry2_available() -> bool {
    require("docker-registry", common::registry::have_registry()).is_some()
}

/// Imports into `lade` a one-layer image of `size` random bytes.
fn import_random_image(lade: &Lade, name: &str, size: usize, seed: u64) {
    let tar_path = lade.scratch.path().join(format!("random-{seed}.tar"));
    let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    let data = noise(size, seed);
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

/// The digest a registry serves for `name:tag`.
fn served_digest(host: &str, name: &str, tag: &str) -> (u16, Option<String>) {
    let (status, response) = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{host}/v2/{name}/manifests/{tag}"),
    ]);
    (
        status,
        header(&response, "docker-content-digest").map(str::to_string),
    )
}

#[test]
fn registry2_and_lade_start_from_one_config_and_share_an_s3_bucket_both_ways() {
    let Some(s3) = s3() else { return };
    if !registry2_available() {
        return;
    }
    let config = s3.registry2_config("/shared");
    let logs = s3.dir.path();
    let registry2 = Server::registry2(&config, logs, "registry2");
    let lade_server = Server::lade(&config, logs, "lade");
    for server in [&registry2, &lade_server] {
        let (status, _) = curl(&[&format!("http://{}/v2/", server.host())]);
        assert_eq!(status, 200, "{}", server.log());
    }
    // lade warns about the key it does not implement, by its path.
    assert!(
        lade_server.log().contains("storage.s3.v4auth"),
        "{}",
        lade_server.log()
    );

    // registry:2's S3 driver resumes every upload with ListMultipartUploads, which s3s-fs does not implement, so on
    // s3s-fs registry:2 writes through its filesystem driver into the bucket's directory (s3s-fs keeps each object
    // as the file of the same path): the same keys its S3 driver writes. On another S3 server (Garage, in
    // scripts/test-fleet.sh) the same registry:2 writes through S3.
    let writer = match &s3.data {
        Some(data) => {
            let root = data.join(&s3.bucket).join("shared");
            let config = s3.dir.path().join("registry2-fs.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  secret: fleet\n",
                    root.display()
                ),
            )
            .unwrap();
            Some(Server::registry2(&config, logs, "registry2-writer"))
        }
        None => None,
    };
    let writer_host = writer.as_ref().unwrap_or(&registry2).host();
    let lade = Lade::new();
    // Pushed through registry:2, pulled through lade.
    import_random_image(&lade, "one:1", 6 << 20, 1);
    let into_registry2 = format!("{writer_host}/interop/one:1");
    lade.ok(&["tag", "one:1", &into_registry2]);
    let digest = pushed_digest(&lade.ok(&["push", &into_registry2]));
    assert_eq!(
        served_digest(&lade_server.host(), "interop/one", "1"),
        (200, Some(digest.clone()))
    );
    let puller = Lade::new();
    puller.ok(&["pull", &format!("{}/interop/one:1", lade_server.host())]);
    // Pushed through lade, pulled through registry:2 (with skopeo, which verifies every digest).
    import_random_image(&lade, "two:1", 7 << 20, 2);
    let into_lade = format!("{}/interop/two:1", lade_server.host());
    lade.ok(&["tag", "two:1", &into_lade]);
    let digest = pushed_digest(&lade.ok(&["push", &into_lade]));
    assert_eq!(
        served_digest(&registry2.host(), "interop/two", "1"),
        (200, Some(digest))
    );
    let out = scratch_dir();
    let status = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/interop/two:1", registry2.host()))
        .arg(format!("oci:{}:two", out.path().display()))
        .status()
        .unwrap();
    assert!(status.success(), "{}", registry2.log());
    // Layout inside the bucket: registry:2's paths below the root directory.
    if let Some(data) = &s3.data {
        assert!(data
            .join("registry/shared/docker/registry/v2/repositories/interop/two/_manifests/tags/1/current/link")
            .exists());
    }
}

fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Three lade replicas on one bucket, nginx in front.
struct Fleet {
    replicas: Vec<Server>,
    nginx: Nginx,
    _s3: S3,
}

fn fleet(root: &str) -> Option<Fleet> {
    let s3 = s3()?;
    let config = s3.registry2_config(root);
    let replicas: Vec<Server> = (1..=3)
        .map(|i| Server::lade(&config, s3.dir.path(), &format!("replica{i}")))
        .collect();
    let backends: Vec<String> = replicas.iter().map(Server::host).collect();
    let nginx = require("nginx", Nginx::start(&backends))?;
    Some(Fleet {
        replicas,
        nginx,
        _s3: s3,
    })
}

#[test]
fn an_upload_moves_across_replicas_and_manifests_are_seen_at_once() {
    let Some(fleet) = fleet("/moves") else { return };
    let [r1, r2, r3] = [0, 1, 2].map(|i| fleet.replicas[i].host());
    let data = noise(12 << 20, 3);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let dir = scratch_dir();
    // POST on replica 1.
    let (status, response) = curl(&[
        "-X",
        "POST",
        &format!("http://{r1}/v2/moved/blob/blobs/uploads/"),
    ]);
    assert_eq!(status, 202, "{response}");
    let location = header(&response, "location").unwrap().to_string();
    let path = location
        .split_once("://")
        .map_or(location.as_str(), |(_, rest)| {
            &rest[rest.find('/').unwrap()..]
        })
        .to_string();
    // PATCH on replica 2: more than a part (5 MiB), so a part is sent and a tail kept in the bucket.
    let first = dir.path().join("first");
    std::fs::write(&first, &data[..7 << 20]).unwrap();
    let (status, response) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", first.display()),
        &format!("http://{r2}{path}"),
    ]);
    assert_eq!(status, 202, "{response}\n{}", fleet.replicas[1].log());
    assert_eq!(
        header(&response, "range"),
        Some(&*format!("0-{}", (7 << 20) - 1))
    );
    // Replica 3 knows where it stands.
    let (status, response) = curl(&[&format!("http://{r3}{path}")]);
    assert_eq!(status, 204, "{response}");
    assert_eq!(
        header(&response, "range"),
        Some(&*format!("0-{}", (7 << 20) - 1))
    );
    // PUT with the rest on replica 3.
    let rest = dir.path().join("rest");
    std::fs::write(&rest, &data[7 << 20..]).unwrap();
    let separator = if path.contains('?') { '&' } else { '?' };
    let (status, response) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", rest.display()),
        &format!("http://{r3}{path}{separator}digest={digest}"),
    ]);
    assert_eq!(status, 201, "{response}\n{}", fleet.replicas[2].log());
    // Served by every replica and through nginx, with the right bytes.
    for host in [&r1, &r2, &r3, &fleet.nginx.host()] {
        let got = Command::new("curl")
            .args([
                "-sSf",
                &format!("http://{host}/v2/moved/blob/blobs/{digest}"),
            ])
            .output()
            .unwrap();
        assert!(got.status.success(), "GET through {host}");
        assert_eq!(format!("sha256:{}", sha256_hex(&got.stdout)), digest);
    }

    // A manifest pushed through replica 1 is served at once by the others.
    let lade = Lade::new();
    import_random_image(&lade, "img:1", 1 << 20, 4);
    let target = format!("{r1}/seen/at-once:1");
    lade.ok(&["tag", "img:1", &target]);
    let digest = pushed_digest(&lade.ok(&["push", &target]));
    for host in [&r2, &r3] {
        assert_eq!(
            served_digest(host, "seen/at-once", "1"),
            (200, Some(digest.clone()))
        );
    }
    let (status, body) = curl(&[&format!("http://{r3}/v2/seen/at-once/tags/list")]);
    assert_eq!(status, 200);
    assert!(body.contains(r#""tags":["1"]"#), "{body}");
}

#[test]
fn concurrent_pushes_of_one_blob_and_tag_on_two_replicas_stay_consistent() {
    let Some(fleet) = fleet("/concurrent") else {
        return;
    };
    let hosts: Vec<String> = fleet.replicas.iter().map(Server::host).collect();
    let lade = Lade::new();
    import_random_image(&lade, "same:1", 9 << 20, 5);
    let pushes: Vec<_> = hosts[..2]
        .iter()
        .map(|host| {
            let target = format!("{host}/race/same:latest");
            lade.ok(&["tag", "same:1", &target]);
            let mut command = lade.command();
            command.args(["push", &target]);
            std::thread::spawn(move || command.output().unwrap())
        })
        .collect();
    let mut digests = Vec::new();
    for push in pushes {
        let output = push.join().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        digests.push(pushed_digest(&String::from_utf8_lossy(&output.stdout)));
    }
    assert_eq!(digests[0], digests[1]);
    for host in &hosts {
        assert_eq!(
            served_digest(host, "race/same", "latest"),
            (200, Some(digests[0].clone()))
        );
    }
    let puller = Lade::new();
    puller.ok(&["pull", &format!("{}/race/same:latest", fleet.nginx.host())]);
}

#[test]
fn docker_pushes_through_nginx_and_pulls_back() {
    let Some(docker) = common::Docker::get() else {
        return;
    };
    let Some(fleet) = fleet("/docker") else {
        return;
    };
    let host = fleet.nginx.host();
    // An image into the fleet with lade, then Docker pulls it, pushes it under another name, and pulls that back.
    let lade = Lade::new();
    import_random_image(&lade, "dk:1", 8 << 20, 6);
    let first = format!("{host}/docker/first:1");
    lade.ok(&["tag", "dk:1", &first]);
    lade.ok(&["push", &first]);
    docker.ok(&["pull", &first]);
    let second = format!("{host}/docker/second:1");
    docker.ok(&["tag", &first, &second]);
    docker.ok(&["push", &second]);
    docker.ok(&["rmi", &first, &second]);
    docker.ok(&["pull", &second]);
    docker.ok(&["rmi", &second]);
    for replica in &fleet.replicas {
        assert_eq!(served_digest(&replica.host(), "docker/second", "1").0, 200);
    }
}

/// The replica currently receiving upload bytes, by its metrics.
fn upload_bytes(host: &str) -> u64 {
    let (_, body) = curl(&[&format!("http://{host}/metrics")]);
    body.lines()
        .find_map(|l| l.strip_prefix("lade_registry_upload_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_replica_killed_mid_push_and_the_retry_through_nginx_completes() {
    let Some(mut fleet) = fleet("/killed") else {
        return;
    };
    let host = fleet.nginx.host();
    let lade = Lade::new();
    import_random_image(&lade, "big:1", 96 << 20, 7);
    let target = format!("{host}/crash/big:1");
    lade.ok(&["tag", "big:1", &target]);
    let before: Vec<u64> = fleet
        .replicas
        .iter()
        .map(|r| upload_bytes(&r.host()))
        .collect();
    let mut command = lade.command();
    command.args(["push", &target]);
    let push = std::thread::spawn(move || command.output().unwrap());
    // Kill -9 whichever replica is receiving the layer once it has some of it.
    let victim = 'found: {
        for _ in 0..400 {
            for (i, replica) in fleet.replicas.iter().enumerate() {
                if upload_bytes(&replica.host()) > before[i] + (8 << 20) {
                    break 'found Some(i);
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    };
    let victim = victim.expect("a replica received the layer");
    fleet.replicas[victim].kill();
    let output = push.join().unwrap();
    assert!(
        output.status.success(),
        "push after a replica was killed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = pushed_digest(&String::from_utf8_lossy(&output.stdout));
    for (i, replica) in fleet.replicas.iter().enumerate() {
        if i != victim {
            assert_eq!(
                served_digest(&replica.host(), "crash/big", "1"),
                (200, Some(digest.clone()))
            );
        }
    }
    let puller = Lade::new();
    puller.ok(&["pull", &target]);
}

#[test]
fn storage_failures_are_clear_errors() {
    let Some(mut s3) = s3() else { return };
    let logs = s3.dir.path().to_path_buf();
    // A bucket that does not exist, and wrong credentials: the serve command fails at startup, saying why.
    for (what, config) in [
        (
            "missing bucket",
            s3.registry2_config("/x").to_str().unwrap().to_string(),
        ),
        (
            "bad credentials",
            s3.registry2_config("/y").to_str().unwrap().to_string(),
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lade"));
        command
            .args(["registry", "serve", "--config", &config])
            .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0");
        if what == "missing bucket" {
            command.env("REGISTRY_STORAGE_S3_BUCKET", "no-such-bucket");
        } else {
            command.env("REGISTRY_STORAGE_S3_SECRETKEY", "wrong");
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{what}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("storage.s3") && stderr.contains("bucket"),
            "{what}: {stderr}"
        );
    }
    // The S3 server going away mid-upload: the client gets a 5xx with a JSON error body, and nothing half-written
    // becomes visible once the server is back. (Only with a private s3s-fs: an external server is not ours to stop.)
    if s3.data.is_none() {
        return;
    }
    let config = s3.registry2_config("/gone");
    let server = Server::lade(&config, &logs, "lade-gone");
    let (status, response) = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/gone/blobs/uploads/", server.host()),
    ]);
    assert_eq!(status, 202, "{response}");
    let location = header(&response, "location").unwrap().to_string();
    let data = noise(6 << 20, 8);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let file = logs.join("gone.bin");
    std::fs::write(&file, &data).unwrap();
    s3.stop();
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = if location.starts_with("http") {
        location.clone()
    } else {
        format!("http://{}{location}", server.host())
    };
    let (status, response) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{url}{separator}digest={digest}"),
    ]);
    assert!((500..600).contains(&status), "{status} {response}");
    let body = &response[response.find('{').expect("a JSON body")..];
    let json: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert!(json["errors"][0]["code"].is_string(), "{json}");
    // Nothing half-written: no blob for that digest anywhere in the bucket's data.
    if let Some(data_dir) = &s3.data {
        let hex = digest.trim_start_matches("sha256:");
        let found = walkdir::WalkDir::new(data_dir)
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| e.path().to_string_lossy().contains(hex));
        assert!(!found, "a blob became visible after a failed upload");
    }
}

#[test]
fn online_gc_across_replicas_collects_garbage_under_the_lease_while_pushes_run() {
    let Some(s3) = s3() else { return };
    // lade's own config format on S3, with online GC on replica A only; pushes go through replica B.
    let config = s3.dir.path().join("gc.yml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  s3: {{ bucket: {}, region: us-east-1, endpoint: \"{}\", access_key: {}, secret_key: {}, root_directory: /gc, force_path_style: true, secure: false }}\ngc: {{ enabled: true, interval_secs: 2, grace_period_secs: 20, settle_secs: 1 }}\n",
            s3.bucket, s3.endpoint, s3.access_key, s3.secret_key
        ),
    )
    .unwrap();
    let plain = s3.registry2_config("/gc");
    let collector = Server::lade_on(&config, s3.dir.path(), "collector");
    let pusher = Server::lade(&plain, s3.dir.path(), "pusher");
    // An orphan blob (no manifest references it), uploaded through B.
    let orphan = noise(1 << 20, 9);
    let orphan_digest = format!("sha256:{}", sha256_hex(&orphan));
    let file = s3.dir.path().join("orphan.bin");
    std::fs::write(&file, &orphan).unwrap();
    let (status, response) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!(
            "http://{}/v2/gc/orphan/blobs/uploads/?digest={orphan_digest}",
            pusher.host()
        ),
    ]);
    assert_eq!(status, 201, "{response}");
    // Pushes through B keep running while A collects; each must stay whole.
    let lade = Lade::new();
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(10) {
        round += 1;
        let name = format!("img:{round}");
        import_random_image(&lade, &name, 2 << 20, 100 + round);
        let target = format!("{}/gc/live:{round}", pusher.host());
        lade.ok(&["tag", &name, &target]);
        lade.ok(&["push", &target]);
    }
    // Wait for the orphan to pass the grace period and a collection to take it (a HEAD would touch it: watch the
    // bucket's files where they are visible, else wait out the grace period and a few collections).
    let hex = orphan_digest.trim_start_matches("sha256:");
    match &s3.data {
        Some(data) => {
            let blob = data.join(&s3.bucket).join(format!(
                "gc/docker/registry/v2/blobs/sha256/{}/{hex}/data",
                &hex[..2]
            ));
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while blob.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        None => std::thread::sleep(Duration::from_secs(35)),
    }
    // The orphan is gone (older than the grace period, referenced by nothing), seen from both replicas.
    for server in [&collector, &pusher] {
        let (status, _) = curl(&[
            "-I",
            &format!(
                "http://{}/v2/gc/orphan/blobs/{orphan_digest}",
                server.host()
            ),
        ]);
        assert_eq!(status, 404, "orphan collected\n{}", collector.log());
    }
    // Every image pushed meanwhile is whole: a pull verifies each blob.
    for r in 1..=round {
        let puller = Lade::new();
        puller.ok(&["pull", &format!("{}/gc/live:{r}", collector.host())]);
    }
    if let Some(data) = &s3.data {
        assert!(data.join(&s3.bucket).join("gc/lade/gc-lease").exists());
    }
}
