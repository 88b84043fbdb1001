//! User and group names resolved through a root filesystem's `/etc/passwd` and `/etc/group`.
//!
//! Used for `USER` (the process identity of `RUN`) and `COPY --chown` (the owner of copied files), both of which
//! look names up in the image being built, never on the host.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a user or group could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name that the image's `/etc/passwd` does not list.
    #[error("unable to find user {name}: no matching entries in the image's /etc/passwd")]
    UnknownUser {
        /// The user name.
        name: String,
        /// The passwd file looked in, on the host.
        passwd: PathBuf,
    },
    /// A group name that the image's `/etc/group` does not list.
    #[error("unable to find group {name}: no matching entries in the image's /etc/group")]
    UnknownGroup {
        /// The group name.
        name: String,
        /// The group file looked in, on the host.
        group: PathBuf,
    },
    /// The image's passwd or group file could not be read, or is missing where a lookup needs it.
    #[error("reading {path}: {source}")]
    Read {
        /// The file, on the host.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The specification is empty or malformed (an empty user or group part).
    #[error("invalid user specification {0:?}")]
    Invalid(String),
}

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user ID.
    pub(crate) uid: u32,
    /// The primary group ID.
    pub(crate) gid: u32,
    /// Supplementary groups: every group of `/etc/group` listing the user by name, except the primary one.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd` (`/` when the user has no entry), for `HOME`.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a `USER` value (`user`, `uid`, `user:group`, `uid:gid`) as a container runtime does: a user without a
/// group gets its primary group from `/etc/passwd` (0 when the uid has no entry).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<Identity, UserError> {
    let (user, group) = split(spec)?;
    let passwd = read_passwd(rootfs)?;
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user)
                .ok_or_else(|| unknown_user(rootfs, user))?,
        ),
    };
    let (uid, primary, name, home) = match entry {
        Some(e) => (e.uid, e.gid, Some(e.name.clone()), e.home.clone()),
        None => (
            user.parse().expect("numeric when not found"),
            0,
            None,
            "/".to_string(),
        ),
    };
    let groups = read_groups(rootfs)?;
    let gid = match group {
        Some(group) => lookup_group(rootfs, &groups, group)?,
        None => primary,
    };
    let mut additional_gids: Vec<u32> = match &name {
        Some(name) => groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name) && g.gid != gid)
            .map(|g| g.gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.dedup();
    Ok(Identity {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves a `--chown` value as BuildKit (v0.8) does: `user[:group]`, each a name or an id. A user name brings its
/// primary group from `/etc/passwd`, a uid brings itself as the gid; an empty user is root (`:group`), and an empty
/// group after the colon is group 0 (`user:`). A name with no entry is no error: an unknown user is 0:0, an unknown
/// group leaves the user's gid; but looking a name up in an image without the file (`/etc/passwd` or `/etc/group`)
/// is one.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32), UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let (uid, primary) = if user.is_empty() {
        (0, 0)
    } else if let Ok(uid) = user.parse::<u32>() {
        (uid, uid)
    } else {
        require_table(rootfs, "etc/passwd")?;
        read_passwd(rootfs)?
            .iter()
            .find(|e| e.name == user)
            .map_or((0, 0), |e| (e.uid, e.gid))
    };
    let gid = match group {
        None => primary,
        Some("") => 0,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                require_table(rootfs, "etc/group")?;
                read_groups(rootfs)?
                    .iter()
                    .find(|g| g.name == group)
                    .map_or(primary, |g| g.gid)
            }
        },
    };
    Ok((uid, gid))
}

/// Fails when the image has no `relative` (followed inside the image), for lookups that need the file.
fn require_table(rootfs: &Path, relative: &str) -> Result<(), UserError> {
    match crate::tree::resolve_existing(rootfs, Path::new(relative)) {
        Some(path) if path.is_file() => Ok(()),
        _ => Err(UserError::Read {
            path: rootfs.join(relative),
            source: io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error()),
        }),
    }
}

fn split(spec: &str) -> Result<(&str, Option<&str>), UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(UserError::Invalid(spec.to_string()));
    }
    Ok((user, group))
}

fn lookup_group(rootfs: &Path, groups: &[GroupEntry], group: &str) -> Result<u32, UserError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    groups
        .iter()
        .find(|g| g.name == group)
        .map(|g| g.gid)
        .ok_or_else(|| UserError::UnknownGroup {
            name: group.to_string(),
            group: rootfs.join("etc/group"),
        })
}

fn unknown_user(rootfs: &Path, name: &str) -> UserError {
    UserError::UnknownUser {
        name: name.to_string(),
        passwd: rootfs.join("etc/passwd"),
    }
}

/// The lines of a file of the image, split on `:`; a missing file has no lines.
fn read_table(rootfs: &Path, relative: &str) -> Result<Vec<Vec<String>>, UserError> {
    let shown = rootfs.join(relative);
    let read_err = |source| UserError::Read {
        path: shown.clone(),
        source,
    };
    // Symlinks (the file itself may be one) are followed inside the image, never to the host's files.
    let Some(path) = crate::tree::resolve_existing(rootfs, Path::new(relative)) else {
        return Ok(Vec::new());
    };
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect())
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>, UserError> {
    Ok(read_table(rootfs, "etc/passwd")?
        .into_iter()
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.clone(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f
                    .get(5)
                    .filter(|h| !h.is_empty())
                    .cloned()
                    .unwrap_or_else(|| "/".into()),
            })
        })
        .collect())
}

fn read_groups(rootfs: &Path) -> Result<Vec<GroupEntry>, UserError> {
    Ok(read_table(rootfs, "etc/group")?
        .into_iter()
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.clone(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nappgrp:x:1001:\nwheel:x:10:app,other\naudio:x:29:app\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn user_names_and_ids_resolve_with_groups() {
        let dir = rootfs();
        let app = resolve_user(dir.path(), "app").unwrap();
        assert_eq!(
            app,
            Identity {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 29],
                home: "/home/app".into(),
            }
        );
        assert_eq!(resolve_user(dir.path(), "1000").unwrap(), app);
        assert_eq!(resolve_user(dir.path(), "app:wheel").unwrap().gid, 10);
        assert_eq!(
            resolve_user(dir.path(), "4242:7").unwrap(),
            Identity {
                uid: 4242,
                gid: 7,
                additional_gids: vec![],
                home: "/".into(),
            }
        );
        assert_eq!(resolve_user(dir.path(), "4242").unwrap().gid, 0);
        assert!(matches!(
            resolve_user(dir.path(), "nobody"),
            Err(UserError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve_user(dir.path(), "app:nogroup"),
            Err(UserError::UnknownGroup { .. })
        ));
        assert!(matches!(
            resolve_user(dir.path(), ":0"),
            Err(UserError::Invalid(_))
        ));
    }

    #[test]
    fn chown_resolves_as_buildkit_does() {
        let dir = rootfs();
        // A name brings its primary group, an id brings itself; empty halves are 0.
        assert_eq!(resolve_chown(dir.path(), "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(dir.path(), "app:wheel").unwrap(), (1000, 10));
        assert_eq!(resolve_chown(dir.path(), "app:").unwrap(), (1000, 0));
        assert_eq!(resolve_chown(dir.path(), "55:wheel").unwrap(), (55, 10));
        assert_eq!(resolve_chown(dir.path(), "55").unwrap(), (55, 55));
        assert_eq!(resolve_chown(dir.path(), "55:").unwrap(), (55, 0));
        assert_eq!(resolve_chown(dir.path(), ":wheel").unwrap(), (0, 10));
        assert_eq!(resolve_chown(dir.path(), ":").unwrap(), (0, 0));
        // Names without an entry: an unknown user is root, an unknown group keeps the user's gid.
        assert_eq!(resolve_chown(dir.path(), "nosuch").unwrap(), (0, 0));
        assert_eq!(resolve_chown(dir.path(), "nosuch:wheel").unwrap(), (0, 10));
        assert_eq!(
            resolve_chown(dir.path(), "app:nosuch").unwrap(),
            (1000, 1001)
        );
        assert_eq!(resolve_chown(dir.path(), "55:nosuch").unwrap(), (55, 55));
        assert_eq!(resolve_chown(dir.path(), ":nosuch").unwrap(), (0, 0));
        let empty = tempfile::tempdir().unwrap();
        assert!(resolve_chown(empty.path(), "app").is_err());
        // An image whose /etc/passwd links to the host's must not read the host's.
        fs::create_dir(empty.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("etc/passwd"),
            empty.path().join("etc/passwd"),
        )
        .unwrap();
        assert!(resolve_chown(empty.path(), "app").is_err());
        std::os::unix::fs::symlink("/etc/group", empty.path().join("etc/group")).unwrap();
        assert!(resolve_chown(empty.path(), "0:appgrp").is_err());
        assert_eq!(resolve_chown(empty.path(), "1:2").unwrap(), (1, 2));
    }
}
