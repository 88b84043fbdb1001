//! Descriptors, image manifests and image indexes, in both OCI and Docker schema 2 flavours.
//!
//! The two flavours share one shape and differ in media types, so one set of types reads both. Fields this code does
//! not know are kept in `extra` and written back unchanged, but a digest is never computed from a re-serialization:
//! callers keep the raw bytes they read (see [`crate::image::Image`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_types;

/// A reference to content: its media type, digest and size, and optional metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content, e.g. [`media_types::OCI_LAYER_GZIP`].
    pub media_type: String,
    /// The digest of the referenced content's bytes.
    pub digest: Digest,
    /// The size of the referenced content in bytes, which a reader checks before trusting the bytes.
    pub size: u64,
    /// Other locations the content may be downloaded from (used by non-distributable layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Arbitrary metadata, keyed by reverse-domain names such as `org.opencontainers.image.ref.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// In an index: the platform the referenced manifest's image runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// For an artifact manifest: its type, as a media type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The content itself, base64-encoded, embedded in the descriptor (OCI 1.1); readers must still check it against `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor with only the three required members set.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
            data: None,
            extra: Map::new(),
        }
    }

    /// An annotation's value, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The platform an image in an index runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// The CPU architecture, in Go's `GOARCH` spelling (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// The operating system, in Go's `GOOS` spelling (`linux`, `windows`, ...).
    pub os: String,
    /// The operating system version (`os.version`), used to pick among Windows images.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features the image requires (`os.features`), e.g. `win32k` on Windows.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// The CPU variant within the architecture (`v7` for `arm`, `v8` for `arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Platform {
    /// The platform of this host, with Go's architecture names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_string),
            extra: Map::new(),
        }
    }
}

/// Why a platform text (`os/arch[/variant]`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform \"{text}\": expected os/arch[/variant]")]
pub struct PlatformError {
    /// The text as given.
    pub text: String,
}

impl Platform {
    /// Parses `os/arch[/variant]` and normalizes it ([`Platform::normalized`]), so that every spelling of a
    /// platform compares equal: `linux/arm64/v8` and `linux/aarch64` are `linux/arm64`.
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let valid_part = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] if valid_part(os) && valid_part(arch) => (*os, *arch, None),
            [os, arch, variant] if valid_part(os) && valid_part(arch) && valid_part(variant) => {
                (*os, *arch, Some(variant.to_ascii_lowercase()))
            }
            _ => {
                return Err(PlatformError {
                    text: text.to_string(),
                })
            }
        };
        let platform = Platform {
            architecture: architecture.to_ascii_lowercase(),
            os: os.to_ascii_lowercase(),
            os_version: None,
            os_features: None,
            variant,
            extra: Map::new(),
        };
        Ok(platform.normalized())
    }

    /// The platform in canonical spelling, as containerd's `platforms.Normalize`: Go's architecture names
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`, `i386` → `386`, `armhf` → `arm/v7`), `macos` → `darwin`, and
    /// the variant an architecture implies dropped (`arm64/v8`, `amd64/v1`) or spelled out (`arm` → `arm/v7`).
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        if self.os == "macos" {
            self.os = "darwin".to_string();
        }
        let variant = self.variant.take().map(|v| v.to_ascii_lowercase());
        let (architecture, variant) =
            match (self.architecture.to_ascii_lowercase().as_str(), variant) {
                ("i386", _) => ("386".to_string(), None),
                ("x86_64" | "x86-64" | "amd64", variant) => {
                    ("amd64".to_string(), variant.filter(|v| v != "v1"))
                }
                ("aarch64" | "arm64", variant) => (
                    "arm64".to_string(),
                    variant.filter(|v| !matches!(v.as_str(), "8" | "v8" | "v8.0")),
                ),
                ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
                ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
                ("arm", variant) => {
                    let variant = match variant.as_deref() {
                        None | Some("7") => "v7".to_string(),
                        Some(v @ ("5" | "6" | "8")) => format!("v{v}"),
                        Some(other) => other.to_string(),
                    };
                    ("arm".to_string(), Some(variant))
                }
                (other, variant) => (other.to_string(), variant),
            };
        self.architecture = architecture;
        self.variant = variant;
        self
    }
}

impl std::fmt::Display for Platform {
    /// `os/arch[/variant]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI `application/vnd.oci.image.manifest.v1+json` or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest schema version; always 2 for the formats supported here.
    pub schema_version: u32,
    /// The manifest's own media type; required by Docker schema 2, optional (but recommended) in OCI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// For an artifact: its type, as a media type (OCI 1.1); absent for container images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layer blobs, base layer first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers, such as a signature or SBOM for an image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata, keyed by reverse-domain names such as `org.opencontainers.image.created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// The index schema version; always 2 for the formats supported here.
    pub schema_version: u32,
    /// The index's own media type: [`media_types::OCI_INDEX`] or [`media_types::DOCKER_MANIFEST_LIST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// For an index of artifacts: their type, as a media type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests the index lists, usually one per platform.
    pub manifests: Vec<Descriptor>,
    /// The manifest this index refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata, keyed by reverse-domain names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Members this type does not model, kept so that they are written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    /// An OCI index (schema version 2, [`media_types::OCI_INDEX`]) listing `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: None,
            extra: Map::new(),
        }
    }
}

/// Which manifest flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// OCI image spec media types; the default.
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 media types, for tools that only read Docker's.
    Docker,
}

impl Flavour {
    /// The media type of a manifest in this flavour.
    pub fn manifest_type(self) -> &'static str {
        match self {
            Flavour::Oci => media_types::OCI_MANIFEST,
            Flavour::Docker => media_types::DOCKER_MANIFEST,
        }
    }

    /// The media type of an image config in this flavour.
    pub fn config_type(self) -> &'static str {
        match self {
            Flavour::Oci => media_types::OCI_CONFIG,
            Flavour::Docker => media_types::DOCKER_CONFIG,
        }
    }

    /// The media type of a layer with this compression in this flavour (Docker has no zstd layer type).
    pub fn layer_type(self, compression: media_types::Compression) -> Option<&'static str> {
        use media_types::Compression;
        match (self, compression) {
            (Flavour::Oci, Compression::None) => Some(media_types::OCI_LAYER),
            (Flavour::Oci, Compression::Gzip) => Some(media_types::OCI_LAYER_GZIP),
            (Flavour::Oci, Compression::Zstd) => Some(media_types::OCI_LAYER_ZSTD),
            (Flavour::Docker, Compression::None) => Some(media_types::DOCKER_LAYER_TAR),
            (Flavour::Docker, Compression::Gzip) => Some(media_types::DOCKER_LAYER_GZIP),
            (Flavour::Docker, Compression::Zstd) => None,
        }
    }
}

impl Manifest {
    /// The same image in another flavour: media types of the manifest, config and layers change, their bytes do
    /// not (so the image ID stays). `None` when a layer has no media type in that flavour (zstd in Docker's).
    pub fn to_flavour(&self, flavour: Flavour) -> Option<Manifest> {
        let mut converted = self.clone();
        converted.media_type = Some(flavour.manifest_type().to_string());
        converted.config.media_type = flavour.config_type().to_string();
        for layer in &mut converted.layers {
            let compression = media_types::layer_compression(&layer.media_type)?;
            layer.media_type = flavour.layer_type(compression)?.to_string();
        }
        Some(converted)
    }
}

/// A manifest document of any supported kind, parsed from its bytes and its declared media type.
#[derive(Debug, Clone)]
pub enum ManifestKind {
    /// A single-platform image manifest.
    Image(Box<Manifest>),
    /// An image index or Docker manifest list.
    Index(Box<Index>),
}

/// Why manifest bytes could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not JSON, have a key twice in an object, or do not have the shape of the manifest kind.
    #[error("invalid manifest JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The media type is neither a manifest's nor an index's.
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    /// The document's `mediaType` member differs from the media type the transport gave.
    #[error("manifest declares media type {declared:?} but was given as {given:?}")]
    MediaTypeMismatch {
        /// The media type the document states in its `mediaType` member.
        declared: String,
        /// The media type the caller gave (Content-Type or descriptor).
        given: String,
    },
    /// The `schemaVersion` is not 2.
    #[error("unsupported manifest schemaVersion {0} (only 2 is supported)")]
    SchemaVersion(u32),
}

impl ManifestKind {
    /// Parses manifest bytes. `media_type` is what the transport said (Content-Type, descriptor); when empty the
    /// document's own `mediaType` decides, falling back to the shape (`manifests` means an index). A document with a
    /// key twice in an object is refused, since readers disagree on which one counts.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<ManifestKind, ManifestError> {
        crate::unique_keys::check_unique_keys(bytes)?;
        let value: Value = serde_json::from_slice(bytes)?;
        let declared = value.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if !media_type.is_empty() && !declared.is_empty() && declared != media_type {
            return Err(ManifestError::MediaTypeMismatch {
                declared: declared.to_string(),
                given: media_type.to_string(),
            });
        }
        let effective = if !media_type.is_empty() {
            media_type
        } else if !declared.is_empty() {
            declared
        } else if value.get("manifests").is_some() {
            media_types::OCI_INDEX
        } else {
            media_types::OCI_MANIFEST
        };
        let kind = if media_types::is_manifest(effective) {
            ManifestKind::Image(Box::new(serde_json::from_value(value)?))
        } else if media_types::is_index(effective) {
            ManifestKind::Index(Box::new(serde_json::from_value(value)?))
        } else {
            return Err(ManifestError::MediaType(effective.to_string()));
        };
        let version = match &kind {
            ManifestKind::Image(m) => m.schema_version,
            ManifestKind::Index(i) => i.schema_version,
        };
        if version != 2 {
            return Err(ManifestError::SchemaVersion(version));
        }
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn platforms_parse_normalized() {
        let parse = |text: &str| Platform::parse(text).unwrap().to_string();
        assert_eq!(parse("linux/arm64/v8"), "linux/arm64");
        assert_eq!(
            Platform::parse("linux/arm64/v8"),
            Platform::parse("linux/arm64")
        );
        assert_eq!(parse("Linux/AArch64"), "linux/arm64");
        assert_eq!(parse("linux/x86_64"), "linux/amd64");
        assert_eq!(parse("linux/amd64/v1"), "linux/amd64");
        assert_eq!(parse("linux/amd64/v3"), "linux/amd64/v3");
        assert_eq!(parse("linux/arm"), "linux/arm/v7");
        assert_eq!(parse("linux/arm/6"), "linux/arm/v6");
        assert_eq!(parse("linux/armhf"), "linux/arm/v7");
        assert_eq!(parse("linux/i386"), "linux/386");
        assert_eq!(parse("macos/arm64"), "darwin/arm64");
        for bad in ["linux", "linux//x", "linux/arm64/v8/x", "", "linux/a b"] {
            assert_eq!(
                Platform::parse(bad).unwrap_err().to_string(),
                format!("invalid platform \"{bad}\": expected os/arch[/variant]")
            );
        }
    }

    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"x-extra":1},"layers":[],"x-top":{"a":[1,2]}}"#;
        let m: Manifest = serde_json::from_str(raw).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), raw);
    }

    #[test]
    fn flavours_convert_media_types_only() {
        let digest = crate::Digest::sha256_of(b"");
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media_types::OCI_CONFIG, digest.clone(), 0),
            layers: vec![Descriptor::new(
                media_types::OCI_LAYER_GZIP,
                digest.clone(),
                0,
            )],
            subject: None,
            annotations: None,
            extra: Map::new(),
        };
        let docker = manifest.to_flavour(Flavour::Docker).unwrap();
        assert_eq!(
            docker.media_type.as_deref(),
            Some(media_types::DOCKER_MANIFEST)
        );
        assert_eq!(docker.config.media_type, media_types::DOCKER_CONFIG);
        assert_eq!(docker.layers[0].media_type, media_types::DOCKER_LAYER_GZIP);
        assert_eq!(docker.to_flavour(Flavour::Oci).unwrap(), manifest);
        let mut zstd = manifest.clone();
        zstd.layers[0].media_type = media_types::OCI_LAYER_ZSTD.into();
        assert!(zstd.to_flavour(Flavour::Docker).is_none());
    }

    #[test]
    fn parse_detects_kinds_and_mismatches() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            ManifestKind::parse(index, "").unwrap(),
            ManifestKind::Index(_)
        ));
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        assert!(matches!(
            ManifestKind::parse(docker, "").unwrap(),
            ManifestKind::Image(_)
        ));
        assert!(matches!(
            ManifestKind::parse(docker, media_types::OCI_MANIFEST),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(ManifestKind::parse(b"{}", "text/plain").is_err());
    }
}
