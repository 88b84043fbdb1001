//! Chunked upload resume against a scripted registry that keeps the bytes of a broken `PATCH` (as the OCI spec
//! allows and registry:2 does not): the first chunk breaks off midway, the client asks for the upload's status and
//! goes on from the odd offset the registry reports; the registry checks every byte against the digest.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use layerstore::progress::NoProgress;
use layerstore::{Descriptor, Digest, Image, Reference, Store};
use registry_client::{push, EndpointOptions, PushOptions, Session};
use serde_json::json;

#[derive(Default)]
struct State {
    uploads: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, Vec<u8>>,
    next_upload: usize,
    cut: bool,
    log: Vec<String>,
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = target
        .split_once('?')
        .map_or((target.clone(), String::new()), |(p, q)| {
            (p.into(), q.into())
        });
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    Some(Request {
        method,
        path,
        query,
        headers,
    })
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    let length: usize = request
        .headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut state = state.lock().unwrap();
    state
        .log
        .push(format!("{} {}", request.method, request.path));
    let range = |size: usize| {
        if size == 0 {
            "0-0".to_string()
        } else {
            format!("0-{}", size - 1)
        }
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/v2/") => respond(&mut stream, 200, &[], b"{}"),
        ("HEAD", path) if path.contains("/blobs/") => {
            let digest = path.rsplit('/').next().unwrap();
            let status = if state.blobs.contains_key(digest) {
                200
            } else {
                404
            };
            respond(&mut stream, status, &[], b"");
        }
        ("POST", "/v2/repo/blobs/uploads/") => {
            state.next_upload += 1;
            let id = format!("u{}", state.next_upload);
            state.uploads.insert(id.clone(), Vec::new());
            respond(
                &mut stream,
                202,
                &[("Location", format!("/upload/{id}")), ("Range", range(0))],
                b"",
            );
        }
        ("GET", path) if path.starts_with("/upload/") => {
            let id = path.trim_start_matches("/upload/");
            let size = state.uploads[id].len();
            respond(
                &mut stream,
                204,
                &[("Location", path.to_string()), ("Range", range(size))],
                b"",
            );
        }
        ("PATCH", path) if path.starts_with("/upload/") => {
            let id = path.trim_start_matches("/upload/").to_string();
            let start: usize = request.headers["content-range"]
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            if start != state.uploads[&id].len() {
                respond(&mut stream, 416, &[], b"");
                return;
            }
            // The first chunk breaks off after a third of its body; what arrived is kept.
            let keep = if state.cut { length } else { length / 3 + 7 };
            let mut body = vec![0u8; keep];
            reader.read_exact(&mut body).unwrap();
            state.uploads.get_mut(&id).unwrap().extend_from_slice(&body);
            if !state.cut {
                state.cut = true;
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            let size = state.uploads[&id].len();
            respond(
                &mut stream,
                202,
                &[("Location", path.to_string()), ("Range", range(size))],
                b"",
            );
        }
        ("PUT", path) if path.starts_with("/upload/") => {
            let id = path.trim_start_matches("/upload/");
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let mut data = state.uploads.remove(id).unwrap();
            data.extend_from_slice(&body);
            let digest = request
                .query
                .strip_prefix("digest=")
                .unwrap()
                .replace("%3A", ":");
            if Digest::sha256_of(&data).to_string() != digest {
                respond(
                    &mut stream,
                    400,
                    &[],
                    br#"{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch"}]}"#,
                );
                return;
            }
            state.blobs.insert(digest.clone(), data);
            respond(&mut stream, 201, &[("Docker-Content-Digest", digest)], b"");
        }
        ("PUT", path) if path.starts_with("/v2/repo/manifests/") => {
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let digest = Digest::sha256_of(&body).to_string();
            state.manifests.insert(path.to_string(), body);
            respond(&mut stream, 201, &[("Docker-Content-Digest", digest)], b"");
        }
        _ => respond(&mut stream, 404, &[], b""),
    }
}

/// A one-layer image in a fresh store.
fn image(store: &Store, layer: &[u8]) -> Image {
    let layer_digest = store.write_blob(layer).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }))
    .unwrap();
    let config_digest = store.write_blob(&config).unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let digest = store.write_blob(&manifest).unwrap();
    let descriptor = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        digest,
        manifest.len() as u64,
    );
    Image::read(store, &descriptor).unwrap()
}

#[tokio::test]
async fn a_chunk_broken_midway_resumes_at_the_registry_offset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(State::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (state, stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        serve(stream, &state);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let image = image(&store, &layer);
    let host = format!("127.0.0.1:{port}");
    let registry = Session::connect(&host, &EndpointOptions::default(), None)
        .await
        .unwrap();
    let reference = Reference::parse_tagged(&format!("{host}/repo:v1")).unwrap();
    let options = PushOptions {
        chunk_size: 64 << 10,
        ..PushOptions::default()
    };
    let pushed = push(&registry, &store, &image, &reference, &options, &NoProgress)
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();

    assert_eq!(&pushed.digest, image.digest());
    let state = state.lock().unwrap();
    assert!(state.cut, "the chunk was never cut");
    let layer_digest = Digest::sha256_of(&layer).to_string();
    assert_eq!(state.blobs[&layer_digest], layer);
    // One session for the layer: a status request after the break, no second POST for it.
    let posts = state
        .log
        .iter()
        .filter(|l| *l == "POST /v2/repo/blobs/uploads/")
        .count();
    assert_eq!(
        posts, 2,
        "one upload session per blob (layer and config): {:?}",
        state.log
    );
    assert!(
        state.log.iter().any(|l| l.starts_with("GET /upload/")),
        "{:?}",
        state.log
    );
    assert_eq!(
        state.manifests["/v2/repo/manifests/v1"],
        image.manifest_bytes
    );
}
