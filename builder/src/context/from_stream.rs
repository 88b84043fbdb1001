//! A build context that arrives as a stream (`lade build -`, as `docker build -` reads stdin): a tar archive,
//! possibly gzip- or zstd-compressed, unpacked into a directory, or else a Dockerfile alone, written there as
//! `Dockerfile` with an otherwise empty context.

use std::io::{self, Read};
use std::path::Path;

use layerstore::layer::apply::apply_layer;
use layerstore::layer::compress::{auto_decompress, detect};
use layerstore::media_types::Compression;

use super::ContextError;

/// What a context stream turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamedContext {
    /// A tar archive, unpacked.
    Archive,
    /// A Dockerfile, written as `Dockerfile`.
    Dockerfile,
}

/// Unpacks `input` into the empty directory `dir` (see the module documentation).
pub fn unpack_context_stream(
    input: impl Read,
    dir: &Path,
) -> Result<StreamedContext, ContextError> {
    let io_error = |context: &str| {
        let context = context.to_string();
        move |source: io::Error| ContextError::Io { context, source }
    };
    let mut input = input;
    // A tar header is 512 bytes: read that much (or all there is) before deciding what the input is.
    let mut head = Vec::with_capacity(512);
    (&mut input)
        .take(512)
        .read_to_end(&mut head)
        .map_err(io_error("reading the build context"))?;
    let is_archive =
        detect(&head) != Compression::None || head.get(257..262) == Some(b"ustar".as_slice());
    let mut input = io::Cursor::new(head).chain(input);
    if is_archive {
        let (_, tar) = auto_decompress(input).map_err(io_error("reading the build context"))?;
        apply_layer(tar, dir)?;
        Ok(StreamedContext::Archive)
    } else {
        let mut text = Vec::new();
        input
            .read_to_end(&mut text)
            .map_err(io_error("reading the Dockerfile"))?;
        std::fs::write(dir.join("Dockerfile"), text).map_err(io_error("writing the Dockerfile"))?;
        Ok(StreamedContext::Dockerfile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &str, content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content)
            .expect("append");
        builder.into_inner().expect("finish")
    }

    #[test]
    fn a_tar_archive_is_unpacked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = tar_with("Dockerfile", b"FROM scratch\n");
        let kind = unpack_context_stream(archive.as_slice(), dir.path()).expect("unpacked");
        assert_eq!(kind, StreamedContext::Archive);
        assert_eq!(
            std::fs::read(dir.path().join("Dockerfile")).expect("read"),
            b"FROM scratch\n"
        );
    }

    #[test]
    fn a_gzip_archive_is_unpacked() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar_with("app/file", b"x"))
            .expect("compress");
        let archive = gzip.finish().expect("finish");
        let kind = unpack_context_stream(archive.as_slice(), dir.path()).expect("unpacked");
        assert_eq!(kind, StreamedContext::Archive);
        assert_eq!(
            std::fs::read(dir.path().join("app/file")).expect("read"),
            b"x"
        );
    }

    #[test]
    fn anything_else_is_the_dockerfile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = b"FROM busybox\nRUN true\n";
        let kind = unpack_context_stream(text.as_slice(), dir.path()).expect("written");
        assert_eq!(kind, StreamedContext::Dockerfile);
        assert_eq!(
            std::fs::read(dir.path().join("Dockerfile")).expect("read"),
            text
        );
    }
}
