//! `RUN --mount=…` options parsed into a [`Mount`] (BuildKit's `commands_runmount.go`).
//!
//! The value is a CSV list of `key=value` fields (`type=cache,target=/root/.cache,sharing=locked`). Types are
//! `bind` (default), `cache`, `tmpfs`, `secret` and `ssh`, each with its own allowed options.

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A read-only (by default) bind of a path from the context or another stage.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A temporary in-memory file system.
    Tmpfs,
    /// A secret file (or environment variable).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    /// The name as written in a Dockerfile.
    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    /// Used by all writers at once (default).
    Shared,
    /// A new cache is created when the existing one is in use.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One `--mount` of a RUN instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount type.
    pub mount_type: MountType,
    /// `from=`: stage or image the source comes from.
    pub from: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// Read-only (bind and secret/ssh default to true, cache and tmpfs to false).
    pub read_only: bool,
    /// `id=`: cache, secret or ssh id.
    pub id: Option<String>,
    /// `sharing=` for cache mounts.
    pub sharing: Option<CacheSharing>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `size=` in bytes for tmpfs mounts.
    pub size: Option<u64>,
    /// `env=`: expose a secret as an environment variable.
    pub env: Option<String>,
}

/// Splits a CSV record (`a,"b,c",d`) into fields, like Go's `encoding/csv` for one line.
fn csv_fields(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(ch) => field.push(ch),
                    None => {
                        return Err(format!("extraneous or missing \" in quoted-field: {text}"))
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(format!("extraneous or missing \" in quoted-field: {text}")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(format!("bare \" in non-quoted-field: {text}")),
                    Some(ch) => field.push(ch),
                }
            }
            fields.push(field);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512kb`, `100` (binary multiples).
pub fn parse_ram_size(value: &str) -> Option<u64> {
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_end);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((number * multiplier) as u64)
}

/// Parses a `--mount` value. Fields whose value still contains `$` (to be expanded later) are not checked
/// for being numbers and stay unset until the mount is parsed again after expansion.
pub fn parse_mount(text: &str) -> Result<Mount, String> {
    let fields = csv_fields(text)?;
    let mut mount_type = MountType::Bind;
    for field in &fields {
        if let Some((key, value)) = field.split_once('=') {
            if key.eq_ignore_ascii_case("type") {
                mount_type = MountType::parse(value)
                    .ok_or_else(|| format!("unsupported mount type \"{value}\""))?;
            }
        }
    }
    let mut mount = Mount {
        mount_type,
        from: None,
        source: None,
        target: None,
        read_only: false,
        id: None,
        sharing: None,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
    };
    let mut read_only_given = false;
    let is_secret_or_ssh = matches!(mount_type, MountType::Secret | MountType::Ssh);
    let deferred = |value: &str| value.contains('$');
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), Some(value)),
            None => (field.to_ascii_lowercase(), None),
        };
        let bool_value = |value: Option<&str>| -> Result<Option<bool>, String> {
            match value {
                None => Ok(Some(true)),
                Some(text) if deferred(text) => Ok(None),
                Some(text) => parse_bool(text)
                    .map(Some)
                    .ok_or_else(|| format!("invalid value for {key}: {text}")),
            }
        };
        match key.as_str() {
            "readonly" | "ro" => {
                read_only_given = true;
                if let Some(read_only) = bool_value(value)? {
                    mount.read_only = read_only;
                }
                continue;
            }
            "readwrite" | "rw" => {
                read_only_given = true;
                if let Some(read_write) = bool_value(value)? {
                    mount.read_only = !read_write;
                }
                continue;
            }
            "required" if is_secret_or_ssh => {
                if let Some(required) = bool_value(value)? {
                    mount.required = required;
                }
                continue;
            }
            _ => {}
        }
        let Some(value) = value else {
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        };
        let number = |radix: u32, what: &str| -> Result<Option<u32>, String> {
            if deferred(value) {
                return Ok(None);
            }
            u32::from_str_radix(value, radix)
                .map(Some)
                .map_err(|_| format!("invalid value {value} for {what}"))
        };
        match key.as_str() {
            "type" => {}
            "from" => mount.from = Some(value.to_string()),
            "source" | "src" => mount.source = Some(value.to_string()),
            "target" | "dst" | "destination" => mount.target = Some(value.to_string()),
            "id" => mount.id = Some(value.to_string()),
            "sharing" => {
                mount.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(format!("unsupported sharing value \"{value}\"")),
                })
            }
            "mode" => mount.mode = number(8, "mode")?,
            "uid" => mount.uid = number(10, "uid")?,
            "gid" => mount.gid = number(10, "gid")?,
            "size" if mount_type == MountType::Tmpfs => {
                if !deferred(value) {
                    mount.size = Some(
                        parse_ram_size(value)
                            .ok_or_else(|| format!("invalid value {value} for size"))?,
                    );
                }
            }
            "env" if mount_type == MountType::Secret => mount.env = Some(value.to_string()),
            "required" | "size" | "env" => {
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    mount_type.name()
                ))
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !read_only_given {
        mount.read_only = !matches!(mount_type, MountType::Cache | MountType::Tmpfs);
    }
    check_mount(&mount)?;
    Ok(mount)
}

/// The checks BuildKit makes of a whole mount: fields only some types take, and what each type requires.
fn check_mount(mount: &Mount) -> Result<(), String> {
    let mount_type = mount.mount_type;
    let file_info_allowed = matches!(
        mount_type,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        for (given, name) in [
            (mount.mode.is_some(), "mode"),
            (mount.uid.is_some(), "uid"),
            (mount.gid.is_some(), "gid"),
        ] {
            if given {
                return Err(format!(
                    "{name} not allowed for \"{}\" type mounts",
                    mount_type.name()
                ));
            }
        }
    }
    if mount.sharing.is_some() && mount_type != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            mount_type.name()
        ));
    }
    match mount_type {
        MountType::Bind | MountType::Cache | MountType::Tmpfs if mount.target.is_none() => Err(
            format!("mount type {} requires a target", mount_type.name()),
        ),
        MountType::Secret | MountType::Ssh if mount.from.is_some() => Err(format!(
            "{} mount should not have a from",
            mount_type.name()
        )),
        MountType::Secret
            if mount.source.is_none()
                && mount.target.is_none()
                && mount.id.is_none()
                && mount.env.is_none() =>
        {
            Err("secret mount requires one of id, source, target or env".into())
        }
        MountType::Tmpfs if mount.from.is_some() || mount.source.is_some() => {
            Err("tmpfs mount should not have a from or source".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_with_options() {
        let mount =
            parse_mount("type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0755,uid=1000")
                .unwrap();
        assert_eq!(mount.mount_type, MountType::Cache);
        assert_eq!(mount.target.as_deref(), Some("/root/.cache"));
        assert_eq!(mount.sharing, Some(CacheSharing::Locked));
        assert_eq!((mount.mode, mount.uid), (Some(0o755), Some(1000)));
        assert!(!mount.read_only);
    }

    #[test]
    fn bind_defaults_and_flags() {
        let mount = parse_mount("target=/src,from=build,source=/out").unwrap();
        assert_eq!(mount.mount_type, MountType::Bind);
        assert!(mount.read_only);
        assert!(!parse_mount("type=bind,target=/src,rw").unwrap().read_only);
        assert!(parse_mount("type=bind,target=/src,ro=false")
            .map(|m| !m.read_only)
            .unwrap());
    }

    #[test]
    fn secret_ssh_and_tmpfs() {
        let secret = parse_mount("type=secret,id=token,required,env=TOKEN").unwrap();
        assert!(secret.required && secret.read_only);
        assert_eq!(secret.env.as_deref(), Some("TOKEN"));
        assert!(parse_mount("type=ssh").is_ok());
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,size=64m").unwrap().size,
            Some(64 << 20)
        );
        assert_eq!(
            parse_mount("type=cache,\"target=/a,b\"")
                .unwrap()
                .target
                .as_deref(),
            Some("/a,b")
        );
    }

    #[test]
    fn invalid_mounts() {
        for (text, message) in [
            ("type=volume,target=/x", "unsupported mount type"),
            ("type=cache", "requires a target"),
            (
                "type=bind,target=/x,sharing=locked",
                "invalid cache sharing",
            ),
            ("type=bind,target=/x,mode=0700", "mode not allowed"),
            ("type=cache,target=/x,uid=abc", "invalid value abc for uid"),
            ("type=cache,target=/x,bogus=1", "unexpected key 'bogus'"),
            ("type=cache,target=/x,ro=maybe", "invalid value for ro"),
            ("type=secret,from=x,id=a", "should not have a from"),
            ("type=bind,target", "must be a key=value pair"),
        ] {
            let error = parse_mount(text).unwrap_err();
            assert!(error.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn variables_defer_number_checks() {
        let mount = parse_mount("type=cache,target=/x,uid=$UID").unwrap();
        assert_eq!(mount.uid, None);
    }
}
