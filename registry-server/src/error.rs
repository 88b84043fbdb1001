//! The distribution spec's error codes and the JSON error envelope every failed request answers with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::storage::DriverError;

/// An error code of the OCI distribution spec (plus `RANGE_INVALID` and `UNKNOWN`, which CNCF Distribution also sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `BLOB_UNKNOWN`: the blob is not in the repository (404).
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload's chunk or state is not acceptable (400).
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: no such upload session (404).
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the content does not match the given digest, or the digest is malformed (400).
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest references a blob or manifest the repository lacks (400).
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest does not parse or fails validation (400).
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no such manifest or tag (404).
    ManifestUnknown,
    /// `NAME_INVALID`: the repository name is not valid (400).
    NameInvalid,
    /// `NAME_UNKNOWN`: the repository does not exist (404).
    NameUnknown,
    /// `SIZE_INVALID`: the content length does not match, or exceeds a limit (400).
    SizeInvalid,
    /// `UNAUTHORIZED`: authentication is required (401).
    Unauthorized,
    /// `DENIED`: the client may not perform the operation, e.g. a write to a read-only registry (403).
    Denied,
    /// `UNSUPPORTED`: the operation is not supported, e.g. DELETE when deletes are off (405).
    Unsupported,
    /// `TOOMANYREQUESTS`: over the concurrent request limit (429).
    TooManyRequests,
    /// `RANGE_INVALID`: a `Range` that cannot be satisfied, or a chunk whose `Content-Range` does not continue the
    /// upload (416).
    RangeInvalid,
    /// `UNKNOWN`: an internal failure (500).
    Internal,
}

impl Code {
    /// The code string sent in the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::Internal => "UNKNOWN",
        }
    }

    /// The HTTP status the code is usually sent with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::BlobUploadInvalid => "blob upload invalid",
            Code::BlobUploadUnknown => "blob upload unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Code::ManifestInvalid => "manifest invalid",
            Code::ManifestUnknown => "manifest unknown to registry",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::SizeInvalid => "provided length did not match content length",
            Code::Unauthorized => "authentication required",
            Code::Denied => "requested access to the resource is denied",
            Code::Unsupported => "the operation is unsupported",
            Code::TooManyRequests => "too many requests",
            Code::RangeInvalid => "invalid content range",
            Code::Internal => "internal server error",
        }
    }
}

/// A failed request: a code, a status, a message and an optional detail (boxed, to keep `Result`s small).
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", .0.code.as_str(), .0.message)]
pub struct ApiError(Box<ErrorBody>);

/// The parts of an [`ApiError`].
#[derive(Debug)]
pub struct ErrorBody {
    /// The spec error code.
    pub code: Code,
    /// The HTTP status answered; [`Code::status`] unless overridden.
    pub status: StatusCode,
    /// The human-readable `message` of the JSON error.
    pub message: String,
    /// The `detail` of the JSON error, if any.
    pub detail: Option<Value>,
    /// Extra response headers (e.g. `WWW-Authenticate`, or `Range`/`Location` on a 416 upload answer).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with `code`, its usual status and its default message.
    pub fn new(code: Code) -> ApiError {
        ApiError(Box::new(ErrorBody {
            code,
            status: code.status(),
            message: code.default_message().to_string(),
            detail: None,
            headers: Vec::new(),
        }))
    }

    /// Replaces the message.
    pub fn message(mut self, message: impl Into<String>) -> ApiError {
        self.0.message = message.into();
        self
    }

    /// Adds a detail value.
    pub fn detail(mut self, detail: impl Into<Value>) -> ApiError {
        self.0.detail = Some(detail.into());
        self
    }

    /// Overrides the HTTP status.
    pub fn status(mut self, status: StatusCode) -> ApiError {
        self.0.status = status;
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.0.headers.push((name, value));
        self
    }

    /// An internal failure; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(Code::Internal)
    }
}

impl From<DriverError> for ApiError {
    fn from(err: DriverError) -> ApiError {
        ApiError::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = *self.0;
        let mut entry = json!({"code": body.code.as_str(), "message": body.message});
        if let Some(detail) = body.detail {
            entry["detail"] = detail;
        }
        let text = json!({ "errors": [entry] }).to_string();
        let mut response = (body.status, text).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in body.headers {
            headers.append(name, value);
        }
        response
    }
}

impl std::ops::Deref for ApiError {
    type Target = ErrorBody;

    fn deref(&self) -> &ErrorBody {
        &self.0
    }
}

/// Result type of request handlers.
pub type ApiResult<T> = Result<T, ApiError>;
