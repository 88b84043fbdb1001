//! Loading image tarballs into the store: Docker's legacy `docker save` format (≤ 24), Docker 25's dual format,
//! and OCI layout archives (skopeo's `oci-archive:`), optionally gzip- or zstd-compressed.
//!
//! Nothing reaches the store until the whole archive has been read and checked: every blob's digest and size, every
//! media type, every layer's diffID against the config. Only then are the blobs moved into place and the tags set.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};

use super::staging::{stage, Staged, StagedFile, StagingError};
use super::{blob_path, ArchiveManifestEntry};
use crate::config::ImageConfig;
use crate::digest::{Digest, HashingReader};
use crate::layer::compress::{auto_decompress, detect};
use crate::limits::MAX_METADATA_SIZE;
use crate::manifest::{
    Descriptor, Flavour, Index, Manifest, ManifestError, ManifestKind, Platform,
};
use crate::media_types::{self, Compression};
use crate::mutate::{self, Encoded};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::{Store, StoreError};
use crate::tags::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION};

/// Why an archive could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Staging the archive's files in a temporary directory failed.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// Reading or writing the destination store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive has neither `manifest.json` (docker-archive) nor `index.json` (OCI layout).
    #[error("not an image archive: it has neither manifest.json (docker save) nor index.json (OCI layout)")]
    UnknownFormat,
    /// A JSON file of the archive (`manifest.json`, `index.json`, a config) does not parse.
    #[error("{file}: invalid JSON: {source}")]
    Json {
        /// The file's path inside the archive.
        file: String,
        /// What the JSON parser reported.
        source: serde_json::Error,
    },
    /// A manifest or index of the archive is not one this crate understands.
    #[error("{file}: {source}")]
    Manifest {
        /// The file's path inside the archive.
        file: String,
        /// Why the document was refused.
        source: ManifestError,
    },
    /// A blob's content does not hash to the digest its descriptor gives.
    #[error("blob {path}: digest mismatch: the descriptor says {expected}, the content hashes to {actual}")]
    DigestMismatch {
        /// The blob's path inside the archive.
        path: String,
        /// The digest the descriptor (or the blob's file name) promises.
        expected: Digest,
        /// The digest of the content read.
        actual: Digest,
    },
    /// A blob's length differs from the size its descriptor gives.
    #[error(
        "blob {path}: size mismatch: the descriptor says {expected} bytes, the file has {actual}"
    )]
    SizeMismatch {
        /// The blob's path inside the archive.
        path: String,
        /// The size in bytes the descriptor gives.
        expected: u64,
        /// The size in bytes of the file in the archive.
        actual: u64,
    },
    /// A descriptor's media type is not one allowed where it appears (an index entry, a config or a layer).
    #[error("{what} {digest} has media type {media_type:?}, which is not {expected}")]
    MediaType {
        /// Which descriptor it is: `"index.json entry"`, `"config"` or `"layer"`.
        what: &'static str,
        /// The digest of the referenced blob.
        digest: Digest,
        /// The media type the descriptor gives.
        media_type: String,
        /// What was allowed there, in words (e.g. `"an image config"`).
        expected: &'static str,
    },
    /// An image's manifest and config disagree on the number of layers.
    #[error("image {config}: {layers} layers, but the config lists {diff_ids} diff IDs")]
    LayerCount {
        /// The config's path or digest, naming the image.
        config: String,
        /// The number of layers the manifest lists.
        layers: usize,
        /// The number of DiffIDs in the config's `rootfs`.
        diff_ids: usize,
    },
    /// A layer's uncompressed content does not hash to the DiffID the config gives for it.
    #[error("layer {path}: its content has diff ID {actual}, but the config expects {expected}")]
    DiffId {
        /// The layer's path inside the archive.
        path: String,
        /// The DiffID from the config.
        expected: Digest,
        /// The digest of the layer's uncompressed content.
        actual: Digest,
    },
    /// A metadata file (manifest, index, config) is larger than the limit for metadata, which is read into memory.
    #[error(
        "{file} is {size} bytes, larger than the {limit}-byte limit for an archive's metadata"
    )]
    TooLarge {
        /// The file's path inside the archive.
        file: String,
        /// The file's size in bytes.
        size: u64,
        /// The largest metadata file accepted, in bytes.
        limit: u64,
    },
    /// A layer's content is compressed differently from what its media type says.
    #[error("layer {path}: its media type says {declared}, but its content is {actual}")]
    Compression {
        /// The layer's path inside the archive.
        path: String,
        /// The compression its media type names (`none`, `gzip`, `zstd`).
        declared: &'static str,
        /// The compression its bytes show.
        actual: &'static str,
    },
    /// An archive with both `manifest.json` and `index.json` describes different images in them; says how.
    #[error("manifest.json disagrees with index.json: {0}")]
    Inconsistent(String),
    /// The archive's index (the digest given) lists no manifest for the platform asked for.
    #[error("index {0} has no manifest for this platform")]
    NoPlatform(Digest),
    /// The archive (its path given) has no image of the name asked for.
    #[error("{archive} holds no image named {name}")]
    NoSuchImage {
        /// The archive's path.
        archive: String,
        /// The name asked for.
        name: String,
    },
    /// The archive (its path given) holds several images and none was named.
    #[error("{archive} holds {count} images: name one as FILE:NAME")]
    SeveralImages {
        /// The archive's path.
        archive: String,
        /// How many images it holds.
        count: usize,
    },
    /// Reading a layer to check its content failed.
    #[error("reading a layer to check it: {0}")]
    Io(#[from] io::Error),
}

/// An image the archive held, now in the store.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The descriptor of the image's manifest, as stored.
    pub descriptor: Descriptor,
    /// The image ID: the digest of its config, as `docker images` shows it.
    pub id: Digest,
    /// The names the archive gave the image (`RepoTags`, or the OCI `ref.name` annotations).
    pub names: Vec<Reference>,
}

/// Loads every image of the archive read from `reader`.
pub fn load(
    store: &Store,
    reader: impl Read,
    progress: &dyn Progress,
) -> Result<Vec<LoadedImage>, LoadError> {
    let _writer = store.writer_lock()?;
    let (_, reader) = auto_decompress(reader)?;
    let scratch = store.temp_dir("load-")?;
    let staged = stage(reader, scratch.path(), progress)?;
    plan(&staged)?.commit(store)
}

/// Reads and checks the images of a staged archive.
pub(super) fn plan(staged: &Staged) -> Result<Plan, LoadError> {
    let mut plan = Plan::default();
    if staged.contains("index.json") {
        plan_oci_layout(staged, &mut plan)?;
    } else if staged.contains("manifest.json") {
        plan_docker_archive(staged, &mut plan)?;
    } else {
        return Err(LoadError::UnknownFormat);
    }
    Ok(plan)
}

/// What a checked archive holds: its images and the files of their blobs.
#[derive(Default)]
pub(super) struct Plan {
    /// The archive's files that are blobs of its images, with the digest each is known by.
    pub(super) blobs: Vec<(StagedFile, Digest)>,
    /// Manifests made for images of a docker-archive, which has none.
    pub(super) new_blobs: Vec<Encoded>,
    /// The images, each once, with all the names the archive gives it.
    pub(super) images: Vec<LoadedImage>,
    /// The bare `org.opencontainers.image.ref.name` tags of an OCI layout's images, by manifest digest.
    pub(super) ref_names: Vec<(Digest, String)>,
    /// Each layer file's compression and diff ID, by the file's sha256: a layer that many images share (an
    /// archive's images, an index's platforms) is decompressed once.
    diff_ids: HashMap<Digest, (Compression, Digest)>,
}

impl Plan {
    fn commit(self, store: &Store) -> Result<Vec<LoadedImage>, LoadError> {
        for (file, digest) in &self.blobs {
            if store.has_blob(digest) {
                continue;
            }
            if digest == &file.sha256 && file.is_scratch_file() {
                store.adopt_verified_file(&file.path, digest)?;
            } else {
                store.ingest(&mut file.open()?, Some(digest))?;
            }
        }
        for manifest in &self.new_blobs {
            store.write_blob(&manifest.bytes)?;
        }
        for image in &self.images {
            store.add_image(&image.descriptor, &image.names)?;
        }
        Ok(self.images)
    }

    /// A layer file's compression and diff ID (the digest of its uncompressed content).
    fn layer_diff_id(&mut self, file: &StagedFile) -> Result<(Compression, Digest), LoadError> {
        if let Some(known) = self.diff_ids.get(&file.sha256) {
            return Ok(known.clone());
        }
        let found = layer_diff_id(file)?;
        self.diff_ids.insert(file.sha256.clone(), found.clone());
        Ok(found)
    }

    fn add_image(&mut self, image: LoadedImage) {
        match self
            .images
            .iter_mut()
            .find(|i| i.descriptor.digest == image.descriptor.digest)
        {
            Some(existing) => {
                for name in image.names {
                    if !existing.names.contains(&name) {
                        existing.names.push(name);
                    }
                }
            }
            None => self.images.push(image),
        }
    }
}

/// Checks a blob of the archive against its descriptor and returns it.
fn verified_blob<'a>(
    staged: &'a Staged,
    descriptor: &Descriptor,
) -> Result<&'a StagedFile, LoadError> {
    let path = blob_path(&descriptor.digest);
    let file = staged.file(&path)?;
    if file.size != descriptor.size {
        return Err(LoadError::SizeMismatch {
            path,
            expected: descriptor.size,
            actual: file.size,
        });
    }
    let actual = if descriptor.digest.algorithm() == file.sha256.algorithm() {
        file.sha256.clone()
    } else {
        let mut reader = HashingReader::new(file.open()?, descriptor.digest.algorithm());
        io::copy(&mut reader, &mut io::sink())?;
        reader.finish().0
    };
    if actual != descriptor.digest {
        return Err(LoadError::DigestMismatch {
            path,
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    Ok(file)
}

/// Reads a staged metadata file (manifest, index, config, `manifest.json`, `repositories`) whole, refusing one over
/// [`MAX_METADATA_SIZE`].
fn read_metadata(staged: &Staged, path: &str) -> Result<Vec<u8>, LoadError> {
    let size = staged.file(path)?.size;
    if size > MAX_METADATA_SIZE {
        return Err(LoadError::TooLarge {
            file: path.to_string(),
            size,
            limit: MAX_METADATA_SIZE,
        });
    }
    Ok(staged.read(path)?)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, LoadError> {
    serde_json::from_slice(bytes).map_err(|source| LoadError::Json {
        file: file.to_string(),
        source,
    })
}

/// An OCI layout: `index.json` names manifests (or nested indexes) whose blobs are in `blobs/`.
fn plan_oci_layout(staged: &Staged, plan: &mut Plan) -> Result<(), LoadError> {
    let index: Index = parse_json(&read_metadata(staged, "index.json")?, "index.json")?;
    let mut layouts = BTreeMap::new();
    // Each image with the config digests its `manifest.json` tags are found by (its children's, for an index).
    let mut images: Vec<(LoadedImage, Vec<Digest>)> = Vec::new();
    for entry in &index.manifests {
        if let Some(children) = whole_index(staged, entry)? {
            let mut configs = Vec::new();
            for child in &children {
                let manifest = plan_image(staged, child, plan, &mut layouts)?;
                configs.push(manifest.config.digest.clone());
            }
            plan.blobs
                .push((verified_blob(staged, entry)?.clone(), entry.digest.clone()));
            let descriptor =
                Descriptor::new(entry.media_type.clone(), entry.digest.clone(), entry.size);
            add_ref_name(plan, entry, &descriptor);
            let image = LoadedImage {
                id: descriptor.digest.clone(),
                descriptor,
                names: names_from_annotations(entry),
            };
            images.push((image, configs));
            continue;
        }
        let manifest_descriptor = select_manifest(staged, entry)?;
        let manifest = plan_image(staged, &manifest_descriptor, plan, &mut layouts)?;
        let descriptor = Descriptor::new(
            manifest_descriptor.media_type.clone(),
            manifest_descriptor.digest.clone(),
            manifest_descriptor.size,
        );
        add_ref_name(plan, entry, &descriptor);
        let image = LoadedImage {
            descriptor,
            id: manifest.config.digest.clone(),
            names: names_from_annotations(entry),
        };
        images.push((image, vec![manifest.config.digest.clone()]));
    }
    check_dual_format(staged, &layouts)?;
    let legacy_tags = legacy_repo_tags(staged)?;
    for (mut image, configs) in images {
        for tag in configs.iter().filter_map(|c| legacy_tags.get(c)).flatten() {
            if !image.names.contains(tag) {
                image.names.push(tag.clone());
            }
        }
        plan.add_image(image);
    }
    Ok(())
}

/// Records the bare ref name an `index.json` entry gives the image `descriptor` names.
fn add_ref_name(plan: &mut Plan, entry: &Descriptor, descriptor: &Descriptor) {
    if let Some(tag) = entry.annotation(REF_NAME_ANNOTATION) {
        plan.ref_names
            .push((descriptor.digest.clone(), tag.to_string()));
    }
}

/// Checks the image manifest `descriptor` names and its blobs, records them, and notes its layout for the dual
/// format's check.
fn plan_image(
    staged: &Staged,
    descriptor: &Descriptor,
    plan: &mut Plan,
    layouts: &mut BTreeMap<String, Vec<String>>,
) -> Result<Manifest, LoadError> {
    let file = verified_blob(staged, descriptor)?;
    let path = blob_path(&descriptor.digest);
    let bytes = read_metadata(staged, &path)?;
    let manifest = match ManifestKind::parse(&bytes, &descriptor.media_type) {
        Ok(ManifestKind::Image(manifest)) => manifest,
        Ok(ManifestKind::Index(_)) => {
            return Err(LoadError::MediaType {
                what: "index entry",
                digest: descriptor.digest.clone(),
                media_type: descriptor.media_type.clone(),
                expected: "an image manifest",
            })
        }
        Err(source) => return Err(LoadError::Manifest { file: path, source }),
    };
    plan.blobs.push((file.clone(), descriptor.digest.clone()));
    check_image_blobs(staged, &manifest, plan)?;
    layouts.insert(
        blob_path(&manifest.config.digest),
        manifest
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    );
    Ok(*manifest)
}

/// The children of an `index.json` entry that is a multi-platform image the archive holds whole: an index (or
/// Docker manifest list) of image manifests whose manifests, configs and layers are all in the archive. `None` for
/// an image manifest, a nested index, or an index with a child missing (only the host's child is then loaded, as
/// before).
fn whole_index(staged: &Staged, entry: &Descriptor) -> Result<Option<Vec<Descriptor>>, LoadError> {
    if !media_types::is_index(&entry.media_type) {
        return Ok(None);
    }
    verified_blob(staged, entry)?;
    let path = blob_path(&entry.digest);
    let index = match ManifestKind::parse(&read_metadata(staged, &path)?, &entry.media_type) {
        Ok(ManifestKind::Index(index)) => index,
        Ok(ManifestKind::Image(_)) => unreachable!("parsed as an index media type"),
        Err(source) => return Err(LoadError::Manifest { file: path, source }),
    };
    if index.manifests.is_empty() {
        return Ok(None);
    }
    for child in &index.manifests {
        let child_path = blob_path(&child.digest);
        if !media_types::is_manifest(&child.media_type) || !staged.contains(&child_path) {
            return Ok(None);
        }
        let Ok(ManifestKind::Image(manifest)) =
            ManifestKind::parse(&read_metadata(staged, &child_path)?, &child.media_type)
        else {
            return Ok(None);
        };
        let complete = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .all(|blob| staged.contains(&blob_path(&blob.digest)));
        if !complete {
            return Ok(None);
        }
    }
    Ok(Some(index.manifests))
}

/// In Docker 25's dual format, every `manifest.json` entry must name, as `blobs/` paths, the config and the layers of
/// an image of `index.json` (`layouts`: config path → layer paths), so that both readings give the same images.
fn check_dual_format(
    staged: &Staged,
    layouts: &BTreeMap<String, Vec<String>>,
) -> Result<(), LoadError> {
    if !staged.contains("manifest.json") {
        return Ok(());
    }
    let entries: Vec<ArchiveManifestEntry> =
        parse_json(&read_metadata(staged, "manifest.json")?, "manifest.json")?;
    for entry in entries {
        let Some(layers) = layouts.get(&entry.config) else {
            return Err(LoadError::Inconsistent(format!(
                "config {:?} is not the config of an image in index.json",
                entry.config
            )));
        };
        if &entry.layers != layers {
            return Err(LoadError::Inconsistent(format!(
                "the layers of {} are {:?} in manifest.json but {:?} in the image's manifest",
                entry.config, entry.layers, layers
            )));
        }
    }
    Ok(())
}

/// For an index entry that is itself an index, picks this host's manifest from it.
fn select_manifest(staged: &Staged, entry: &Descriptor) -> Result<Descriptor, LoadError> {
    let mut current = entry.clone();
    for _ in 0..8 {
        if media_types::is_manifest(&current.media_type) {
            return Ok(current);
        }
        if !media_types::is_index(&current.media_type) {
            return Err(LoadError::MediaType {
                what: "index.json entry",
                digest: current.digest.clone(),
                media_type: current.media_type.clone(),
                expected: "an image manifest or index",
            });
        }
        verified_blob(staged, &current)?;
        let bytes = read_metadata(staged, &blob_path(&current.digest))?;
        let child = match ManifestKind::parse(&bytes, &current.media_type) {
            Ok(ManifestKind::Index(child)) => child,
            Ok(ManifestKind::Image(_)) => unreachable!("parsed as an index media type"),
            Err(source) => {
                return Err(LoadError::Manifest {
                    file: blob_path(&current.digest),
                    source,
                })
            }
        };
        let host = Platform::host();
        let chosen = child
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == host.os && p.architecture == host.architecture)
            })
            .or_else(|| (child.manifests.len() == 1).then(|| &child.manifests[0]))
            .ok_or_else(|| LoadError::NoPlatform(current.digest.clone()))?;
        current = chosen.clone();
    }
    Err(LoadError::NoPlatform(entry.digest.clone()))
}

/// Checks the config and layers of a manifest and records their blobs.
fn check_image_blobs(
    staged: &Staged,
    manifest: &Manifest,
    plan: &mut Plan,
) -> Result<(), LoadError> {
    if !media_types::is_config(&manifest.config.media_type) {
        return Err(LoadError::MediaType {
            what: "config",
            digest: manifest.config.digest.clone(),
            media_type: manifest.config.media_type.clone(),
            expected: "an image config",
        });
    }
    let config_file = verified_blob(staged, &manifest.config)?;
    let config_path = blob_path(&manifest.config.digest);
    let config: ImageConfig = parse_json(&read_metadata(staged, &config_path)?, &config_path)?;
    plan.blobs
        .push((config_file.clone(), manifest.config.digest.clone()));
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(LoadError::LayerCount {
            config: manifest.config.digest.to_string(),
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let compression = media_types::layer_compression(&layer.media_type).ok_or_else(|| {
            LoadError::MediaType {
                what: "layer",
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                expected: "a layer media type",
            }
        })?;
        let file = verified_blob(staged, layer)?;
        let path = blob_path(&layer.digest);
        let (actual_compression, actual) = plan.layer_diff_id(file)?;
        if actual_compression != compression {
            return Err(LoadError::Compression {
                path,
                declared: compression.name(),
                actual: actual_compression.name(),
            });
        }
        if &actual != diff_id {
            return Err(LoadError::DiffId {
                path,
                expected: diff_id.clone(),
                actual,
            });
        }
        plan.blobs.push((file.clone(), layer.digest.clone()));
    }
    Ok(())
}

/// The names an OCI index entry carries: containerd's full-name annotation, or an OCI ref name that is a full
/// reference (a bare tag names no repository).
fn names_from_annotations(entry: &Descriptor) -> Vec<Reference> {
    let full = entry.annotation(IMAGE_NAME_ANNOTATION).or_else(|| {
        entry
            .annotation(REF_NAME_ANNOTATION)
            .filter(|name| name.contains(':') || name.contains('/'))
    });
    full.and_then(|name| Reference::parse_tagged(name).ok())
        .into_iter()
        .collect()
}

/// `RepoTags` of a `manifest.json`, by config digest (for the dual format, where both are present).
fn legacy_repo_tags(staged: &Staged) -> Result<BTreeMap<Digest, Vec<Reference>>, LoadError> {
    let mut tags = BTreeMap::new();
    if !staged.contains("manifest.json") {
        return Ok(tags);
    }
    let entries: Vec<ArchiveManifestEntry> =
        parse_json(&read_metadata(staged, "manifest.json")?, "manifest.json")?;
    for entry in entries {
        let config = staged.file(&entry.config)?;
        let names = repo_tags(&entry)?;
        tags.insert(config.sha256.clone(), names);
    }
    Ok(tags)
}

fn repo_tags(entry: &ArchiveManifestEntry) -> Result<Vec<Reference>, LoadError> {
    Ok(entry
        .repo_tags
        .iter()
        .flatten()
        .filter_map(|tag| Reference::parse_tagged(tag).ok())
        .collect())
}

/// Docker's own format: `manifest.json` lists config and layer files; a manifest is made for each image.
fn plan_docker_archive(staged: &Staged, plan: &mut Plan) -> Result<(), LoadError> {
    let entries: Vec<ArchiveManifestEntry> =
        parse_json(&read_metadata(staged, "manifest.json")?, "manifest.json")?;
    for entry in entries {
        let config_file = staged.file(&entry.config)?;
        let config: ImageConfig =
            parse_json(&read_metadata(staged, &entry.config)?, &entry.config)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(LoadError::LayerCount {
                config: entry.config.clone(),
                layers: entry.layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        plan.blobs
            .push((config_file.clone(), config_file.sha256.clone()));
        let mut layers = Vec::new();
        for (path, expected) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let file = staged.file(path)?;
            let (compression, diff_id) = plan.layer_diff_id(file)?;
            if &diff_id != expected {
                return Err(LoadError::DiffId {
                    path: path.clone(),
                    expected: expected.clone(),
                    actual: diff_id,
                });
            }
            let media_type = match compression {
                Compression::None => media_types::OCI_LAYER,
                Compression::Gzip => media_types::OCI_LAYER_GZIP,
                Compression::Zstd => media_types::OCI_LAYER_ZSTD,
            };
            layers.push(Descriptor::new(media_type, file.sha256.clone(), file.size));
            plan.blobs.push((file.clone(), file.sha256.clone()));
        }
        let config_descriptor = Descriptor::new(
            media_types::OCI_CONFIG,
            config_file.sha256.clone(),
            config_file.size,
        );
        let manifest = mutate::encode_manifest(&mutate::new_manifest(
            Flavour::Oci,
            config_descriptor,
            layers,
        ));
        plan.add_image(LoadedImage {
            descriptor: manifest.descriptor.clone(),
            id: config_file.sha256.clone(),
            names: repo_tags(&entry)?,
        });
        if !plan
            .new_blobs
            .iter()
            .any(|m| m.descriptor.digest == manifest.descriptor.digest)
        {
            plan.new_blobs.push(manifest);
        }
    }
    Ok(())
}

/// A layer file's compression and diff ID (the digest of its uncompressed content).
fn layer_diff_id(file: &StagedFile) -> Result<(Compression, Digest), LoadError> {
    let mut head = [0u8; 4];
    let n = file.open()?.read(&mut head)?;
    match detect(&head[..n]) {
        Compression::None => Ok((Compression::None, file.sha256.clone())),
        compression => {
            let (_, reader) = auto_decompress(file.open()?)?;
            let mut hashing = HashingReader::new(reader, crate::digest::Algorithm::Sha256);
            io::copy(&mut hashing, &mut io::sink())?;
            Ok((compression, hashing.finish().0))
        }
    }
}
