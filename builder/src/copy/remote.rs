//! `ADD <url>`: a download verified against `--checksum`, placed with Docker's rules (the file name from the URL
//! when the destination is a directory, mode 0600, mtime from `Last-Modified`). Remote archives are not unpacked.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use layerstore::digest::HashingWriter;
use layerstore::Digest;

use super::{ensure_dir, io_err, is_dir_in_root, CopyError, CopyOptions};

/// A downloaded file, kept in the caller's scratch directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub url: String,
    pub file: PathBuf,
    /// The digest of the content (the algorithm of `--checksum`, else sha256): the cache key of the ADD.
    pub digest: Digest,
    pub size: u64,
    /// From the `Last-Modified` header, seconds since the epoch.
    pub mtime: Option<i64>,
}

/// Downloads `url` into `scratch`, failing on an HTTP error status or a content digest other than `checksum`.
pub fn fetch(url: &str, checksum: Option<&Digest>, scratch: &Path) -> Result<Fetched, CopyError> {
    let fail = |reason: String| CopyError::Fetch {
        url: url.to_string(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    let file = scratch.join(layerstore::fsutil::unique_name("download-"));
    let out = File::create(&file).map_err(io_err(format!("creating {}", file.display())))?;
    let algorithm = checksum.map_or(layerstore::Algorithm::Sha256, Digest::algorithm);
    let mut hashing = HashingWriter::new(out, algorithm);
    io::copy(&mut response.body_mut().as_reader(), &mut hashing)
        .map_err(|e| fail(e.to_string()))?;
    let (_, digest, size) = hashing.finish();
    if let Some(expected) = checksum {
        if expected != &digest {
            let _ = fs::remove_file(&file);
            return Err(CopyError::ChecksumMismatch {
                url: url.to_string(),
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    Ok(Fetched {
        url: url.to_string(),
        file,
        digest,
        size,
        mtime,
    })
}

/// The file name a URL gives: the last segment of its path.
fn url_file_name(url: &str) -> Option<String> {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme.split(['?', '#']).next()?;
    let (_, path) = path.split_once('/')?;
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(str::to_string)
}

/// Places a downloaded file at `dest` in `rootfs`; `written` hears its size.
pub fn add_fetched(
    fetched: &Fetched,
    dest: &str,
    rootfs: &Path,
    options: &CopyOptions,
    written: &mut dyn FnMut(u64),
) -> Result<(), CopyError> {
    let owner = options.chown_ids(rootfs)?.unwrap_or((0, 0));
    let mut target = super::destination_in_root(dest, &options.workdir);
    if dest.ends_with('/') || dest.ends_with("/.") || dest == "." || is_dir_in_root(rootfs, &target)
    {
        let name = url_file_name(&fetched.url).ok_or_else(|| CopyError::Fetch {
            url: fetched.url.clone(),
            reason: "cannot determine a file name from the URL; give a destination file name"
                .into(),
        })?;
        target.push(name);
    }
    let name = target
        .file_name()
        .map(|n| n.to_owned())
        .ok_or_else(|| CopyError::DestinationIsRoot(dest.to_string()))?;
    let parent = ensure_dir(rootfs, target.parent().unwrap_or(Path::new("")), owner)?;
    let path = parent.join(name);
    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
        fs::remove_file(&path).map_err(io_err(format!("replacing {}", path.display())))?;
    }
    written(fs::copy(&fetched.file, &path).map_err(io_err(format!("writing {}", path.display())))?);
    std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1))
        .map_err(io_err(format!("setting the owner of {}", path.display())))?;
    fs::set_permissions(
        &path,
        fs::Permissions::from_mode(options.chmod.unwrap_or(0o600)),
    )
    .map_err(io_err(format!("setting the mode of {}", path.display())))?;
    if let Some(mtime) = fetched.mtime {
        crate::tree::set_times(&path, mtime, 0, mtime, 0)
            .map_err(io_err(format!("setting the times of {}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    /// Serves one canned response per connection, for `count` connections.
    fn serve(status: &'static str, body: &'static [u8], count: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(count) {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    line.clear();
                }
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .unwrap();
                stream.write_all(body).unwrap();
            }
        });
        format!("http://{address}")
    }

    #[test]
    fn downloads_are_verified_and_placed_like_docker() {
        let base = serve("200 OK", b"payload", 3);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{base}/files/tool.sh?x=1");
        let good = Digest::sha256_of(b"payload");
        let fetched = fetch(&url, Some(&good), dir.path()).unwrap();
        assert_eq!((fetched.digest.clone(), fetched.size), (good, 7));
        assert_eq!(fetched.mtime, Some(1445412480));
        let bad = Digest::sha256_of(b"other");
        assert!(matches!(
            fetch(&url, Some(&bad), dir.path()),
            Err(CopyError::ChecksumMismatch { .. })
        ));

        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        let options = CopyOptions {
            workdir: "/".into(),
            ..CopyOptions::default()
        };
        add_fetched(&fetched, "/usr/local/bin/", &rootfs, &options, &mut |_| {}).unwrap();
        let placed = rootfs.join("usr/local/bin/tool.sh");
        assert_eq!(fs::read(&placed).unwrap(), b"payload");
        let meta = fs::metadata(&placed).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.mtime()), (0o600, 1445412480));
        add_fetched(&fetched, "/opt/renamed", &rootfs, &options, &mut |_| {}).unwrap();
        assert!(rootfs.join("opt/renamed").is_file());
        let root_url = Fetched {
            url: base.clone(),
            ..fetched
        };
        assert!(add_fetched(&root_url, "/dir/", &rootfs, &options, &mut |_| {}).is_err());
    }

    #[test]
    fn http_errors_fail() {
        let base = serve("404 Not Found", b"", 1);
        let dir = tempfile::tempdir().unwrap();
        let err = fetch(&format!("{base}/missing"), None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }
}
