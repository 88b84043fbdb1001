//! COPY and ADD into a plain directory standing for a root filesystem: Docker's destination rules, directory
//! contents and links, `--chown`/`--chmod`/`--exclude`/`--parents`, archive unpacking, destinations kept in the root.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: BuildContext,
    rootfs: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    fs::create_dir_all(context.join("src/sub")).unwrap();
    fs::write(context.join("src/a.go"), "a").unwrap();
    fs::write(context.join("src/b.go"), "b").unwrap();
    fs::write(context.join("src/sub/c.go"), "c").unwrap();
    fs::set_permissions(context.join("src/a.go"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("a.go", context.join("src/link")).unwrap();
    fs::write(context.join("top.txt"), "top").unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    let ctx = BuildContext::open(&context, Path::new("Dockerfile")).unwrap();
    Fixture {
        _dir: dir,
        ctx,
        rootfs,
    }
}

fn opts() -> CopyOptions {
    CopyOptions {
        workdir: "/".into(),
        ..CopyOptions::default()
    }
}

fn run(f: &Fixture, args: &[&str], dest: &str, options: &CopyOptions) -> Result<(), CopyError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    copy(&f.ctx, &args, dest, &f.rootfs, options, &mut |_| {})
}

#[test]
fn the_bytes_of_each_copied_file_are_counted() {
    let f = fixture();
    let mut written = Vec::new();
    copy(
        &f.ctx,
        &["top.txt".to_string(), "src".to_string()],
        "/counted/",
        &f.rootfs,
        &opts(),
        &mut |n| written.push(n),
    )
    .unwrap();
    // top.txt, src/a.go, src/b.go and src/sub/c.go; the link has no content of its own.
    assert_eq!(written.iter().sum::<u64>(), 3 + 1 + 1 + 1);
}

#[test]
fn file_destinations_follow_docker_rules() {
    let f = fixture();
    run(&f, &["top.txt"], "/into/", &opts()).unwrap();
    assert_eq!(
        fs::read_to_string(f.rootfs.join("into/top.txt")).unwrap(),
        "top"
    );
    run(&f, &["top.txt"], "/renamed", &opts()).unwrap();
    assert_eq!(fs::read_to_string(f.rootfs.join("renamed")).unwrap(), "top");
    // An existing directory means "into" even without a slash.
    run(&f, &["top.txt"], "/etc", &opts()).unwrap();
    assert!(f.rootfs.join("etc/top.txt").is_file());
    let workdir = CopyOptions {
        workdir: "/app".into(),
        ..opts()
    };
    run(&f, &["top.txt"], "rel/", &workdir).unwrap();
    assert!(f.rootfs.join("app/rel/top.txt").is_file());
    run(&f, &["top.txt"], ".", &workdir).unwrap();
    assert!(f.rootfs.join("app/top.txt").is_file());
    // Several sources (or a glob's matches) without a trailing slash are copied onto the destination in turn, as
    // BuildKit v0.8 does: the last file wins; a directory first makes it a directory the later files go into.
    run(&f, &["top.txt", "src/a.go"], "/multi", &opts()).unwrap();
    assert_eq!(fs::read_to_string(f.rootfs.join("multi")).unwrap(), "a");
    run(&f, &["src/*.go"], "/globbed-file", &opts()).unwrap();
    assert_eq!(
        fs::read_to_string(f.rootfs.join("globbed-file")).unwrap(),
        "b"
    );
    run(&f, &["src/sub", "top.txt"], "/dir-first", &opts()).unwrap();
    assert!(
        f.rootfs.join("dir-first/c.go").is_file() && f.rootfs.join("dir-first/top.txt").is_file()
    );
    assert!(matches!(
        run(&f, &["top.txt", "src/sub"], "/file-first", &opts()),
        Err(CopyError::NotADirectory { .. })
    ));
    run(&f, &["src/*.go"], "/globbed/", &opts()).unwrap();
    assert!(f.rootfs.join("globbed/a.go").is_file() && f.rootfs.join("globbed/b.go").is_file());
    // A relative destination that climbs resolves against WORKDIR, never above the root.
    let deep = CopyOptions {
        workdir: "/app/sub2".into(),
        ..opts()
    };
    run(&f, &["top.txt"], "../up.txt", &deep).unwrap();
    assert!(f.rootfs.join("app/up.txt").is_file());
    run(&f, &["top.txt"], "../../../../above.txt", &deep).unwrap();
    assert!(f.rootfs.join("above.txt").is_file());
    let created = fs::metadata(f.rootfs.join("into")).unwrap();
    assert_eq!(created.mode() & 0o7777, 0o755);
    let copied = fs::metadata(f.rootfs.join("globbed/a.go")).unwrap();
    assert_eq!(copied.mode() & 0o7777, 0o640);
    assert_eq!(
        copied.mtime(),
        fs::metadata(f.ctx.root().join("src/a.go")).unwrap().mtime()
    );
}

#[test]
fn directories_copy_their_contents_with_links_kept() {
    let f = fixture();
    run(&f, &["src"], "/app", &opts()).unwrap();
    assert!(f.rootfs.join("app/a.go").is_file());
    assert!(f.rootfs.join("app/sub/c.go").is_file());
    assert!(!f.rootfs.join("app/src").exists());
    let link = fs::symlink_metadata(f.rootfs.join("app/link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        fs::read_link(f.rootfs.join("app/link")).unwrap(),
        Path::new("a.go")
    );
    // A top-level symlink source is followed.
    run(&f, &["src/link"], "/single/", &opts()).unwrap();
    let single = fs::symlink_metadata(f.rootfs.join("single/link")).unwrap();
    assert!(single.is_file());
}

#[test]
fn chown_chmod_and_excludes() {
    let f = fixture();
    let options = CopyOptions {
        chown: Some("app:staff".into()),
        chmod: Some(0o600),
        excludes: vec!["src/sub".into(), "**/b.go".into()],
        ..opts()
    };
    run(&f, &["src"], "/new/dir/", &options).unwrap();
    let a = fs::metadata(f.rootfs.join("new/dir/a.go")).unwrap();
    assert_eq!((a.uid(), a.gid(), a.mode() & 0o7777), (1000, 50, 0o600));
    for created in ["new", "new/dir"] {
        // Directories the copy creates, the destination itself included, are 0755 whatever --chmod says.
        let dir = fs::metadata(f.rootfs.join(created)).unwrap();
        assert_eq!(
            (dir.uid(), dir.gid(), dir.mode() & 0o7777),
            (1000, 50, 0o755)
        );
    }
    assert!(!f.rootfs.join("new/dir/b.go").exists());
    assert!(!f.rootfs.join("new/dir/sub").exists());
    // A name without an entry is root, as BuildKit v0.8 has it.
    let unknown = CopyOptions {
        chown: Some("nobody".into()),
        ..opts()
    };
    run(&f, &["top.txt"], "/x", &unknown).unwrap();
    let x = fs::metadata(f.rootfs.join("x")).unwrap();
    assert_eq!((x.uid(), x.gid()), (0, 0));
    fs::remove_file(f.rootfs.join("etc/passwd")).unwrap();
    assert!(matches!(
        run(&f, &["top.txt"], "/y", &unknown),
        Err(CopyError::Chown(_))
    ));
}

#[test]
fn parents_keep_source_paths() {
    let f = fixture();
    let options = CopyOptions {
        parents: true,
        ..opts()
    };
    run(&f, &["src/sub/c.go", "top.txt"], "/out/", &options).unwrap();
    assert!(f.rootfs.join("out/src/sub/c.go").is_file());
    assert!(f.rootfs.join("out/top.txt").is_file());
    run(&f, &["src/./sub/c.go"], "/pivot/", &options).unwrap();
    assert!(f.rootfs.join("pivot/sub/c.go").is_file());
}

#[test]
fn add_unpacks_local_archives_and_copies_other_files() {
    let f = fixture();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "pkg/file", &b"inner"[..])
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    fs::write(f.ctx.root().join("bundle.tar.gz"), gz.finish().unwrap()).unwrap();
    let add = CopyOptions {
        unpack_archives: true,
        ..opts()
    };
    run(&f, &["bundle.tar.gz"], "/opt", &add).unwrap();
    assert_eq!(
        fs::read_to_string(f.rootfs.join("opt/pkg/file")).unwrap(),
        "inner"
    );
    run(&f, &["top.txt"], "/plain/", &add).unwrap();
    assert!(f.rootfs.join("plain/top.txt").is_file());
    // COPY never unpacks.
    run(&f, &["bundle.tar.gz"], "/copied/", &opts()).unwrap();
    assert!(f.rootfs.join("copied/bundle.tar.gz").is_file());
}

#[test]
fn destinations_never_escape_the_root() {
    let f = fixture();
    std::os::unix::fs::symlink("/../../..", f.rootfs.join("escape")).unwrap();
    run(&f, &["top.txt"], "/escape/", &opts()).unwrap();
    assert!(
        f.rootfs.join("top.txt").is_file(),
        "the link resolves to the root of the rootfs"
    );
}

#[test]
fn stage_sources_keep_their_owners_and_context_sources_become_roots() {
    let f = fixture();
    let stage = f._dir.path().join("stage");
    fs::create_dir_all(stage.join("out")).unwrap();
    fs::write(stage.join("out/bin"), "elf").unwrap();
    std::os::unix::fs::lchown(stage.join("out/bin"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::lchown(stage.join("out"), Some(1234), Some(5678)).unwrap();
    let from = BuildContext::unfiltered(&stage);
    let args = vec!["out".to_string()];
    copy(&from, &args, "/opt/", &f.rootfs, &opts(), &mut |_| {}).unwrap();
    let bin = fs::metadata(f.rootfs.join("opt/bin")).unwrap();
    assert_eq!((bin.uid(), bin.gid()), (1234, 5678));
    let top = fs::metadata(f.rootfs.join("opt")).unwrap();
    assert_eq!(
        (top.uid(), top.gid()),
        (0, 0),
        "the destination directory is not the source's"
    );
    let chowned = CopyOptions {
        chown: Some("app".into()),
        ..opts()
    };
    copy(&from, &args, "/chowned/", &f.rootfs, &chowned, &mut |_| {}).unwrap();
    let bin = fs::metadata(f.rootfs.join("chowned/bin")).unwrap();
    assert_eq!((bin.uid(), bin.gid()), (1000, 1000));
    // From the build context, owners are never kept.
    std::os::unix::fs::lchown(f.ctx.root().join("top.txt"), Some(1234), Some(5678)).unwrap();
    run(&f, &["top.txt"], "/ctx/", &opts()).unwrap();
    let top = fs::metadata(f.rootfs.join("ctx/top.txt")).unwrap();
    assert_eq!((top.uid(), top.gid()), (0, 0));
}

#[test]
fn chmod_replaces_permission_bits_only() {
    let f = fixture();
    let setuid = f.ctx.root().join("src/sub/c.go");
    fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).unwrap();
    let ctx = BuildContext::open(f.ctx.root(), Path::new("Dockerfile")).unwrap();
    let chmod = |mode| CopyOptions {
        chmod: Some(mode),
        ..opts()
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    copy(
        &ctx,
        &args(&["src/sub/c.go"]),
        "/kept",
        &f.rootfs,
        &chmod(0o700),
        &mut |_| {},
    )
    .unwrap();
    copy(
        &ctx,
        &args(&["top.txt"]),
        "/dropped",
        &f.rootfs,
        &chmod(0o4755),
        &mut |_| {},
    )
    .unwrap();
    let mode = |path: &str| fs::metadata(f.rootfs.join(path)).unwrap().mode() & 0o7777;
    assert_eq!(mode("kept"), 0o4700);
    assert_eq!(mode("dropped"), 0o755);
}

#[test]
fn hard_links_within_a_directory_stay_linked() {
    let f = fixture();
    fs::hard_link(
        f.ctx.root().join("src/a.go"),
        f.ctx.root().join("src/sub/a-again.go"),
    )
    .unwrap();
    let ctx = BuildContext::open(f.ctx.root(), Path::new("Dockerfile")).unwrap();
    copy(
        &ctx,
        &["src".to_string()],
        "/linked",
        &f.rootfs,
        &opts(),
        &mut |_| {},
    )
    .unwrap();
    let first = fs::metadata(f.rootfs.join("linked/a.go")).unwrap();
    let second = fs::metadata(f.rootfs.join("linked/sub/a-again.go")).unwrap();
    assert_eq!((first.ino(), first.nlink()), (second.ino(), 2));
}

#[test]
fn chmod_values_read_as_buildkit_v0_8_reads_them() {
    assert_eq!(parse_chmod("0640"), Some(0o640));
    assert_eq!(parse_chmod("17777"), Some(0o17777));
    for ignored in ["", "999", "abc", "u+x", "-1", "+644", "777777777777"] {
        assert_eq!(parse_chmod(ignored), None, "{ignored}");
    }
}
