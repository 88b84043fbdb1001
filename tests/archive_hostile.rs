//! Hostile or broken archives: each load fails with a clear error and leaves the store exactly as it was.

mod common;

use std::io::Read;

use common::Lade;

/// A valid archive saved by lade, as (name, bytes) entries.
fn valid_archive(lade: &Lade) -> Vec<(String, Vec<u8>)> {
    let rootfs = {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "hello.txt", &b"hello"[..])
            .unwrap();
        builder.into_inner().unwrap()
    };
    let rootfs_path = lade.scratch.path().join("hostile-rootfs.tar");
    std::fs::write(&rootfs_path, rootfs).unwrap();
    lade.ok(&["import", rootfs_path.to_str().unwrap(), "hostile:base"]);
    std::fs::remove_file(&rootfs_path).unwrap();
    let saved = lade
        .command()
        .args(["save", "hostile:base"])
        .output()
        .unwrap();
    assert!(saved.status.success());
    let mut archive = tar::Archive::new(&saved.stdout[..]);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// Writes entries with raw names, so that hostile names reach the loader unchanged.
fn archive_of(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, data, link): (&str, &[u8], Option<&str>) = match entry {
            Entry::File(name, data) => (name, data, None),
            Entry::Symlink(name, target) => (name, b"", Some(target)),
        };
        header.set_entry_type(if link.is_some() {
            tar::EntryType::Symlink
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn files(entries: &[(String, Vec<u8>)]) -> Vec<Entry<'_>> {
    entries.iter().map(|(n, b)| Entry::File(n, b)).collect()
}

/// Loads `archive` and asserts a failure mentioning `expected`, with the store unchanged.
fn assert_refused(lade: &Lade, archive: &[u8], expected: &str) {
    let before = lade.store_snapshot();
    let path = lade.scratch.path().join("hostile.tar");
    std::fs::write(&path, archive).unwrap();
    let stderr = lade.fails(&["load", "-i", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert_eq!(
        lade.store_snapshot(),
        before,
        "the store changed after: {stderr}"
    );
}

fn index_json(entries: &[(String, Vec<u8>)]) -> serde_json::Value {
    let bytes = &entries.iter().find(|(n, _)| n == "index.json").unwrap().1;
    serde_json::from_slice(bytes).unwrap()
}

fn replace(entries: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    entries.iter_mut().find(|(n, _)| n == name).unwrap().1 = bytes;
}

#[test]
fn truncated_archive_is_refused() {
    let lade = Lade::new();
    let entries = valid_archive(&lade);
    let whole = archive_of(&files(&entries));
    for cut in [whole.len() / 2, 700, 512 * 3 + 100] {
        assert_refused(&lade, &whole[..cut], "");
    }
    let stderr = {
        let path = lade.scratch.path().join("t.tar");
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let e = lade.fails(&["load", "-i", path.to_str().unwrap()]);
        std::fs::remove_file(path).unwrap();
        e
    };
    assert!(
        stderr.contains("truncated") || stderr.contains("has no file"),
        "{stderr}"
    );
}

#[test]
fn manifest_with_wrong_digest_is_refused() {
    let lade = Lade::new();
    let mut entries = valid_archive(&lade);
    let index = index_json(&entries);
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!(
        "blobs/sha256/{}",
        manifest_digest.strip_prefix("sha256:").unwrap()
    );
    let mut manifest = entries.iter().find(|(n, _)| *n == path).unwrap().1.clone();
    manifest.push(b' ');
    replace(&mut entries, &path, manifest.clone());
    // Keep the size right so that the digest check is what catches it.
    let mut index = index;
    index["manifests"][0]["size"] = manifest.len().into();
    replace(
        &mut entries,
        "index.json",
        serde_json::to_vec(&index).unwrap(),
    );
    entries.retain(|(n, _)| n != "manifest.json");
    assert_refused(&lade, &archive_of(&files(&entries)), "digest mismatch");
}

#[test]
fn escaping_names_are_refused() {
    let lade = Lade::new();
    let entries = valid_archive(&lade);
    let marker = lade
        .root
        .path()
        .parent()
        .unwrap()
        .join("lade-escaped-marker");
    let mut with_dotdot = files(&entries);
    with_dotdot.insert(0, Entry::File("../lade-escaped-marker", b"x"));
    assert_refused(&lade, &archive_of(&with_dotdot), "'..' is not allowed");
    let absolute = format!("{}", marker.display());
    let mut with_absolute = files(&entries);
    with_absolute.insert(0, Entry::File(&absolute, b"x"));
    assert_refused(
        &lade,
        &archive_of(&with_absolute),
        "absolute names are not allowed",
    );
    let mut through_symlink = files(&entries);
    through_symlink.insert(0, Entry::Symlink("out", "../../.."));
    through_symlink.insert(1, Entry::File("out/lade-escaped-marker", b"x"));
    assert_refused(
        &lade,
        &archive_of(&through_symlink),
        "inside a symlinked directory",
    );
    assert!(!marker.exists());
}

#[test]
fn missing_blob_is_refused() {
    let lade = Lade::new();
    let mut entries = valid_archive(&lade);
    let index = index_json(&entries);
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest_path = format!(
        "blobs/sha256/{}",
        manifest_digest.strip_prefix("sha256:").unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&entries.iter().find(|(n, _)| *n == manifest_path).unwrap().1)
            .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    entries.retain(|(n, _)| !n.ends_with(&layer));
    assert_refused(
        &lade,
        &archive_of(&files(&entries)),
        &format!("has no file \"blobs/sha256/{layer}\""),
    );
}

#[test]
fn wrong_media_type_is_refused() {
    let lade = Lade::new();
    let mut entries = valid_archive(&lade);
    let mut index = index_json(&entries);
    index["manifests"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
    replace(
        &mut entries,
        "index.json",
        serde_json::to_vec(&index).unwrap(),
    );
    assert_refused(
        &lade,
        &archive_of(&files(&entries)),
        "which is not an image manifest or index",
    );
}

#[test]
fn not_an_archive_is_refused() {
    let lade = Lade::new();
    valid_archive(&lade);
    assert_refused(
        &lade,
        &archive_of(&[Entry::File("hello", b"x")]),
        "not an image archive",
    );
    assert_refused(
        &lade,
        b"this is not a tar file at all, just text that goes on for a while",
        "",
    );
}

#[test]
fn compressed_archives_load() {
    let lade = Lade::new();
    let entries = valid_archive(&lade);
    let plain = archive_of(&files(&entries));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for (name, bytes) in [("a.tar.gz", gz), ("a.tar.zst", zst)] {
        let other = Lade::new();
        let path = other.scratch.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            other.ok(&["load", "-i", path.to_str().unwrap()]),
            "Loaded image: hostile:base\n"
        );
        // stdin works too
        let out = other
            .command()
            .args(["load"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A tar whose first header claims a `claimed`-byte extension header (`kind`: `x`, `L`, `K`), followed by
/// `present` bytes of it.
fn header_bomb(kind: u8, claimed: u64, present: usize) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").unwrap();
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(claimed);
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.resize(bytes.len() + present, b'a');
    bytes
}

#[test]
fn header_bombs_are_refused_in_bounded_memory() {
    use std::io::Write;
    let lade = Lade::new();
    // import: 512 MiB of a GNU long name streamed through stdin; the tar crate alone would hold all of it.
    let claimed: u64 = 512 << 20;
    let rss_file = lade.scratch.path().join("rss");
    let mut child = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_lade"))
        .arg("--root")
        .arg(lade.root.path())
        .args(["import", "-", "bomb:1"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/time runs (apt package time)");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&header_bomb(b'L', claimed, 0))?;
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..(claimed >> 20) {
            stdin.write_all(&chunk)?;
        }
        Ok::<_, std::io::Error>(())
    });
    let output = child.wait_with_output().unwrap();
    let _ = writer.join();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("GNU long name of 536870912 bytes is larger than the 1048576-byte limit"),
        "{stderr}"
    );
    let rss_kib: u64 = std::fs::read_to_string(&rss_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kib < 64 * 1024, "import used {rss_kib} KiB");

    // load: a PAX header bomb as the archive's first entry, and a long link inside it.
    assert_refused(
        &lade,
        &header_bomb(b'x', 1 << 30, 8192),
        "PAX extended header of 1073741824 bytes",
    );
    let mut entries = archive_of(&files(&valid_archive(&lade)));
    entries.truncate(entries.len() - 1024);
    entries.extend(header_bomb(b'K', 1 << 30, 8192));
    assert_refused(&lade, &entries, "GNU long link name of 1073741824 bytes");
}

#[test]
fn add_of_a_header_bomb_is_refused() {
    let lade = Lade::new();
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nADD bomb.tar /\n",
    )
    .unwrap();
    std::fs::write(
        context.path().join("bomb.tar"),
        header_bomb(b'x', 1 << 30, 8192),
    )
    .unwrap();
    let stderr = lade.fails(&["build", "-t", "bomb:add", context.path().to_str().unwrap()]);
    assert!(
        stderr.contains("PAX extended header of 1073741824 bytes"),
        "{stderr}"
    );
}

/// The manifest of the archive's single image, and its path.
fn manifest_of(entries: &[(String, Vec<u8>)]) -> (String, serde_json::Value) {
    let digest = index_json(entries)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap());
    let bytes = &entries.iter().find(|(n, _)| *n == path).unwrap().1;
    (path, serde_json::from_slice(bytes).unwrap())
}

/// Replaces the archive's manifest with `manifest`, pointing index.json at it.
fn set_manifest(entries: &mut Vec<(String, Vec<u8>)>, manifest: &serde_json::Value) {
    let (old_path, _) = manifest_of(entries);
    entries.retain(|(n, _)| *n != old_path);
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = layerstore::Digest::sha256_of(&bytes);
    entries.push((format!("blobs/sha256/{}", digest.hex()), bytes.clone()));
    let mut index = index_json(entries);
    index["manifests"][0]["digest"] = digest.to_string().into();
    index["manifests"][0]["size"] = bytes.len().into();
    replace(entries, "index.json", serde_json::to_vec(&index).unwrap());
}

#[test]
fn compressed_layer_with_wrong_diff_id_is_refused() {
    use std::io::Write;
    let lade = Lade::new();
    let mut entries = valid_archive(&lade);
    entries.retain(|(n, _)| n != "manifest.json");
    // A gzip layer whose content is another tar than the one the config's diff ID names.
    let other = archive_of(&[Entry::File("evil.txt", b"not what the config says")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&other).unwrap();
    let gz = gz.finish().unwrap();
    let gz_digest = layerstore::Digest::sha256_of(&gz);
    entries.push((format!("blobs/sha256/{}", gz_digest.hex()), gz.clone()));
    let (_, mut manifest) = manifest_of(&entries);
    manifest["layers"][0] = serde_json::json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": gz_digest.to_string(),
        "size": gz.len(),
    });
    set_manifest(&mut entries, &manifest);
    assert_refused(
        &lade,
        &archive_of(&files(&entries)),
        "its content has diff ID",
    );
    // The same blob declared as zstd is refused for its compression.
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    set_manifest(&mut entries, &manifest);
    assert_refused(
        &lade,
        &archive_of(&files(&entries)),
        "its media type says zstd, but its content is gzip",
    );
}

#[test]
fn dual_archive_disagreeing_with_its_index_is_refused() {
    let lade = Lade::new();
    let entries = valid_archive(&lade);
    let legacy: serde_json::Value = serde_json::from_slice(
        &entries
            .iter()
            .find(|(n, _)| n == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let cases = [
        (
            "/0/Layers",
            serde_json::json!(["blobs/sha256/0000"]),
            "manifest.json disagrees with index.json: the layers of",
        ),
        (
            "/0/Config",
            serde_json::json!("../../../etc/passwd"),
            "manifest.json disagrees with index.json: config \"../../../etc/passwd\"",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut changed = legacy.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        let mut entries = entries.clone();
        replace(
            &mut entries,
            "manifest.json",
            serde_json::to_vec(&changed).unwrap(),
        );
        assert_refused(&lade, &archive_of(&files(&entries)), expected);
    }
}

#[test]
fn oversized_metadata_is_refused_naming_the_file() {
    let lade = Lade::new();
    let mut entries = valid_archive(&lade);
    let mut huge = b"[".to_vec();
    huge.resize(5 << 20, b' ');
    huge.push(b']');
    replace(&mut entries, "manifest.json", huge);
    assert_refused(
        &lade,
        &archive_of(&files(&entries)),
        "manifest.json is 5242881 bytes, larger than the 4194304-byte limit",
    );
}
