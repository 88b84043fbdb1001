//! Liveness and readiness: `/readyz` fails while storage is unreachable and while shutdown drains, `/livez` only
//! when the process no longer serves.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{client, config, TestServer};
use reqwest::StatusCode;

fn probe(base: &str, path: &str) -> (StatusCode, String) {
    let response = client().get(format!("{base}{path}")).send().unwrap();
    (response.status(), response.text().unwrap())
}

#[test]
fn readiness_follows_the_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let server = TestServer::with_config(config(&root));
    assert_eq!(
        probe(&server.base, "/livez"),
        (StatusCode::OK, "ok\n".into())
    );
    assert_eq!(
        probe(&server.base, "/readyz"),
        (StatusCode::OK, "ready\n".into())
    );

    // The volume goes away: not ready, still alive.
    let away = tmp.path().join("away");
    std::fs::rename(&root, &away).unwrap();
    let (status, body) = probe(&server.base, "/readyz");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.starts_with("not ready: storage unavailable:") && body.contains("root"),
        "{body}"
    );
    assert_eq!(probe(&server.base, "/livez").0, StatusCode::OK);
    // A file where the root directory was is no better.
    std::fs::write(&root, b"not a directory").unwrap();
    assert_eq!(
        probe(&server.base, "/readyz").0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    std::fs::remove_file(&root).unwrap();

    std::fs::rename(&away, &root).unwrap();
    assert_eq!(probe(&server.base, "/readyz").0, StatusCode::OK);
}

#[test]
fn readiness_fails_while_shutdown_drains() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.health.drain_delay_secs = 2;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(registry_server::serve(cfg, listener, async {
                let _ = stopped.await;
            }))
            .unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while client().get(format!("{base}/readyz")).send().is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(probe(&base, "/readyz").0, StatusCode::OK);

    let signalled = Instant::now();
    stop.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Draining: not ready, but alive and still serving the API.
    assert_eq!(
        probe(&base, "/readyz"),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into()
        )
    );
    assert_eq!(probe(&base, "/livez").0, StatusCode::OK);
    assert_eq!(probe(&base, "/v2/").0, StatusCode::OK);
    thread.join().unwrap();
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(
        client().get(format!("{base}/livez")).send().is_err(),
        "closed after the drain"
    );
}
