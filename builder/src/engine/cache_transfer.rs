//! Importing and exporting the build cache (`--cache-from`, `--cache-to`) through a [`CacheTransport`]: a registry
//! (implemented by the CLI over the registry client), an OCI layout directory ([`super::cache_local`]), or an image
//! carrying the cache inline.
//!
//! Import is lazy: [`ImportedCache::load`] fetches only the manifest and the cache document; a layer is fetched when
//! the build hits its record ([`ImportedCache::fetch_layer`]). Every blob is checked against its digest and size
//! before it enters the store, and a blob that cannot be fetched or does not check out is a cache miss for the
//! caller to warn about, never a build failure.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

use layerstore::digest::HashingWriter;
use layerstore::layer::compress::{auto_decompress, CompressingWriter};
use layerstore::manifest::Flavour;
use layerstore::media_types::{self, Compression};
use layerstore::mutate;
use layerstore::{Descriptor, Digest, Store};

use super::cache::{CacheRecord, CachedLayer};
use super::cache_format::{self, CacheConfig, Carrier, CACHE_CONFIG_MEDIA_TYPE};

/// Moves cache manifests and blobs to and from one place. Errors are messages naming what failed.
pub trait CacheTransport: Sync {
    /// The cache's manifest (or index, or image manifest) bytes; `None` when there is no cache there yet.
    fn fetch_manifest(&self) -> Result<Option<Vec<u8>>, String>;
    /// Writes the blob `descriptor` names to `path` (the caller verifies it).
    fn fetch_blob(&self, descriptor: &Descriptor, path: &Path) -> Result<(), String>;
    /// Stores the blob `descriptor` names, read from `store`, unless the destination has it.
    fn push_blob(&self, store: &Store, descriptor: &Descriptor) -> Result<(), String>;
    /// Stores the cache manifest, replacing the previous one.
    fn push_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<(), String>;
}

/// A `--cache-from` source with its records, ready for lookups.
pub struct ImportedCache {
    /// How the user named it (`type=registry,ref=…`), for messages.
    pub name: String,
    transport: Box<dyn CacheTransport>,
    records: BTreeMap<Digest, CacheRecord>,
}

impl ImportedCache {
    /// Fetches the cache manifest and document of `transport` (not its layers). A place with no cache yet gives an
    /// empty cache; anything unreadable is an error for the caller to warn about.
    pub fn load(
        name: impl Into<String>,
        transport: Box<dyn CacheTransport>,
        store: &Store,
    ) -> Result<ImportedCache, String> {
        let name = name.into();
        let Some(manifest) = transport.fetch_manifest()? else {
            return Ok(ImportedCache {
                name,
                transport,
                records: BTreeMap::new(),
            });
        };
        let carrier = cache_format::carrier(&manifest).map_err(|e| e.to_string())?;
        let (config, layers) = match carrier {
            Carrier::ConfigBlob { config, layers } | Carrier::IndexEntry { config, layers } => {
                let bytes = fetch_metadata(transport.as_ref(), store, &config)?;
                let document: CacheConfig = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("the cache document {}: {e}", config.digest))?;
                (document, layers)
            }
            Carrier::Image { config, mut layers } => {
                let bytes = fetch_metadata(transport.as_ref(), store, &config)?;
                let document = cache_format::inline_from_image(&bytes, &mut layers)
                    .map_err(|e| format!("the image config {}: {e}", config.digest))?
                    .ok_or_else(|| {
                        "it is an image without an inline cache (build it with --cache-to type=inline)"
                            .to_string()
                    })?;
                (document, layers)
            }
        };
        Ok(ImportedCache {
            name,
            transport,
            records: config.records(&layers),
        })
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record of a step key.
    pub fn record(&self, key: &Digest) -> Option<&CacheRecord> {
        self.records.get(key)
    }

    /// Makes the record's layer blob present in `store`, fetching and verifying it when missing.
    pub fn fetch_layer(&self, store: &Store, record: &CacheRecord) -> Result<(), String> {
        let descriptor = &record.layer.descriptor;
        if store.has_blob(&descriptor.digest) {
            return Ok(());
        }
        let scratch = store.temp_dir("cache-import-").map_err(|e| e.to_string())?;
        let path = scratch.path().join(descriptor.digest.hex());
        fetch_verified(self.transport.as_ref(), descriptor, &path)?;
        store
            .adopt_verified_file(&path, &descriptor.digest)
            .map_err(|e| e.to_string())
    }
}

/// Fetches a blob to `path` and checks its size and digest; a blob that does not check out is deleted.
fn fetch_verified(
    transport: &dyn CacheTransport,
    descriptor: &Descriptor,
    path: &Path,
) -> Result<(), String> {
    transport.fetch_blob(descriptor, path)?;
    let checked = File::open(path).and_then(|mut file| {
        let mut hashing = HashingWriter::new(io::sink(), descriptor.digest.algorithm());
        io::copy(&mut file, &mut hashing)?;
        let (_, digest, size) = hashing.finish();
        Ok((digest, size))
    });
    let (digest, size) = checked.map_err(|e| format!("reading {}: {e}", path.display()))?;
    if digest != descriptor.digest || size != descriptor.size {
        let _ = std::fs::remove_file(path);
        return Err(format!(
            "blob {} is corrupt: {size} bytes hashing to {digest}, expected {} bytes",
            descriptor.digest, descriptor.size
        ));
    }
    Ok(())
}

/// Fetches a small verified blob (a cache document or image config) whole, under the metadata size limit.
fn fetch_metadata(
    transport: &dyn CacheTransport,
    store: &Store,
    descriptor: &Descriptor,
) -> Result<Vec<u8>, String> {
    let limit = layerstore::limits::MAX_METADATA_SIZE;
    if descriptor.size > limit {
        return Err(format!(
            "the cache document {} is {} bytes, over the {limit}-byte limit",
            descriptor.digest, descriptor.size
        ));
    }
    let scratch = store.temp_dir("cache-import-").map_err(|e| e.to_string())?;
    let path = scratch.path().join(descriptor.digest.hex());
    fetch_verified(transport, descriptor, &path)?;
    std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// How to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// OCI media types (`oci-mediatypes=true`, the default) or Docker's.
    pub flavour: Flavour,
    /// The compression of the exported layers; layers stored otherwise are recompressed.
    pub compression: Compression,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The digest of the cache manifest pushed.
    pub manifest: Digest,
    /// How many step records the cache document holds.
    pub records: usize,
    /// How many layers the manifest names.
    pub layers: usize,
}

/// Exports `records` (step keys and their records) through `transport`: the layers, the cache document, then the
/// manifest. The caller holds the store's writer lock (recompressed layers are unreferenced blobs until then).
pub fn export(
    store: &Store,
    records: &[(Digest, CacheRecord)],
    transport: &dyn CacheTransport,
    options: ExportOptions,
) -> Result<Exported, String> {
    let mut converted: BTreeMap<Digest, CachedLayer> = BTreeMap::new();
    let mut exported = Vec::with_capacity(records.len());
    for (key, record) in records {
        let layer = &record.layer;
        let stored = media_types::layer_compression(&layer.descriptor.media_type);
        let layer = if stored == Some(options.compression) {
            layer.clone()
        } else {
            match converted.get(&layer.descriptor.digest) {
                Some(done) => done.clone(),
                None => {
                    let done = recompress(store, layer, options.compression)?;
                    converted.insert(layer.descriptor.digest.clone(), done.clone());
                    done
                }
            }
        };
        exported.push((
            key.clone(),
            CacheRecord {
                layer,
                created: record.created.clone(),
            },
        ));
    }
    let document = CacheConfig::from_records(&exported);
    let document_bytes = serde_json::to_vec(&document).expect("a cache document serializes");
    let config = mutate::encoded(document_bytes, CACHE_CONFIG_MEDIA_TYPE);
    store.write_blob(&config.bytes).map_err(|e| e.to_string())?;
    let config = config.descriptor;
    let layers: Vec<Descriptor> = exported
        .iter()
        .map(|(_, r)| r.layer.descriptor.clone())
        .collect();
    let manifest =
        cache_format::cache_manifest(&document, config.clone(), &layers, options.flavour);
    for layer in &manifest.layers {
        transport.push_blob(store, layer)?;
    }
    transport.push_blob(store, &config)?;
    let encoded = mutate::encode_manifest(&manifest);
    transport.push_manifest(&encoded.descriptor.media_type, &encoded.bytes)?;
    Ok(Exported {
        manifest: encoded.descriptor.digest,
        records: document.records.len(),
        layers: manifest.layers.len(),
    })
}

/// The layer with its blob in `compression` (written to the store); the diff ID stays.
fn recompress(
    store: &Store,
    layer: &CachedLayer,
    compression: Compression,
) -> Result<CachedLayer, String> {
    let digest = &layer.descriptor.digest;
    let failed = |e: &dyn std::fmt::Display| format!("recompressing layer {digest}: {e}");
    let blob = store.open_blob(digest).map_err(|e| failed(&e))?;
    let (_, mut tar) = auto_decompress(blob).map_err(|e| failed(&e))?;
    let writer = store
        .blob_writer(layerstore::Algorithm::Sha256)
        .map_err(|e| failed(&e))?;
    let mut compressing = CompressingWriter::new(writer, compression).map_err(|e| failed(&e))?;
    io::copy(&mut tar, &mut compressing).map_err(|e| failed(&e))?;
    let (writer, digests) = compressing.finish().map_err(|e| failed(&e))?;
    if digests.diff_id != layer.diff_id {
        return Err(failed(&format!(
            "its content hashes to {}, not its diff ID {}",
            digests.diff_id, layer.diff_id
        )));
    }
    let (blob_digest, size) = writer.commit(None).map_err(|e| failed(&e))?;
    let media_type = Flavour::Oci
        .layer_type(compression)
        .expect("OCI has a layer type for every compression");
    Ok(CachedLayer {
        descriptor: Descriptor::new(media_type, blob_digest, size),
        diff_id: layer.diff_id.clone(),
    })
}
