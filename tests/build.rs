//! `lade build` end to end with the real OCI runtime: the fixtures build and run, rebuilds hit the cache (and an
//! edit re-runs only what follows it), SOURCE_DATE_EPOCH builds are reproducible, and failures are clear and leave
//! the store's images as they were.

mod common;

use common::{fixture_copy, have, lade_with_busybox, require, workspace, BusyboxBase, Lade};

fn setup() -> Option<(Lade, BusyboxBase)> {
    require("runc", have("runc"))?;
    let base = BusyboxBase::make(None)?;
    let lade = lade_with_busybox(&base);
    Some((lade, base))
}

/// A build context holding only this Dockerfile.
fn context_with(dockerfile: &str) -> tempfile::TempDir {
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("Dockerfile"), dockerfile).unwrap();
    context
}

fn fixture(name: &str) -> String {
    workspace()
        .join("fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn fixtures_build_and_run() {
    let Some((lade, _base)) = setup() else { return };
    lade.ok(&["build", "-t", "hello:1", &fixture("hello")]);
    assert_eq!(
        lade.ok(&["run", "--rm", "hello:1"]),
        "Hello from lade (built by lade)\n"
    );

    lade.ok(&["build", "-t", "multi:1", &fixture("multistage")]);
    assert_eq!(
        lade.ok(&["run", "--rm", "multi:1"]),
        "HELLO FROM THE BUILD STAGE\n"
    );
    let files = common::compare::filesystem(&lade, "multi:1");
    let names: Vec<&str> = files.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "MAIN.TXT",
            "busybox",
            "usr",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/README"
        ]
    );
    let config = common::compare::normalized_config(&lade, "multi:1");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/busybox"])
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/MAIN.TXT"])
    );

    // The exit code passes through.
    let status = lade
        .command()
        .args(["run", "--rm", "busybox:local", "sh", "-c", "exit 7"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
}

/// A `--no-cache` build that gives a step another result and then fails leaves the cache consistent: later steps
/// built on the old result are not reused on the new one.
#[test]
fn later_steps_are_cached_on_their_parents_result_not_only_its_key() {
    let Some((lade, _base)) = setup() else { return };
    let context = context_with(
        "FROM busybox:local\nRUN head -c 4096 /dev/urandom > /random\nARG FAIL\n\
         RUN test -z \"$FAIL\" && sha256sum /random > /sum\n",
    );
    let dir = context.path().to_str().unwrap();
    lade.ok(&["build", "-q", "-t", "random:1", dir]);
    let failed = lade.run(&["build", "-q", "--no-cache", "--build-arg", "FAIL=1", dir]);
    assert!(
        !failed.status.success(),
        "the second step fails with FAIL set"
    );
    lade.ok(&["build", "-q", "-t", "random:1", dir]);
    let checked = lade.ok(&["run", "--rm", "random:1", "sha256sum", "-c", "/sum"]);
    assert!(checked.contains("/random: OK"), "{checked}");
}

#[test]
fn rebuilds_use_the_cache_and_an_edit_reruns_only_later_steps() {
    let Some((lade, _base)) = setup() else { return };
    let app = fixture_copy("nodeapp");
    let dir = app.path().to_str().unwrap();
    let first = lade.run(&["build", "--progress=plain", "-t", "app:1", dir]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first_id = lade.ok(&["inspect", "app:1"]);

    let again = lade.run(&["build", "--progress=plain", "-t", "app:1", dir]);
    let log = String::from_utf8_lossy(&again.stderr);
    assert_eq!(log.matches(" CACHED").count(), 5, "{log}");
    assert!(!log.contains("cache miss"), "{log}");
    assert_eq!(
        lade.ok(&["inspect", "app:1"]),
        first_id,
        "a fully cached rebuild gives the same image"
    );

    std::fs::write(app.path().join("src/util.js"), "module.exports = 2;\n").unwrap();
    let edited = lade.run(&["build", "--progress=plain", "-t", "app:1", dir]);
    let log = String::from_utf8_lossy(&edited.stderr);
    assert!(edited.status.success(), "{log}");
    // WORKDIR, COPY package.json and the slow install stay cached; COPY src and what follows re-run.
    assert_eq!(log.matches(" CACHED").count(), 3, "{log}");
    assert!(log.contains("cache miss: changed: sources"), "{log}");
    assert_eq!(
        lade.ok(&["run", "--rm", "app:1"]),
        "console.log(\"index\");\nmodule.exports = 2;\n"
    );
}

#[test]
fn source_date_epoch_builds_are_reproducible() {
    let Some((lade, _base)) = setup() else { return };
    let build = || {
        let out = lade
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args([
                "build",
                "-q",
                "--no-cache",
                "-t",
                "repro:1",
                &fixture("hello"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = build();
    let second = build();
    assert_eq!(
        first, second,
        "two --no-cache builds with SOURCE_DATE_EPOCH differ"
    );
    let config = common::compare::normalized_config(&lade, "repro:1");
    assert_eq!(config["history"].as_array().unwrap().len(), 6);
    let inspect: serde_json::Value =
        serde_json::from_str(&lade.ok(&["inspect", "repro:1"])).unwrap();
    assert_eq!(inspect[0]["Created"], "2023-11-14T22:13:20Z");
}

#[test]
fn outputs_iidfile_labels_and_stdin_dockerfile() {
    let Some((lade, _base)) = setup() else { return };
    let work = tempfile::tempdir().unwrap();
    let iid = work.path().join("iid");
    let archive = work.path().join("out.tar");
    let local = work.path().join("rootfs");
    lade.ok(&[
        "build",
        "-q",
        "--iidfile",
        iid.to_str().unwrap(),
        "--label",
        "a=b",
        "-t",
        "lab:1",
        &fixture("hello"),
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&lade.ok(&["inspect", "lab:1"])).unwrap();
    assert_eq!(
        std::fs::read_to_string(&iid).unwrap(),
        inspect[0]["Id"].as_str().unwrap()
    );
    assert_eq!(inspect[0]["Config"]["Labels"]["a"], "b");

    let before = lade.ok(&["images", "-q"]);
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "out:1",
        "-o",
        &format!("type=docker,dest={}", archive.display()),
        &fixture("hello"),
    ]);
    lade.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=local,dest={}", local.display()),
        &fixture("hello"),
    ]);
    assert_eq!(
        lade.ok(&["images", "-q"]),
        before,
        "-o must not tag in the store"
    );
    assert!(local.join("app/hello.sh").is_file() && local.join("bin/busybox").is_file());
    let other = Lade::new();
    assert_eq!(
        other.ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: out:1\n"
    );

    let mut child = lade
        .command()
        .args(["build", "-q", "-t", "stdin:1", "-f", "-", &fixture("hello")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox:local\nCOPY hello.sh /\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(lade
        .ok(&["run", "--rm", "stdin:1", "ls", "/hello.sh"])
        .contains("/hello.sh"));

    // `lade build -`: a gzip'd context archive, or a lone Dockerfile, on stdin.
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, content) in [
        ("Dockerfile", &b"FROM busybox:local\nCOPY msg.txt /\n"[..]),
        ("msg.txt", &b"from a piped context\n"[..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, name, content).unwrap();
    }
    let context_tar = archive.into_inner().unwrap().finish().unwrap();
    let from_stdin = |tag: &str, input: &[u8]| {
        let mut child = lade
            .command()
            .args(["build", "-q", "-t", tag, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    from_stdin("piped:1", &context_tar);
    assert_eq!(
        lade.ok(&["run", "--rm", "piped:1", "cat", "/msg.txt"]),
        "from a piped context\n"
    );
    from_stdin("piped:2", b"FROM busybox:local\nLABEL alone=yes\n");
    assert_eq!(
        lade.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"alone\"}}",
            "piped:2"
        ]),
        "yes\n"
    );
}

/// A RUN step's stdout and stderr lines show in the order the command wrote them, in the plain progress and in the
/// failure's last output, every time.
#[test]
fn a_steps_stdout_and_stderr_keep_the_order_they_were_written_in() {
    let Some((lade, _base)) = setup() else { return };
    for attempt in 0..5 {
        let context = context_with(&format!(
            "FROM busybox:local\n\
             RUN echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 1 # {attempt}\n"
        ));
        let out = lade.run(&[
            "build",
            "--progress=plain",
            context.path().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (progress, failure) = stderr
            .split_once("last output:\n")
            .unwrap_or_else(|| panic!("no last output in:\n{stderr}"));
        let shown: Vec<&str> = progress
            .lines()
            .filter_map(|l| {
                // `#2 0.104 out1`: a line of output, after the time since the step started.
                let mut words = l.strip_prefix("#2 ")?.split(' ');
                words.next()?.parse::<f64>().ok()?;
                words.next()
            })
            .collect();
        assert_eq!(shown, ["out1", "err1", "out2", "err2"], "{stderr}");
        assert_eq!(
            failure.lines().take(4).collect::<Vec<_>>(),
            ["out1", "err1", "out2", "err2"],
            "{stderr}"
        );
    }
}

/// Plain progress shows the bytes a COPY reads from the context (none again for unchanged files) and, for a large
/// one, the bytes it writes, in BuildKit's words.
#[test]
fn plain_progress_shows_the_bytes_of_the_context_and_of_large_copies() {
    let Some((lade, _base)) = setup() else { return };
    let context = context_with("FROM busybox:local\nCOPY big.bin /\nCOPY small.txt /\n");
    std::fs::write(context.path().join("big.bin"), vec![1u8; 2_500_000]).unwrap();
    std::fs::write(context.path().join("small.txt"), "small\n").unwrap();
    let dir = context.path().to_str().unwrap();
    let build = || {
        let out = lade.run(&["build", "--progress=plain", dir]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let has = |log: &str, prefix: &str| {
        log.lines()
            .any(|l| l.starts_with(prefix) && l.ends_with("s done"))
    };
    let first = build();
    assert!(has(&first, "#2 transferring context: 2.50MB "), "{first}");
    assert!(has(&first, "#2 copying: 2.50MB "), "{first}");
    assert!(has(&first, "#3 transferring context: 6B "), "{first}");
    assert!(
        !first.contains("#3 copying"),
        "a small copy shows no bytes: {first}"
    );
    let again = build();
    assert!(has(&again, "#2 transferring context: 0B "), "{again}");
    assert!(!again.contains("copying"), "{again}");
    // On a terminal the counts show under their step, and stay there.
    let Some(()) = require("script (util-linux)", have("script")) else {
        return;
    };
    let transcript = lade.scratch.path().join("bytes-tty.out");
    let command = format!(
        "{} --root {} build --no-cache {dir}",
        env!("CARGO_BIN_EXE_lade"),
        lade.root.path().display(),
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &command])
        .arg(&transcript)
        .env("COLUMNS", "120")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let screen = String::from_utf8_lossy(&std::fs::read(&transcript).unwrap()).to_string();
    assert!(screen.contains("=> transferring context: 0B "), "{screen}");
    assert!(screen.contains("=> copying: 2.50MB "), "{screen}");
}

/// Builds `dockerfile` in a context holding `file.txt`; asserts failure mentioning `expected`, images unchanged.
fn assert_build_fails(lade: &Lade, dockerfile: &str, expected: &str) {
    let context = context_with(dockerfile);
    std::fs::write(context.path().join("file.txt"), "x").unwrap();
    let before = lade.ok(&["images", "-q", "--no-trunc"]);
    let index = std::fs::read(lade.root.path().join("index.json")).unwrap();
    let out = lade.run(&["build", "-t", "broken:1", context.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the build of {dockerfile:?} succeeded:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in:\n{stderr}"
    );
    assert_eq!(lade.ok(&["images", "-q", "--no-trunc"]), before);
    assert_eq!(
        std::fs::read(lade.root.path().join("index.json")).unwrap(),
        index
    );
}

#[test]
fn failures_are_clear_and_leave_the_images_alone() {
    let Some((lade, _base)) = setup() else { return };
    assert_build_fails(
        &lade,
        "FROM busybox:local\nCOPY missing.txt /\n",
        "missing.txt",
    );
    assert_build_fails(
        &lade,
        "FROM busybox:local\nRUN echo about to fail && exit 42\n",
        "exited with code 42",
    );
    assert_build_fails(
        &lade,
        "FROM busybox:local\nRUN echo about to fail && exit 42\n",
        "about to fail",
    );
    assert_build_fails(
        &lade,
        "FROM busybox:local\nCOPY --from=nope /x /y\n",
        "nope",
    );
    assert_build_fails(&lade, "FROM a AS b\nFROM b AS a\n", "Dockerfile:");
    assert_build_fails(&lade, "FROM busybox:local\nFROBNICATE x\n", "FROBNICATE");
    assert_build_fails(&lade, "FROM not-here:1\n", "not in the local store");
}

#[test]
fn prune_keeps_the_build_cache_and_builder_prune_clears_it() {
    let Some((lade, _base)) = setup() else { return };
    let hello = fixture("hello");
    lade.ok(&["build", "-q", "-t", "keep:1", &hello]);
    lade.ok(&["rmi", "keep:1"]);
    lade.ok(&["prune"]);
    let rebuilt = lade.run(&["build", "--progress=plain", "-t", "keep:1", &hello]);
    let log = String::from_utf8_lossy(&rebuilt.stderr);
    assert_eq!(
        log.matches(" CACHED").count(),
        3,
        "prune must keep cached layers:\n{log}"
    );

    let out = lade.ok(&["builder", "prune", "-f"]);
    assert!(out.starts_with("Deleted build cache records: "), "{out}");
    let layers = lade.root.path().join("snapshots/layers");
    assert!(!layers.exists() || std::fs::read_dir(&layers).unwrap().next().is_none());
    let rebuilt = lade.run(&["build", "--progress=plain", "-t", "keep:1", &hello]);
    let log = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(rebuilt.status.success(), "{log}");
    assert_eq!(log.matches(" CACHED").count(), 0, "{log}");
    assert_eq!(
        lade.ok(&["run", "--rm", "keep:1"]),
        "Hello from lade (built by lade)\n"
    );
}

#[test]
fn heredocs_run_as_scripts_and_copy_as_files() {
    let Some((lade, _base)) = setup() else { return };
    let context = context_with(
        "FROM busybox:local\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\nCOPY <<EOF /h2\nhello heredoc\nEOF\n",
    );
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "heredoc:1",
        context.path().to_str().unwrap(),
    ]);
    assert_eq!(
        lade.ok(&["run", "--rm", "heredoc:1", "cat", "/h1", "/h2"]),
        "one\ntwo\nhello heredoc\n"
    );
}

/// Two independent stages wait for each other through a shared cache mount: built one after the other, the first
/// would give up; built in parallel, both see each other.
#[test]
fn independent_stages_run_in_parallel() {
    let Some((lade, _base)) = setup() else { return };
    let id = format!("rendezvous-{}", std::process::id());
    let stage = |me: &str, other: &str| {
        format!(
            "FROM busybox:local AS {me}\nRUN --mount=type=cache,id={id},target=/sync touch /sync/{me} && \
             for i in $(seq 1 300); do [ -f /sync/{other} ] && exit 0; sleep 0.1; done; echo {other} never came; exit 1\n"
        )
    };
    let dockerfile = format!(
        "{}{}FROM busybox:local\nCOPY --from=left /etc/passwd /left\nCOPY --from=right /etc/passwd /right\n",
        stage("left", "right"),
        stage("right", "left")
    );
    let context = context_with(&dockerfile);
    let out = lade.run(&[
        "build",
        "-t",
        "parallel:1",
        context.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn secrets_and_ssh_agents_reach_run_and_stay_out_of_the_image() {
    let Some((lade, _base)) = setup() else { return };
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "s3cret").unwrap();
    let socket = dir.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox:local\n\
         RUN --mount=type=secret,id=token cat /run/secrets/token > /seen-secret\n\
         RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /seen-ssh\n",
    )
    .unwrap();
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "mounts:1",
        "--secret",
        &format!("id=token,src={}", secret.display()),
        "--ssh",
        &format!("default={}", socket.display()),
        context.to_str().unwrap(),
    ]);
    let script = "cat /seen-secret; echo; cat /seen-ssh; \
                  test ! -e /run/secrets/token && test ! -e /run/buildkit/ssh_agent.0 && echo clean";
    assert_eq!(
        lade.ok(&["run", "--rm", "mounts:1", "sh", "-c", script]),
        "s3cret\n/run/buildkit/ssh_agent.0\nclean\n"
    );

    // A secret from an environment variable, as buildx takes them.
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen-env\n",
    )
    .unwrap();
    let built = lade
        .command()
        .env("LADE_TEST_TOKEN", "from-env")
        .args([
            "build",
            "-q",
            "-t",
            "mounts:env",
            "--secret",
            "id=tok,env=LADE_TEST_TOKEN",
        ])
        .arg(&context)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(
        lade.ok(&["run", "--rm", "mounts:env", "cat", "/seen-env"]),
        "from-env"
    );

    // Without --ssh an SSH mount is left out (SSH_AUTH_SOCK is still set, as BuildKit does), unless it is required.
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=ssh,target=/agent test ! -e /agent && echo \"$SSH_AUTH_SOCK\" > /no-agent\n",
    )
    .unwrap();
    lade.ok(&["build", "-q", "-t", "mounts:2", context.to_str().unwrap()]);
    assert_eq!(
        lade.ok(&["run", "--rm", "mounts:2", "cat", "/no-agent"]),
        "/agent\n"
    );
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=ssh,required=true true\n",
    )
    .unwrap();
    let err = lade.fails(&["build", "-q", context.to_str().unwrap()]);
    assert!(err.contains("lade build --ssh default"), "{err}");
    let err = lade.fails(&[
        "build",
        "--ssh",
        &format!("default={}", secret.display()),
        context.to_str().unwrap(),
    ]);
    assert!(err.contains("not an agent socket"), "{err}");
}

#[test]
fn run_mounts_host_volumes_like_docker_run_v() {
    let Some((lade, _base)) = setup() else { return };
    let host = tempfile::tempdir().unwrap();
    let dir = host.path().join("data");
    let volume = format!("{}:/data", dir.display());
    lade.ok(&[
        "run",
        "--rm",
        "-v",
        &volume,
        "busybox:local",
        "sh",
        "-c",
        "echo hi > /data/x",
    ]);
    assert_eq!(std::fs::read_to_string(dir.join("x")).unwrap(), "hi\n");
    let read_only = format!("{volume}:ro");
    let denied = lade.run(&[
        "run",
        "--rm",
        "-v",
        &read_only,
        "busybox:local",
        "sh",
        "-c",
        "cat /data/x && echo no > /data/y",
    ]);
    assert!(!denied.status.success());
    // The container's stdout and stderr stay apart, as with `docker run`.
    assert_eq!(String::from_utf8_lossy(&denied.stdout), "hi\n");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Read-only file system"));
    assert!(!dir.join("y").exists());
    let err = lade.fails(&["run", "--rm", "-v", "named:/data", "busybox:local", "true"]);
    assert!(err.contains("named volumes"), "{err}");
}

#[test]
fn run_i_passes_stdin_through() {
    use std::io::Write;
    let Some((lade, _base)) = setup() else { return };
    let mut child = lade
        .command()
        .args(["run", "--rm", "-i", "busybox:local", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "PIPED IN\n");
    let err = lade.fails(&["run", "--rm", "-t", "busybox:local", "true"]);
    assert!(err.contains("the input device is not a TTY"), "{err}");
}

#[test]
fn warnings_print_once_and_check_directives_silence_them() {
    let lade = Lade::new();
    let dockerfile = "FROM scratch\nENV A=1 \\\n\n    B=2\n";
    let context = context_with(dockerfile);
    let dir = context.path().to_str().unwrap();
    let output = lade.run(&["build", "-q", "-t", "warned:1", dir]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Empty continuation line").count(),
        1,
        "{stderr}"
    );
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("# check=skip=NoEmptyContinuation\n{dockerfile}"),
    )
    .unwrap();
    let output = lade.run(&["build", "-q", "-t", "silenced:1", dir]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Empty continuation line"), "{stderr}");
}

#[test]
fn output_shorthands_and_filesystem_tarballs() {
    let lade = Lade::new();
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("f"), "data\n").unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY f /f\n").unwrap();
    let context = context.to_str().unwrap();
    // `-o DIR` is type=local.
    let dir = work.path().join("dir");
    lade.ok(&["build", "-q", "-o", dir.to_str().unwrap(), context]);
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "data\n");
    // type=tar writes the filesystem as a tarball.
    let tarball = work.path().join("fs.tar");
    let dest = format!("type=tar,dest={}", tarball.display());
    lade.ok(&["build", "-q", "-o", &dest, context]);
    let names = |bytes: &[u8]| -> Vec<String> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    };
    assert_eq!(names(&std::fs::read(&tarball).unwrap()), ["f"]);
    // `-o -` sends that tarball to stdout, which then carries nothing else: -q's image ID goes to stderr.
    let output = lade.run(&["build", "-q", "-o", "-", context]);
    assert!(output.status.success());
    assert_eq!(names(&output.stdout), ["f"]);
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("sha256:"));
}

#[test]
fn add_host_reaches_run_steps_and_containers() {
    let Some((lade, _base)) = setup() else { return };
    let work = context_with("FROM busybox:local\nRUN cat /etc/hosts > /hosts\n");
    let context = work.path().to_str().unwrap();
    lade.ok(&[
        "build",
        "-q",
        "--add-host",
        "db:10.0.0.5",
        "-t",
        "hosts:1",
        context,
    ]);
    // BuildKit's own hosts file, then the added entries.
    let expected =
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                    10.0.0.5\tdb\n";
    assert_eq!(
        lade.ok(&["run", "--rm", "hosts:1", "cat", "/hosts"]),
        expected
    );
    let seen = lade.ok(&[
        "run",
        "--rm",
        "--add-host",
        "v6=fd00::1",
        "busybox:local",
        "tail",
        "-n1",
        "/etc/hosts",
    ]);
    assert_eq!(seen, "fd00::1\tv6\n");
    let err = lade.fails(&["build", "--add-host", "db", context]);
    assert!(err.contains("expected HOST:IP"), "{err}");
}

#[test]
fn host_network_and_insecure_runs_need_their_entitlements() {
    let Some((lade, _base)) = setup() else { return };
    let host = context_with("FROM busybox:local\nRUN --network=host true\n");
    let host = host.path().to_str().unwrap();
    let err = lade.fails(&["build", host]);
    assert!(
        err.contains("Dockerfile:2")
            && err.contains("RUN --network=host needs the network.host entitlement")
            && err.contains("--allow network.host"),
        "{err}"
    );
    lade.ok(&["build", "-q", "--allow", "network.host", host]);

    let insecure = context_with(
        "FROM busybox:local\nRUN --security=insecure grep -E '^(CapEff|Seccomp):' /proc/self/status > /status\n",
    );
    let insecure = insecure.path().to_str().unwrap();
    let err = lade.fails(&["build", "--allow", "network.host", insecure]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("--allow security.insecure"),
        "{err}"
    );
    lade.ok(&[
        "build",
        "-q",
        "--allow",
        "security.insecure",
        "-t",
        "insecure:1",
        insecure,
    ]);
    let status = lade.ok(&["run", "--rm", "insecure:1", "cat", "/status"]);
    assert!(status.contains("Seccomp:\t0\n"), "{status}");
    assert!(!status.contains("CapEff:\t00000000a80425fb"), "{status}");
    let err = lade.fails(&["build", "--allow", "network.bridge", insecure]);
    assert!(err.contains("network.bridge"), "{err}");
}

#[test]
fn security_opt_changes_the_seccomp_profile_of_build_and_run() {
    let Some((lade, _base)) = setup() else { return };
    let work = context_with("FROM busybox:local\nRUN unshare -U true\n");
    let context = work.path().to_str().unwrap();
    let err = lade.fails(&["build", context]);
    assert!(
        err.contains("exited with code 1") && err.contains("Operation not permitted"),
        "{err}"
    );
    lade.ok(&[
        "build",
        "-q",
        "--security-opt",
        "seccomp=unconfined",
        context,
    ]);
    // A profile of one's own: Docker's format, everything allowed but mkdir.
    let profile = work.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let custom = format!("seccomp={}", profile.display());
    lade.ok(&["build", "-q", "--security-opt", &custom, context]);

    let status = |opts: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(opts);
        args.extend(["busybox:local", "grep", "^Seccomp:", "/proc/self/status"]);
        lade.ok(&args)
    };
    assert_eq!(status(&[]), "Seccomp:\t2\n");
    assert_eq!(
        status(&["--security-opt", "seccomp=unconfined"]),
        "Seccomp:\t0\n"
    );
    let out = lade.run(&[
        "run",
        "--rm",
        "--security-opt",
        &custom,
        "busybox:local",
        "mkdir",
        "/x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    let err = lade.fails(&[
        "run",
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox:local",
        "true",
    ]);
    assert!(err.contains("/nonexistent.json"), "{err}");
    let err = lade.fails(&["build", "--security-opt", "apparmor=unconfined", context]);
    assert!(err.contains("apparmor=unconfined"), "{err}");
}

/// The live view on a terminal (run in a pty by util-linux's `script`): a failed step is marked ERROR and its last
/// output lines stay under it; the step before it is DONE.
#[test]
fn tty_display_marks_the_failed_step_and_keeps_its_last_lines() {
    let Some((lade, _base)) = setup() else { return };
    let Some(()) = require("script (util-linux)", have("script")) else {
        return;
    };
    let context = context_with(
        "FROM busybox:local\nRUN echo first-step\n\
         RUN for i in 1 2 3 4 5 6 7 8; do if [ $((i % 2)) = 0 ]; then echo line$i >&2; else echo line$i; fi; done; \
         sleep 1; exit 3\n",
    );
    let transcript = lade.scratch.path().join("tty.out");
    let command = format!(
        "{} --root {} build --no-cache {}",
        env!("CARGO_BIN_EXE_lade"),
        lade.root.path().display(),
        context.path().display()
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &command])
        .arg(&transcript)
        .env("COLUMNS", "120")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the build fails");
    let screen = String::from_utf8_lossy(&std::fs::read(&transcript).unwrap()).to_string();
    let error_at = screen
        .rfind("ERROR")
        .expect("the failed step is marked ERROR");
    let after = &screen[error_at..];
    for kept in ["line3", "line8"] {
        assert!(
            after.contains(&format!("│ {kept}")),
            "{kept} stays under the failed step: {after}"
        );
    }
    assert!(
        !after.contains("│ line2"),
        "only the last lines are kept: {after}"
    );
    // Odd lines went to stdout, even ones to stderr: they show in the order written.
    let positions: Vec<usize> = (3..=8)
        .map(|i| after.find(&format!("│ line{i}")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{after}");
    assert!(screen.contains("RUN echo first-step DONE"), "{screen}");
    assert!(after.contains("the command exited with code 3"), "{after}");
}
