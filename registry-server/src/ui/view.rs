//! What the pages show, read through the same storage-level [`Registry`] calls the API handlers use: tags with a
//! summary of what each points at, and one manifest with its config and referrers.

use std::io::Read;

use layerstore::{media_types, Descriptor, Digest, ImageConfig, Index, Manifest, ManifestKind};

use crate::registry::{manifest_media_type, Registry};
use crate::storage::DriverError;

/// The most of a config blob read for a page (registry:2's manifest limit; configs are of the same kind).
const CONFIG_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// One tag of a repository and a summary of the manifest it points at.
#[derive(Debug)]
pub struct TagRow {
    pub tag: String,
    pub digest: Digest,
    pub media_type: String,
    /// Config and layers (compressed, as stored), summed over the platforms of an index.
    pub size: u64,
    /// `os/arch[/variant]` of each image.
    pub platforms: Vec<String>,
    /// The newest `created` among the image configs.
    pub created: Option<String>,
}

/// A manifest of a repository, parsed, with what hangs off it.
#[derive(Debug)]
pub struct ImageView {
    pub digest: Digest,
    pub media_type: String,
    pub kind: ImageKind,
    /// Manifests whose `subject` is this one (signatures, SBOMs, attestations).
    pub referrers: Vec<Descriptor>,
    /// Tags pointing at this manifest.
    pub tags: Vec<String>,
}

/// An image with its config, or an index with its children.
#[derive(Debug)]
pub enum ImageKind {
    Image {
        manifest: Box<Manifest>,
        /// `None` for artifacts (configs of other media types) and unreadable configs.
        config: Option<Box<ImageConfig>>,
    },
    Index {
        index: Box<Index>,
    },
    /// Bytes that do not parse as a manifest; the reason.
    Unreadable(String),
}

/// The platform of a descriptor or config as Docker prints it.
pub fn platform_text(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant.filter(|v| !v.is_empty()) {
        Some(variant) => format!("{os}/{architecture}/{variant}"),
        None => format!("{os}/{architecture}"),
    }
}

/// Reads an image config linked into `name`, if the descriptor names one and it is small enough to show.
fn read_config(
    registry: &Registry,
    name: &str,
    descriptor: &Descriptor,
) -> Result<Option<ImageConfig>, DriverError> {
    if !media_types::is_config(&descriptor.media_type) {
        return Ok(None);
    }
    match registry.blob_size(name, &descriptor.digest)? {
        Some(size) if size <= CONFIG_MAX_BYTES => {}
        _ => return Ok(None),
    }
    let mut bytes = Vec::new();
    registry
        .open_blob(&descriptor.digest, 0)?
        .take(CONFIG_MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| DriverError::Io {
            path: descriptor.digest.to_string(),
            source,
        })?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Size, platforms and creation time of one manifest (recursing one level into an index).
struct Summary {
    size: u64,
    platforms: Vec<String>,
    created: Option<String>,
}

fn summarize(
    registry: &Registry,
    name: &str,
    digest: &Digest,
    depth: usize,
) -> Result<Summary, DriverError> {
    let mut summary = Summary {
        size: 0,
        platforms: Vec::new(),
        created: None,
    };
    let Some(bytes) = registry.get_manifest(name, digest)? else {
        return Ok(summary);
    };
    match ManifestKind::parse(&bytes, "") {
        Ok(ManifestKind::Image(manifest)) => {
            summary.size =
                manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
            if let Some(config) = read_config(registry, name, &manifest.config)? {
                summary.platforms.push(platform_text(
                    &config.os,
                    &config.architecture,
                    config.variant.as_deref(),
                ));
                summary.created = config.created;
            }
        }
        Ok(ManifestKind::Index(index)) if depth == 0 => {
            for child in &index.manifests {
                if is_attestation(child) {
                    continue;
                }
                let inner = summarize(registry, name, &child.digest, depth + 1)?;
                summary.size += inner.size;
                match &child.platform {
                    Some(p) => summary.platforms.push(platform_text(
                        &p.os,
                        &p.architecture,
                        p.variant.as_deref(),
                    )),
                    None => summary.platforms.extend(inner.platforms),
                }
                summary.created = summary.created.max(inner.created);
            }
        }
        _ => {}
    }
    Ok(summary)
}

/// BuildKit's attestation manifests sit in an index as platform `unknown/unknown`.
pub fn is_attestation(descriptor: &Descriptor) -> bool {
    descriptor
        .platform
        .as_ref()
        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// The repositories, narrowed to those whose name contains `query` (ignoring case).
pub fn repositories(registry: &Registry, query: &str) -> Result<Vec<String>, DriverError> {
    let needle = query.trim().to_lowercase();
    Ok(registry
        .repositories()?
        .into_iter()
        .filter(|name| name.to_lowercase().contains(&needle))
        .collect())
}

/// Every tag of a repository with its summary; `None` when the repository does not exist.
pub fn tags(registry: &Registry, name: &str) -> Result<Option<Vec<TagRow>>, DriverError> {
    if !registry.repository_exists(name)? {
        return Ok(None);
    }
    let mut rows = Vec::new();
    for (tag, digest) in registry.tag_map(name)? {
        let media_type = registry
            .get_manifest(name, &digest)?
            .map(|bytes| manifest_media_type(&bytes))
            .unwrap_or_default();
        let summary = summarize(registry, name, &digest, 0)?;
        rows.push(TagRow {
            tag,
            digest,
            media_type,
            size: summary.size,
            platforms: summary.platforms,
            created: summary.created,
        });
    }
    Ok(Some(rows))
}

/// One manifest of `name`, by tag or digest; `None` when there is no such manifest.
pub fn image(
    registry: &Registry,
    name: &str,
    reference: &str,
) -> Result<Option<ImageView>, DriverError> {
    let digest = match reference.parse::<Digest>() {
        Ok(digest) if reference.contains(':') => digest,
        _ => match registry.resolve_tag(name, reference)? {
            Some(digest) => digest,
            None => return Ok(None),
        },
    };
    let Some(bytes) = registry.get_manifest(name, &digest)? else {
        return Ok(None);
    };
    let kind = match ManifestKind::parse(&bytes, "") {
        Ok(ManifestKind::Image(manifest)) => {
            let config = read_config(registry, name, &manifest.config)?.map(Box::new);
            ImageKind::Image { manifest, config }
        }
        Ok(ManifestKind::Index(index)) => ImageKind::Index { index },
        Err(err) => ImageKind::Unreadable(err.to_string()),
    };
    let tags = registry
        .tag_map(name)?
        .into_iter()
        .filter(|(_, d)| *d == digest)
        .map(|(tag, _)| tag)
        .collect();
    Ok(Some(ImageView {
        referrers: registry.referrers(name, &digest, None)?,
        media_type: manifest_media_type(&bytes),
        digest,
        kind,
        tags,
    }))
}
