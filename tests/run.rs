//! `lade run` end to end with the real OCI runtime: a running container keeps its filesystem through every prune
//! (which names what it skipped), `--name` is unique among running containers, a missing or non-executable command
//! exits 127 or 126 with Docker's message, `-it` gives the command a terminal, and an image not in the store is
//! pulled first (`--pull missing|always|never`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{have, lade_with_busybox, require, BusyboxBase, Lade};

fn setup() -> Option<(Lade, BusyboxBase)> {
    require("runc", have("runc"))?;
    let base = BusyboxBase::make(None)?;
    let lade = lade_with_busybox(&base);
    Some((lade, base))
}

#[test]
fn prune_while_a_container_runs_keeps_its_filesystem_and_says_what_it_skipped() {
    let Some((lade, _base)) = setup() else { return };
    // Prunes with no container running remove the unpacked layers of an earlier run.
    lade.ok(&["run", "busybox:local", "true"]);
    let layers = lade.root.path().join("snapshots/layers");
    assert!(std::fs::read_dir(&layers).unwrap().count() > 0);

    let mut container = lade
        .command()
        .args([
            "run",
            "-i",
            "--name",
            "sleeper",
            "busybox:local",
            "sh",
            "-c",
            "ls /bin | wc -l; read line; ls /bin | wc -l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(container.stdout.take().unwrap());
    let mut before = String::new();
    stdout.read_line(&mut before).unwrap();
    let before: u32 = before.trim().parse().unwrap();
    assert!(before > 100, "busybox applets in /bin: {before}");

    let pruned = lade.ok(&["builder", "prune", "-f"]);
    assert!(
        pruned.contains("Skipped (in use): 1 unpacked layers"),
        "{pruned}"
    );
    assert!(
        pruned.contains("In use by container ") && pruned.contains("\"sleeper\""),
        "{pruned}"
    );
    let pruned = lade.ok(&["prune", "-f"]);
    assert!(pruned.contains("In use by container "), "{pruned}");
    // The image in use needs -f to be removed, and the name is taken while the container runs.
    let refused = lade.fails(&["rmi", "busybox:local"]);
    assert!(
        refused.contains(
            "unable to remove repository reference \"busybox:local\" (must force) - container "
        ),
        "{refused}"
    );
    let output = lade.run(&["run", "--name", "sleeper", "busybox:local", "true"]);
    assert_eq!(output.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Conflict. The container name \"/sleeper\" is already in use by container"),
        "{stderr}"
    );

    // The container still sees every file.
    use std::io::Write;
    container.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut after = String::new();
    stdout.read_line(&mut after).unwrap();
    assert_eq!(after.trim().parse::<u32>().unwrap(), before);
    assert!(container.wait().unwrap().success());

    // Once it exited, nothing is held: the next prune removes its layer and the name is free.
    let pruned = lade.ok(&["builder", "prune", "-f"]);
    assert!(!pruned.contains("Skipped"), "{pruned}");
    assert_eq!(std::fs::read_dir(&layers).unwrap().count(), 0);
    assert!(std::fs::read_dir(lade.root.path().join("leases"))
        .unwrap()
        .next()
        .is_none());
    lade.ok(&["run", "--name", "sleeper", "busybox:local", "true"]);
}

#[test]
fn commands_that_cannot_run_exit_like_docker() {
    let Some((lade, _base)) = setup() else { return };
    for (command, code, message) in [
        (
            "nope",
            127,
            "exec: \"nope\": executable file not found in $PATH",
        ),
        (
            "/nope",
            127,
            "exec: \"/nope\": stat /nope: no such file or directory",
        ),
        (
            "/etc/passwd",
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
    ] {
        let output = lade.run(&["run", "--rm", "busybox:local", command]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{command}: {stderr}");
        assert!(stderr.contains(message), "{command}: {stderr}");
        assert!(!stderr.contains("runc"), "{command}: {stderr}");
    }
    // A command reached through a symlink (/bin/sh -> busybox) runs.
    assert_eq!(
        lade.ok(&["run", "--rm", "busybox:local", "sh", "-c", "echo ok"]),
        "ok\n"
    );
    let output = lade.run(&["run", "--name", "bad name", "busybox:local", "true"]);
    assert_eq!(output.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"));
}

#[test]
fn run_it_gives_the_command_a_terminal() {
    let Some((lade, _base)) = setup() else { return };
    require("script", have("script"));
    // Without a terminal on stdin, -t is refused as Docker refuses it.
    let output = lade.run(&["run", "-it", "busybox:local", "true"]);
    assert_eq!(output.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the input device is not a TTY"));

    // Under `script`, lade's stdio is a pty; the container gets its own.
    let command = format!(
        "{} --root {} run -it --rm busybox:local sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-terminals; exit 3'",
        env!("CARGO_BIN_EXE_lade"),
        lade.root.path().display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
    assert!(stdout.contains("both-terminals"), "{stdout}");
}

#[test]
fn run_pulls_an_image_that_is_not_in_the_store() {
    let Some((lade, _base)) = setup() else { return };
    let root = tempfile::tempdir().unwrap();
    let registry = common::LadeRegistry::start(&["--root", root.path().to_str().unwrap()]);
    let image = format!("{}/bb:1", registry.host);
    lade.ok(&["tag", "busybox:local", &image]);
    lade.ok(&["push", &image]);

    let fresh = Lade::new();
    let output = fresh.run(&["run", "--pull", "never", &image, "true"]);
    assert_eq!(output.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("No such image"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = fresh.run(&["run", "--rm", &image, "echo", "pulled"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "pulled\n");
    assert!(
        stderr.contains(&format!("Unable to find image '{image}' locally")),
        "{stderr}"
    );
    // Now it is there: no pull, unless asked.
    let output = fresh.run(&["run", "--rm", &image, "true"]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("Pulling"));
    let output = fresh.run(&["run", "--rm", "--pull", "always", &image, "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Image is up to date for"), "{stderr}");
}
