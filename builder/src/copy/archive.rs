//! ADD's local archive detection: a tar stream, plain or compressed with gzip, bzip2 or xz, is unpacked instead of
//! copied. A compressed file that is not a tar inside is an ordinary file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// A reader of the uncompressed tar stream when `path` is a (possibly compressed) tar archive.
pub fn open_archive(path: &Path) -> io::Result<Option<Box<dyn Read + Send>>> {
    let mut file = BufReader::new(File::open(path)?);
    let head = file.fill_buf()?.to_vec();
    let mut decompressed: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::bufread::MultiBzDecoder::new(file))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        xz_reader(file)?
    } else {
        Box::new(file)
    };
    let mut header = Vec::with_capacity(512);
    (&mut decompressed).take(512).read_to_end(&mut header)?;
    if header.len() < 512 || !is_tar_header(&header) {
        return Ok(None);
    }
    Ok(Some(Box::new(Cursor::new(header).chain(decompressed))))
}

/// Streams xz decompression through a pipe (the decoder only writes).
fn xz_reader(mut input: BufReader<File>) -> io::Result<Box<dyn Read + Send>> {
    let (reader, mut writer) = io::pipe()?;
    std::thread::spawn(move || {
        // A broken pipe (the reader stopped early) or a corrupt stream ends the stream; the reader then sees a
        // truncated tar and fails.
        let _ = lzma_rs::xz_decompress(&mut input, &mut writer);
    });
    Ok(Box::new(reader))
}

/// Whether a 512-byte block is a tar header: its checksum field matches (ustar or old v7 format).
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .skip_while(|c| *c == ' ')
        .collect();
    let Ok(expected) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u32
            } else {
                b as u32
            }
        })
        .sum();
    sum == expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "hello.txt", &b"hi"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn detects_plain_and_compressed_tars_but_not_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&tar).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
        let mut gz_text = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz_text.write_all(&[b'x'; 600]).unwrap();
        let cases = [
            ("a.tar", tar.clone(), true),
            ("a.tgz", gz.finish().unwrap(), true),
            ("a.tbz", bz.finish().unwrap(), true),
            ("a.txz", xz, true),
            ("text.gz", gz_text.finish().unwrap(), false),
            ("plain", vec![b'y'; 1000], false),
        ];
        for (name, bytes, is_archive) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            match open_archive(&path).unwrap() {
                Some(mut reader) => {
                    assert!(is_archive, "{name} taken for an archive");
                    let mut out = Vec::new();
                    reader.read_to_end(&mut out).unwrap();
                    assert_eq!(out, tar, "{name}");
                }
                None => assert!(!is_archive, "{name} not recognised"),
            }
        }
    }
}
