//! An image tarball read where it lies, as an [`ImageSource`] for each of its images: `lade copy` from
//! `docker-archive:` and `oci-archive:` reads blobs straight out of the file, with no store in between.
//!
//! The archive gets the checks [`super::load::load`] makes (every blob's digest and size, every layer's diff ID,
//! the dual format's agreement), from one pass over it. An uncompressed tar file (what `docker save` and `lade save`
//! write) is only read; a compressed one or a stream cannot be read at random, so it is unpacked into a scratch
//! directory first, as `load` unpacks it. A multi-platform image of the archive reads as its host child.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::load::{plan, LoadError, LoadedImage, Plan};
use super::staging::{index_in_place, stage};
use crate::index_entry::choose_platform;
use crate::layer::compress::{auto_decompress, detect};
use crate::manifest::{Descriptor, ManifestKind, Platform};
use crate::media_types::{self, Compression};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::StoreError;
use crate::transport::{ImageSource, TransportError, VerifyingReader};

/// An opened, checked image tarball.
pub struct Archive {
    path: PathBuf,
    plan: Plan,
    /// Holds a compressed archive's unpacked files until the archive is dropped.
    _scratch: Option<tempfile::TempDir>,
}

impl Archive {
    /// Opens and checks the archive at `path` (any format [`super::load::load`] reads).
    pub fn open(path: &Path, progress: &dyn Progress) -> Result<Archive, LoadError> {
        let context = |source| StoreError::Io {
            context: format!("opening {}", path.display()),
            source,
        };
        let mut file = File::open(path).map_err(context)?;
        let is_file = file.metadata().map_err(context)?.is_file();
        let mut head = [0u8; 6];
        let read = file.read(&mut head).map_err(context)?;
        let (staged, scratch) = if is_file && detect(&head[..read]) == Compression::None {
            (index_in_place(path, progress)?, None)
        } else {
            let scratch = tempfile::Builder::new()
                .prefix("lade-archive-")
                .tempdir()
                .map_err(|source| StoreError::Io {
                    context: "creating a scratch directory".into(),
                    source,
                })?;
            let input = io::Cursor::new(head[..read].to_vec()).chain(file);
            let (_, reader) = auto_decompress(input)?;
            (stage(reader, scratch.path(), progress)?, Some(scratch))
        };
        let plan = plan(&staged)?;
        Ok(Archive {
            path: path.to_path_buf(),
            plan,
            _scratch: scratch,
        })
    }

    /// The archive's images, each once with every name the archive gives it.
    pub fn images(&self) -> &[LoadedImage] {
        &self.plan.images
    }

    /// The image `name` picks: one of the names the archive gives it (`busybox:1`), or an OCI layout's bare
    /// `org.opencontainers.image.ref.name` (`1`, also matched by the tag of a full name); without a name, the
    /// archive's only image.
    pub fn image(&self, name: Option<&str>) -> Result<ArchiveImage<'_>, LoadError> {
        let images = self.images();
        let chosen = match name {
            Some(name) => {
                let full = Reference::parse_tagged(name).ok();
                let bare_tag = match &full {
                    Some(reference) if name.contains([':', '/']) => reference.tag(),
                    _ => Some(name),
                };
                images
                    .iter()
                    .find(|image| full.as_ref().is_some_and(|f| image.names.contains(f)))
                    .or_else(|| {
                        images.iter().find(|image| {
                            self.plan.ref_names.iter().any(|(digest, tag)| {
                                digest == &image.descriptor.digest && Some(tag.as_str()) == bare_tag
                            })
                        })
                    })
                    .ok_or_else(|| LoadError::NoSuchImage {
                        archive: self.path.display().to_string(),
                        name: name.to_string(),
                    })?
            }
            None if images.len() == 1 => &images[0],
            None => {
                return Err(LoadError::SeveralImages {
                    archive: self.path.display().to_string(),
                    count: images.len(),
                })
            }
        };
        Ok(ArchiveImage {
            archive: self,
            image: chosen,
            manifest: self.platform_manifest(&chosen.descriptor)?,
        })
    }

    /// The image manifest an image of the archive stands for: itself, or the host's child of a multi-platform one.
    fn platform_manifest(&self, descriptor: &Descriptor) -> Result<Descriptor, LoadError> {
        if !media_types::is_index(&descriptor.media_type) {
            return Ok(descriptor.clone());
        }
        let mut bytes = Vec::new();
        self.open_blob(descriptor)
            .map_err(|e| LoadError::Io(io::Error::other(e)))?
            .read_to_end(&mut bytes)?;
        let index = match ManifestKind::parse(&bytes, &descriptor.media_type) {
            Ok(ManifestKind::Index(index)) => index,
            _ => return Err(LoadError::NoPlatform(descriptor.digest.clone())),
        };
        choose_platform(&index.manifests, &Platform::host())
            .cloned()
            .ok_or_else(|| LoadError::NoPlatform(descriptor.digest.clone()))
    }

    fn open_blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError> {
        if let Some(manifest) = self
            .plan
            .new_blobs
            .iter()
            .find(|m| m.descriptor.digest == descriptor.digest)
        {
            let reader = io::Cursor::new(manifest.bytes.as_slice());
            return Ok(Box::new(VerifyingReader::new(reader, descriptor)));
        }
        let (file, _) = self
            .plan
            .blobs
            .iter()
            .find(|(_, digest)| digest == &descriptor.digest)
            .ok_or_else(|| StoreError::BlobUnknown(descriptor.digest.clone()))?;
        let reader = file.open().map_err(|source| StoreError::Io {
            context: format!("reading {}", self.path.display()),
            source,
        })?;
        let reader = io::BufReader::with_capacity(1 << 20, reader);
        Ok(Box::new(VerifyingReader::new(reader, descriptor)))
    }
}

/// One image of an [`Archive`].
pub struct ArchiveImage<'a> {
    archive: &'a Archive,
    image: &'a LoadedImage,
    /// The image manifest read: the image's, or its host child's.
    manifest: Descriptor,
}

impl ArchiveImage<'_> {
    /// The names the archive gives the image.
    pub fn names(&self) -> &[Reference] {
        &self.image.names
    }
}

impl ImageSource for ArchiveImage<'_> {
    fn manifest(&self) -> Result<(Vec<u8>, String), TransportError> {
        let descriptor = &self.manifest;
        let mut bytes = Vec::new();
        self.archive
            .open_blob(descriptor)?
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Io {
                context: format!("reading manifest {}", descriptor.digest),
                source,
            })?;
        Ok((bytes, descriptor.media_type.clone()))
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + '_>, TransportError> {
        self.archive.open_blob(descriptor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::save::{save, SaveItem};
    use crate::image::Image;
    use crate::manifest::Platform;
    use crate::media_types;
    use crate::mutate;
    use crate::progress::NoProgress;
    use crate::store::Store;
    use crate::transport::{copy_image, StoreSink, StoreSource};

    fn image_with_layer(store: &Store, content: &[u8]) -> Image {
        crate::test_images::write_image(store, &[content])
    }

    /// Two images saved in one archive, as `lade save` writes it.
    fn saved_archive(dir: &Path) -> (PathBuf, Image, Image) {
        let store = Store::open(dir.join("store")).unwrap();
        let one = image_with_layer(&store, b"one");
        let two = image_with_layer(&store, b"two");
        let items = [
            SaveItem {
                source: &StoreSource::new(&store, &one),
                index: None,
                names: vec![Reference::parse_tagged("example.com/one:1").unwrap()],
            },
            SaveItem {
                source: &StoreSource::new(&store, &two),
                index: None,
                names: vec![Reference::parse_tagged("two:2").unwrap()],
            },
        ];
        let bytes = save(&items, Vec::new(), &NoProgress).unwrap();
        let path = dir.join("images.tar");
        std::fs::write(&path, bytes).unwrap();
        (path, one, two)
    }

    #[test]
    fn reads_each_image_in_place_by_name_or_bare_tag() {
        let dir = tempfile::tempdir().unwrap();
        let (path, one, two) = saved_archive(dir.path());
        let archive = Archive::open(&path, &NoProgress).unwrap();
        assert_eq!(archive.images().len(), 2);
        assert!(
            archive._scratch.is_none(),
            "an uncompressed archive was unpacked"
        );
        for (name, expected) in [("example.com/one:1", &one), ("two:2", &two), ("2", &two)] {
            let image = archive.image(Some(name)).unwrap();
            let layout = Store::open(dir.path().join(name.replace(['/', ':'], "_"))).unwrap();
            let copied = copy_image(&image, &mut StoreSink::new(&layout), &NoProgress).unwrap();
            assert_eq!(copied.digest, expected.descriptor.digest, "{name}");
            let read = Image::read(&layout, &copied).unwrap();
            assert_eq!(read.config_bytes, expected.config_bytes);
        }
        let err = archive.image(None).err().unwrap().to_string();
        assert!(err.contains("holds 2 images"), "{err}");
        let err = archive.image(Some("three:3")).err().unwrap().to_string();
        assert!(err.contains("no image named three:3"), "{err}");
    }

    #[test]
    fn a_multi_platform_image_is_saved_and_loaded_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let host = image_with_layer(&store, b"host");
        let other = image_with_layer(&store, b"other");
        let mut manifests = Vec::new();
        for (image, architecture) in [
            (&host, Platform::host().architecture),
            (&other, "riscv64".into()),
        ] {
            let mut descriptor = image.descriptor.clone();
            descriptor.platform = Some(Platform {
                architecture,
                ..Platform::host()
            });
            manifests.push(descriptor);
        }
        let index = mutate::encoded(
            serde_json::to_vec(&crate::manifest::Index::new(manifests)).unwrap(),
            media_types::OCI_INDEX,
        );
        store.write_blob(&index.bytes).unwrap();
        let name = Reference::parse_tagged("multi:1").unwrap();
        let (host_source, other_source) = (
            StoreSource::new(&store, &host),
            StoreSource::new(&store, &other),
        );
        let items = [SaveItem {
            source: &host_source,
            index: Some(crate::archive::save::SavedIndex {
                bytes: index.bytes.clone(),
                media_type: media_types::OCI_INDEX.into(),
                children: vec![&host_source, &other_source],
            }),
            names: vec![name.clone()],
        }];
        let path = dir.path().join("multi.tar");
        std::fs::write(&path, save(&items, Vec::new(), &NoProgress).unwrap()).unwrap();

        let loaded_into = Store::open(dir.path().join("loaded")).unwrap();
        let loaded =
            crate::archive::load::load(&loaded_into, File::open(&path).unwrap(), &NoProgress)
                .unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].descriptor.digest, index.descriptor.digest);
        assert_eq!(loaded[0].names, vec![name]);
        let found = loaded_into.find_image("multi:1").unwrap();
        assert_eq!(found.index.unwrap().digest, index.descriptor.digest);
        assert_eq!(found.image.descriptor.digest, host.descriptor.digest);
        assert!(loaded_into.has_blob(&other.manifest.layers[0].digest));

        // Read in place, it is its host child.
        let archive = Archive::open(&path, &NoProgress).unwrap();
        let (bytes, _) = archive.image(Some("multi:1")).unwrap().manifest().unwrap();
        assert_eq!(bytes, host.manifest_bytes);
    }

    #[test]
    fn a_compressed_archive_is_unpacked_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, one, _) = saved_archive(dir.path());
        let gzipped = dir.path().join("images.tar.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gzipped).unwrap(), Default::default());
        io::copy(&mut File::open(&path).unwrap(), &mut encoder).unwrap();
        encoder.finish().unwrap();
        let archive = Archive::open(&gzipped, &NoProgress).unwrap();
        assert!(archive._scratch.is_some());
        let image = archive.image(Some("example.com/one:1")).unwrap();
        let (bytes, _) = image.manifest().unwrap();
        assert_eq!(bytes, one.manifest_bytes);
    }

    #[test]
    fn a_blob_changed_in_the_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = saved_archive(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(3)
            .position(|w| w == b"one")
            .expect("the layer's content is in the archive");
        bytes[at] = b'X';
        std::fs::write(&path, bytes).unwrap();
        let err = Archive::open(&path, &NoProgress).err().unwrap().to_string();
        assert!(err.contains("digest mismatch"), "{err}");
    }
}
