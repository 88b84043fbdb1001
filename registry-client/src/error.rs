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
    /// An image could not be changed (re-flavoured, re-compressed).
    #[error(transparent)]
    Mutate(#[from] layerstore::mutate::MutateError),
    /// An image could not be copied from a source to a sink.
    #[error(transparent)]
    Transport(#[from] layerstore::transport::TransportError),
    #[error("{0}")]
    Location(String),
    #[error("{error}\nhint: {hint}")]
    Hinted {
        error: Box<Error>,
        /// What to do about it.
        hint: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Is this worth retrying (a dropped connection, a timeout, a server error)? A failed TLS handshake is not: it
    /// fails the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Request { error, .. } if cause::<rustls::Error>(error).is_some() => false,
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

/// The first cause of type `T` in the chain of `error`.
pub(crate) fn cause<T: std::error::Error + 'static>(error: &reqwest::Error) -> Option<&T> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        // An `io::Error` wrapping another error (rustls's, say) skips it in `source()`.
        let wrapped = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if let Some(found) = wrapped.and_then(|inner| inner.downcast_ref::<T>()) {
            return Some(found);
        }
        source = wrapped.map_or_else(
            || cause.source(),
            |inner| Some(inner as &dyn std::error::Error),
        );
    }
    None
}

/// Was the connection refused (nothing listens there)?
pub(crate) fn is_refused(error: &reqwest::Error) -> bool {
    cause::<std::io::Error>(error)
        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
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
