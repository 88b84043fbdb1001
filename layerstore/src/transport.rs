//! Image transports, as go-containerregistry's: an [`ImageSource`] reads one image (manifest bytes and media type,
//! blobs by digest as streams), an [`ImageSink`] writes one (blobs streamed in and verified, then the manifest), and
//! [`copy_image`] moves an image from any source to any sink without staging it anywhere else.
//!
//! [`StoreSource`] and [`StoreSink`] implement them for a [`Store`], which is also how an OCI layout directory is
//! read and written (the store is an OCI layout). Every blob read through a source is checked against its
//! descriptor's digest and size as it streams ([`VerifyingReader`]), and every blob a sink writes is verified again
//! by the sink; manifests come from sources that read them under [`crate::limits::MAX_METADATA_SIZE`].

use std::io::{self, Read};

use crate::digest::{Digest, Hasher};
use crate::image::{Image, ImageError};
use crate::manifest::{Descriptor, ManifestKind};
use crate::mutate::Encoded;
use crate::progress::{Progress, ProgressReader};
use crate::store::{Store, StoreError};

/// Why an image could not be read from a source or written to a sink.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A store (source or sink) failed, or a blob did not verify.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source's manifest is not an image manifest: its bytes were refused, or it is an index (copy its images
    /// one by one).
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Reads one image.
pub trait ImageSource {
    /// The manifest's exact bytes and its media type.
    fn manifest(&self) -> Result<(Vec<u8>, String), TransportError>;

    /// A stream of the blob `descriptor` names; reading it to its end fails unless the content has the descriptor's
    /// digest and size.
    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError>;
}

/// Writes one image: its blobs first, then its manifest, which makes the image visible.
pub trait ImageSink {
    /// Whether the sink has the blob already (it is then not sent).
    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, TransportError>;

    /// Writes the blob `descriptor` names from `content`, refusing content of another digest.
    fn put_blob(
        &mut self,
        descriptor: &Descriptor,
        content: &mut dyn Read,
    ) -> Result<(), TransportError>;

    /// Writes the manifest (`bytes` exactly, of `media_type`) once every blob it names is in, and names the image
    /// as the sink was told to; returns the manifest's descriptor.
    fn put_manifest(
        &mut self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Descriptor, TransportError>;
}

/// Copies the image `source` reads to `sink`: the config and layers the sink lacks (streamed, verified), then the
/// manifest byte for byte, so the manifest digest and the image ID stay. Returns the manifest's descriptor.
pub fn copy_image(
    source: &dyn ImageSource,
    sink: &mut dyn ImageSink,
    progress: &dyn Progress,
) -> Result<Descriptor, TransportError> {
    let (bytes, media_type) = source.manifest()?;
    let digest = Digest::sha256_of(&bytes);
    let manifest = match ManifestKind::parse(&bytes, &media_type) {
        Ok(ManifestKind::Image(manifest)) => manifest,
        Ok(ManifestKind::Index(_)) => return Err(ImageError::NotAnImage(digest).into()),
        Err(source) => return Err(ImageError::Manifest { digest, source }.into()),
    };
    for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if sink.has_blob(descriptor)? {
            continue;
        }
        let item = descriptor.digest.to_string();
        progress.start(&item, descriptor.size);
        let mut content = ProgressReader::new(source.blob(descriptor)?, &item, progress);
        sink.put_blob(descriptor, &mut content)?;
        progress.finish(&item, "copied");
    }
    sink.put_manifest(&bytes, &media_type)
}

/// An image source with its manifest replaced by another that names the same blobs: the image in other media types,
/// for example.
pub struct ReplacedManifest<'a> {
    source: &'a dyn ImageSource,
    manifest: Encoded,
}

impl<'a> ReplacedManifest<'a> {
    /// Reads `manifest` as the manifest, and the blobs from `source`.
    pub fn new(source: &'a dyn ImageSource, manifest: Encoded) -> ReplacedManifest<'a> {
        ReplacedManifest { source, manifest }
    }
}

impl ImageSource for ReplacedManifest<'_> {
    fn manifest(&self) -> Result<(Vec<u8>, String), TransportError> {
        Ok((
            self.manifest.bytes.clone(),
            self.manifest.descriptor.media_type.clone(),
        ))
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError> {
        self.source.blob(descriptor)
    }
}

/// Wraps a blob stream: counts and hashes what passes and, at the end, fails with `InvalidData` unless the content
/// has the expected digest and size (also when it runs past the size).
pub struct VerifyingReader<R> {
    inner: R,
    expected: Descriptor,
    hasher: Option<Hasher>,
    read: u64,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies `inner` against `expected`'s digest and size.
    pub fn new(inner: R, expected: &Descriptor) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new(expected.digest.algorithm())),
            expected: expected.clone(),
            read: 0,
        }
    }

    fn invalid(&self, message: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("blob {}: {message}", self.expected.digest),
        )
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.expected.size {
            return Err(self.invalid(format!(
                "more than the descriptor's {} bytes",
                self.expected.size
            )));
        }
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(n);
        };
        hasher.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if self.read != self.expected.size {
                return Err(self.invalid(format!(
                    "size mismatch: the descriptor says {} bytes, the content has {}",
                    self.expected.size, self.read
                )));
            }
            if let Some(hasher) = self.hasher.take() {
                let actual = hasher.finish();
                if actual != self.expected.digest {
                    return Err(self.invalid(format!("the content hashes to {actual}")));
                }
            }
        }
        Ok(n)
    }
}

/// An image in a store or OCI layout, as a source.
pub struct StoreSource<'a> {
    store: &'a Store,
    image: &'a Image,
}

impl<'a> StoreSource<'a> {
    /// Reads `image` (read from `store`) and its blobs from `store`.
    pub fn new(store: &'a Store, image: &'a Image) -> StoreSource<'a> {
        StoreSource { store, image }
    }
}

impl ImageSource for StoreSource<'_> {
    fn manifest(&self) -> Result<(Vec<u8>, String), TransportError> {
        Ok((
            self.image.manifest_bytes.clone(),
            self.image.descriptor.media_type.clone(),
        ))
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError> {
        let file = self.store.open_blob(&descriptor.digest)?;
        let reader = io::BufReader::with_capacity(1 << 20, file);
        Ok(Box::new(VerifyingReader::new(reader, descriptor)))
    }
}

/// A store or OCI layout, as a sink. The manifest is stored; naming the image (tags in the store, ref names in a
/// layout) is the caller's, with the descriptor [`ImageSink::put_manifest`] returns.
pub struct StoreSink<'a> {
    store: &'a Store,
}

impl<'a> StoreSink<'a> {
    /// Writes blobs and the manifest into `store`; the caller holds its writer lock until it has named the image.
    pub fn new(store: &'a Store) -> StoreSink<'a> {
        StoreSink { store }
    }
}

impl ImageSink for StoreSink<'_> {
    fn has_blob(&self, descriptor: &Descriptor) -> Result<bool, TransportError> {
        Ok(self.store.has_blob(&descriptor.digest))
    }

    fn put_blob(
        &mut self,
        descriptor: &Descriptor,
        content: &mut dyn Read,
    ) -> Result<(), TransportError> {
        let (_, size) = self
            .store
            .ingest(&mut &mut *content, Some(&descriptor.digest))?;
        if size != descriptor.size {
            return Err(StoreError::SizeMismatch {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: size,
            }
            .into());
        }
        Ok(())
    }

    fn put_manifest(
        &mut self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Descriptor, TransportError> {
        let digest = self.store.write_blob(bytes)?;
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{load::load, save::save, save::SaveItem};
    use crate::progress::NoProgress;
    use crate::reference::Reference;

    fn two_layer_image(store: &Store) -> Image {
        crate::test_images::write_image(store, &[b"a", b"b"])
    }

    #[test]
    fn store_to_layout_to_archive_to_store_keeps_digests() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let store = Store::open(dirs[0].path()).unwrap();
        let image = two_layer_image(&store);

        let layout = Store::open(dirs[1].path()).unwrap();
        let copied = copy_image(
            &StoreSource::new(&store, &image),
            &mut StoreSink::new(&layout),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(copied, image.descriptor);
        let in_layout = Image::read(&layout, &copied).unwrap();
        assert_eq!(in_layout.manifest_bytes, image.manifest_bytes);
        assert_eq!(in_layout.config_bytes, image.config_bytes);

        let name = Reference::parse_tagged("example.com/a:1").unwrap();
        let archive = save(
            &[SaveItem {
                source: &StoreSource::new(&layout, &in_layout),
                index: None,
                names: vec![name.clone()],
            }],
            Vec::new(),
            &NoProgress,
        )
        .unwrap();
        let back = Store::open(dirs[2].path()).unwrap();
        let loaded = load(&back, &archive[..], &NoProgress).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].descriptor.digest, image.descriptor.digest);
        assert_eq!(&loaded[0].id, image.id());
        assert_eq!(loaded[0].names, vec![name]);
        for layer in &image.manifest.layers {
            assert!(back.has_blob(&layer.digest));
        }
    }

    #[test]
    fn a_corrupt_blob_is_refused_on_the_way() {
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let store = Store::open(dirs[0].path()).unwrap();
        let image = two_layer_image(&store);
        let layer = &image.manifest.layers[1];
        let mut corrupt = std::fs::read(store.blob_path(&layer.digest)).unwrap();
        corrupt[0] ^= 1;
        std::fs::write(store.blob_path(&layer.digest), corrupt).unwrap();
        let layout = Store::open(dirs[1].path()).unwrap();
        let err = copy_image(
            &StoreSource::new(&store, &image),
            &mut StoreSink::new(&layout),
            &NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains("hashes to"), "{err}");
        assert!(!layout.has_blob(&layer.digest));
        assert!(!layout.has_blob(image.digest()));
    }

    #[test]
    fn verifying_reader_checks_size_and_digest() {
        let good = Descriptor::new("x", Digest::sha256_of(b"abc"), 3);
        let mut out = Vec::new();
        VerifyingReader::new(&b"abc"[..], &good)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abc");
        let short = Descriptor::new("x", Digest::sha256_of(b"abc"), 4);
        assert!(VerifyingReader::new(&b"abc"[..], &short)
            .read_to_end(&mut Vec::new())
            .is_err());
        let long = Descriptor::new("x", Digest::sha256_of(b"abc"), 2);
        assert!(VerifyingReader::new(&b"abc"[..], &long)
            .read_to_end(&mut Vec::new())
            .is_err());
    }
}
