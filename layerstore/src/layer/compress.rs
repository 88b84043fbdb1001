//! Streaming layer compression and decompression, computing the diffID and the blob digest in the same pass.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::parallel_gzip::ParallelGzipWriter;
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::media_types::Compression;

/// The digests of a compressed layer: `digest` of the blob as stored, `diff_id` of the uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// The digest of the compressed blob, as the manifest's layer descriptor names it.
    pub digest: Digest,
    /// The size of the compressed blob in bytes.
    pub size: u64,
    /// The DiffID: the digest of the uncompressed tar, as the config's `rootfs` lists it.
    pub diff_id: Digest,
}

/// A writer that takes an uncompressed tar stream and writes it compressed to `inner`, hashing both sides.
pub struct CompressingWriter<W: Write> {
    encoder: Encoder<HashingWriter<W>>,
    uncompressed: crate::digest::Hasher,
}

enum Encoder<W: Write> {
    None(W),
    Gzip(ParallelGzipWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> CompressingWriter<W> {
    /// Wraps `inner`, compressing with `compression` (none, parallel gzip or zstd). Fails when the zstd encoder cannot be set up.
    pub fn new(inner: W, compression: Compression) -> io::Result<Self> {
        let hashed = HashingWriter::new(inner, Algorithm::Sha256);
        let encoder = match compression {
            Compression::None => Encoder::None(hashed),
            Compression::Gzip => Encoder::Gzip(ParallelGzipWriter::new(
                hashed,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(hashed, 3)?),
        };
        Ok(CompressingWriter {
            encoder,
            uncompressed: crate::digest::Hasher::new(Algorithm::Sha256),
        })
    }

    /// Finishes the compressed stream and returns the inner writer with both digests.
    pub fn finish(self) -> io::Result<(W, LayerDigests)> {
        let hashed = match self.encoder {
            Encoder::None(w) => w,
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Zstd(e) => e.finish()?,
        };
        let (inner, digest, size) = hashed.finish();
        Ok((
            inner,
            LayerDigests {
                digest,
                size,
                diff_id: self.uncompressed.finish(),
            },
        ))
    }
}

impl<W: Write> Write for CompressingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.encoder {
            Encoder::None(w) => w.write(buf)?,
            Encoder::Gzip(e) => e.write(buf)?,
            Encoder::Zstd(e) => e.write(buf)?,
        };
        self.uncompressed.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Detects gzip or zstd by magic number and returns a reader of the decompressed stream (or the plain one).
pub fn auto_decompress<'a, R: Read + 'a>(
    reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut buffered = BufReader::with_capacity(1 << 20, reader);
    let head = buffered.fill_buf()?;
    let compression = detect(head);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    };
    Ok((compression, reader))
}

/// The compression a stream starts with.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_digests_in_one_pass_and_round_trip() {
        let data = b"some layer bytes ".repeat(1000);
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut w = CompressingWriter::new(Vec::new(), compression).unwrap();
            w.write_all(&data).unwrap();
            let (blob, digests) = w.finish().unwrap();
            assert_eq!(digests.diff_id, Digest::sha256_of(&data));
            assert_eq!(digests.digest, Digest::sha256_of(&blob));
            assert_eq!(digests.size, blob.len() as u64);
            let (detected, mut r) = auto_decompress(&blob[..]).unwrap();
            assert_eq!(detected, compression);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
