//! Fuzzes the registry's request handling in process: routing on the raw path (names, digests, tags, `%`-escapes),
//! query strings, `Range` and `Content-Range`, and whatever body follows. Bad input must get a 4xx, never a panic
//! or a 5xx (storage here never fails).
//!
//! Input: a method byte, then the request target up to the first newline, then `Name: value` header lines up to an
//! empty line, then the body.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn state() -> &'static registry_server::http::Shared {
    static STATE: OnceLock<registry_server::http::Shared> = OnceLock::new();
    STATE.get_or_init(|| {
        let root = std::path::Path::new("/dev/shm").join(format!("lade-fuzz-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let config = registry_server::Config {
            root,
            ..registry_server::Config::default()
        };
        registry_server::server::state(config).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (target, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let (headers, body) = rest.split_once("\n\n").unwrap_or((rest, ""));
    let mut request = Request::builder()
        .method(METHODS[method as usize % METHODS.len()].clone())
        .uri(format!("/v2/{target}"));
    for line in headers.lines() {
        if let Some((name, value)) = line.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let Ok(request) = request.body(Body::from(body.to_string())) else {
        return;
    };
    let router = registry_server::http::router(state().clone());
    let response = runtime().block_on(router.oneshot(request)).unwrap();
    assert!(
        !response.status().is_server_error(),
        "{} for {target:?} with headers {headers:?}",
        response.status()
    );
});
