//! Rootless builds: an unprivileged user with a subordinate id range (made here, as root) builds a multi-stage image
//! with RUN, a cache mount and `COPY --chown` into `$XDG_DATA_HOME/lade`, and gets the image root builds (same ID
//! with SOURCE_DATE_EPOCH), files of other owners included; a user without a range is told which file to edit.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{have, lade_with_busybox, require, BusyboxBase};

/// The user with a subordinate range, and the one without.
const USER: &str = "lade-rootless";
const NO_RANGE_USER: &str = "lade-nosubids";

const MULTI_STAGE: &str = r#"FROM busybox:local AS build
RUN --mount=type=cache,target=/cache echo cached > /cache/x && mkdir /out && cp /cache/x /out/from-cache && grep ^Seccomp: /proc/self/status > /out/seccomp
COPY --chown=1000:1000 f.txt /out/owned
RUN chown 1234:2345 /out/from-cache && id -u > /out/uid
FROM busybox:local
COPY --from=build /out /out
COPY --chown=app f.txt /app-owned
RUN mkdir -p /o/a && touch /o/a/f && stat -c '%u:%g %n' /out/* /app-owned > /listing
RUN rm -rf /o && mkdir /o && touch /o/b
"#;

fn as_root() -> Result<(), String> {
    match rustix::process::geteuid().is_root() {
        true => Ok(()),
        false => Err("rootless tests make users: run them as root".into()),
    }
}

fn sh(command: &str) -> Output {
    Command::new("sh").args(["-c", command]).output().unwrap()
}

/// Creates the test users once: one with a subordinate id range, one without. Test processes run at once, so
/// they take turns (a lock file) at editing the user databases.
fn users() -> Result<(), String> {
    static MADE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let lock = std::fs::File::create("/tmp/lade-rootless-test-users.lock")
            .map_err(|e| format!("the users lock: {e}"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| format!("locking the users lock: {e}"))?;
        have("useradd")?;
        have("newuidmap")?;
        for user in [USER, NO_RANGE_USER] {
            if !sh(&format!("id -u {user}")).status.success() {
                let out = sh(&format!("useradd --create-home --user-group {user}"));
                if !out.status.success() {
                    return Err(format!("useradd {user}: {out:?}"));
                }
            }
        }
        let ranges = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
        if !ranges.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            let out = sh(&format!(
                "usermod --add-subuids 300000-365535 --add-subgids 300000-365535 {USER}"
            ));
            if !out.status.success() {
                return Err(format!("usermod: {out:?}"));
            }
        }
        // useradd may have given the second user a range: take it away.
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&format!("{NO_RANGE_USER}:")))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(file, kept).map_err(|e| format!("{file}: {e}"))?;
        }
        Ok(())
    })
    .clone()
}

/// A directory the test users can read, with a copy of the lade binary and a writable data home per user.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        make_readable(dir.path());
        std::fs::copy(env!("CARGO_BIN_EXE_lade"), dir.path().join("lade")).unwrap();
        Workspace { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The user's `$XDG_DATA_HOME`, made and owned by them.
    fn data_home(&self, user: &str) -> PathBuf {
        let home = self.path().join(format!("data-{user}"));
        if !home.exists() {
            std::fs::create_dir(&home).unwrap();
            assert!(sh(&format!("chown {user}: {}", home.display()))
                .status
                .success());
        }
        home
    }

    /// Runs lade as `user` (no `--root`: the store is the user's default), with SOURCE_DATE_EPOCH set.
    fn lade_as(&self, user: &str, args: &[&str]) -> Output {
        let data_home = self.data_home(user);
        Command::new("runuser")
            .args([
                "-u",
                user,
                "--",
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            ])
            .arg(format!("HOME={}", data_home.display()))
            .arg(format!("XDG_DATA_HOME={}", data_home.display()))
            .arg("SOURCE_DATE_EPOCH=1700000000")
            .arg(self.path().join("lade"))
            .arg("--progress=plain")
            .args(args)
            .output()
            .unwrap()
    }

    fn ok_as(&self, user: &str, args: &[&str]) -> String {
        let out = self.lade_as(user, args);
        assert!(
            out.status.success(),
            "lade {args:?} as {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn make_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn setup() -> Option<(Workspace, BusyboxBase)> {
    require("root", as_root())?;
    require("runc", have("runc"))?;
    require("test users with subordinate ids", users())?;
    let base = BusyboxBase::make(None)?;
    Some((Workspace::new(), base))
}

#[test]
fn rootless_builds_give_the_image_root_builds() {
    let Some((work, base)) = setup() else { return };
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), MULTI_STAGE).unwrap();
    std::fs::write(context.join("f.txt"), "f\n").unwrap();
    assert!(sh(&format!("chmod -R a+rX {}", context.display()))
        .status
        .success());
    let context = context.to_str().unwrap();

    // Root builds it, and hands the user the same base.
    let root = lade_with_busybox(&base);
    let saved = work.path().join("busybox.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "busybox:local"]);
    make_readable(&saved);
    let out = root
        .command()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "-q", "-t", "app:1", context])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let root_id = String::from_utf8(out.stdout).unwrap();

    work.ok_as(USER, &["load", "-i", saved.to_str().unwrap()]);
    let user_id = work.ok_as(USER, &["build", "-q", "-t", "app:1", context]);
    assert_eq!(user_id, root_id, "the rootless build differs from root's");
    assert!(work.data_home(USER).join("lade/index.json").is_file());
    // Inside, the user was root under Docker's seccomp profile; other owners' ids stayed in the layers.
    let listing = work.ok_as(
        USER,
        &[
            "run",
            "--rm",
            "app:1",
            "cat",
            "/out/uid",
            "/out/seccomp",
            "/listing",
        ],
    );
    assert!(listing.starts_with("0\nSeccomp:\t2\n"), "{listing}");
    assert!(listing.contains("1234:2345 /out/from-cache\n"), "{listing}");
    assert!(listing.contains("1000:1000 /out/owned\n"), "{listing}");
    assert!(listing.contains("1000:1000 /app-owned\n"), "{listing}");
    // Moving images needs no namespace: the user's save loads as root's image.
    let exported = work.data_home(USER).join("exported.tar");
    work.ok_as(USER, &["save", "-o", exported.to_str().unwrap(), "app:1"]);
    let loaded = root.ok(&["load", "-i", exported.to_str().unwrap()]);
    assert!(loaded.contains("app:1"), "{loaded}");
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.Id}}", "app:1"]).trim(),
        root_id.trim()
    );
    // The fixtures too.
    for fixture in ["hello", "multistage", "nodeapp"] {
        let copy = work.path().join(fixture);
        let source = common::workspace().join("fixtures").join(fixture);
        assert!(sh(&format!(
            "cp -a {} {} && chmod -R a+rX {}",
            source.display(),
            copy.display(),
            copy.display()
        ))
        .status
        .success());
        let copy = copy.to_str().unwrap();
        let out = root
            .command()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "-q", copy])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let root_id = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            work.ok_as(USER, &["build", "-q", copy]),
            root_id,
            "{fixture}"
        );
    }
    // On Linux 5.11 and later the user's snapshots are overlays too (with user.overlay.* xattrs), not copies.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut version = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    if (version.next().unwrap(), version.next().unwrap()) >= (5, 11) {
        let root_mount = work.ok_as(
            USER,
            &[
                "run",
                "--rm",
                "app:1",
                "grep",
                " / / ",
                "/proc/self/mountinfo",
            ],
        );
        assert!(root_mount.contains(" - overlay "), "{root_mount}");
    }
    // A rebuild is cached, and the user can drop the cache (files owned by subordinate ids included).
    assert_eq!(
        work.ok_as(USER, &["build", "-q", "-t", "app:1", context]),
        root_id
    );
    work.ok_as(USER, &["builder", "prune", "-f"]);
    assert_eq!(work.ok_as(USER, &["build", "-q", context]), root_id);
}

#[test]
fn rootless_without_subordinate_ids_names_the_file_to_edit() {
    let Some((work, _base)) = setup() else { return };
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM busybox:local\n").unwrap();
    make_readable(&context);
    let out = work.lade_as(NO_RANGE_USER, &["build", context.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/etc/subuid")
            && stderr.contains(NO_RANGE_USER)
            && stderr.contains("usermod"),
        "{stderr}"
    );
    // Commands that only move images need no range.
    assert!(work.lade_as(NO_RANGE_USER, &["images"]).status.success());
}

#[test]
fn rootless_push_and_pull_move_images_through_a_registry() {
    let Some((work, base)) = setup() else { return };
    let registry =
        common::LadeRegistry::start(&["--root", work.path().join("registry").to_str().unwrap()]);
    let root = lade_with_busybox(&base);
    let saved = work.path().join("busybox.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "busybox:local"]);
    make_readable(&saved);
    work.ok_as(USER, &["load", "-i", saved.to_str().unwrap()]);
    let context = work.path().join("push-context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox:local\nRUN echo built rootless > /marker && chown 1000:1000 /marker\n",
    )
    .unwrap();
    assert!(sh(&format!("chmod -R a+rX {}", context.display()))
        .status
        .success());
    let id = work.ok_as(
        USER,
        &["build", "-q", "-t", "app:pushed", context.to_str().unwrap()],
    );
    let target = format!("{}/rootless/app:1", registry.host);
    work.ok_as(USER, &["tag", "app:pushed", &target]);
    work.ok_as(USER, &["push", &target]);
    // Root pulls what the user pushed; the user pulls it back into an emptied store.
    root.ok(&["pull", &target]);
    let listing = root.ok(&["run", "--rm", &target, "ls", "-n", "/marker"]);
    assert!(
        listing.contains(" 1000 "),
        "owner kept through push and pull: {listing}"
    );
    work.ok_as(USER, &["rmi", "-f", &target, "app:pushed"]);
    work.ok_as(USER, &["pull", &target]);
    let marker = work.ok_as(USER, &["run", "--rm", &target, "cat", "/marker"]);
    assert_eq!(marker, "built rootless\n");
    assert_eq!(
        work.ok_as(USER, &["inspect", "-f", "{{.Id}}", &target])
            .trim(),
        root.ok(&["inspect", "-f", "{{.Id}}", &target]).trim(),
    );
    assert!(!id.is_empty());
}
