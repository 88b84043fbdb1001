//! The conformance replay itself: its data sets and blob API matrix, run against the `server()` of the test
//! binary that includes it (a filesystem server in `conformance_v2.rs`, replicas on S3 in `conformance_v2_s3.rs`).

use std::collections::BTreeMap;

use super::common::*;
use super::{server, sha512_fits, REPO, REPO2};
use layerstore::{Algorithm, Digest};
use reqwest::blocking::Response;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The digest algorithms the storage can hold (sha512's paths are longer than some test S3 servers' keys allow).
fn algorithms() -> Vec<Algorithm> {
    if sha512_fits() {
        vec![Algorithm::Sha256, Algorithm::Sha512]
    } else {
        eprintln!("SKIP: sha512 content: this storage cannot hold its paths");
        vec![Algorithm::Sha256]
    }
}
/// The suite's smallest chunk (`chunkMin` in `config.go`).
const CHUNK_MIN: usize = 1024;
const EXAMPLE1: &str = "application/vnd.example.oci.conformance.v1";
const EXAMPLE2: &str = "application/vnd.example.oci.conformance.v2";

/// Deterministic pseudo-random bytes (xorshift), so that every data set has distinct content.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// One of the suite's data sets (`testData`).
#[derive(Default)]
struct Data {
    algo: Option<Algorithm>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    manifests: Vec<(Digest, Vec<u8>)>,
    tags: BTreeMap<String, Digest>,
    referrers: BTreeMap<Digest, Vec<Value>>,
    /// Push manifests by digest with `?tag=` parameters instead of by tag.
    tag_param: bool,
    seed: u64,
}

/// Options of one generated manifest (`genOptS`).
#[derive(Default, Clone)]
struct Gen {
    artifact_type: Option<String>,
    annotations: Option<Value>,
    config: Option<(String, Vec<u8>)>,
    layers: Option<Vec<(String, Vec<u8>)>>,
    subject: Option<Value>,
    tag: Option<String>,
    extra_field: bool,
    data_field: bool,
    platform: Option<(&'static str, &'static str)>,
}

impl Data {
    fn algo(&self) -> Algorithm {
        self.algo.unwrap_or(Algorithm::Sha256)
    }

    fn next_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    fn blob(&mut self, media_type: &str, bytes: Vec<u8>, data_field: bool) -> Value {
        let digest = Digest::of(self.algo(), &bytes);
        let mut desc =
            json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()});
        if data_field {
            desc["data"] = json!(base64_encode(&bytes));
        }
        self.blobs.insert(digest, bytes);
        desc
    }

    fn add_manifest(&mut self, mut doc: Value, g: &Gen) -> Value {
        if let Some(annotations) = &g.annotations {
            doc["annotations"] = annotations.clone();
        }
        if let Some(subject) = &g.subject {
            doc["subject"] = subject.clone();
        }
        if let Some(at) = &g.artifact_type {
            doc["artifactType"] = json!(at);
        }
        if g.extra_field {
            doc[format!("org.custom{}", self.next_seed())] = json!("a custom value");
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        let digest = Digest::of(self.algo(), &bytes);
        let media_type = doc["mediaType"].as_str().unwrap().to_string();
        if let Some(subject) = &g.subject {
            let subject: Digest = subject["digest"].as_str().unwrap().parse().unwrap();
            let artifact_type = g.artifact_type.clone().or_else(|| {
                doc.pointer("/config/mediaType")
                    .map(|v| v.as_str().unwrap().to_string())
            });
            let mut goal =
                json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()});
            if let Some(at) = artifact_type {
                goal["artifactType"] = json!(at);
            }
            if let Some(a) = &g.annotations {
                goal["annotations"] = a.clone();
            }
            self.referrers.entry(subject).or_default().push(goal);
        }
        if let Some(tag) = &g.tag {
            self.tags.insert(tag.clone(), digest.clone());
        }
        let mut desc =
            json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()});
        if g.data_field {
            desc["data"] = json!(base64_encode(&bytes));
        }
        self.manifests.push((digest, bytes));
        desc
    }

    /// `genManifestFull`: layers, a config, and an image manifest over them.
    fn image(&mut self, g: &Gen) -> Value {
        let layers = match &g.layers {
            Some(layers) => layers.clone(),
            None => (0..2)
                .map(|_| {
                    let seed = self.next_seed();
                    (OCI_LAYER.to_string(), noise(seed, 300))
                })
                .collect(),
        };
        let layers: Vec<Value> = layers
            .into_iter()
            .map(|(mt, bytes)| self.blob(&mt, bytes, g.data_field))
            .collect();
        let (os, arch) = g.platform.unwrap_or(("linux", "amd64"));
        let (config_type, config_bytes) = g.config.clone().unwrap_or_else(|| {
            let mut config = json!({"author": format!("OCI Conformance Test {}", self.next_seed()), "architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": []}});
            if g.extra_field {
                config["org.custom"] = json!("custom config field");
            }
            (OCI_CONFIG.to_string(), serde_json::to_vec(&config).unwrap())
        });
        let config = self.blob(&config_type, config_bytes, g.data_field);
        let doc = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
        self.add_manifest(doc, g)
    }

    /// `genIndex`: an index over manifests already generated (or any descriptors).
    fn index(&mut self, children: Vec<Value>, g: &Gen) -> Value {
        let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        self.add_manifest(doc, g)
    }

    /// `genIndexFull`: two platform images (generated with the same options) and an index over them.
    fn index_full(&mut self, g: &Gen) -> Value {
        let children = [("linux", "amd64"), ("linux", "arm64")]
            .into_iter()
            .map(|(os, arch)| {
                let mut child = self.image(&Gen {
                    platform: Some((os, arch)),
                    ..g.clone()
                });
                child["platform"] = json!({"os": os, "architecture": arch});
                child
            })
            .collect();
        self.index(children, g)
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn media_type_of(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string()
}

fn get_manifest(server: &TestServer, reference: &str, head: bool) -> Response {
    let url = server.url(&format!("/v2/{REPO}/manifests/{reference}"));
    let c = client();
    let req = if head { c.head(url) } else { c.get(url) };
    req.header("accept", OCI_INDEX)
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap()
}

fn assert_manifest(r: Response, digest: &Digest, bytes: &[u8], head: bool) {
    assert_eq!(r.status(), StatusCode::OK, "manifest {digest}");
    assert_eq!(header(&r, "content-type"), media_type_of(bytes));
    assert_eq!(header(&r, "content-length"), bytes.len().to_string());
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    let body = r.bytes().unwrap();
    assert_eq!(body.as_ref(), if head { &[][..] } else { bytes });
}

/// `TestPush` + `TestList` + `TestHead` + `TestPull` + `TestReferrers` + `TestDelete` of one data set.
fn run(server: &TestServer, data: &Data, sparse_missing: &[Digest]) {
    let c = client();
    // push: blobs, manifests by digest (with tag parameters when asked), then tags
    for (digest, bytes) in &data.blobs {
        if sparse_missing.contains(digest) {
            continue;
        }
        let post = c
            .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .send()
            .unwrap();
        let put = c
            .put(server.location(&post))
            .query(&[("digest", digest.to_string())])
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
    }
    let mut pushed_tags = Vec::new();
    for (digest, bytes) in &data.manifests {
        if sparse_missing.contains(digest) {
            continue;
        }
        let mut req = c
            .put(server.url(&format!("/v2/{REPO}/manifests/{digest}")))
            .header("content-type", media_type_of(bytes))
            .body(bytes.clone());
        let mut expect_tags = Vec::new();
        if data.tag_param {
            for (tag, d) in &data.tags {
                if d == digest {
                    req = req.query(&[("tag", tag)]);
                    expect_tags.push(tag.clone());
                }
            }
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        if let Some(subject) = doc["subject"]["digest"].as_str() {
            assert_eq!(header(&r, "oci-subject"), subject);
        }
        let oci_tags: Vec<String> = r
            .headers()
            .get_all("oci-tag")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_string()))
            .collect();
        for tag in expect_tags {
            assert!(oci_tags.contains(&tag), "OCI-Tag {tag} missing");
            pushed_tags.push(tag);
        }
        let location = server.location(&r);
        let got = c
            .get(location)
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_manifest(got, digest, bytes, false);
    }
    for (tag, digest) in &data.tags {
        if pushed_tags.contains(tag) {
            continue;
        }
        let bytes = &data.manifests.iter().find(|(d, _)| d == digest).unwrap().1;
        let r = put_manifest(server, REPO, tag, &media_type_of(bytes), bytes);
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        let got = c
            .get(server.location(&r))
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_manifest(got, digest, bytes, false);
    }
    // list, with `last` over the sorted listing
    let list: Value = c
        .get(server.url(&format!("/v2/{REPO}/tags/list")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let listed: Vec<String> = serde_json::from_value(list["tags"].clone()).unwrap();
    for tag in data.tags.keys() {
        assert!(listed.contains(tag), "tag {tag} not listed");
    }
    if listed.len() >= 2 {
        let end = listed.len() / 2;
        let last = &listed[end - 1];
        let partial: Value = c
            .get(server.url(&format!("/v2/{REPO}/tags/list")))
            .query(&[("last", last)])
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(partial["tags"], json!(listed[end..]));
    }
    // head and pull
    for head in [true, false] {
        for (tag, digest) in &data.tags {
            let bytes = &data.manifests.iter().find(|(d, _)| d == digest).unwrap().1;
            assert_manifest(get_manifest(server, tag, head), digest, bytes, head);
        }
        for (digest, bytes) in &data.manifests {
            if sparse_missing.contains(digest) {
                continue;
            }
            assert_manifest(
                get_manifest(server, &digest.to_string(), head),
                digest,
                bytes,
                head,
            );
        }
        for (digest, bytes) in &data.blobs {
            if sparse_missing.contains(digest) {
                continue;
            }
            let url = server.url(&format!("/v2/{REPO}/blobs/{digest}"));
            let r = if head { c.head(url) } else { c.get(url) }.send().unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header(&r, "content-length"), bytes.len().to_string());
            assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
            let body = r.bytes().unwrap();
            assert_eq!(body.as_ref(), if head { &[][..] } else { &bytes[..] });
        }
    }
    // referrers, whole and filtered by each artifact type
    for (subject, goals) in &data.referrers {
        let url = server.url(&format!("/v2/{REPO}/referrers/{subject}"));
        let index = referrers(c.get(&url).send().unwrap(), None);
        for goal in goals {
            assert!(contains_goal(&index, goal), "{goal} missing from {index}");
        }
        let types: Vec<&str> = goals
            .iter()
            .filter_map(|g| g["artifactType"].as_str())
            .collect();
        for at in types {
            let r = c.get(&url).query(&[("artifactType", at)]).send().unwrap();
            let filtered = referrers(r, Some("artifactType"));
            for entry in filtered["manifests"].as_array().unwrap() {
                assert_eq!(entry["artifactType"], json!(at));
            }
            for goal in goals.iter().filter(|g| g["artifactType"] == json!(at)) {
                assert!(
                    contains_goal(&filtered, goal),
                    "{goal} missing from {filtered}"
                );
            }
        }
    }
    // delete: tags, manifests in reverse order, blobs; each gone at once
    for tag in data.tags.keys() {
        let r = c
            .delete(server.url(&format!("/v2/{REPO}/manifests/{tag}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "delete tag {tag}");
        assert_eq!(
            get_manifest(server, tag, true).status(),
            StatusCode::NOT_FOUND
        );
    }
    for (digest, _) in data.manifests.iter().rev() {
        let r = c
            .delete(server.url(&format!("/v2/{REPO}/manifests/{digest}")))
            .send()
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 202 | 404),
            "delete {digest}: {}",
            r.status()
        );
        assert_eq!(
            get_manifest(server, &digest.to_string(), true).status(),
            StatusCode::NOT_FOUND
        );
    }
    for digest in data.blobs.keys() {
        let url = server.url(&format!("/v2/{REPO}/blobs/{digest}"));
        let r = c.delete(&url).send().unwrap();
        assert!(
            matches!(r.status().as_u16(), 202 | 404),
            "delete blob: {}",
            r.status()
        );
        assert_eq!(c.head(&url).send().unwrap().status(), StatusCode::NOT_FOUND);
    }
}

fn referrers(r: Response, filter: Option<&str>) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    if let Some(filter) = filter {
        let applied = header(&r, "oci-filters-applied");
        assert!(
            applied.split(',').any(|f| f.trim() == filter),
            "{applied:?}"
        );
    }
    let index: Value = r.json().unwrap();
    assert_eq!(index["mediaType"], json!(OCI_INDEX));
    assert_eq!(index["schemaVersion"], json!(2));
    index
}

fn contains_goal(index: &Value, goal: &Value) -> bool {
    index["manifests"].as_array().unwrap().iter().any(|d| {
        d["digest"] == goal["digest"]
            && d["mediaType"] == goal["mediaType"]
            && d["size"] == goal["size"]
            && d.get("artifactType") == goal.get("artifactType")
            && goal["annotations"]
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| d["annotations"][k] == *v)
    })
}

fn tagged(tag: &str) -> Gen {
    Gen {
        tag: Some(tag.into()),
        ..Gen::default()
    }
}

fn artifact_gen(at: &str, layer_type: &str, seed: u64) -> Gen {
    Gen {
        artifact_type: Some(at.into()),
        annotations: Some(json!({
            "org.opencontainers.conformance": "hello conformance test",
            format!("org.example.{seed}"): format!("unique {seed}"),
        })),
        config: Some((OCI_EMPTY.into(), b"{}".to_vec())),
        layers: Some(vec![(layer_type.into(), noise(seed, 2048))]),
        ..Gen::default()
    }
}

#[test]
fn images_indexes_and_their_variants() {
    let Some(server) = server() else { return };
    let mut sets: Vec<Data> = Vec::new();
    // image, image-uncompressed
    let mut d = Data::default();
    d.image(&tagged("image"));
    sets.push(d);
    // index (tag "index"), nested-index, empty-index
    let mut d = Data::default();
    d.index_full(&tagged("index"));
    sets.push(d);
    let mut d = Data::default();
    let i1 = d.index_full(&Gen::default());
    let i2 = d.index_full(&Gen::default());
    d.index(vec![i1, i2], &tagged("index-of-index"));
    sets.push(d);
    let mut d = Data::default();
    d.index(vec![], &tagged("index"));
    sets.push(d);
    // data-field, custom-fields, no-layers
    let mut d = Data::default();
    d.image(&Gen {
        data_field: true,
        ..tagged("data-field")
    });
    sets.push(d);
    let mut d = Data::default();
    d.index_full(&Gen {
        extra_field: true,
        ..tagged("custom-fields")
    });
    sets.push(d);
    let mut d = Data::default();
    d.image(&Gen {
        layers: Some(vec![]),
        ..tagged("no-layers")
    });
    sets.push(d);
    // artifact, artifact-index, artifact-without-layers
    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("artifact".into()),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 7)
    });
    sets.push(d);
    let mut d = Data::default();
    d.index_full(&Gen {
        tag: Some("artifact-index".into()),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 8)
    });
    sets.push(d);
    let mut d = Data::default();
    d.image(&Gen {
        tag: Some("artifact-without-layers".into()),
        layers: Some(vec![(OCI_EMPTY.into(), b"{}".to_vec())]),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 9)
    });
    sets.push(d);
    for (i, data) in sets.iter_mut().enumerate() {
        data.seed = 1000 * (i as u64 + 1);
    }
    for data in &sets {
        run(&server, data, &[]);
    }
}

#[test]
fn artifacts_with_subjects_and_missing_subjects() {
    let Some(server) = server() else { return };
    // artifacts-with-subject
    let mut d = Data {
        seed: 50,
        ..Data::default()
    };
    let subject = d.image(&tagged("image"));
    d.image(&Gen {
        subject: Some(subject.clone()),
        ..Gen::default()
    });
    d.image(&Gen {
        subject: Some(subject.clone()),
        tag: Some("tagged-artifact1".into()),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 51)
    });
    d.image(&Gen {
        subject: Some(subject),
        tag: Some("tagged-artifact2".into()),
        ..artifact_gen(EXAMPLE2, "application/octet-stream", 52)
    });
    run(&server, &d, &[]);
    // index-with-subject: the children carry the subject too
    let mut d = Data {
        seed: 60,
        ..Data::default()
    };
    let subject = d.index_full(&tagged("index"));
    d.index_full(&Gen {
        subject: Some(subject),
        tag: Some("tagged-artifact".into()),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 61)
    });
    run(&server, &d, &[]);
    // missing-subject
    let mut d = Data {
        seed: 70,
        ..Data::default()
    };
    let missing = Digest::sha256_of(b"missing content");
    d.image(&Gen {
        subject: Some(
            json!({"mediaType": OCI_MANIFEST, "digest": missing.to_string(), "size": 123}),
        ),
        tag: Some("tagged-artifact".into()),
        ..artifact_gen(EXAMPLE1, EXAMPLE1, 71)
    });
    run(&server, &d, &[]);
}

#[test]
fn non_distributable_layers_and_large_manifest() {
    let Some(server) = server() else { return };
    // non-distributable-layers: two foreign layers that are never pushed, one normal layer
    let mut d = Data {
        seed: 80,
        ..Data::default()
    };
    let foreign: Vec<Value> = [
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            123456,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            12345,
        ),
    ]
    .iter()
    .enumerate()
    .map(|(i, (mt, size))| {
        let digest = Digest::sha256_of(&noise(90 + i as u64, 256));
        json!({"mediaType": mt, "digest": digest.to_string(), "size": size,
               "urls": [format!("https://store.example.com/blobs/sha256/{}", digest.hex())]})
    })
    .collect();
    let normal = d.blob(OCI_LAYER, noise(95, 500), false);
    let config = d.blob(
        OCI_CONFIG,
        br#"{"architecture":"amd64","os":"linux"}"#.to_vec(),
        false,
    );
    let layers: Vec<Value> = foreign.into_iter().chain([normal]).collect();
    d.add_manifest(
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}),
        &tagged("non-distributable-image"),
    );
    run(&server, &d, &[]);
    // large-manifest: 390 annotations of 10000 bytes each, just under the 4 MiB the spec asks registries to accept
    let mut d = Data {
        seed: 100,
        ..Data::default()
    };
    let annotations: serde_json::Map<String, Value> = (0..390)
        .map(|i| (format!("large-annotation-{i}"), json!("A".repeat(10000))))
        .collect();
    d.image(&Gen {
        annotations: Some(Value::Object(annotations)),
        ..tagged("large-manifest")
    });
    assert!(d.manifests[0].1.len() > 3_900_000);
    run(&server, &d, &[]);
}

#[test]
fn sparse_manifests_and_index_when_enabled() {
    let Some(server) = server() else { return };
    let mut d = Data {
        seed: 110,
        ..Data::default()
    };
    let image = d.image(&tagged("sparse-image"));
    // the first layer of the tagged image is never pushed
    let missing_layer: Digest = {
        let bytes = &d.manifests[0].1;
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        doc["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let _ = image;
    let mut child = d.image(&Gen {
        platform: Some(("linux", "amd64")),
        ..Gen::default()
    });
    child["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let absent = Digest::sha256_of(&noise(111, 1024));
    let ghost = json!({"mediaType": OCI_MANIFEST, "digest": absent.to_string(), "size": 1024,
                       "platform": {"os": "linux", "architecture": "arm64"}});
    d.index(vec![child, ghost], &tagged("sparse-index"));
    run(&server, &d, &[missing_layer]);

    // Without the option the same pushes are refused with MANIFEST_BLOB_UNKNOWN.
    let strict = TestServer::start();
    let bytes = image_manifest(&(Digest::sha256_of(b"{}"), 2), &[]);
    let r = put_manifest(
        &strict,
        REPO,
        "sparse",
        OCI_MANIFEST,
        &serde_json::to_vec(&bytes).unwrap(),
    );
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN");
}

#[test]
fn sha512_and_tag_parameter_data_sets() {
    let Some(server) = server() else { return };
    // sha512: pushed by digest only
    if algorithms().contains(&Algorithm::Sha512) {
        let mut d = Data {
            algo: Some(Algorithm::Sha512),
            seed: 120,
            ..Data::default()
        };
        d.index_full(&Gen::default());
        run(&server, &d, &[]);
    }
    // tag-param-sha256 and tag-param-sha512: every manifest gets `<tag>-<i>`, the index also `<tag>`
    for (algo, name) in [
        (Algorithm::Sha256, "tag-param-sha256"),
        (Algorithm::Sha512, "tag-param-sha512"),
    ]
    .into_iter()
    .filter(|(algo, _)| algorithms().contains(algo))
    {
        let mut d = Data {
            algo: Some(algo),
            tag_param: true,
            seed: 130,
            ..Data::default()
        };
        d.index_full(&tagged(name));
        let digests: Vec<Digest> = d.manifests.iter().map(|(dg, _)| dg.clone()).collect();
        for (i, digest) in digests.into_iter().enumerate() {
            d.tags.insert(format!("{name}-{i}"), digest);
        }
        run(&server, &d, &[]);
    }
}

#[test]
fn bad_digest_manifest_and_invalid_digest_format() {
    let Some(server) = server() else { return };
    let mut d = Data {
        seed: 140,
        ..Data::default()
    };
    d.image(&Gen::default());
    for (digest, bytes) in &d.blobs {
        push_blob_with(&server, REPO, bytes, digest.algorithm());
    }
    let (digest, bytes) = d.manifests[0].clone();
    let mut padded = bytes.clone();
    padded.extend_from_slice(b"  ");
    let r = put_manifest(&server, REPO, &digest.to_string(), OCI_MANIFEST, &padded);
    expect_error(r, 400, "DIGEST_INVALID");
    let r = put_manifest(
        &server,
        REPO,
        "sha256:baddigeststring",
        OCI_MANIFEST,
        &bytes,
    );
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = get_manifest(&server, "sha256:baddigeststring", false);
    assert!(matches!(r.status().as_u16(), 400 | 404));
    // missing manifests by digest and by tag
    let unknown = Digest::sha256_of(&noise(141, 1024));
    assert_eq!(
        get_manifest(&server, &unknown.to_string(), false).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_manifest(&server, "missing-abcdefghijklmnopqrst", false).status(),
        StatusCode::NOT_FOUND
    );
    // the empty checks: a tag list of an empty repository and referrers of an unknown subject
    let c = client();
    let r = c
        .get(server.url("/v2/conformance/empty/tags/list"))
        .send()
        .unwrap();
    assert!(matches!(r.status().as_u16(), 200 | 404));
    let r = c
        .get(server.url(&format!("/v2/conformance/empty/referrers/{unknown}")))
        .send()
        .unwrap();
    referrers(r, None);
}

/// `BlobPatchChunked` of `api.go`, with its flags.
fn patch_chunked(
    server: &TestServer,
    digest: &Digest,
    bytes: &[u8],
    out_of_order: bool,
    put_last: bool,
    bad: bool,
) {
    let c = client();
    let post = c
        .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(post.status(), StatusCode::ACCEPTED);
    let mut min = CHUNK_MIN;
    if let Ok(n) = header(&post, "oci-chunk-min-length").parse::<usize>() {
        min = min.max(n);
    }
    let chunk = (bytes.len() / 3 + 1).max(min).min(bytes.len());
    let mut loc = server.location(&post);
    let mut last: i64 = -1;
    let with_digest = |loc: &str| {
        format!(
            "{loc}{}digest={digest}",
            if loc.contains('?') { '&' } else { '?' }
        )
    };
    let len = bytes.len() as i64;
    while last < len - 1 {
        if out_of_order {
            let mut bad_start = last + 1 + chunk as i64;
            if bad_start >= len {
                bad_start = 0;
            }
            let bad_last = (bad_start + chunk as i64 - 1).min(len - 1);
            let (method, url) = if put_last && bad_last == len - 1 {
                (reqwest::Method::PUT, with_digest(&loc))
            } else {
                (reqwest::Method::PATCH, loc.clone())
            };
            let r = c
                .request(method, url)
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{bad_start}-{bad_last}"))
                .body(bytes[bad_start as usize..=bad_last as usize].to_vec())
                .send()
                .unwrap();
            assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
            if !header(&r, "location").is_empty() {
                loc = server.location(&r);
            }
            let status = c.get(&loc).send().unwrap();
            assert_eq!(status.status(), StatusCode::NO_CONTENT);
            loc = server.location(&status);
            let range = header(&status, "range");
            let end: i64 = range.strip_prefix("0-").unwrap().parse().unwrap();
            if last >= 0 {
                assert_eq!(end, last);
            }
        }
        let start = last + 1;
        last = (start + chunk as i64 - 1).min(len - 1);
        let final_put = put_last && last == len - 1;
        let (method, url) = if final_put {
            (reqwest::Method::PUT, with_digest(&loc))
        } else {
            (reqwest::Method::PATCH, loc.clone())
        };
        let r = c
            .request(method, url)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{last}"))
            .body(bytes[start as usize..=last as usize].to_vec())
            .send()
            .unwrap();
        if final_put {
            let want = if bad { 400 } else { 201 };
            assert_eq!(r.status().as_u16(), want, "{:?}", r.text());
            if bad {
                return;
            }
            assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
            loc = server.location(&r);
        } else {
            assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text());
            loc = server.location(&r);
        }
    }
    if !put_last {
        let r = c
            .put(with_digest(&loc))
            .header("content-length", "0")
            .header("content-type", "application/octet-stream")
            .send()
            .unwrap();
        if bad {
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            return;
        }
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        loc = server.location(&r);
    }
    let got = c.get(&loc).send().unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().unwrap().as_ref(), bytes);
}

#[test]
fn blob_api_matrix_for_both_algorithms() {
    let Some(server) = server() else { return };
    let c = client();
    for algo in algorithms() {
        let seed = if algo == Algorithm::Sha256 { 200 } else { 300 };
        let size = CHUNK_MIN * 3 - 5;
        for (i, (out_of_order, put_last)) in
            [(false, false), (false, true), (true, false), (true, true)]
                .into_iter()
                .enumerate()
        {
            let bytes = noise(seed + i as u64, size);
            let digest = Digest::of(algo, &bytes);
            patch_chunked(&server, &digest, &bytes, out_of_order, put_last, false);
            let url = server.url(&format!("/v2/{REPO}/blobs/{digest}"));
            assert_eq!(
                c.delete(&url).send().unwrap().status(),
                StatusCode::ACCEPTED
            );
            assert_eq!(c.head(&url).send().unwrap().status(), StatusCode::NOT_FOUND);
        }
        // a single chunk smaller than the minimum
        let bytes = noise(seed + 10, 512);
        patch_chunked(
            &server,
            &Digest::of(algo, &bytes),
            &bytes,
            false,
            false,
            false,
        );
        // bad digests: the content gained five bytes after the digest was computed
        for (j, put_last) in [false, true].into_iter().enumerate() {
            let mut bytes = noise(seed + 20 + j as u64, size);
            let digest = Digest::of(algo, &bytes);
            bytes.extend_from_slice(b"oh no");
            patch_chunked(&server, &digest, &bytes, false, put_last, true);
        }
        // mounts: from a source, anonymous, and of a blob the source does not hold
        let bytes = noise(seed + 30, 512);
        let digest = push_blob_with(&server, REPO2, &bytes, algo);
        for from in [Some(REPO2), None] {
            let mut req = c
                .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
                .query(&[("mount", digest.to_string())]);
            if let Some(from) = from {
                req = req.query(&[("from", from)]);
            }
            let r = req.send().unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
            let got = c.get(server.location(&r)).send().unwrap();
            assert_eq!(got.bytes().unwrap().as_ref(), &bytes[..]);
            let url = server.url(&format!("/v2/{REPO}/blobs/{digest}"));
            assert_eq!(
                c.delete(&url).send().unwrap().status(),
                StatusCode::ACCEPTED
            );
        }
        let missing = Digest::of(algo, &noise(seed + 31, 512));
        let r = c
            .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .query(&[("mount", missing.to_string()), ("from", REPO2.to_string())])
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert!(!header(&r, "location").is_empty());
        // cancel, then the never-pushed blob deletes as 404
        let post = c
            .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .send()
            .unwrap();
        let r = c
            .delete(server.location(&post))
            .header("content-length", "0")
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let url = server.url(&format!("/v2/{REPO}/blobs/{missing}"));
        assert_eq!(
            c.delete(&url).send().unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(c.get(&url).send().unwrap().status(), StatusCode::NOT_FOUND);
    }
}

/// `BlobPatchStream`: Go sends the PATCH body without a length (chunked transfer encoding), then an empty PUT.
#[test]
fn streamed_patch_without_content_length() {
    let Some(server) = server() else { return };
    let c = client();
    for (i, algo) in algorithms().into_iter().enumerate() {
        let bytes = noise(400 + i as u64, 3 * CHUNK_MIN + 17);
        let digest = Digest::of(algo, &bytes);
        let post = c
            .post(server.url(&format!("/v2/{REPO}/blobs/uploads/")))
            .header("content-length", "0")
            .send()
            .unwrap();
        assert_eq!(post.status(), StatusCode::ACCEPTED);
        let body = reqwest::blocking::Body::new(std::io::Cursor::new(bytes.clone()));
        let patch = c
            .patch(server.location(&post))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(patch.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&patch, "range"), format!("0-{}", bytes.len() - 1));
        let put = c
            .put(server.location(&patch))
            .query(&[("digest", digest.to_string())])
            .header("content-length", "0")
            .header("content-type", "application/octet-stream")
            .send()
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
        assert!(!header(&put, "location").is_empty());
        assert_eq!(header(&put, "docker-content-digest"), digest.to_string());
        let got = c.get(server.location(&put)).send().unwrap();
        assert_eq!(got.bytes().unwrap().as_ref(), &bytes[..]);
    }
}

/// The `empty` and `emptyJSON` blob tests: `TestPushBlobAny` may pick any upload style for them, so each style must
/// take a zero-byte (and a two-byte) blob, in both algorithms.
#[test]
fn empty_blobs_by_every_upload_style() {
    let Some(server) = server() else { return };
    let c = client();
    for algo in algorithms() {
        for bytes in [&b""[..], &b"{}"[..]] {
            let digest = Digest::of(algo, bytes);
            let uploads = format!("/v2/{REPO}/blobs/uploads/");
            // POST with the digest and the content
            let r = c
                .post(server.url(&uploads))
                .query(&[("digest", digest.to_string())])
                .header("content-type", "application/octet-stream")
                .body(bytes.to_vec())
                .send()
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            // POST, then PATCH (chunked: nothing to send when empty) or a stream, then PUT
            for patch in [false, true] {
                let post = c.post(server.url(&uploads)).send().unwrap();
                let mut loc = server.location(&post);
                if patch {
                    let r = c.patch(&loc).body(bytes.to_vec()).send().unwrap();
                    assert_eq!(r.status(), StatusCode::ACCEPTED);
                    loc = server.location(&r);
                }
                // POST+PUT carries the content in the PUT; after a PATCH the PUT is empty
                let body = if patch { Vec::new() } else { bytes.to_vec() };
                let r = c
                    .put(&loc)
                    .query(&[("digest", digest.to_string())])
                    .body(body)
                    .send()
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text());
            }
            let url = server.url(&format!("/v2/{REPO}/blobs/{digest}"));
            for head in [true, false] {
                let r = if head { c.head(&url) } else { c.get(&url) }
                    .send()
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(header(&r, "content-length"), bytes.len().to_string());
                assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
            }
            assert_eq!(
                c.delete(&url).send().unwrap().status(),
                StatusCode::ACCEPTED
            );
            assert_eq!(c.head(&url).send().unwrap().status(), StatusCode::NOT_FOUND);
        }
    }
}
