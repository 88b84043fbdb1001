//! The client's error type: every variant names the request (method and URL) or the object it concerns, and why.

use layerstore::Digest;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request could not be sent or its response not read (connection refused, TLS, timeout, a broken body).
    #[error("{method} {url}: {}", describe(.error))]
    Request {
        /// The HTTP method of the request (`GET`, `PUT`, ...).
        method: String,
        /// The request URL.
        url: String,
        /// What the HTTP client reported.
        error: reqwest::Error,
    },
    /// The registry answered with a status the operation does not accept.
    #[error("{method} {url}: {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status {
        /// The HTTP method of the request (`GET`, `PUT`, ...).
        method: String,
        /// The request URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error codes and messages from the body (the distribution spec's `errors` document); empty when there are none.
        message: String,
    },
    /// The registry still answered 401 after authentication: no credentials, or the credentials were refused.
    #[error("{method} {url}: unauthorized: {reason}")]
    Unauthorized {
        /// The HTTP method of the request (`GET`, `PUT`, ...).
        method: String,
        /// The request URL.
        url: String,
        /// Which of the two, with the registry's message when it gave one.
        reason: String,
    },
    /// A bearer token could not be obtained from the token endpoint.
    #[error("token request to {realm}: {reason}")]
    Token {
        /// The token endpoint's URL, from the `WWW-Authenticate` challenge.
        realm: String,
        /// Why the request or its answer failed.
        reason: String,
    },
    /// Content fetched does not hash to the digest asked for (or the `Docker-Content-Digest` the registry sent).
    #[error("{url}: digest mismatch: expected {expected}, the content hashes to {actual}")]
    DigestMismatch {
        /// The URL the content came from.
        url: String,
        /// The digest expected.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// Content fetched does not have the size its descriptor gives.
    #[error("{url}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The URL the content came from.
        url: String,
        /// The size in bytes the descriptor gives.
        expected: u64,
        /// The number of bytes received.
        actual: u64,
    },
    /// A fetched manifest could not be parsed.
    #[error("{url}: {source}")]
    Manifest {
        /// The URL the manifest came from.
        url: String,
        /// Why its bytes were refused.
        source: layerstore::manifest::ManifestError,
    },
    /// An index has no manifest for the platform asked for.
    #[error("{url}: no manifest for platform {platform} in the index (it has: {available})")]
    NoPlatform {
        /// The index's URL.
        url: String,
        /// The platform asked for, as `os/arch[/variant]`.
        platform: String,
        /// The platforms the index does list, comma-separated.
        available: String,
    },
    /// The registry broke the distribution protocol (an invalid header or URL, a manifest over the size limit, ...); says how.
    #[error("{0}")]
    Protocol(String),
    /// A blob upload failed and the registry no longer knows its session, so it cannot resume; the push starts the blob again.
    #[error("upload of {digest}: the registry cannot resume it ({reason})")]
    UploadLost {
        /// The digest of the blob being uploaded.
        digest: Digest,
        /// Why the upload's status could not be read.
        reason: String,
    },
    /// The HTTP client for a registry could not be set up: an unreadable or invalid `ca.crt` in `certs.d`.
    #[error("TLS setup for {registry}: {reason}")]
    Tls {
        /// The registry, as references name it.
        registry: String,
        /// What was wrong.
        reason: String,
    },
    /// Docker's `config.json` or a credential helper failed (unreadable or invalid file, a helper that fails or answers garbage).
    #[error("credentials: {0}")]
    Credentials(String),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. the path being read.
        context: String,
        /// What the file system reported.
        source: std::io::Error,
    },
    /// Reading or writing a local store failed.
    #[error(transparent)]
    Store(#[from] layerstore::StoreError),
    /// An image in a store could not be read.
    #[error(transparent)]
    Image(#[from] layerstore::image::ImageError),
    /// A name could not be looked up or tagged in a store.
    #[error(transparent)]
    Tag(#[from] layerstore::tags::TagError),
    /// An OCI or docker archive could not be loaded.
    #[error(transparent)]
    Load(#[from] layerstore::archive::load::LoadError),
    /// An image could not be changed (re-flavoured, re-compressed).
    #[error(transparent)]
    Mutate(#[from] layerstore::mutate::MutateError),
    /// An image could not be copied from a source to a sink.
    #[error(transparent)]
    Transport(#[from] layerstore::transport::TransportError),
    /// A location or name given by the user is invalid or names no image; says which and why.
    #[error("{0}")]
    Location(String),
    /// An error with advice appended: e.g. to pass `--insecure` for a registry that does not speak TLS, or where to put the CA of an untrusted certificate.
    #[error("{error}\nhint: {hint}")]
    Hinted {
        /// The error itself.
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
