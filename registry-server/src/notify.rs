//! Webhook notifications as registry:2 sends them (`notifications.endpoints`).
//!
//! Handlers attach what happened to their response ([`Emitted`]: an action and a target); the router turns each into
//! registry:2's event (its JSON envelope, request and source records) and hands it to every endpoint that does not
//! ignore its action or media type. Each endpoint has a bounded queue and one delivery task, so a slow or failing
//! endpoint never slows or fails a request: when its queue is full, events are dropped, counted and logged. A
//! delivery is one event per POST (`application/vnd.docker.distribution.events.v1+json`), retried until it succeeds
//! (any 2xx or 3xx status): at once for the first `threshold` failures in a row, then every `backoff`, as
//! registry:2's retrying sink does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layerstore::Descriptor;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{EndpointConfig, NotificationsConfig};

/// The envelope's content type.
pub const EVENTS_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// Events queued per endpoint before new ones are dropped.
const QUEUE_CAPACITY: usize = 1024;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Content was pushed: a blob upload completed, or a manifest was put.
    Push,
    /// Content was pulled: a blob or manifest was fetched (HEAD counts too, as in registry:2).
    Pull,
    /// A blob was mounted from another repository.
    Mount,
    /// A blob, manifest or tag was deleted.
    Delete,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Pull => "pull",
            Action::Mount => "mount",
            Action::Delete => "delete",
        }
    }
}

/// What an event is about: registry:2's `target` record (empty fields are left out, as Go's `omitempty` does).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The content's media type (`mediaType`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The content's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The content's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The content's size in bytes again (registry:2's legacy `length`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// The repository the event happened in.
    pub repository: String,
    /// For a mount, the repository the blob was mounted from (`fromRepository`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_repository: Option<String>,
    /// The URL the content can be fetched from (filled in by the router).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The tag a manifest was pushed, pulled or deleted by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// With `includereferences`, the descriptors the manifest references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<Descriptor>>,
    /// Whether `url` names a blob or a manifest (filled in by the router).
    #[serde(skip)]
    pub kind: Kind,
}

/// The kind of content a target's URL points at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// A blob: the URL is `/v2/<name>/blobs/<digest>`.
    #[default]
    Blob,
    /// A manifest: the URL is `/v2/<name>/manifests/<digest>`.
    Manifest,
}

impl Target {
    /// A blob's target (registry:2 gives every blob `application/octet-stream`).
    pub fn blob(repository: &str, digest: &layerstore::Digest, size: u64) -> Target {
        Target {
            media_type: Some("application/octet-stream".into()),
            size: Some(size),
            digest: Some(digest.to_string()),
            length: Some(size),
            repository: repository.to_string(),
            ..Target::default()
        }
    }

    /// A manifest's target.
    pub fn manifest(
        repository: &str,
        digest: &layerstore::Digest,
        media_type: &str,
        size: u64,
        tag: Option<&str>,
    ) -> Target {
        Target {
            media_type: Some(media_type.to_string()),
            size: Some(size),
            digest: Some(digest.to_string()),
            length: Some(size),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            kind: Kind::Manifest,
            ..Target::default()
        }
    }
}

/// The events a handler's response carries (a response extension the router reads).
#[derive(Debug, Clone, Default)]
pub struct Emitted(pub Vec<(Action, Target)>);

/// registry:2's `request` record.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub struct RequestRecord {
    /// A fresh UUID identifying the request.
    pub id: String,
    /// The client's address (`host:port`).
    pub addr: String,
    /// The `Host` the client addressed.
    pub host: String,
    /// The HTTP method.
    pub method: String,
    /// The client's `User-Agent`.
    pub useragent: String,
}

/// registry:2's `actor` record: the authenticated user, if any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor {
    /// The authenticated user name; absent for anonymous requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Source {
    addr: String,
    #[serde(rename = "instanceID")]
    instance_id: String,
}

/// One event as sent.
#[derive(Debug, Clone, Serialize)]
struct Event {
    id: String,
    timestamp: String,
    action: Action,
    target: Target,
    request: RequestRecord,
    actor: Actor,
    source: Source,
}

/// One endpoint: its filters, its queue and its drop count.
struct Sink {
    name: String,
    ignored_media_types: Vec<String>,
    ignored_actions: Vec<String>,
    queue: mpsc::Sender<Arc<Event>>,
    dropped: AtomicU64,
}

impl Sink {
    fn wants(&self, event: &Event) -> bool {
        let media_type = event.target.media_type.as_deref().unwrap_or_default();
        !self
            .ignored_actions
            .iter()
            .any(|a| a == event.action.name())
            && !self
                .ignored_media_types
                .iter()
                .any(|m| !media_type.is_empty() && m == media_type)
    }
}

/// Sends events to the configured endpoints.
pub struct Notifier {
    sinks: Vec<Sink>,
    include_references: bool,
    source: Source,
}

/// Why the notifications could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("notifications endpoint {name:?}: {reason}")]
pub struct NotifyError {
    name: String,
    reason: String,
}

/// The machine's host name, as registry:2 puts it in `source.addr`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl Notifier {
    /// Starts one delivery task per enabled endpoint (on the current Tokio runtime); `port` is the listening port
    /// named in `source.addr`.
    pub fn start(config: &NotificationsConfig, port: u16) -> Result<Notifier, NotifyError> {
        let mut sinks = Vec::new();
        for endpoint in config.endpoints.iter().filter(|e| !e.disabled) {
            let fail = |reason: String| NotifyError {
                name: endpoint.name.clone(),
                reason,
            };
            let headers = headers(endpoint).map_err(fail)?;
            let timeout = endpoint
                .timeout
                .filter(|t| !t.is_zero())
                .unwrap_or(Duration::from_secs(1));
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .default_headers(headers)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
            tokio::spawn(deliver(
                endpoint.name.clone(),
                endpoint.url.clone(),
                client,
                endpoint.threshold.filter(|&t| t > 0).unwrap_or(10),
                endpoint
                    .backoff
                    .filter(|b| !b.is_zero())
                    .unwrap_or(Duration::from_secs(1)),
                receiver,
            ));
            let mut ignored_media_types = endpoint.ignoredmediatypes.clone();
            ignored_media_types.extend(endpoint.ignore.mediatypes.iter().cloned());
            sinks.push(Sink {
                name: endpoint.name.clone(),
                ignored_media_types,
                ignored_actions: endpoint.ignore.actions.clone(),
                queue,
                dropped: AtomicU64::new(0),
            });
        }
        Ok(Notifier {
            sinks,
            include_references: config.events.includereferences,
            source: Source {
                addr: format!("{}:{port}", hostname()),
                instance_id: uuid::Uuid::new_v4().to_string(),
            },
        })
    }

    /// Do events carry the descriptors a manifest references?
    pub fn include_references(&self) -> bool {
        self.include_references
    }

    /// Events dropped so far because an endpoint's queue was full, per endpoint name.
    pub fn dropped(&self) -> Vec<(String, u64)> {
        self.sinks
            .iter()
            .map(|s| (s.name.clone(), s.dropped.load(Ordering::Relaxed)))
            .collect()
    }

    /// Queues the events of one request for every endpoint that wants them; never waits.
    pub fn emit(&self, emitted: Emitted, request: &RequestRecord, actor: &Actor) {
        for (action, mut target) in emitted.0 {
            if !self.include_references {
                target.references = None;
            }
            let event = Arc::new(Event {
                id: uuid::Uuid::new_v4().to_string(),
                timestamp: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                action,
                target,
                request: request.clone(),
                actor: actor.clone(),
                source: self.source.clone(),
            });
            for sink in self.sinks.iter().filter(|s| s.wants(&event)) {
                if sink.queue.try_send(event.clone()).is_err() {
                    let dropped = sink.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        endpoint = sink.name,
                        dropped,
                        action = action.name(),
                        "notification queue full: event dropped"
                    );
                }
            }
        }
    }
}

fn headers(endpoint: &EndpointConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, values) in &endpoint.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        for value in values {
            let value =
                HeaderValue::from_str(value).map_err(|e| format!("header {name} value: {e}"))?;
            headers.append(name.clone(), value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(EVENTS_MEDIA_TYPE));
    Ok(headers)
}

/// Delivers an endpoint's events in order, each retried until the endpoint accepts it.
async fn deliver(
    name: String,
    url: String,
    client: reqwest::Client,
    threshold: u32,
    backoff: Duration,
    mut queue: mpsc::Receiver<Arc<Event>>,
) {
    let mut failures = 0u32;
    while let Some(event) = queue.recv().await {
        let body = match serde_json::to_vec(&serde_json::json!({ "events": [&*event] })) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(endpoint = name, error = %err, "serialising an event");
                continue;
            }
        };
        loop {
            if failures >= threshold {
                tokio::time::sleep(backoff).await;
            }
            let outcome = client.post(&url).body(body.clone()).send().await;
            match outcome {
                Ok(response)
                    if response.status().as_u16() < 400 && response.status().as_u16() >= 200 =>
                {
                    failures = 0;
                    break;
                }
                Ok(response) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(endpoint = name, status = %response.status(), failures, "notification refused; retrying");
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(endpoint = name, error = %err, failures, "notification not delivered; retrying");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_registry2_writes_them() {
        let digest = layerstore::Digest::sha256_of(b"x");
        let mut target = Target::manifest(
            "a/b",
            &digest,
            "application/vnd.oci.image.manifest.v1+json",
            3,
            Some("v1"),
        );
        target.url = Some("http://h/v2/a/b/manifests/x".into());
        let event = Event {
            id: "i".into(),
            timestamp: "t".into(),
            action: Action::Push,
            target,
            request: RequestRecord::default(),
            actor: Actor::default(),
            source: Source {
                addr: "h:5000".into(),
                instance_id: "u".into(),
            },
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["action"], "push");
        assert_eq!(
            value["target"]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(value["target"]["length"], 3);
        assert_eq!(value["target"]["tag"], "v1");
        assert!(value["target"].get("fromRepository").is_none());
        assert_eq!(value["actor"], serde_json::json!({}));
        assert_eq!(value["source"]["instanceID"], "u");
        let delete = Target {
            digest: Some(digest.to_string()),
            repository: "a".into(),
            ..Target::default()
        };
        let value = serde_json::to_value(&delete).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 2);
    }
}
