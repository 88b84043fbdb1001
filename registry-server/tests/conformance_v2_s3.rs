//! The redesigned conformance replay (`conformance_v2/suite.rs`) against a replica set on S3: three servers on one
//! bucket of a real S3 server behind a round-robin balancer, so that every request of a flow may land on another
//! replica (see `common/replicas.rs`). It must pass as it does on the filesystem.

mod common;

use common::*;

// Short names (see `sha512_fits`): with them the suite's longest tag paths fit s3s-fs's keys.
const REPO: &str = "c/r1";
const REPO2: &str = "c/r2";

/// Replicas with the suite's full configuration: deletes, anonymous mounts and sparse manifests enabled.
fn server() -> Option<TestServer> {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    replicas::on_s3(|config| {
        config.automatic_crossmount = true;
        config.allow_sparse_manifests = true;
    })
}

/// s3s-fs 0.14 names a metadata file after each object's key (`.bucket-<base64>.object-<base64>.metadata.json`), so
/// keys longer than about 164 bytes fail there with a 500: registry:2's sha512 paths are longer. Other S3 servers
/// (Garage in `scripts/test-fleet.sh`) hold them.
fn sha512_fits() -> bool {
    replicas::external_s3()
}

#[path = "conformance_v2/suite.rs"]
mod suite;
