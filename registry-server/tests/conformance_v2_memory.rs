//! The redesigned conformance replay (`conformance_v2/suite.rs`) against a server on the in-memory store: the
//! object-store driver S3 replicas use, here with every path (sha512's too) and no S3 server to start.

mod common;

use common::*;
use registry_server::config::Storage;

const REPO: &str = "conformance/repo1";
const REPO2: &str = "conformance/repo2";

/// The suite's full configuration (deletes, anonymous mounts, sparse manifests) on the in-memory store.
fn server() -> Option<TestServer> {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.storage = Storage::InMemory;
    cfg.automatic_crossmount = true;
    cfg.allow_sparse_manifests = true;
    let mut server = TestServer::with_config(cfg);
    server.keep(tmp);
    Some(server)
}

/// Memory holds every path.
fn sha512_fits() -> bool {
    true
}

#[path = "conformance_v2/suite.rs"]
mod suite;
