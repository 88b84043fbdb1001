//! Image locations for `lade copy`, named like skopeo's transports, and copying an image between any two of them:
//!
//! - `docker://NAME[:TAG|@DIGEST]` — a registry;
//! - `oci:DIR[:TAG]` — an OCI image layout directory (the tag is the `org.opencontainers.image.ref.name`);
//! - `oci-archive:FILE[:REF]` and `docker-archive:FILE[:REF]` — tarballs;
//! - `lade:NAME[:TAG]` — lade's local store.
//!
//! A copy is a source ([`ImageSource`]) written to a destination: the local store and OCI layouts are read and
//! written as stores, archives are read where they lie ([`Archive`]) and written by [`save`], a registry image is
//! pulled straight into a store or layout destination. Only where no direct path exists yet does a copy go through a
//! scratch store in a temp directory: a registry source towards an archive or another registry, and an archive
//! towards a registry (pushes read blobs at random to resume, chunk and compress uploads). No copy touches the local
//! store unless it names it. An OCI layout destination gets OCI media types: a Docker schema 2 manifest is converted as
//! skopeo converts it (the manifest's, config's and layers' media types change, no blob's bytes do, so the image
//! ID stays and the manifest digest changes), and the copy says so. Archives are written in Docker 25's dual format (`manifest.json` beside an OCI layout), which
//! reads as both `docker-archive:` and `oci-archive:`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use layerstore::archive::save::{save, SaveItem};
use layerstore::archive::source::Archive;
use layerstore::image::ImageError;
use layerstore::manifest::{Flavour, ManifestKind};
use layerstore::mutate::Encoded;
use layerstore::progress::Progress;
use layerstore::tags::REF_NAME_ANNOTATION;
use layerstore::transport::{
    copy_image, ImageSource, ReplacedManifest, StoreSink, StoreSource, TransportError,
};
use layerstore::{Descriptor, Digest, Image, Reference, Store};

use crate::connector::Connector;
use crate::error::Error;
use crate::pull::{pull, PullOptions};
use crate::push::{push, PushOptions};

/// Where an image is.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// An image in a registry (`docker://NAME[:TAG]`).
    Registry(Reference),
    /// An OCI image layout directory (`oci:DIR[:TAG]`).
    Oci {
        /// The layout's directory.
        dir: PathBuf,
        /// The image's name in the layout's index (`org.opencontainers.image.ref.name`); without it the layout must hold one image.
        tag: Option<String>,
    },
    /// An OCI image layout in a tar file (`oci-archive:FILE[:REF]`).
    OciArchive {
        /// The tar file.
        file: PathBuf,
        /// The image's name in the archive; without it the archive must hold one image.
        reference: Option<String>,
    },
    /// A `docker save` tarball (`docker-archive:FILE[:REF]`).
    DockerArchive {
        /// The tar file.
        file: PathBuf,
        /// The image's name among the archive's `RepoTags`; without it the archive must hold one image.
        reference: Option<String>,
    },
    /// An image in lade's own store (`lade:NAME`): as a source, found by name or image ID; as a destination, tagged with the name.
    Local(String),
}

impl std::str::FromStr for Location {
    type Err = Error;

    fn from_str(text: &str) -> Result<Location, Error> {
        let (transport, rest) = text.split_once(':').ok_or_else(|| {
            Error::Location(format!(
                "{text:?} names no transport: use docker://, oci:, oci-archive:, docker-archive: or lade:"
            ))
        })?;
        let path_and_ref = |rest: &str| -> Result<(PathBuf, Option<String>), Error> {
            let (path, reference) = match rest.split_once(':') {
                Some((path, reference)) => (path, Some(reference.to_string())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(Error::Location(format!("{text:?}: the path is empty")));
            }
            Ok((PathBuf::from(path), reference.filter(|r| !r.is_empty())))
        };
        match transport {
            "docker" => {
                let name = rest.strip_prefix("//").ok_or_else(|| {
                    Error::Location(format!("{text:?}: a registry location is written docker://NAME[:TAG]"))
                })?;
                let reference = Reference::parse_tagged(name)
                    .map_err(|e| Error::Location(format!("{text:?}: {e}")))?;
                Ok(Location::Registry(reference))
            }
            "oci" => {
                let (dir, tag) = path_and_ref(rest)?;
                Ok(Location::Oci { dir, tag })
            }
            "oci-archive" => {
                let (file, reference) = path_and_ref(rest)?;
                Ok(Location::OciArchive { file, reference })
            }
            "docker-archive" => {
                let (file, reference) = path_and_ref(rest)?;
                Ok(Location::DockerArchive { file, reference })
            }
            "lade" if !rest.is_empty() => Ok(Location::Local(rest.to_string())),
            _ => Err(Error::Location(format!(
                "{text:?}: unknown transport {transport:?}: use docker://, oci:, oci-archive:, docker-archive: or lade:"
            ))),
        }
    }
}

/// An image opened at a source location.
enum Opened {
    /// An image in a store: the local store, an OCI layout, or the scratch store a registry image was pulled into.
    Store {
        store: Store,
        image: Box<Image>,
        /// The name the source gave the image, if any.
        name: Option<Reference>,
        /// Keeps a scratch store alive until the copy is done.
        _scratch: Option<tempfile::TempDir>,
    },
    /// An image tarball, read where it lies.
    Archive {
        archive: Archive,
        /// The image asked for by name.
        wanted: Option<String>,
    },
}

/// Settings for a copy.
pub struct CopyOptions<'a> {
    /// Opens registry sessions, for `docker://` locations.
    pub connector: &'a Connector,
    /// Opens the local store, for `lade:` locations.
    pub local_store: &'a dyn Fn() -> Result<Store, Error>,
    /// How to pull from a registry source: the platform to pick from an index, parallel downloads.
    pub pull: PullOptions,
    /// How to push to a registry destination.
    pub push: PushOptions,
    /// Copy an index whole or for several platforms, instead of the one image of `pull.platform`.
    pub platforms: Option<crate::multi::Platforms>,
}

/// What a copy wrote.
#[derive(Debug, Clone)]
pub struct Copied {
    /// The manifest digest at the destination.
    pub digest: Digest,
    /// The source's manifest digest, when the manifest was converted to OCI media types on the way.
    pub converted_from: Option<Digest>,
}

/// Copies the image at `source` to `destination`.
pub async fn copy(
    source: &Location,
    destination: &Location,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Copied, Error> {
    if let Some(platforms) = &options.platforms {
        if let Some(copied) =
            crate::multi::copy_index(source, destination, platforms, options, progress).await?
        {
            return Ok(copied);
        }
    }
    if let (Location::Registry(reference), Location::Local(name)) = (source, destination) {
        // Straight into the store, as `lade pull` does: nothing to stage.
        let store = (options.local_store)()?;
        let registry = options.connector.connect(reference.domain()).await?;
        let names = [parse_name(name)?];
        let pulled = pull(
            &registry,
            &store,
            reference,
            &names,
            &options.pull,
            progress,
        )
        .await?;
        return Ok(Copied {
            digest: pulled.descriptor.digest,
            converted_from: None,
        });
    }
    if let (Location::Registry(reference), Location::Oci { dir, tag }) = (source, destination) {
        return pull_into_layout(reference, dir, tag.as_deref(), options, progress).await;
    }
    let opened = open_source(source, options, progress).await?;
    let (store_source, archive_image);
    let (image_source, name): (&dyn ImageSource, Option<Reference>) = match &opened {
        Opened::Store {
            store, image, name, ..
        } => {
            store_source = StoreSource::new(store, image);
            (&store_source, name.clone())
        }
        Opened::Archive { archive, wanted } => {
            archive_image = archive.image(wanted.as_deref())?;
            let name = match wanted {
                Some(wanted) => Reference::parse_tagged(wanted).ok(),
                None => archive_image.names().first().cloned(),
            };
            (&archive_image, name)
        }
    };
    let (manifest_bytes, media_type) = image_source.manifest()?;
    let mut digest = Digest::sha256_of(&manifest_bytes);
    let mut converted_from = None;
    let converted = match destination {
        Location::Oci { .. } => to_oci(&manifest_bytes, &media_type, &digest)?,
        _ => None,
    };
    let replaced;
    let image_source: &dyn ImageSource = match converted {
        Some(manifest) => {
            converted_from = Some(std::mem::replace(
                &mut digest,
                manifest.descriptor.digest.clone(),
            ));
            replaced = ReplacedManifest::new(image_source, manifest);
            &replaced
        }
        None => image_source,
    };
    match destination {
        Location::Registry(reference) => {
            let registry = options.connector.connect(reference.domain()).await?;
            let push_options = push_options(source, reference, options);
            // An archive's blobs go through a scratch store, which push reads at random (resumed, chunked and
            // compressed uploads).
            let (scratch, scratch_image);
            let (store, image) = match &opened {
                Opened::Store { store, image, .. } => (store, &**image),
                Opened::Archive { .. } => {
                    scratch = ScratchStore::new()?;
                    let descriptor =
                        copy_image(image_source, &mut StoreSink::new(&scratch.store), progress)?;
                    scratch_image = Image::read(&scratch.store, &descriptor)?;
                    (&scratch.store, &scratch_image)
                }
            };
            // Compressing layers on the way makes a new manifest: its digest is the copy's.
            digest = push(&registry, store, image, reference, &push_options, progress)
                .await?
                .digest;
        }
        Location::Local(name) => {
            let store = (options.local_store)()?;
            let name = parse_name(name)?;
            let _writer = store.writer_lock()?;
            let descriptor = copy_image(image_source, &mut StoreSink::new(&store), progress)?;
            store.add_image(&descriptor, &[name])?;
        }
        Location::Oci { dir, tag } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            let _tidy = IngestDirGuard::new(dir);
            let store = Store::open(dir)?;
            let descriptor = copy_image(image_source, &mut StoreSink::new(&store), progress)?;
            set_oci_tag(&store, &descriptor, tag.as_deref())?;
        }
        Location::OciArchive { file, reference } | Location::DockerArchive { file, reference } => {
            let names = match reference {
                Some(reference) => vec![parse_name(reference)?],
                None => name.into_iter().filter(|n| n.tag().is_some()).collect(),
            };
            let item = SaveItem {
                source: image_source,
                index: None,
                names,
            };
            write_archive(file, |out| {
                save(&[item], out, progress)?;
                Ok(())
            })?;
        }
    }
    Ok(Copied {
        digest,
        converted_from,
    })
}

/// Pulls `reference` straight into the OCI layout `dir` (a layout is a store) and names it `tag` there; a Docker
/// schema 2 manifest is converted to OCI media types, and the pulled one removed unless the layout names it.
async fn pull_into_layout(
    reference: &Reference,
    dir: &Path,
    tag: Option<&str>,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Copied, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let _tidy = IngestDirGuard::new(dir);
    let store = Store::open(dir)?;
    let registry = options.connector.connect(reference.domain()).await?;
    let pulled = pull(&registry, &store, reference, &[], &options.pull, progress).await?;
    let image = Image::read(&store, &pulled.descriptor)?;
    let Some(converted) = to_oci(
        &image.manifest_bytes,
        &image.descriptor.media_type,
        image.digest(),
    )?
    else {
        set_oci_tag(&store, &image.descriptor, tag)?;
        return Ok(Copied {
            digest: image.digest().clone(),
            converted_from: None,
        });
    };
    store.write_blob(&converted.bytes)?;
    set_oci_tag(&store, &converted.descriptor, tag)?;
    let named = store
        .read_index()?
        .manifests
        .iter()
        .any(|d| &d.digest == image.digest());
    if !named {
        store.remove_blob(image.digest())?;
    }
    Ok(Copied {
        digest: converted.descriptor.digest,
        converted_from: Some(image.digest().clone()),
    })
}

/// A store in a temp directory, removed when dropped.
struct ScratchStore {
    store: Store,
    _dir: tempfile::TempDir,
}

impl ScratchStore {
    fn new() -> Result<ScratchStore, Error> {
        let dir = scratch_dir()?;
        Ok(ScratchStore {
            store: Store::open(dir.path())?,
            _dir: dir,
        })
    }
}

/// The manifest `bytes` (of `media_type`, digest `digest`) in OCI media types, when it is a Docker schema 2
/// manifest (`None` when it is OCI already).
fn to_oci(bytes: &[u8], media_type: &str, digest: &Digest) -> Result<Option<Encoded>, Error> {
    if media_type != layerstore::media_types::DOCKER_MANIFEST {
        return Ok(None);
    }
    let manifest = match ManifestKind::parse(bytes, media_type) {
        Ok(ManifestKind::Image(manifest)) => manifest,
        Ok(ManifestKind::Index(_)) => {
            return Err(TransportError::from(ImageError::NotAnImage(digest.clone())).into())
        }
        Err(source) => {
            return Err(TransportError::from(ImageError::Manifest {
                digest: digest.clone(),
                source,
            })
            .into())
        }
    };
    let converted = manifest
        .to_flavour(Flavour::Oci)
        .ok_or_else(|| Error::Location(format!("manifest {digest} has no OCI media types")))?;
    Ok(Some(layerstore::mutate::encode_manifest(&converted)))
}

/// The push options of a copy to `destination`: blobs may be mounted from the source repository of the same registry.
pub(crate) fn push_options(
    source: &Location,
    destination: &Reference,
    options: &CopyOptions<'_>,
) -> PushOptions {
    let mut push_options = options.push.clone();
    if let Location::Registry(from) = source {
        if from.domain() == destination.domain() {
            push_options.mount_from.push(from.path().to_string());
        }
    }
    push_options
}

fn parse_name(name: &str) -> Result<Reference, Error> {
    Reference::parse_tagged(name).map_err(|e| Error::Location(format!("{name:?}: {e}")))
}

async fn open_source(
    location: &Location,
    options: &CopyOptions<'_>,
    progress: &dyn Progress,
) -> Result<Opened, Error> {
    match location {
        Location::Registry(reference) => {
            // Pulled into a scratch store: downloads are resumed and checked there before the copy goes on.
            let scratch = scratch_dir()?;
            let store = Store::open(scratch.path())?;
            let registry = options.connector.connect(reference.domain()).await?;
            let pulled = pull(&registry, &store, reference, &[], &options.pull, progress).await?;
            let image = Image::read(&store, &pulled.descriptor)?;
            Ok(Opened::Store {
                store,
                image: Box::new(image),
                name: Some(reference.clone()),
                _scratch: Some(scratch),
            })
        }
        Location::Local(name) => {
            let store = (options.local_store)()?;
            let found = store.find_image(name)?;
            Ok(Opened::Store {
                store,
                image: Box::new(found.image),
                name: found.requested,
                _scratch: None,
            })
        }
        Location::Oci { dir, tag } => {
            let tidy = IngestDirGuard::new(dir);
            let store = open_layout(dir)?;
            let image = find_in_layout(&store, dir, tag.as_deref())?;
            drop(tidy);
            Ok(Opened::Store {
                store,
                image: Box::new(image),
                name: None,
                _scratch: None,
            })
        }
        Location::OciArchive { file, reference } | Location::DockerArchive { file, reference } => {
            Ok(Opened::Archive {
                archive: Archive::open(file, progress)?,
                wanted: reference.clone(),
            })
        }
    }
}

pub(crate) fn scratch_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("lade-copy-")
        .tempdir()
        .map_err(|e| Error::io("creating a scratch directory", e))
}

/// Removes the `ingest/` scratch directory that opening a layout as a [`Store`] creates, when it was not there
/// before and is empty again, so that lade leaves other tools' OCI layouts as it found them.
pub(crate) struct IngestDirGuard(Option<PathBuf>);

impl IngestDirGuard {
    pub(crate) fn new(layout: &Path) -> IngestDirGuard {
        let ingest = layout.join("ingest");
        IngestDirGuard((!ingest.exists()).then_some(ingest))
    }
}

impl Drop for IngestDirGuard {
    fn drop(&mut self) {
        if let Some(ingest) = &self.0 {
            let _ = std::fs::remove_dir(ingest);
        }
    }
}

/// Opens an existing OCI layout (refusing a directory that is not one).
fn open_layout(dir: &Path) -> Result<Store, Error> {
    if !dir.join("index.json").is_file() {
        return Err(Error::Location(format!(
            "{} is not an OCI layout: it has no index.json",
            dir.display()
        )));
    }
    Ok(Store::open(dir)?)
}

/// The image tagged `tag` in an OCI layout, or its only image when no tag is given.
fn find_in_layout(store: &Store, path: &Path, tag: Option<&str>) -> Result<Image, Error> {
    let index = store.read_index()?;
    let images: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| layerstore::media_types::is_manifest(&d.media_type))
        .collect();
    let descriptor = match tag {
        Some(tag) => images
            .iter()
            .find(|d| d.annotation(REF_NAME_ANNOTATION) == Some(tag))
            .ok_or_else(|| {
                Error::Location(format!("{} has no image tagged {tag:?}", path.display()))
            })?,
        None if images.len() == 1 => images[0],
        None => {
            return Err(Error::Location(format!(
                "{} holds {} images: name one with :TAG",
                path.display(),
                images.len()
            )))
        }
    };
    Ok(Image::read(store, descriptor)?)
}

/// Copies the blobs and manifest of `image` that `to` lacks, verifying each: a store source to a store sink.
pub(crate) fn copy_blobs(from: &Store, to: &Store, image: &Image) -> Result<(), Error> {
    copy_image(
        &StoreSource::new(from, image),
        &mut StoreSink::new(to),
        &layerstore::progress::NoProgress,
    )?;
    Ok(())
}

/// Records the manifest or index `descriptor` names in an OCI layout's index under `tag` (replacing the entry that
/// had it), or untagged.
pub(crate) fn set_oci_tag(
    store: &Store,
    descriptor: &Descriptor,
    tag: Option<&str>,
) -> Result<(), Error> {
    store.update_index(|index| {
        let mut entry = Descriptor::new(
            descriptor.media_type.clone(),
            descriptor.digest.clone(),
            descriptor.size,
        );
        match tag {
            Some(tag) => {
                index
                    .manifests
                    .retain(|d| d.annotation(REF_NAME_ANNOTATION) != Some(tag));
                entry.annotations = Some(BTreeMap::from([(
                    REF_NAME_ANNOTATION.to_string(),
                    tag.to_string(),
                )]));
            }
            None => index
                .manifests
                .retain(|d| d.digest != descriptor.digest || d.annotations.is_some()),
        }
        index.manifests.push(entry);
        Ok::<_, Error>(())
    })
}

/// Writes a file atomically: into a temp file beside it, renamed into place on success.
pub(crate) fn write_archive(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), Error>,
) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io(format!("creating a temp file in {}", dir.display()), e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, temp);
    write(&mut out)?;
    let temp = out
        .into_inner()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.into_error()))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    temp.persist(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let parse = |s: &str| s.parse::<Location>();
        assert!(
            matches!(parse("docker://127.0.0.1:5000/a/b:t").unwrap(), Location::Registry(r) if r.domain() == "127.0.0.1:5000" && r.tag() == Some("t"))
        );
        assert_eq!(
            parse("oci:/tmp/layout:v1").unwrap(),
            Location::Oci {
                dir: "/tmp/layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            parse("docker-archive:/tmp/a.tar:busybox:1").unwrap(),
            Location::DockerArchive {
                file: "/tmp/a.tar".into(),
                reference: Some("busybox:1".into())
            }
        );
        assert_eq!(
            parse("oci-archive:a.tar").unwrap(),
            Location::OciArchive {
                file: "a.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            parse("lade:busybox").unwrap(),
            Location::Local("busybox".into())
        );
        assert!(parse("busybox").is_err());
        assert!(parse("docker:busybox").is_err());
        assert!(parse("ftp://x").is_err());
    }
}
