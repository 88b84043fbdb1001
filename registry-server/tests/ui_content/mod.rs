//! Content for the web page tests: an image whose config carries hostile text (a `<script>` label, markup in Env
//! and history), an SBOM referring to it, a multi-platform index, and a few more repositories to search among.
#![allow(dead_code)]

use layerstore::Digest;
use serde_json::json;

use super::common::{
    push_blob, put_manifest, TestServer, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST,
};

/// The label value that must never run as script.
pub const HOSTILE_LABEL: &str = "<script>document.title='pwned'</script>";
/// The annotation on the SBOM, another attempt.
pub const HOSTILE_ANNOTATION: &str = "<img src=x onerror=\"document.title='pwned'\">";
pub const SBOM_TYPE: &str = "application/spdx+json";

/// What [`populate`] pushed.
pub struct Content {
    pub web_digest: Digest,
    pub web_size: u64,
    pub sbom_digest: Digest,
    pub index_digest: Digest,
}

fn config_json(arch: &str, labels: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2026-11-30T12:34:56Z",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=<b>hello</b>"],
            "Entrypoint": ["/bin/web"],
            "Cmd": ["--port", "8080"],
            "WorkingDir": "/srv",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2026-11-30T12:00:00Z", "created_by": "ADD rootfs.tar / # buildkit"},
            {"created": "2026-11-30T12:30:00Z", "created_by": "ENV GREETING=<b>hello</b>", "empty_layer": true},
            {"created": "2026-11-30T12:34:56Z", "created_by": "COPY web /bin/web # buildkit"},
        ],
    }))
    .unwrap()
}

/// Pushes an image of two layers and returns (manifest bytes, digest, total size of config and layers).
fn push_image(
    server: &TestServer,
    name: &str,
    arch: &str,
    labels: serde_json::Value,
) -> (Vec<u8>, Digest, u64) {
    let config = config_json(arch, labels);
    let config_digest = push_blob(server, name, &config);
    let layer1 = vec![b'a'; 1500 + arch.len()];
    let layer2 = vec![b'b'; 250_000];
    let l1 = push_blob(server, name, &layer1);
    let l2 = push_blob(server, name, &layer2);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": l1.to_string(), "size": layer1.len()},
            {"mediaType": OCI_LAYER, "digest": l2.to_string(), "size": layer2.len()},
        ],
    }))
    .unwrap();
    let digest = Digest::sha256_of(&manifest);
    let size = (config.len() + layer1.len() + layer2.len()) as u64;
    (manifest, digest, size)
}

fn put(server: &TestServer, name: &str, reference: &str, media_type: &str, body: &[u8]) {
    let response = put_manifest(server, name, reference, media_type, body);
    assert_eq!(response.status().as_u16(), 201, "{:?}", response.text());
}

/// Pushes the test content.
pub fn populate(server: &TestServer) -> Content {
    let labels = json!({
        "org.opencontainers.image.title": "web",
        "evil": HOSTILE_LABEL,
        "<script>alert(1)</script>": "key too",
    });
    let (manifest, web_digest, web_size) = push_image(server, "library/web", "amd64", labels);
    put(server, "library/web", "1.0", OCI_MANIFEST, &manifest);
    put(server, "library/web", "latest", OCI_MANIFEST, &manifest);

    // An SBOM referring to the image (the referrers API's subject).
    let empty = push_blob(server, "library/web", b"{}");
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"web"}"#;
    let sbom_layer = push_blob(server, "library/web", sbom);
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": SBOM_TYPE, "digest": sbom_layer.to_string(), "size": sbom.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": web_digest.to_string(), "size": manifest.len()},
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z", "note": HOSTILE_ANNOTATION},
    }))
    .unwrap();
    let sbom_digest = Digest::sha256_of(&referrer);
    put(
        server,
        "library/web",
        &sbom_digest.to_string(),
        OCI_MANIFEST,
        &referrer,
    );

    // A two-platform index.
    let mut children = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let (bytes, digest, _) = push_image(server, "multi/app", arch, json!({}));
        put(
            server,
            "multi/app",
            &digest.to_string(),
            OCI_MANIFEST,
            &bytes,
        );
        let mut platform = json!({"os": "linux", "architecture": arch});
        if let Some(variant) = variant {
            platform["variant"] = json!(variant);
        }
        children.push(json!({"mediaType": OCI_MANIFEST, "digest": digest.to_string(), "size": bytes.len(), "platform": platform}));
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
    )
    .unwrap();
    let index_digest = Digest::sha256_of(&index);
    put(server, "multi/app", "2.1", OCI_INDEX, &index);

    for name in ["tools/builder", "tools/linter"] {
        let (bytes, _, _) = push_image(server, name, "amd64", json!({}));
        put(server, name, "stable", OCI_MANIFEST, &bytes);
    }
    Content {
        web_digest,
        web_size,
        sbom_digest,
        index_digest,
    }
}
