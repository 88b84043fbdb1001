//! Rootless: for a user other than root, the commands that unpack layers and run containers (`build`, `run`,
//! `builder`) run inside a user and mount namespace of their own, where the user is root and the user's subordinate
//! ids (`/etc/subuid`, `/etc/subgid`) are ids 1 and up, so that files of other owners in layers keep their ids. The
//! namespace is made by util-linux's `unshare --map-root-user --map-auto`, which maps the ranges with `newuidmap` and
//! `newgidmap` (Debian's `uidmap`); lade then re-runs itself inside it, with the store the user would have had
//! outside (`$XDG_DATA_HOME/lade`). Other commands (push, pull, save, load, …) only read and write the user's own
//! files and run as the user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Set in the environment of the lade that runs inside the namespace.
const INSIDE: &str = "LADE_ROOTLESS_NAMESPACE";

/// Whether this process is the lade that runs inside its rootless namespace.
pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some_and(|v| v == "1")
}

/// For a user other than root (outside a namespace already made), re-runs this lade with the same arguments in a
/// user namespace mapping the user to root and their subordinate ids above it, with `store_root` as its store.
/// Returns only when nothing needs doing (root, or already inside).
pub fn enter(store_root: &Path) -> anyhow::Result<()> {
    if rustix::process::geteuid().is_root() || inside() {
        return Ok(());
    }
    let uid = rustix::process::getuid().as_raw();
    let user = user_name(uid).unwrap_or_else(|| uid.to_string());
    for (file, tool) in [("/etc/subuid", "newuidmap"), ("/etc/subgid", "newgidmap")] {
        if !has_range(Path::new(file), &user, uid) {
            bail!(
                "rootless lade needs a range of subordinate ids for {user}, and {file} has none: add one, e.g. \
                 `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}` (as root)"
            );
        }
        if find_tool(tool).is_none() {
            bail!("rootless lade needs {tool}: install it with `apt-get install uidmap` (as root)");
        }
    }
    let exe = std::env::current_exe().context("finding the lade binary to re-run")?;
    let error = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--map-auto", "--mount", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(INSIDE, "1")
        .env("LADE_ROOT", store_root)
        .exec();
    Err(error).context("running util-linux's unshare to enter a user namespace")
}

/// The login name of `uid` in `/etc/passwd`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid.to_string()).then(|| name.to_string())
    })
}

/// Whether a subordinate id file (`NAME-OR-UID:START:COUNT` lines) gives `user` (or `uid`) a non-empty range.
fn has_range(file: &Path, user: &str, uid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    ranges_of(&text, user, uid)
}

fn ranges_of(text: &str, user: &str, uid: u32) -> bool {
    text.lines().any(|line| {
        let fields: Vec<&str> = line.trim().split(':').collect();
        matches!(fields.as_slice(), [owner, start, count]
            if (*owner == user || *owner == uid.to_string())
                && start.parse::<u64>().is_ok()
                && count.parse::<u64>().is_ok_and(|c| c > 0))
    })
}

/// A tool on `PATH` or in `/usr/bin`.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:65536\nbob:300000:0\n# comment\n";
        assert!(ranges_of(text, "alice", 1000));
        assert!(ranges_of(text, "carol", 1001));
        assert!(!ranges_of(text, "bob", 1002), "an empty range is none");
        assert!(!ranges_of(text, "dave", 1003));
    }
}
