//! Replays the redesigned conformance suite (the spec's main branch: `run.go`, `api.go`, `testdata.go`) with every
//! optional feature enabled: each of its data sets is pushed, listed, pulled, queried for referrers and deleted
//! exactly as its runner does, and its blob API matrix (every upload style, sha256 and sha512, out-of-order chunks,
//! mounts, bad digests) is run against a real server.

mod common;

use common::*;

const REPO: &str = "conformance/repo1";
const REPO2: &str = "conformance/repo2";

/// The server as the suite's full configuration needs it: deletes, anonymous mounts and sparse manifests enabled.
fn server() -> Option<TestServer> {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.automatic_crossmount = true;
    cfg.allow_sparse_manifests = true;
    let mut server = TestServer::with_config(cfg);
    server.keep(tmp);
    Some(server)
}

/// A filesystem holds every path.
fn sha512_fits() -> bool {
    true
}

#[path = "conformance_v2/suite.rs"]
mod suite;
