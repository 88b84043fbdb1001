//! The pull-through mirror (registry:2's `proxy` mode): manifests and blobs the store lacks are fetched from the
//! upstream, verified against their digests and stored, then served from the store.
//!
//! A tag is served from the store while its last check upstream is younger than `proxy.ttl` (the modification time
//! of the tag's `current/link` records that check); after that the upstream is asked with a `HEAD`, and the manifest
//! fetched again only when the digest changed. When the upstream cannot be reached (or no longer knows the tag) the
//! cached digest is served, as registry:2 does. Manifests by digest and blobs never change, so they are fetched once.
//! Blobs are streamed to the client while they are written ([`blobs`]).

pub mod blobs;
pub mod upstream;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use layerstore::{Digest, ManifestKind};

use crate::config::ProxyConfig;
use crate::error::{ApiError, ApiResult, Code};
use crate::layout;
use crate::registry::Registry;
use crate::uploads::blocking;
use upstream::{Upstream, UpstreamError};

/// A pull-through mirror of one upstream registry.
pub struct Mirror {
    upstream: Arc<Upstream>,
    ttl: Duration,
    registry: Arc<Registry>,
    commit_lock: Arc<RwLock<()>>,
    manifest_max: u64,
    flights: blobs::Flights,
}

/// A `502` naming what the upstream did wrong; the answer when nothing cached can stand in.
fn upstream_failed(what: &str, err: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %err, "{what}");
    ApiError::new(Code::Internal)
        .status(StatusCode::BAD_GATEWAY)
        .message(format!("{what}: {err}"))
}

impl Mirror {
    /// A mirror of `config.remoteurl` storing into `registry`.
    pub fn new(
        config: &ProxyConfig,
        registry: Arc<Registry>,
        commit_lock: Arc<RwLock<()>>,
        manifest_max: u64,
    ) -> Result<Mirror, UpstreamError> {
        Ok(Mirror {
            upstream: Arc::new(Upstream::new(config)?),
            ttl: config.ttl,
            registry,
            commit_lock,
            manifest_max,
            flights: blobs::Flights::default(),
        })
    }

    /// The upstream's base URL.
    pub fn remote(&self) -> &str {
        self.upstream.base()
    }

    /// The digest `tag` of `name` stands for, its manifest in the store; `None` when neither the store nor the
    /// upstream knows it.
    pub async fn resolve_tag(&self, name: &str, tag: &str) -> ApiResult<Option<Digest>> {
        let (registry, n, t) = (self.registry.clone(), name.to_string(), tag.to_string());
        let local = blocking(move || {
            let Some(digest) = registry.resolve_tag(&n, &t)? else {
                return Ok(None);
            };
            if !registry.manifest_exists(&n, &digest)? {
                return Ok(None);
            }
            let checked = registry
                .driver()
                .stat(&layout::tag_current_link(&n, &t))?
                .modified;
            Ok(Some((digest, checked)))
        })
        .await?;
        if let Some((digest, checked)) = &local {
            if checked.elapsed().is_ok_and(|age| age < self.ttl) {
                return Ok(Some(digest.clone()));
            }
        }
        let cached = local.map(|(digest, _)| digest);
        let fallback = |err: ApiError| match &cached {
            Some(digest) => {
                tracing::warn!(name, tag, error = %err, "upstream check failed; serving the cached tag");
                Ok(Some(digest.clone()))
            }
            None => Err(err),
        };
        let declared = match self.upstream.head_manifest(name, tag).await {
            Ok(declared) => declared.and_then(|d| d.parse::<Digest>().ok()),
            Err(err) if err.is_not_found() && cached.is_none() => return Ok(None),
            Err(err) => return fallback(upstream_failed("checking the tag upstream", err)),
        };
        if let (Some(remote), Some(local)) = (&declared, &cached) {
            if remote == local {
                let (registry, n, t) = (self.registry.clone(), name.to_string(), tag.to_string());
                blocking(move || Ok(registry.driver().touch(&layout::tag_current_link(&n, &t))?))
                    .await?;
                return Ok(cached);
            }
        }
        let reference = declared.map_or_else(|| tag.to_string(), |d| d.to_string());
        match self.fetch_manifest(name, &reference, Some(tag)).await {
            Ok(Some(digest)) => Ok(Some(digest)),
            Ok(None) => Ok(cached),
            Err(err) => fallback(err),
        }
    }

    /// Makes sure manifest `digest` of `name` is in the store, fetching it when missing; false when the upstream
    /// does not know it either.
    pub async fn ensure_manifest(&self, name: &str, digest: &Digest) -> ApiResult<bool> {
        let (registry, n, d) = (self.registry.clone(), name.to_string(), digest.clone());
        if blocking(move || Ok(registry.manifest_exists(&n, &d)?)).await? {
            return Ok(true);
        }
        Ok(self
            .fetch_manifest(name, &digest.to_string(), None)
            .await?
            .is_some())
    }

    /// Fetches a manifest by tag or digest, verifies it and stores it (tagged `tag`); `None` on an upstream 404.
    async fn fetch_manifest(
        &self,
        name: &str,
        reference: &str,
        tag: Option<&str>,
    ) -> ApiResult<Option<Digest>> {
        let (bytes, declared) = match self
            .upstream
            .get_manifest(name, reference, self.manifest_max)
            .await
        {
            Ok(found) => found,
            Err(err) if err.is_not_found() => return Ok(None),
            Err(err) => return Err(upstream_failed("fetching the manifest upstream", err)),
        };
        let expected = reference
            .parse::<Digest>()
            .ok()
            .or_else(|| declared.and_then(|d| d.parse().ok()));
        let digest = match expected {
            Some(expected) => {
                let actual = Digest::of(expected.algorithm(), &bytes);
                if actual != expected {
                    return Err(upstream_failed(
                        "the upstream's manifest does not match its digest",
                        format!("{name}:{reference} should be {expected}, its bytes are {actual}"),
                    ));
                }
                expected
            }
            None => Digest::sha256_of(&bytes),
        };
        if let Err(err) = ManifestKind::parse(&bytes, "") {
            return Err(upstream_failed(
                "the upstream sent an invalid manifest",
                format!("{name}:{reference}: {err}"),
            ));
        }
        let (registry, lock) = (self.registry.clone(), self.commit_lock.clone());
        let (n, d) = (name.to_string(), digest.clone());
        let tags: Vec<String> = tag.map(str::to_string).into_iter().collect();
        blocking(move || {
            let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
            Ok(registry.put_manifest(&n, &d, &bytes, &tags)?)
        })
        .await?;
        tracing::info!(name, reference, digest = %digest, "manifest fetched from upstream");
        Ok(Some(digest))
    }
}
