//! Replays the request flows of the OCI distribution conformance suite (v1.1 and the redesigned edition) against a
//! real server: pull, push (every upload style), content discovery and content management.

mod common;

use common::*;
use layerstore::{Algorithm, Digest};
use reqwest::StatusCode;
use serde_json::{json, Value};

const NAME: &str = "conformance/repo-a";

#[test]
fn ping_answers_with_api_version() {
    let server = TestServer::start();
    let r = client().get(server.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn monolithic_post_with_digest_then_pull() {
    let server = TestServer::start();
    let data = b"monolithic blob".to_vec();
    let digest = Digest::sha256_of(&data);
    let c = client();
    let r = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .query(&[("digest", digest.to_string())])
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    let get = c.get(server.location(&r)).send().unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "content-type"), "application/octet-stream");
    assert_eq!(header(&get, "docker-content-digest"), digest.to_string());
    assert_eq!(header(&get, "content-length"), data.len().to_string());
    assert_eq!(get.bytes().unwrap().as_ref(), &data[..]);
    let head = c
        .head(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
        .send()
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), data.len().to_string());
    assert!(head.bytes().unwrap().is_empty());
    // The blob is stored in Distribution's layout.
    let hex = digest.hex();
    let data_path = server.root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    assert_eq!(std::fs::read(data_path).unwrap(), data);
    let link = server.root.join(format!(
        "docker/registry/v2/repositories/{NAME}/_layers/sha256/{hex}/link"
    ));
    assert_eq!(std::fs::read_to_string(link).unwrap(), digest.to_string());
}

#[test]
fn chunked_upload_with_status_out_of_order_and_retry() {
    let server = TestServer::start();
    let c = client();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(post.status(), StatusCode::ACCEPTED);
    assert!(!header(&post, "docker-upload-uuid").is_empty());
    assert_eq!(header(&post, "range"), "0-0");
    let mut location = server.location(&post);
    // Out of order first chunk: 416, session intact.
    let r = c
        .patch(&location)
        .header("content-range", "1000-1999")
        .header("content-type", "application/octet-stream")
        .body(data[1000..2000].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let status = c.get(&location).send().unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-0");
    for (start, end) in [(0usize, 999usize), (1000, 1999)] {
        let r = c
            .patch(&location)
            .header("content-range", format!("{start}-{end}"))
            .header("content-type", "application/octet-stream")
            .body(data[start..=end].to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&r, "range"), format!("0-{end}"));
        location = server.location(&r);
    }
    // Retrying the previous chunk is refused, and so is a PUT whose chunk skips ahead.
    let retry = c
        .patch(&location)
        .header("content-range", "1000-1999")
        .body(data[1000..2000].to_vec())
        .send()
        .unwrap();
    assert_eq!(retry.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let skip = c
        .put(&location)
        .query(&[("digest", digest.to_string())])
        .header("content-range", "2001-2999")
        .body(data[2001..].to_vec())
        .send()
        .unwrap();
    assert_eq!(skip.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let status = c.get(&location).send().unwrap();
    assert_eq!(header(&status, "range"), "0-1999");
    let put = c
        .put(&location)
        .query(&[("digest", digest.to_string())])
        .header("content-range", "2000-2999")
        .header("content-type", "application/octet-stream")
        .body(data[2000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        header(&put, "location"),
        format!("/v2/{NAME}/blobs/{digest}")
    );
    let got = c
        .get(server.location(&put))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    // The session is gone.
    assert_eq!(
        c.get(&location).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn streamed_patch_then_empty_put() {
    let server = TestServer::start();
    let c = client();
    let data = b"streamed like docker does".repeat(1000);
    let digest = Digest::sha256_of(&data);
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let patch = c
        .patch(server.location(&post))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            data.clone(),
        )))
        .send()
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&patch, "range"), format!("0-{}", data.len() - 1));
    let put = c
        .put(server.location(&patch))
        .query(&[("digest", digest.to_string())])
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "docker-content-digest"), digest.to_string());
}

#[test]
fn sha512_blobs_and_manifests() {
    let server = TestServer::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"sha512 layer".repeat(50);
    let cd = push_blob_with(&server, NAME, config, Algorithm::Sha512);
    let ld = push_blob_with(&server, NAME, &layer, Algorithm::Sha512);
    assert!(cd.to_string().starts_with("sha512:"));
    let manifest = serde_json::to_vec(&image_manifest(
        &(cd, config.len()),
        &[(ld.clone(), layer.len())],
    ))
    .unwrap();
    let md = Digest::of(Algorithm::Sha512, &manifest);
    let r = put_manifest(&server, NAME, &md.to_string(), OCI_MANIFEST, &manifest);
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), md.to_string());
    let get = client().get(server.location(&r)).send().unwrap();
    assert_eq!(get.bytes().unwrap().as_ref(), &manifest[..]);
    let blob = client()
        .get(server.url(&format!("/v2/{NAME}/blobs/{ld}")))
        .send()
        .unwrap();
    assert_eq!(blob.bytes().unwrap().as_ref(), &layer[..]);
}

#[test]
fn cross_repository_mount_and_fallbacks() {
    let server = TestServer::start();
    let c = client();
    let data = b"mount me";
    let digest = push_blob(&server, "other/repo", data);
    let r = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .query(&[
            ("mount", digest.to_string()),
            ("from", "other/repo".to_string()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/{NAME}/blobs/{digest}"));
    assert_eq!(
        c.get(server.location(&r))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
        data
    );
    // Unknown blob, or no `from`: an upload session instead.
    let missing = Digest::sha256_of(b"never pushed");
    for query in [
        vec![
            ("mount", missing.to_string()),
            ("from", "other/repo".to_string()),
        ],
        vec![("mount", digest.to_string())],
    ] {
        let r = c
            .post(server.url("/v2/third/blobs/uploads/"))
            .query(&query)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert!(header(&r, "location").contains("/v2/third/blobs/uploads/"));
    }
}

#[test]
fn automatic_crossmount_when_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.automatic_crossmount = true;
    let server = TestServer::with_config(cfg);
    let digest = push_blob(&server, "somewhere/else", b"discoverable");
    let r = client()
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/?mount={digest}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        client()
            .get(server.location(&r))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
        b"discoverable"
    );
    let unknown = Digest::sha256_of(b"unknown");
    let r = client()
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/?mount={unknown}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[test]
fn upload_cancel() {
    let server = TestServer::start();
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
        .send()
        .unwrap();
    let location = server.location(&post);
    assert_eq!(
        c.delete(&location).send().unwrap().status(),
        StatusCode::NO_CONTENT
    );
    expect_error(c.get(&location).send().unwrap(), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(
        c.delete(&location).send().unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
    let uploads = server
        .root
        .join(format!("docker/registry/v2/repositories/{NAME}/_uploads"));
    assert!(files_under(&uploads).is_empty());
}

#[test]
fn range_requests() {
    let server = TestServer::start();
    let body: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = push_blob(&server, NAME, &body);
    let url = server.url(&format!("/v2/{NAME}/blobs/{digest}"));
    let c = client();
    for (range, start, end) in [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),
    ] {
        let r = c.get(&url).header("range", range).send().unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&r, "content-length"), (end - start + 1).to_string());
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {start}-{end}/2048")
        );
        assert_eq!(r.bytes().unwrap().as_ref(), &body[start..=end]);
    }
    for range in ["bytes=500-0", "bytes=5000-10000", "bytes=x-y"] {
        let r = c.get(&url).header("range", range).send().unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&r, "content-range"), "bytes */2048");
    }
}

#[test]
fn empty_and_empty_json_blobs() {
    let server = TestServer::start();
    for data in [&b""[..], &b"{}"[..]] {
        let digest = push_blob(&server, NAME, data);
        let r = client()
            .get(server.url(&format!("/v2/{NAME}/blobs/{digest}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), data.len().to_string());
        assert_eq!(r.bytes().unwrap().as_ref(), data);
    }
}

#[test]
fn manifests_by_tag_and_digest_are_served_byte_for_byte() {
    let server = TestServer::start();
    let c = client();
    let manifest = image(&server, NAME, "tags", 2);
    let digest = Digest::sha256_of(&manifest);
    for i in 0..4 {
        let r = put_manifest(&server, NAME, &format!("test{i}"), OCI_MANIFEST, &manifest);
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            header(&r, "location"),
            format!("/v2/{NAME}/manifests/{digest}")
        );
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    }
    for reference in ["test0".to_string(), digest.to_string()] {
        let r = c
            .get(server.url(&format!("/v2/{NAME}/manifests/{reference}")))
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        assert_eq!(r.bytes().unwrap().as_ref(), &manifest[..]);
        let head = c
            .head(server.url(&format!("/v2/{NAME}/manifests/{reference}")))
            .send()
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), manifest.len().to_string());
    }
    // A client that accepts only Docker types does not get an OCI manifest by tag.
    let r = c
        .get(server.url(&format!("/v2/{NAME}/manifests/test0")))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .unwrap();
    expect_error(r, 404, "MANIFEST_UNKNOWN");
    expect_error(
        c.get(server.url(&format!("/v2/{NAME}/manifests/nonexistent")))
            .send()
            .unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    );
    let random = Digest::sha256_of(b"random");
    expect_error(
        c.get(server.url(&format!("/v2/{NAME}/manifests/{random}")))
            .send()
            .unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    );
    // Tag paths in the layout.
    let tag_link = server.root.join(format!(
        "docker/registry/v2/repositories/{NAME}/_manifests/tags/test1/current/link"
    ));
    assert_eq!(
        std::fs::read_to_string(tag_link).unwrap(),
        digest.to_string()
    );
}

#[test]
fn whitespace_changed_manifest_fails_digest_check() {
    let server = TestServer::start();
    let manifest = image(&server, NAME, "ws", 1);
    let digest = Digest::sha256_of(&manifest);
    let mut altered = manifest.clone();
    altered.extend_from_slice(b"  ");
    expect_error(
        put_manifest(&server, NAME, &digest.to_string(), OCI_MANIFEST, &altered),
        400,
        "DIGEST_INVALID",
    );
    expect_error(
        put_manifest(
            &server,
            NAME,
            "sha256:baddigeststring",
            OCI_MANIFEST,
            &manifest,
        ),
        400,
        "DIGEST_INVALID",
    );
    let r = client()
        .get(server.url(&format!("/v2/{NAME}/manifests/sha256:baddigeststring")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn docker_manifest_list_and_nested_index() {
    let server = TestServer::start();
    let docker = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": push_blob(&server, NAME, b"{}").to_string(), "size": 2},
        "layers": [],
    });
    let docker = serde_json::to_vec(&docker).unwrap();
    let dd = Digest::sha256_of(&docker);
    let r = put_manifest(
        &server,
        NAME,
        &dd.to_string(),
        "application/vnd.docker.distribution.manifest.v2+json",
        &docker,
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    let list = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": dd.to_string(), "size": docker.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
    });
    let list = serde_json::to_vec(&list).unwrap();
    let r = put_manifest(
        &server,
        NAME,
        "list",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &list,
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    let ld = Digest::sha256_of(&list);
    let outer = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "digest": ld.to_string(), "size": list.len()}]});
    let outer = serde_json::to_vec(&outer).unwrap();
    assert_eq!(
        put_manifest(&server, NAME, "nested", OCI_INDEX, &outer).status(),
        StatusCode::CREATED
    );
    let r = client()
        .get(server.url(&format!("/v2/{NAME}/manifests/list")))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .unwrap();
    assert_eq!(
        header(&r, "content-type"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(r.bytes().unwrap().as_ref(), &list[..]);
    // An index over a manifest this repository does not have.
    let missing = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": Digest::sha256_of(b"x").to_string(), "size": 1}]});
    let r = put_manifest(
        &server,
        NAME,
        "broken",
        OCI_INDEX,
        &serde_json::to_vec(&missing).unwrap(),
    );
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN");
}

#[test]
fn non_distributable_layers_may_be_absent() {
    let server = TestServer::start();
    let config = push_blob(&server, NAME, b"{\"os\":\"linux\"}");
    let foreign = Digest::sha256_of(b"foreign");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": foreign.to_string(), "size": 123456, "urls": ["https://store.example.com/blobs/sha256/x"]}],
    });
    let r = put_manifest(
        &server,
        NAME,
        "nd",
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[test]
fn tag_parameters_answer_with_oci_tag() {
    let server = TestServer::start();
    let manifest = image(&server, NAME, "tagparam", 1);
    let digest = Digest::sha256_of(&manifest);
    let r = client()
        .put(server.url(&format!("/v2/{NAME}/manifests/{digest}?tag=one&tag=two")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let tags: Vec<_> = r
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, vec!["one", "two"]);
    let list: Value = client()
        .get(server.url(&format!("/v2/{NAME}/tags/list")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["tags"], json!(["one", "two"]));
}

fn artifact(
    server: &TestServer,
    subject: &(Digest, usize),
    artifact_type: &str,
    note: &str,
) -> (Digest, Vec<u8>) {
    let empty = push_blob(server, NAME, b"{}");
    let layer = push_blob(server, NAME, note.as_bytes());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer.to_string(), "size": note.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.0.to_string(), "size": subject.1},
        "annotations": {"org.opencontainers.conformance": note},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    (Digest::sha256_of(&bytes), bytes)
}

#[test]
fn subject_and_referrers() {
    let server = TestServer::start();
    let c = client();
    let subject = image(&server, NAME, "subject", 1);
    let sd = Digest::sha256_of(&subject);
    // Referrers of an unknown subject (even in an unknown repository) are an empty index.
    let r = c
        .get(server.url(&format!("/v2/nothing/here/referrers/{sd}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let empty: Value = r.json().unwrap();
    assert_eq!(
        empty,
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
    assert_eq!(
        put_manifest(&server, NAME, "image", OCI_MANIFEST, &subject).status(),
        StatusCode::CREATED
    );
    let (a1, b1) = artifact(
        &server,
        &(sd.clone(), subject.len()),
        "application/vnd.example.one",
        "first",
    );
    let (a2, b2) = artifact(
        &server,
        &(sd.clone(), subject.len()),
        "application/vnd.example.two",
        "second",
    );
    for (d, b) in [(&a1, &b1), (&a2, &b2)] {
        let r = put_manifest(&server, NAME, &d.to_string(), OCI_MANIFEST, b);
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "oci-subject"), sd.to_string());
    }
    let all: Value = c
        .get(server.url(&format!("/v2/{NAME}/referrers/{sd}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let manifests = all["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    let first = manifests
        .iter()
        .find(|m| m["digest"] == a1.to_string())
        .unwrap();
    assert_eq!(first["artifactType"], "application/vnd.example.one");
    assert_eq!(first["mediaType"], OCI_MANIFEST);
    assert_eq!(first["size"], b1.len());
    assert_eq!(
        first["annotations"]["org.opencontainers.conformance"],
        "first"
    );
    let r = c
        .get(server.url(&format!(
            "/v2/{NAME}/referrers/{sd}?artifactType=application/vnd.example.two"
        )))
        .send()
        .unwrap();
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let filtered: Value = r.json().unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], a2.to_string());
    // A subject that does not exist is accepted.
    let (a3, b3) = artifact(
        &server,
        &(Digest::sha256_of(b"missing content"), 123),
        "application/vnd.example.one",
        "dangling",
    );
    let r = put_manifest(&server, NAME, &a3.to_string(), OCI_MANIFEST, &b3);
    assert_eq!(r.status(), StatusCode::CREATED);
    expect_error(
        c.get(server.url(&format!("/v2/{NAME}/referrers/sha256:nope")))
            .send()
            .unwrap(),
        400,
        "DIGEST_INVALID",
    );
}

#[test]
fn tag_list_and_catalog_pagination() {
    let server = TestServer::start();
    let manifest = image(&server, NAME, "pages", 1);
    for tag in ["c", "a", "e", "b", "d"] {
        assert_eq!(
            put_manifest(&server, NAME, tag, OCI_MANIFEST, &manifest).status(),
            StatusCode::CREATED
        );
    }
    let c = client();
    let full: Value = c
        .get(server.url(&format!("/v2/{NAME}/tags/list")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        full,
        json!({"name": NAME, "tags": ["a", "b", "c", "d", "e"]})
    );
    let r = c
        .get(server.url(&format!("/v2/{NAME}/tags/list?n=2")))
        .send()
        .unwrap();
    assert_eq!(
        header(&r, "link"),
        format!("</v2/{NAME}/tags/list?n=2&last=b>; rel=\"next\"")
    );
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["a", "b"]));
    let r = c
        .get(server.url(&format!("/v2/{NAME}/tags/list?n=2&last=b")))
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["c", "d"]));
    let r = c
        .get(server.url(&format!("/v2/{NAME}/tags/list?n=2&last=d")))
        .send()
        .unwrap();
    assert_eq!(header(&r, "link"), "");
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["e"]));
    let r = c
        .get(server.url(&format!("/v2/{NAME}/tags/list?last=c")))
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["d", "e"]));
    expect_error(
        c.get(server.url("/v2/never/pushed/tags/list"))
            .send()
            .unwrap(),
        404,
        "NAME_UNKNOWN",
    );
    push_blob(&server, "alpha", b"x");
    push_blob(&server, "zeta/nested", b"x");
    let cat: Value = c
        .get(server.url("/v2/_catalog"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cat["repositories"], json!(["alpha", NAME, "zeta/nested"]));
    let r = c.get(server.url("/v2/_catalog?n=1")).send().unwrap();
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=1&last=alpha>; rel=\"next\""
    );
    let r = c
        .get(server.url("/v2/_catalog?n=5&last=alpha"))
        .send()
        .unwrap();
    assert_eq!(
        r.json::<Value>().unwrap()["repositories"],
        json!([NAME, "zeta/nested"])
    );
}

#[test]
fn content_management_deletes() {
    let server = TestServer::start();
    let c = client();
    let manifest = image(&server, NAME, "delete", 1);
    let digest = Digest::sha256_of(&manifest);
    for tag in ["keep", "drop"] {
        assert_eq!(
            put_manifest(&server, NAME, tag, OCI_MANIFEST, &manifest).status(),
            StatusCode::CREATED
        );
    }
    let tag_url = server.url(&format!("/v2/{NAME}/manifests/drop"));
    assert_eq!(
        c.delete(&tag_url).send().unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        c.head(&tag_url).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    expect_error(c.get(&tag_url).send().unwrap(), 404, "MANIFEST_UNKNOWN");
    assert_eq!(
        c.head(server.url(&format!("/v2/{NAME}/manifests/keep")))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let digest_url = server.url(&format!("/v2/{NAME}/manifests/{digest}"));
    assert_eq!(
        c.delete(&digest_url).send().unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        c.head(&digest_url).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Deleting the revision removed the tags pointing at it.
    assert_eq!(
        c.head(server.url(&format!("/v2/{NAME}/manifests/keep")))
            .send()
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    expect_error(
        c.delete(&digest_url).send().unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    );
    let blob = push_blob(&server, NAME, b"to delete");
    let blob_url = server.url(&format!("/v2/{NAME}/blobs/{blob}"));
    assert_eq!(
        c.delete(&blob_url).send().unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        c.head(&blob_url).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    expect_error(c.delete(&blob_url).send().unwrap(), 404, "BLOB_UNKNOWN");
}

#[test]
fn deletes_are_refused_when_disabled() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.delete = false;
    let server = TestServer::with_config(cfg);
    let blob = push_blob(&server, NAME, b"stays");
    let r = client()
        .delete(server.url(&format!("/v2/{NAME}/blobs/{blob}")))
        .send()
        .unwrap();
    expect_error(r, 405, "UNSUPPORTED");
    let r = client()
        .delete(server.url(&format!("/v2/{NAME}/manifests/latest")))
        .send()
        .unwrap();
    expect_error(r, 405, "UNSUPPORTED");
    assert_eq!(
        client()
            .head(server.url(&format!("/v2/{NAME}/blobs/{blob}")))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn upload_sessions_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = b"resumable ".repeat(500);
    let digest = Digest::sha256_of(&data);
    let location_path = {
        let server = TestServer::with_config(config(tmp.path()));
        let c = client();
        let post = c
            .post(server.url(&format!("/v2/{NAME}/blobs/uploads/")))
            .send()
            .unwrap();
        let r = c
            .patch(server.location(&post))
            .header("content-range", "0-2499")
            .body(data[..2500].to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        header(&r, "location")
    };
    let server = TestServer::with_config(config(tmp.path()));
    let c = client();
    let status = c.get(server.url(&location_path)).send().unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-2499");
    let put = c
        .put(server.url(&location_path))
        .query(&[("digest", digest.to_string())])
        .header("content-range", format!("2500-{}", data.len() - 1))
        .body(data[2500..].to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
}

#[test]
fn concurrent_uploads_of_one_blob() {
    let server = TestServer::start();
    let data = b"same content from many clients".repeat(10_000);
    let digest = Digest::sha256_of(&data);
    std::thread::scope(|scope| {
        for i in 0..4 {
            let (server, data) = (&server, &data);
            scope.spawn(move || {
                let name = format!("race/r{i}");
                assert_eq!(push_blob(server, &name, data), Digest::sha256_of(data));
            });
        }
    });
    for i in 0..4 {
        let r = client()
            .get(server.url(&format!("/v2/race/r{i}/blobs/{digest}")))
            .send()
            .unwrap();
        assert_eq!(r.bytes().unwrap().as_ref(), &data[..]);
    }
}

#[test]
fn metrics_count_requests() {
    let server = TestServer::start();
    client().get(server.url("/v2/")).send().unwrap();
    client()
        .get(server.url("/v2/x/manifests/missing"))
        .send()
        .unwrap();
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("lade_registry_http_requests_total{method=\"GET\",status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("lade_registry_http_requests_total{method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE lade_registry_upload_bytes_total counter"));
}
