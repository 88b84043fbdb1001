//! Manifest endpoints: GET/HEAD with content negotiation (through the mirror's upstream when the registry is one), PUT with validation of everything the manifest
//! references, and DELETE of tags and revisions.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use layerstore::{media_types, Descriptor, Digest, ManifestKind};
use serde_json::json;

use super::{empty, hv, parse_digest, query, with_events, Shared, DOCKER_CONTENT_DIGEST};
use crate::error::{ApiError, ApiResult, Code};
use crate::names;
use crate::notify::{Action, Target};
use crate::registry::{manifest_media_type, Registry};
use crate::uploads::blocking;

/// A manifest reference: a tag or a digest.
enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Anything with a `:` must be a digest (`DIGEST_INVALID` otherwise); the rest must be a valid tag.
fn parse_reference(text: &str, invalid_tag: Code) -> ApiResult<Reference> {
    if text.contains(':') {
        return parse_digest(text).map(Reference::Digest);
    }
    if names::is_valid_tag(text) {
        Ok(Reference::Tag(text.to_string()))
    } else {
        Err(ApiError::new(invalid_tag)
            .message("invalid tag")
            .detail(json!({ "tag": text })))
    }
}

fn manifest_unknown(reference: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown).detail(json!({ "reference": reference }))
}

/// The media types an `Accept` header lists, without parameters; empty when there is no header.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

fn acceptable(accept: &[String], media_type: &str) -> bool {
    accept.is_empty()
        || accept
            .iter()
            .any(|a| a == "*/*" || a == "application/*" || a.eq_ignore_ascii_case(media_type))
}

/// GET or HEAD of `/v2/<name>/manifests/<reference>`.
pub async fn get(
    st: Shared,
    name: String,
    reference: String,
    req: Request,
    head: bool,
) -> ApiResult<Response> {
    let mut parsed = parse_reference(&reference, Code::ManifestUnknown)?;
    if let Some(mirror) = &st.mirror {
        parsed = match parsed {
            Reference::Tag(tag) => match mirror.resolve_tag(&name, &tag).await? {
                Some(digest) => Reference::Digest(digest),
                None => return Err(manifest_unknown(&reference)),
            },
            Reference::Digest(digest) => {
                if !mirror.ensure_manifest(&name, &digest).await? {
                    return Err(manifest_unknown(&reference));
                }
                Reference::Digest(digest)
            }
        };
    }
    let registry = st.registry.clone();
    let event_name = name.clone();
    let found = blocking(move || {
        let digest = match parsed {
            Reference::Digest(d) => d,
            Reference::Tag(tag) => match registry.resolve_tag(&name, &tag)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        Ok(registry
            .get_manifest(&name, &digest)?
            .map(|bytes| (digest, bytes)))
    })
    .await?;
    let (digest, bytes) = found.ok_or_else(|| manifest_unknown(&reference))?;
    let media_type = manifest_media_type(&bytes);
    let by_tag = !reference.contains(':');
    if by_tag && !acceptable(&accepted(req.headers()), &media_type) {
        return Err(manifest_unknown(&reference).message(format!(
            "the manifest has media type {media_type}, which the request does not accept"
        )));
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, hv(&media_type));
    headers.insert(header::CONTENT_LENGTH, hv(bytes.len().to_string()));
    headers.insert(DOCKER_CONTENT_DIGEST, hv(digest.to_string()));
    headers.insert(header::ETAG, hv(format!("\"{digest}\"")));
    let mut target = Target::manifest(
        &event_name,
        &digest,
        &media_type,
        bytes.len() as u64,
        by_tag.then_some(reference.as_str()),
    );
    if st.notifier.as_ref().is_some_and(|n| n.include_references()) {
        target.references = ManifestKind::parse(&bytes, "").ok().map(|k| references(&k));
    }
    let mut response = Response::new(if head {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    *response.headers_mut() = headers;
    // registry:2 reports a HEAD as a pull too.
    Ok(with_events(response, vec![(Action::Pull, target)]))
}

/// The descriptors a manifest references, in registry:2's order (config, then layers; or the child manifests).
fn references(kind: &ManifestKind) -> Vec<Descriptor> {
    match kind {
        ManifestKind::Image(m) => std::iter::once(m.config.clone())
            .chain(m.layers.iter().cloned())
            .collect(),
        ManifestKind::Index(i) => i.manifests.clone(),
    }
}

/// Reads a request body of at most `max` bytes; `SIZE_INVALID` (413) beyond that. A moderately oversized body is
/// read to its end before answering, so that the client, still sending, gets the answer rather than a reset.
async fn read_limited(req: Request, max: u64) -> ApiResult<Vec<u8>> {
    let too_large = || {
        ApiError::new(Code::SizeInvalid)
            .message(format!("manifest exceeds the {max} byte limit"))
            .status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let drain_limit = max.saturating_mul(4);
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > drain_limit) {
        return Err(too_large());
    }
    let mut stream = req.into_body().into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::ManifestInvalid).detail(format!("reading body: {e}"))
        })?;
        seen += chunk.len() as u64;
        if seen > drain_limit {
            return Err(too_large());
        }
        if seen <= max {
            bytes.extend_from_slice(&chunk);
        }
    }
    if seen > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The media type to parse a pushed manifest as, from its `Content-Type`: a manifest type is enforced, a generic
/// or missing one lets the document decide, anything else is refused.
fn declared_type(headers: &HeaderMap) -> ApiResult<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    if media_types::is_manifest(&content_type) || media_types::is_index(&content_type) {
        return Ok(content_type);
    }
    match content_type.as_str() {
        "" | "application/json" | "application/octet-stream" => Ok(String::new()),
        other => Err(ApiError::new(Code::ManifestInvalid)
            .message("unsupported manifest media type")
            .detail(json!({ "mediaType": other }))),
    }
}

/// May this layer be absent from the registry? Only non-distributable (foreign) layers that say where they live.
fn may_be_foreign(layer: &Descriptor) -> bool {
    layer.urls.as_ref().is_some_and(|urls| !urls.is_empty())
        && (layer.media_type.contains("nondistributable") || layer.media_type.contains("foreign"))
}

fn blob_unknown(digest: &Digest) -> ApiError {
    ApiError::new(Code::ManifestBlobUnknown).detail(json!({ "digest": digest.to_string() }))
}

/// Checks that everything `kind` references exists in repository `name`, touching what it finds so that garbage
/// collection's grace period covers the push in progress. With `sparse`, absent references are accepted.
fn check_references(
    registry: &Registry,
    name: &str,
    kind: &ManifestKind,
    sparse: bool,
) -> ApiResult<()> {
    match kind {
        ManifestKind::Image(manifest) => {
            let required = std::iter::once(&manifest.config)
                .chain(manifest.layers.iter().filter(|l| !may_be_foreign(l)));
            for descriptor in required {
                if registry.blob_size(name, &descriptor.digest)?.is_some() {
                    registry.touch_blob(&descriptor.digest)?;
                } else if !sparse {
                    return Err(blob_unknown(&descriptor.digest));
                }
            }
        }
        ManifestKind::Index(index) => {
            for child in &index.manifests {
                if registry.manifest_exists(name, &child.digest)? {
                    registry.touch_blob(&child.digest)?;
                } else if !sparse {
                    return Err(blob_unknown(&child.digest));
                }
            }
        }
    }
    Ok(())
}

/// PUT `/v2/<name>/manifests/<reference>` (plus `?tag=` parameters when pushing by digest).
pub async fn put(st: Shared, name: String, reference: String, req: Request) -> ApiResult<Response> {
    let parsed = parse_reference(&reference, Code::ManifestInvalid)?;
    let params = query::parse(req.uri().query());
    let mut tags = Vec::new();
    for tag in query::all(&params, "tag") {
        if !names::is_valid_tag(tag) {
            return Err(ApiError::new(Code::ManifestInvalid)
                .message("invalid tag")
                .detail(json!({ "tag": tag })));
        }
        tags.push(tag.to_string());
    }
    let media_type = declared_type(req.headers())?;
    let bytes = read_limited(req, st.config.limits.manifest_max_bytes).await?;
    let digest = match &parsed {
        Reference::Digest(expected) => {
            let actual = Digest::of(expected.algorithm(), &bytes);
            if &actual != expected {
                return Err(ApiError::new(Code::DigestInvalid).detail(json!({
                    "expected": expected.to_string(),
                    "actual": actual.to_string(),
                })));
            }
            actual
        }
        Reference::Tag(tag) => {
            tags.push(tag.clone());
            Digest::sha256_of(&bytes)
        }
    };
    let kind = ManifestKind::parse(&bytes, &media_type)
        .map_err(|err| ApiError::new(Code::ManifestInvalid).detail(err.to_string()))?;
    let subject = match &kind {
        ManifestKind::Image(m) => m.subject.as_ref(),
        ManifestKind::Index(i) => i.subject.as_ref(),
    }
    .map(|s| s.digest.clone());
    let mut target = Target::manifest(
        &name,
        &digest,
        &manifest_media_type(&bytes),
        bytes.len() as u64,
        match &parsed {
            Reference::Tag(tag) => Some(tag.as_str()),
            Reference::Digest(_) => None,
        },
    );
    if st.notifier.as_ref().is_some_and(|n| n.include_references()) {
        target.references = Some(references(&kind));
    }
    let (registry, lock) = (st.registry.clone(), st.commit_lock.clone());
    let (n, d, stored_tags) = (name.clone(), digest.clone(), tags.clone());
    let sparse = st.config.allow_sparse_manifests;
    blocking(move || {
        crate::lease::wait_while_held(registry.driver().as_ref())?;
        let _guard = lock.read().unwrap_or_else(|e| e.into_inner());
        check_references(&registry, &n, &kind, sparse)?;
        registry.put_manifest(&n, &d, &bytes, &stored_tags)?;
        Ok(())
    })
    .await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        hv(format!("/v2/{name}/manifests/{digest}")),
    );
    headers.insert(DOCKER_CONTENT_DIGEST, hv(digest.to_string()));
    if let Some(subject) = subject {
        headers.insert("oci-subject", hv(subject.to_string()));
    }
    if matches!(parsed, Reference::Digest(_)) {
        for tag in &tags {
            headers.append("oci-tag", hv(tag));
        }
    }
    Ok(with_events(
        empty(StatusCode::CREATED, headers),
        vec![(Action::Push, target)],
    ))
}

/// DELETE `/v2/<name>/manifests/<reference>`: a tag removes only the tag, a digest the revision and its tags.
pub async fn delete(st: Shared, name: String, reference: String) -> ApiResult<Response> {
    if !st.config.delete {
        return Err(
            ApiError::new(Code::Unsupported).message("deletes are disabled on this registry")
        );
    }
    let parsed = parse_reference(&reference, Code::ManifestUnknown)?;
    let registry = st.registry.clone();
    let n = name.clone();
    // registry:2's delete events: the digest, then each tag that pointed at it.
    let deleted = blocking(move || {
        let tag_event = |tag: String| Target {
            repository: n.clone(),
            tag: Some(tag),
            ..Target::default()
        };
        Ok(match parsed {
            Reference::Tag(tag) => registry.delete_tag(&n, &tag)?.then(|| vec![tag_event(tag)]),
            Reference::Digest(digest) => {
                let tags: Vec<String> = registry
                    .tag_map(&n)?
                    .into_iter()
                    .filter(|(_, d)| d == &digest)
                    .map(|(tag, _)| tag)
                    .collect();
                registry.delete_manifest(&n, &digest)?.then(|| {
                    let first = Target {
                        digest: Some(digest.to_string()),
                        repository: n.clone(),
                        ..Target::default()
                    };
                    std::iter::once(first)
                        .chain(tags.into_iter().map(tag_event))
                        .collect()
                })
            }
        })
    })
    .await?;
    let Some(targets) = deleted else {
        return Err(manifest_unknown(&reference));
    };
    Ok(with_events(
        empty(StatusCode::ACCEPTED, HeaderMap::new()),
        targets.into_iter().map(|t| (Action::Delete, t)).collect(),
    ))
}
