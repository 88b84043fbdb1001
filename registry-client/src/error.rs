//! The client's error type: every variant names the request (method and URL) or the object it concerns, and why.

use layerstore::Digest;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{method} {url}: {}", describe(.error))]
    Request {
        method: String,
        url: String,
        error: reqwest::Error,
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
            Error::Request { error, .. } => {
                error.is_connect()
                    || error.is_timeout()
                    || error.is_body()
                    || error.is_request()
                    || error.is_decode()
            }
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// The causes of a transport error, innermost last, without reqwest's own "error sending request for url (…)"
/// (the variant names the request already).
fn describe(error: &reqwest::Error) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}
