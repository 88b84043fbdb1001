//! The tests every storage driver must pass (as CNCF Distribution's `testsuites`), run for the filesystem driver,
//! the in-memory object store and a real S3 server (`s3s-fs`, started on a free loopback port).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fs::FsDriver;
use super::object::{ObjectDriver, S3Options, MIN_CHUNK_SIZE};
use super::{Driver, DriverError};

/// A running `s3s-fs` with one bucket, stopped on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

pub const ACCESS_KEY: &str = "lade-test";
pub const SECRET_KEY: &str = "lade-test-secret";

fn s3s_fs_binary() -> PathBuf {
    if let Ok(path) = std::env::var("LADE_S3S_FS") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/s3s-fs");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("s3s-fs")
    }
}

impl S3Server {
    /// Starts `s3s-fs` over a temporary directory holding the bucket `bucket`.
    pub fn start(bucket: &str) -> S3Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(bucket)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs is installed by scripts/install-deps.sh");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Options for a driver on `bucket` below `root`.
    pub fn options(&self, bucket: &str, root: &str) -> S3Options {
        S3Options {
            bucket: bucket.into(),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint.clone()),
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
            root_directory: root.into(),
            force_path_style: true,
            secure: false,
            chunk_size: MIN_CHUNK_SIZE,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn put_get_and_atomic_replace(d: &dyn Driver) {
    d.put_content("a/b/c", b"hello").unwrap();
    assert_eq!(d.get_content("a/b/c").unwrap(), b"hello");
    d.put_content("a/b/c", b"replaced, longer").unwrap();
    assert_eq!(d.get_content("a/b/c").unwrap(), b"replaced, longer");
    d.put_content("a/b/c", b"").unwrap();
    assert_eq!(d.get_content("a/b/c").unwrap(), b"");
    assert_eq!(d.stat("a/b/c").unwrap().size, 0);
}

fn not_found_errors(d: &dyn Driver) {
    assert!(d.get_content("missing/x").unwrap_err().is_not_found());
    assert!(d.stat("missing/x").unwrap_err().is_not_found());
    assert!(d.list("missing").unwrap_err().is_not_found());
    assert!(d.reader("missing/x", 0).err().unwrap().is_not_found());
    assert!(d.delete("missing").unwrap_err().is_not_found());
    assert!(d.move_to("missing/x", "y/z").unwrap_err().is_not_found());
    for bad in ["", "/abs", "../up", "a/../b"] {
        assert!(
            matches!(d.get_content(bad), Err(DriverError::InvalidPath(_))),
            "{bad:?} refused"
        );
    }
}

fn list_and_stat_of_dirs(d: &dyn Driver) {
    d.put_content("l/one", b"1").unwrap();
    d.put_content("l/two/deep/file", b"2").unwrap();
    d.put_content("l/three/file", b"3").unwrap();
    assert_eq!(d.list("l").unwrap(), vec!["one", "three", "two"]);
    assert_eq!(d.list("l/two").unwrap(), vec!["deep"]);
    let dir = d.stat("l/two").unwrap();
    assert!(dir.is_dir);
    let file = d.stat("l/one").unwrap();
    assert!(!file.is_dir && file.size == 1);
    // A prefix of a name is not a directory.
    assert!(d.stat("l/tw").unwrap_err().is_not_found());
}

fn append_across_reopen_and_move(d: &dyn Driver) {
    let path = "up/u1/data";
    let mut w = d.writer(path, false).unwrap();
    w.write_all(b"").unwrap();
    w.commit().unwrap();
    assert_eq!(d.stat(path).unwrap().size, 0);
    let mut expected = Vec::new();
    // Pieces around the part size, so that parts, tails and reopens all happen.
    for (i, len) in [100usize, MIN_CHUNK_SIZE - 50, 80, MIN_CHUNK_SIZE + 7, 3]
        .into_iter()
        .enumerate()
    {
        let piece: Vec<u8> = (0..len).map(|j| (i * 31 + j % 251) as u8).collect();
        let mut w = d.writer(path, true).unwrap();
        assert_eq!(w.size(), expected.len() as u64);
        w.write_all(&piece).unwrap();
        w.commit().unwrap();
        expected.extend_from_slice(&piece);
        assert_eq!(d.stat(path).unwrap().size, expected.len() as u64);
    }
    assert_eq!(d.list("up/u1").unwrap(), vec!["data"]);
    // Sealed, it reads back whole (an object store's upload in progress does not before) and still moves.
    d.seal(path).unwrap();
    d.seal(path).unwrap();
    let mut sealed = Vec::new();
    d.reader(path, 0).unwrap().read_to_end(&mut sealed).unwrap();
    assert!(sealed == expected, "a sealed file reads back as appended");
    assert!(d.seal("up/none/data").unwrap_err().is_not_found());
    d.move_to(path, "blobs/b1/data").unwrap();
    assert!(d.stat(path).unwrap_err().is_not_found());
    let mut read = Vec::new();
    d.reader("blobs/b1/data", 0)
        .unwrap()
        .read_to_end(&mut read)
        .unwrap();
    assert!(read == expected, "appended content survives the move");
    let mut from = Vec::new();
    d.reader("blobs/b1/data", 5)
        .unwrap()
        .read_to_end(&mut from)
        .unwrap();
    assert!(from[..] == expected[5..]);
    let mut end = Vec::new();
    d.reader("blobs/b1/data", expected.len() as u64)
        .unwrap()
        .read_to_end(&mut end)
        .unwrap();
    assert!(end.is_empty());
    // A small file moves too, and replaces the destination.
    d.put_content("m/src", b"new").unwrap();
    d.put_content("m/dst", b"old content").unwrap();
    d.move_to("m/src", "m/dst").unwrap();
    assert_eq!(d.get_content("m/dst").unwrap(), b"new");
    assert!(d.get_content("m/src").unwrap_err().is_not_found());
}

fn truncating_writer_and_cancel(d: &dyn Driver) {
    let path = "up/u2/data";
    let mut w = d.writer(path, false).unwrap();
    w.write_all(&vec![7u8; MIN_CHUNK_SIZE + 10]).unwrap();
    w.commit().unwrap();
    let mut w = d.writer(path, false).unwrap();
    assert_eq!(w.size(), 0);
    w.write_all(b"fresh").unwrap();
    w.commit().unwrap();
    assert_eq!(d.stat(path).unwrap().size, 5);
    d.put_content("up/u2/startedat", b"now").unwrap();
    d.delete("up/u2").unwrap();
    assert!(
        d.stat("up/u2").unwrap_err().is_not_found(),
        "{:?}",
        d.stat("up/u2")
    );
    assert!(d.stat(path).unwrap_err().is_not_found());
}

fn delete_of_trees(d: &dyn Driver) {
    d.put_content("t/x/1", b"1").unwrap();
    d.put_content("t/x/y/2", b"2").unwrap();
    d.put_content("t/keep", b"k").unwrap();
    d.put_content("t/xx", b"sibling with a common prefix")
        .unwrap();
    d.delete("t/x").unwrap();
    assert!(d.stat("t/x").unwrap_err().is_not_found());
    assert!(d.get_content("t/x/y/2").unwrap_err().is_not_found());
    assert_eq!(d.get_content("t/keep").unwrap(), b"k");
    assert_eq!(d.get_content("t/xx").unwrap().len(), 28);
    d.delete("t/keep").unwrap();
    assert!(d.get_content("t/keep").unwrap_err().is_not_found());
}

fn large_streamed_content(d: &dyn Driver) {
    let size = 3 * MIN_CHUNK_SIZE + 12345;
    let mut w = d.writer("big/data", false).unwrap();
    let block: Vec<u8> = (0..65536u32).map(|i| (i % 253) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        w.write_all(&block[..n]).unwrap();
        left -= n;
    }
    w.commit().unwrap();
    d.move_to("big/data", "big/done").unwrap();
    assert_eq!(d.stat("big/done").unwrap().size, size as u64);
    let mut reader = d.reader("big/done", 0).unwrap();
    let mut buf = vec![0u8; 100_000];
    let (mut total, mut offset_in_block) = (0usize, 0usize);
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            assert_eq!(b, block[offset_in_block]);
            offset_in_block = (offset_in_block + 1) % block.len();
        }
        total += n;
    }
    assert_eq!(total, size);
}

fn touch_marks_use(d: &dyn Driver) {
    d.put_content("touch/f", b"x").unwrap();
    let before = d.last_used("touch/f").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    d.touch("touch/f").unwrap();
    assert!(d.last_used("touch/f").unwrap() > before);
    assert!(d.touch("touch/missing").unwrap_err().is_not_found());
}

fn conditional_writes(d: &dyn Driver) {
    assert!(d.put_if_absent("cond/lease", b"first").unwrap());
    assert!(!d.put_if_absent("cond/lease", b"second").unwrap());
    assert_eq!(d.get_content("cond/lease").unwrap(), b"first");
    assert!(!d.replace_if("cond/lease", b"stale", b"third").unwrap());
    assert!(d.replace_if("cond/lease", b"first", b"fourth").unwrap());
    assert_eq!(d.get_content("cond/lease").unwrap(), b"fourth");
    assert!(!d.replace_if("cond/missing", b"x", b"y").unwrap());
}

/// Every test of the suite, in turn.
pub fn run_all(d: &dyn Driver) {
    put_get_and_atomic_replace(d);
    not_found_errors(d);
    list_and_stat_of_dirs(d);
    append_across_reopen_and_move(d);
    truncating_writer_and_cancel(d);
    delete_of_trees(d);
    large_streamed_content(d);
    touch_marks_use(d);
    conditional_writes(d);
}

#[test]
fn filesystem_driver_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    run_all(&FsDriver::new(dir.path()));
}

#[test]
fn in_memory_driver_passes_the_suite() {
    run_all(&ObjectDriver::in_memory());
}

#[test]
fn s3_driver_passes_the_suite_on_s3s_fs() {
    let server = S3Server::start("suite");
    run_all(&ObjectDriver::s3(&server.options("suite", "/some/root/")).unwrap());
    // Everything lives below the root directory.
    let root = server.dir.path().join("suite/some/root");
    assert!(root.join("l/one").exists());
}
