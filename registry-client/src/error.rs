//! The client's error type: every variant names the request (method and URL) or the object it concerns, and why.

use layerstore::Digest;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{method} {url}: {source}")]
    Request {
        method: String,
        url: String,
        source: reqwest::Error,
    },
    #[error("{method} {url}: {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{method} {url}: unauthorized: {reason}")]
    Unauthorized {
        method: String,
        url: String,
        reason: String,
    },
    #[error("token request to {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{url}: digest mismatch: expected {expected}, the content hashes to {actual}")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{url}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: {source}")]
    Manifest {
        url: String,
        source: layerstore::manifest::ManifestError,
    },
    #[error("{url}: no manifest for platform {platform} in the index (it has: {available})")]
    NoPlatform {
        url: String,
        platform: String,
        available: String,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("upload of {digest}: the registry cannot resume it ({reason})")]
    UploadLost { digest: Digest, reason: String },
    #[error("TLS setup for {registry}: {reason}")]
    Tls { registry: String, reason: String },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] layerstore::StoreError),
    #[error(transparent)]
    Image(#[from] layerstore::image::ImageError),
    #[error(transparent)]
    Tag(#[from] layerstore::tags::TagError),
    #[error(transparent)]
    Load(#[from] layerstore::archive::load::LoadError),
    #[error("{0}")]
    Location(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Is this worth retrying (a dropped connection, a timeout, a server error)?
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Request { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_body()
                    || source.is_request()
                    || source.is_decode()
            }
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
