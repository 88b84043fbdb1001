//! The build cache as it travels between machines: BuildKit's `application/vnd.buildkit.cacheconfig.v0` document
//! (a list of layer blobs and a list of records), and the manifests that carry it — an OCI image manifest whose
//! config is the cache document (what lade writes, BuildKit's `image-manifest=true` layout), BuildKit's default OCI
//! index holding the document beside the layers, and an image whose config carries it inline under
//! `moby.buildkit.cache.v0`.
//!
//! A record's `digest` is lade's step key, which already chains the base image and every step before it, so lade
//! writes no `inputs` links; each record has one result, the layer that step added (a diff, so every layer's
//! `parent` is -1), with the step's creation time.

use std::collections::BTreeMap;

use base64::Engine as _;
use layerstore::manifest::{Flavour, Index, Manifest};
use layerstore::media_types::{self, Compression};
use layerstore::{Descriptor, Digest};
use serde::{Deserialize, Serialize};

use super::cache::{CacheRecord, CachedLayer};

/// The media type of BuildKit's cache document.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";
/// The image config field holding an inline cache document (base64 of its JSON), as BuildKit writes it.
pub const INLINE_CACHE_FIELD: &str = "moby.buildkit.cache.v0";
/// The layer descriptor annotation giving the uncompressed digest (containerd's name, which BuildKit uses).
const UNCOMPRESSED_ANNOTATION: &str = "containerd.io/uncompressed";
/// The layer descriptor annotation giving the creation time (BuildKit's).
const CREATED_ANNOTATION: &str = "buildkit/createdat";

/// BuildKit's cache document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheConfigRecord>,
}

/// A layer blob of the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheLayer {
    pub blob: Digest,
    /// The index of the layer below it in `layers`, or -1.
    #[serde(default = "no_parent")]
    pub parent: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

fn no_parent() -> i64 {
    -1
}

/// What BuildKit records about a layer blob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerAnnotations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(rename = "diffID", default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// A cache record: a step key and what the step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheConfigRecord {
    pub digest: Digest,
    #[serde(rename = "layers", default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
    /// BuildKit's links to the records this one derives from; lade's keys chain already, so it writes none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Vec<serde_json::Value>>,
}

/// One result of a record: an index in `layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheResult {
    pub layer: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// Why a cache manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CacheFormatError {
    #[error("the cache manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl CacheConfig {
    /// The document for `records` (step key and record, in build order; repeated keys once).
    pub fn from_records(records: &[(Digest, CacheRecord)]) -> CacheConfig {
        let mut config = CacheConfig::default();
        let mut layer_index: BTreeMap<Digest, usize> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for (key, record) in records {
            if !seen.insert(key.clone()) {
                continue;
            }
            let descriptor = &record.layer.descriptor;
            let index = *layer_index
                .entry(descriptor.digest.clone())
                .or_insert_with(|| {
                    config.layers.push(CacheLayer {
                        blob: descriptor.digest.clone(),
                        parent: -1,
                        annotations: Some(LayerAnnotations {
                            media_type: Some(descriptor.media_type.clone()),
                            diff_id: Some(record.layer.diff_id.clone()),
                            size: Some(descriptor.size),
                            created_at: Some(record.created.clone()),
                        }),
                    });
                    config.layers.len() - 1
                });
            config.records.push(CacheConfigRecord {
                digest: key.clone(),
                results: vec![CacheResult {
                    layer: index,
                    created_at: Some(record.created.clone()),
                }],
                inputs: Vec::new(),
            });
        }
        config
    }

    /// The records of the document, with the descriptors `blobs` gives for its layers (from the manifest that
    /// carries it). Records whose layer is not described, or has no diff ID, are left out.
    pub fn records(&self, blobs: &[Descriptor]) -> BTreeMap<Digest, CacheRecord> {
        let mut records = BTreeMap::new();
        for record in &self.records {
            let Some(result) = record.results.first() else {
                continue;
            };
            let Some(layer) = self.layers.get(result.layer) else {
                continue;
            };
            let Some(descriptor) = blobs.iter().find(|d| d.digest == layer.blob) else {
                continue;
            };
            let annotations = layer.annotations.clone().unwrap_or_default();
            let diff_id = annotations.diff_id.or_else(|| {
                descriptor
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(UNCOMPRESSED_ANNOTATION))
                    .and_then(|d| d.parse().ok())
            });
            let Some(diff_id) = diff_id else {
                continue;
            };
            let Some(created) = result.created_at.clone().or(annotations.created_at) else {
                continue;
            };
            let mut descriptor = descriptor.clone();
            descriptor.annotations = None;
            // Images lade builds have OCI manifests: a layer from a Docker-typed cache gets its OCI type.
            if let Some(oci) = media_types::layer_compression(&descriptor.media_type)
                .and_then(|c| Flavour::Oci.layer_type(c))
            {
                descriptor.media_type = oci.to_string();
            }
            records.insert(
                record.digest.clone(),
                CacheRecord {
                    layer: CachedLayer {
                        descriptor,
                        diff_id,
                    },
                    created,
                },
            );
        }
        records
    }

    /// The document as the inline field holds it.
    pub fn to_inline(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(self).expect("a cache document serializes"))
    }

    /// The document of an inline field.
    pub fn from_inline(text: &str) -> Result<CacheConfig, CacheFormatError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| CacheFormatError::Invalid(format!("{INLINE_CACHE_FIELD}: {e}")))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// The manifest lade writes for a cache: the document as config, the layers it names (each annotated with its
/// uncompressed digest and creation time), in OCI or Docker media types.
pub fn cache_manifest(
    config: &CacheConfig,
    config_descriptor: Descriptor,
    layers: &[Descriptor],
    flavour: Flavour,
) -> Manifest {
    let layers = config
        .layers
        .iter()
        .filter_map(|layer| {
            let mut descriptor = layers.iter().find(|d| d.digest == layer.blob)?.clone();
            if flavour == Flavour::Docker {
                if let Some(compression) = media_types::layer_compression(&descriptor.media_type)
                    .filter(|c| *c != Compression::Zstd)
                {
                    if let Some(docker) = Flavour::Docker.layer_type(compression) {
                        descriptor.media_type = docker.to_string();
                    }
                }
            }
            let annotations = layer.annotations.clone().unwrap_or_default();
            let mut marks = BTreeMap::new();
            if let Some(diff_id) = annotations.diff_id {
                marks.insert(UNCOMPRESSED_ANNOTATION.to_string(), diff_id.to_string());
            }
            if let Some(created) = annotations.created_at {
                marks.insert(CREATED_ANNOTATION.to_string(), created);
            }
            descriptor.annotations = Some(marks);
            Some(descriptor)
        })
        .collect();
    layerstore::mutate::new_manifest(flavour, config_descriptor, layers)
}

/// Where the cache document is, in a fetched manifest.
pub enum Carrier {
    /// The manifest's config blob is the document; the layers are the manifest's.
    ConfigBlob {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// BuildKit's index: one entry is the document, the others the layers.
    IndexEntry {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// An image: its config may hold the document inline; the layers are the image's.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

/// Finds where a manifest's cache document is.
pub fn carrier(manifest_bytes: &[u8]) -> Result<Carrier, CacheFormatError> {
    let value: serde_json::Value = serde_json::from_slice(manifest_bytes)?;
    if value.get("manifests").is_some() {
        let index: Index = serde_json::from_value(value)?;
        let (configs, layers): (Vec<Descriptor>, Vec<Descriptor>) = index
            .manifests
            .into_iter()
            .partition(|d| d.media_type == CACHE_CONFIG_MEDIA_TYPE);
        let config = configs.into_iter().next().ok_or_else(|| {
            CacheFormatError::Invalid(format!(
                "the index holds no {CACHE_CONFIG_MEDIA_TYPE} entry: it is not a build cache"
            ))
        })?;
        return Ok(Carrier::IndexEntry { config, layers });
    }
    let manifest: Manifest = serde_json::from_value(value)?;
    if manifest.config.media_type == CACHE_CONFIG_MEDIA_TYPE {
        Ok(Carrier::ConfigBlob {
            config: manifest.config,
            layers: manifest.layers,
        })
    } else {
        Ok(Carrier::Image {
            config: manifest.config,
            layers: manifest.layers,
        })
    }
}

/// The inline document of an image config, if it has one; the image's layers get their diff IDs from the config.
pub fn inline_from_image(
    config_bytes: &[u8],
    layers: &mut [Descriptor],
) -> Result<Option<CacheConfig>, CacheFormatError> {
    let config: serde_json::Value = serde_json::from_slice(config_bytes)?;
    let Some(text) = config.get(INLINE_CACHE_FIELD).and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for (layer, diff_id) in layers.iter_mut().zip(diff_ids) {
        if let Some(diff_id) = diff_id.as_str() {
            layer
                .annotations
                .get_or_insert_with(Default::default)
                .insert(UNCOMPRESSED_ANNOTATION.to_string(), diff_id.to_string());
        }
    }
    CacheConfig::from_inline(text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(layer: &str, created: &str) -> CacheRecord {
        CacheRecord {
            layer: CachedLayer {
                descriptor: Descriptor::new(
                    media_types::OCI_LAYER_GZIP,
                    Digest::sha256_of(layer.as_bytes()),
                    layer.len() as u64,
                ),
                diff_id: Digest::sha256_of(format!("diff {layer}").as_bytes()),
            },
            created: created.into(),
        }
    }

    #[test]
    fn records_round_trip_through_the_document_and_its_manifest() {
        let records = vec![
            (
                Digest::sha256_of(b"k1"),
                record("a", "2024-01-01T00:00:00Z"),
            ),
            (
                Digest::sha256_of(b"k2"),
                record("b", "2024-01-02T00:00:00Z"),
            ),
            // The same layer under another key is listed once.
            (
                Digest::sha256_of(b"k3"),
                record("a", "2024-01-01T00:00:00Z"),
            ),
        ];
        let config = CacheConfig::from_records(&records);
        assert_eq!(config.layers.len(), 2);
        assert_eq!(config.records.len(), 3);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["layers"][0]["parent"], -1);
        assert_eq!(json["records"][1]["layers"][0]["layer"], 1);
        let blobs: Vec<Descriptor> = records
            .iter()
            .map(|(_, r)| r.layer.descriptor.clone())
            .collect();
        let config_descriptor =
            Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, Digest::sha256_of(b"c"), 1);
        let manifest = cache_manifest(&config, config_descriptor, &blobs, Flavour::Oci);
        assert_eq!(manifest.layers.len(), 2);
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let Carrier::ConfigBlob { layers, .. } = carrier(&bytes).unwrap() else {
            panic!("a cache manifest carries its document as config");
        };
        let back = config.records(&layers);
        assert_eq!(back.len(), 3);
        for (key, original) in &records {
            let found = &back[key];
            assert_eq!(
                found.layer.descriptor.digest,
                original.layer.descriptor.digest
            );
            assert_eq!(found.layer.diff_id, original.layer.diff_id);
            assert_eq!(found.created, original.created);
        }
    }

    #[test]
    fn inline_documents_take_diff_ids_from_the_image_config() {
        let records = vec![(
            Digest::sha256_of(b"k1"),
            record("a", "2024-01-01T00:00:00Z"),
        )];
        let mut config = CacheConfig::from_records(&records);
        // Inline documents (BuildKit's included) may leave the diff ID to the image.
        config.layers[0].annotations = None;
        let image = serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [records[0].1.layer.diff_id.to_string()]},
            INLINE_CACHE_FIELD: config.to_inline(),
        });
        let mut layers = vec![records[0].1.layer.descriptor.clone()];
        let inline = inline_from_image(&serde_json::to_vec(&image).unwrap(), &mut layers)
            .unwrap()
            .expect("the image has an inline cache");
        let back = inline.records(&layers);
        assert_eq!(
            back[&records[0].0].layer.diff_id,
            records[0].1.layer.diff_id
        );
        assert!(inline_from_image(b"{}", &mut layers).unwrap().is_none());
    }

    #[test]
    fn an_index_without_a_cache_document_is_refused() {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": []});
        let error = carrier(&serde_json::to_vec(&index).unwrap())
            .err()
            .expect("refused");
        assert!(error.to_string().contains("not a build cache"), "{error}");
    }
}
