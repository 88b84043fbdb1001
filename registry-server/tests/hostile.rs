//! Hostile and malformed requests: each is refused with the spec's error and leaves nothing behind in storage.

mod common;

use common::*;
use layerstore::Digest;
use reqwest::StatusCode;
use serde_json::json;

const NAME: &str = "hostile/repo";

/// Sends a request line as is (no path normalisation) and returns the response status.
fn raw_status(server: &TestServer, request_line: &str) -> u16 {
    raw_response(server, request_line)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends a request line as is and returns the whole response text.
fn raw_response(server: &TestServer, request_line: &str) -> String {
    use std::io::{Read, Write};
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn blobs_dir(server: &TestServer) -> std::path::PathBuf {
    server.root.join("docker/registry/v2/blobs")
}

#[test]
fn wrong_digest_on_put_stores_nothing() {
    let server = TestServer::start();
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = server.location(&post);
    let wrong = Digest::sha256_of(b"something else");
    let r = c
        .put(&location)
        .query(&[("digest", wrong.to_string())])
        .body(b"actual content".to_vec())
        .send()
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID");
    assert!(files_under(&blobs_dir(&server)).is_empty());
    // The failed session is gone, and so is a monolithic POST with a wrong digest.
    expect_error(c.get(&location).send().unwrap(), 404, "BLOB_UPLOAD_UNKNOWN");
    let r = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .query(&[("digest", wrong.to_string())])
        .body(b"actual content".to_vec())
        .send()
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID");
    assert!(files_under(&blobs_dir(&server)).is_empty());
    let uploads = server
        .root
        .join(format!("docker/registry/v2/repositories/{NAME}/_uploads"));
    assert!(
        files_under(&uploads).is_empty(),
        "{:?}",
        files_under(&uploads)
    );
    expect_error(
        client()
            .get(server.url(&format!("/v2/{NAME}/blobs/{wrong}")))
            .send()
            .unwrap(),
        404,
        "BLOB_UNKNOWN",
    );
}

#[test]
fn malformed_digests_are_400_not_500() {
    let server = TestServer::start();
    let c = client();
    for digest in [
        "sha256:short",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nocolon",
        "sha256:ZZZZ",
    ] {
        expect_error(
            c.get(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
                .send()
                .unwrap(),
            400,
            "DIGEST_INVALID",
        );
        let r = c
            .post(server.url(&format!("/v2/{NAME}/blobs/uploads/?digest={digest}")))
            .body("x")
            .send()
            .unwrap();
        expect_error(r, 400, "DIGEST_INVALID");
    }
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    expect_error(
        c.put(server.location(&post)).send().unwrap(),
        400,
        "DIGEST_INVALID",
    );
    let r = c
        .put(format!("{}?digest=sha256:bad", server.location(&post)))
        .send()
        .unwrap();
    expect_error(r, 400, "DIGEST_INVALID");
}

#[test]
fn manifest_referencing_missing_blobs_is_refused() {
    let server = TestServer::start();
    let config = push_blob(&server, NAME, b"{}");
    let missing = Digest::sha256_of(b"never uploaded");
    let manifest = serde_json::to_vec(&image_manifest(
        &(config.clone(), 2),
        &[(missing.clone(), 14)],
    ))
    .unwrap();
    let r = put_manifest(&server, NAME, "latest", OCI_MANIFEST, &manifest);
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(body["errors"][0]["detail"]["digest"], missing.to_string());
    // Config missing too.
    let manifest = serde_json::to_vec(&image_manifest(&(missing, 14), &[])).unwrap();
    expect_error(
        put_manifest(&server, NAME, "latest", OCI_MANIFEST, &manifest),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    let manifests = server
        .root
        .join(format!("docker/registry/v2/repositories/{NAME}/_manifests"));
    assert!(files_under(&manifests).is_empty());
    // A blob linked only into another repository does not count.
    let elsewhere = push_blob(&server, "other/repo", b"layer elsewhere");
    let manifest = serde_json::to_vec(&image_manifest(&(config, 2), &[(elsewhere, 15)])).unwrap();
    expect_error(
        put_manifest(&server, NAME, "latest", OCI_MANIFEST, &manifest),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
}

#[test]
fn invalid_manifests_are_refused() {
    let server = TestServer::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (OCI_MANIFEST, b"{not json".to_vec()),
        (OCI_MANIFEST, br#"{"schemaVersion":1,"config":{}}"#.to_vec()),
        (
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec(),
        ),
        (
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:nothex","size":1},"layers":[]}"#.to_vec(),
        ),
        ("text/plain", br#"{"schemaVersion":2,"manifests":[]}"#.to_vec()),
    ];
    for (media_type, body) in cases {
        expect_error(
            put_manifest(&server, NAME, "bad", media_type, &body),
            400,
            "MANIFEST_INVALID",
        );
    }
    assert!(files_under(&server.root.join("docker/registry/v2/repositories")).is_empty());
    assert!(files_under(&blobs_dir(&server)).is_empty());
}

#[test]
fn oversized_manifest_is_413() {
    let server = TestServer::start();
    let big = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "annotations": {"x": "A".repeat(4 * 1024 * 1024)}});
    let r = put_manifest(
        &server,
        NAME,
        "big",
        OCI_INDEX,
        &serde_json::to_vec(&big).unwrap(),
    );
    expect_error(r, 413, "SIZE_INVALID");
    // Just under the limit is fine (the conformance suite's large manifest is about 3.9 MB).
    let large = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "annotations": {"x": "A".repeat(3_900_000)}});
    assert_eq!(
        put_manifest(
            &server,
            NAME,
            "large",
            OCI_INDEX,
            &serde_json::to_vec(&large).unwrap()
        )
        .status(),
        201
    );
    let revisions = server.root.join(format!(
        "docker/registry/v2/repositories/{NAME}/_manifests/revisions"
    ));
    assert_eq!(files_under(&revisions).len(), 1);
}

#[test]
fn invalid_names_and_tags() {
    let server = TestServer::start();
    let c = client();
    for name in [
        "Upper/case",
        "a/../b",
        "a/./b",
        "a//b",
        "-a",
        "a_",
        "../../etc",
        &"a".repeat(256),
    ] {
        // Sent raw: an HTTP client would normalise the dot segments away.
        let status = raw_status(&server, &format!("POST /v2/{name}/blobs/uploads/"));
        assert_eq!(status, 400, "{name}");
    }
    for name in ["Upper/case", "a_", "a..b/c"] {
        expect_error(
            c.get(server.url(&format!("/v2/{name}/tags/list")))
                .send()
                .unwrap(),
            400,
            "NAME_INVALID",
        );
    }
    let r = c
        .get(server.url("/v2/a/%2E%2E/b/tags/list"))
        .send()
        .unwrap();
    assert!(r.status().is_client_error());
    expect_error(
        put_manifest(&server, NAME, "-bad-tag", OCI_MANIFEST, b"{}"),
        400,
        "MANIFEST_INVALID",
    );
    expect_error(
        c.get(server.url(&format!("/v2/{NAME}/manifests/.hidden")))
            .send()
            .unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    );
    assert!(
        files_under(&server.root).is_empty(),
        "{:?}",
        files_under(&server.root)
    );
}

#[test]
fn patch_on_finished_or_unknown_upload() {
    let server = TestServer::start();
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = server.location(&post);
    let data = b"finished";
    let put = c
        .put(&location)
        .query(&[("digest", Digest::sha256_of(data).to_string())])
        .body(data.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    expect_error(
        c.patch(&location).body("more").send().unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert_eq!(
        raw_status(&server, &format!("PATCH /v2/{NAME}/blobs/uploads/..")),
        404
    );
    for uuid in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let url = server.url(&format!("/v2/{NAME}/blobs/uploads/{uuid}"));
        expect_error(
            c.patch(&url).body("x").send().unwrap(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        );
    }
    let uploads = server
        .root
        .join(format!("docker/registry/v2/repositories/{NAME}/_uploads"));
    assert!(files_under(&uploads).is_empty());
}

#[test]
fn chunk_length_mismatch_is_refused_before_writing() {
    let server = TestServer::start();
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let r = c
        .patch(server.location(&post))
        .header("content-range", "0-99")
        .body(vec![0u8; 10])
        .send()
        .unwrap();
    expect_error(r, 400, "SIZE_INVALID");
    let status = c.get(server.location(&post)).send().unwrap();
    assert_eq!(header(&status, "range"), "0-0");
    let r = c
        .patch(server.location(&post))
        .header("content-range", "garbage")
        .body(vec![0u8; 10])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

#[test]
fn unknown_methods_and_endpoints() {
    let server = TestServer::start();
    let c = client();
    expect_error(
        c.post(server.url(&format!("/v2/{NAME}/manifests/latest")))
            .send()
            .unwrap(),
        405,
        "UNSUPPORTED",
    );
    assert_eq!(
        c.get(server.url(&format!("/v2/{NAME}/whatever/x")))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn interrupted_chunk_can_be_resumed() {
    use std::io::Write;
    let server = TestServer::start();
    let c = client();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = header(&post, "location");
    {
        let address = server.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "PATCH {location} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 1000\r\n\r\n"
        )
        .unwrap();
        stream.write_all(&data[..400]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The connection is gone mid-body; what arrived is kept.
    let mut received = String::new();
    for _ in 0..50 {
        received = header(&c.get(server.url(&location)).send().unwrap(), "range");
        if received == "0-399" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(received, "0-399");
    let put = c
        .put(server.url(&location))
        .query(&[("digest", Digest::sha256_of(&data).to_string())])
        .header("content-range", "400-999")
        .body(data[400..].to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
}

#[test]
fn encoded_slashes_never_split_names() {
    let server = TestServer::start();
    for request in [
        "POST /v2/a%2Fb/blobs/uploads/",
        "POST /v2/a%2fb/blobs/uploads/",
        "GET /v2/a%2Fb/tags/list",
        "GET /v2/a/b%2F/manifests/latest",
    ] {
        let response = raw_response(&server, request);
        assert!(
            response.starts_with("HTTP/1.1 400") && response.contains("NAME_INVALID"),
            "{request}: {response}"
        );
    }
    assert!(
        files_under(&server.root).is_empty(),
        "{:?}",
        files_under(&server.root)
    );
    // Escapes of ordinary characters still decode.
    let response = raw_response(&server, "GET /v2/a%62c/tags/list");
    assert!(response.contains("NAME_UNKNOWN"), "{response}");
}

#[test]
fn digests_with_slashes_are_invalid_digests() {
    let server = TestServer::start();
    for request in [
        "GET /v2/a/blobs/sha256:../../../etc/passwd",
        "HEAD /v2/a/blobs/sha256:a/b",
        "DELETE /v2/a/blobs/sha256%3A..%2F..%2Fx",
    ] {
        let response = raw_response(&server, request);
        assert!(
            response.starts_with("HTTP/1.1 400")
                && (request.starts_with("HEAD") || response.contains("DIGEST_INVALID")),
            "{request}: {response}"
        );
    }
}

#[test]
fn manifests_with_duplicate_keys_are_invalid() {
    let server = TestServer::start();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push_blob(&server, NAME, config);
    let descriptor = format!(
        r#"{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}}"#,
        config.len()
    );
    for manifest in [
        format!(r#"{{"schemaVersion":2,"config":{descriptor},"config":{descriptor},"layers":[]}}"#),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","mediaType":"{OCI_MANIFEST}","config":{descriptor},"layers":[]}}"#
        ),
    ] {
        let r = put_manifest(&server, NAME, "dup", OCI_MANIFEST, manifest.as_bytes());
        let body = r.text().unwrap();
        assert!(
            body.contains("MANIFEST_INVALID") && body.contains("duplicate key"),
            "{body}"
        );
    }
    // The same manifest without the repetition is accepted.
    let manifest = format!(r#"{{"schemaVersion":2,"config":{descriptor},"layers":[]}}"#);
    let r = put_manifest(&server, NAME, "dup", OCI_MANIFEST, manifest.as_bytes());
    assert_eq!(r.status(), StatusCode::CREATED);
}
