//! Reaching an S3 bucket: registry:2's `storage.s3` options, the startup check of the bucket, and the runtime the
//! driver's requests run on.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use serde::Deserialize;

use super::{ObjectDriver, DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE};

/// How to reach an S3 bucket (registry:2's `storage.s3` keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// The bucket's name (`storage.s3.bucket`; required).
    pub bucket: String,
    /// The AWS region (`storage.s3.region`); `us-east-1` when unset.
    pub region: Option<String>,
    /// `http(s)://host:port` of an S3-compatible server; AWS when unset.
    pub endpoint: Option<String>,
    /// The access key ID (`storage.s3.accesskey`); used only together with `secret_key`.
    pub access_key: Option<String>,
    /// The secret access key (`storage.s3.secretkey`).
    pub secret_key: Option<String>,
    /// Key prefix everything is stored below.
    pub root_directory: String,
    /// Path-style requests (`endpoint/bucket/key`) rather than virtual-hosted ones.
    pub force_path_style: bool,
    /// Use HTTPS (when `endpoint` names no scheme).
    pub secure: bool,
    /// The multipart part size (≥ 5 MiB).
    pub chunk_size: usize,
}

/// Why an object-store driver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The `storage.s3` options are invalid (e.g. no bucket, or a chunk size under 5 MiB).
    #[error("storage.s3: {0}")]
    Config(String),
    /// The startup check of the bucket failed (missing bucket, refused credentials, no answer).
    #[error("storage.s3: bucket {bucket:?} at {endpoint}: {message}")]
    Unreachable {
        /// The bucket's name.
        bucket: String,
        /// The endpoint the bucket was looked for at.
        endpoint: String,
        /// The object store's error.
        message: String,
    },
    /// The runtime the driver's requests run on could not be started.
    #[error("starting the storage runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Owns the runtime the driver's requests run on; shuts it down without blocking, wherever it is dropped.
pub(super) struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    pub(super) fn new() -> Result<Runtime, SetupError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lade-storage")
            .enable_all()
            .build()
            .map(|rt| Runtime(Some(rt)))
            .map_err(SetupError::Runtime)
    }

    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectDriver {
    /// A driver over an S3 bucket, checked by listing it once so that a missing bucket or bad credentials are
    /// reported at startup.
    pub fn s3(options: &S3Options) -> Result<ObjectDriver, SetupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if options.bucket.is_empty() {
            return Err(SetupError::Config("bucket is required".into()));
        }
        if options.chunk_size != 0 && options.chunk_size < MIN_CHUNK_SIZE {
            return Err(SetupError::Config(format!(
                "chunksize {} is below S3's minimum part size of {MIN_CHUNK_SIZE}",
                options.chunk_size
            )));
        }
        let region = options.region.clone().unwrap_or_else(|| "us-east-1".into());
        let endpoint = options.endpoint.as_ref().map(|e| {
            if e.contains("://") {
                e.clone()
            } else if options.secure {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            }
        });
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&options.bucket)
            .with_region(&region)
            .with_virtual_hosted_style_request(!options.force_path_style && endpoint.is_none())
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(20),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
            });
        if let Some(endpoint) = &endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&options.access_key, &options.secret_key) {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| SetupError::Config(e.to_string()))?;
        let chunk = if options.chunk_size == 0 {
            DEFAULT_CHUNK_SIZE
        } else {
            options.chunk_size
        };
        let driver = ObjectDriver::new(Arc::new(store), &options.root_directory, chunk)?;
        let probe = driver.run(async {
            let inner = &driver.inner;
            let prefix = (!inner.root.is_empty()).then(|| Path::from(inner.root.as_str()));
            inner.store.list_with_delimiter(prefix.as_ref()).await
        });
        probe.map_err(|e| SetupError::Unreachable {
            bucket: options.bucket.clone(),
            endpoint: endpoint.unwrap_or_else(|| format!("AWS S3 ({region})")),
            message: e.to_string(),
        })?;
        Ok(driver)
    }
}
