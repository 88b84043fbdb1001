//! Whole builds in process, as a normal user: a fake container runtime and a fake base-image puller stand in for
//! runc and a registry, so the engine's execution (stages, the cache, history times) is tested without root.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use layerstore::config::{ContainerConfig, ImageConfig};
use layerstore::{Platform, Reference, Store};

use super::{
    build_image, BuildRequest, BuildServices, ImagePuller, PullError, Reporter, Transfer,
    TransferProgress,
};
use crate::runtime::{
    ContainerRuntime, Entitlements, Network, RunOutcome, RunSpec, RuntimeError, Security, Stream,
};
use crate::snapshot::Snapshot;

/// Runs nothing: records each command and writes its last word to `/ran` in the snapshot. A command ending in
/// `fail` exits 3.
#[derive(Default)]
struct FakeRuntime {
    runs: Mutex<Vec<RunSpec>>,
}

impl ContainerRuntime for FakeRuntime {
    fn run_in_snapshot(
        &self,
        snapshot: &mut Snapshot,
        spec: &RunSpec,
        output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunOutcome, RuntimeError> {
        self.runs.lock().unwrap().push(spec.clone());
        let word = spec.args.last().cloned().unwrap_or_default();
        std::fs::write(snapshot.rootfs().join("ran"), &word).unwrap();
        output(Stream::Stdout, format!("ran {word}\n").as_bytes());
        Ok(RunOutcome {
            exit_code: if word.ends_with("fail") { 3 } else { 0 },
            output_tail: format!("ran {word}\n").into_bytes(),
        })
    }
}

/// "Pulls" a layerless image with an ENV and a CMD into the store under the reference asked for.
struct FakePuller {
    store: Store,
    pulls: Mutex<Vec<String>>,
}

impl ImagePuller for FakePuller {
    fn pull(&self, reference: &Reference, platform: &Platform) -> Result<(), PullError> {
        self.pulls.lock().unwrap().push(reference.to_string());
        let platform = platform.clone();
        let config = ImageConfig {
            architecture: platform.architecture,
            os: platform.os,
            config: Some(ContainerConfig {
                env: Some(vec!["PATH=/usr/bin:/bin".into(), "FROM_BASE=1".into()]),
                cmd: Some(vec!["sh".into()]),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        };
        let (descriptor, _) = layerstore::import::store_image(&self.store, &config, Vec::new())?;
        self.store
            .add_image(&descriptor, std::slice::from_ref(reference))?;
        Ok(())
    }
}

/// Counts cache hits and records the byte counts of transfers.
#[derive(Default)]
struct Counting {
    cached: Mutex<usize>,
    transfers: Mutex<Vec<(usize, Transfer, u64, bool)>>,
}

impl Reporter for Counting {
    fn step(&self, _: usize, _: &str) {}
    fn cached(&self, _: usize) {
        *self.cached.lock().unwrap() += 1;
    }
    fn output(&self, _: usize, _: &[u8]) {}
    fn note(&self, _: usize, _: &str) {}
    fn done(&self, _: usize, _: Duration) {}
    fn bytes(&self, id: usize, progress: &TransferProgress) {
        self.transfers
            .lock()
            .unwrap()
            .push((id, progress.transfer, progress.bytes, progress.done));
    }
}

fn request(context: &Path, dockerfile: &str) -> BuildRequest {
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    BuildRequest {
        context: context.to_path_buf(),
        dockerfile_path: context.join("Dockerfile"),
        dockerfile: dockerfile.to_string(),
        build_args: BTreeMap::new(),
        target: None,
        no_cache: false,
        pull: false,
        network: Network::default(),
        extra_hosts: Vec::new(),
        labels: BTreeMap::new(),
        secrets: BTreeMap::new(),
        ssh_agents: BTreeMap::new(),
        security: Security::default(),
        entitlements: Entitlements::default(),
        runtime: None,
        source_date_epoch: None,
        tags: Vec::new(),
        record_image: true,
        inline_cache: false,
    }
}

const DOCKERFILE: &str = "FROM base:1\nARG V=1\nENV E=$V\nRUN make\nCMD [\"app\"]\n";

#[test]
fn builds_in_process_with_a_fake_runtime_and_puller() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    let runtime = FakeRuntime::default();
    let puller = FakePuller {
        store: store.clone(),
        pulls: Mutex::new(Vec::new()),
    };
    let reporter = Counting::default();
    let services = BuildServices {
        reporter: &reporter,
        puller: Some(&puller),
        imports: &[],
        runtime: Some(&runtime),
    };
    let request = request(&context, DOCKERFILE);
    let first = build_image(&store, &request, services).unwrap();
    assert_eq!(
        *puller.pulls.lock().unwrap(),
        ["docker.io/library/base:1"],
        "the puller gets the normalized reference"
    );
    let runs = runtime.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].args, ["/bin/sh", "-c", "make"]);
    assert!(runs[0].env.contains(&"E=1".to_string()));
    assert!(runs[0].env.contains(&"FROM_BASE=1".to_string()));

    let image = store.find_image(&first.id.to_string()).unwrap().image;
    let config = image.config.config.clone().unwrap();
    assert_eq!(
        config.env.unwrap(),
        ["PATH=/usr/bin:/bin", "FROM_BASE=1", "E=1"]
    );
    assert_eq!(config.cmd.unwrap(), ["app"]);
    let history: Vec<(String, bool)> = image
        .config
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap(), h.empty_layer))
        .collect();
    let expected = [
        ("ARG V=1", true),
        ("ENV E=1", true),
        ("RUN |1 V=1 /bin/sh -c make # buildkit", false),
        ("CMD [\"app\"]", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(t, e)| (t.to_string(), *e)).collect();
    assert_eq!(history, expected);
    assert_eq!(image.config.rootfs.diff_ids.len(), 1);
    assert_eq!(first.cache_records.image.len(), 1);

    // Again: every layer step from the cache, nothing run, the same image.
    let second = build_image(&store, &request, services).unwrap();
    assert_eq!(runtime.runs.lock().unwrap().len(), 1);
    assert_eq!(*reporter.cached.lock().unwrap(), 1);
    assert_eq!(second.id, first.id);
}

#[test]
fn a_copy_reports_the_context_bytes_it_reads_and_the_bytes_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("big.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(context.join("small.txt"), "12345").unwrap();
    let puller = FakePuller {
        store: store.clone(),
        pulls: Mutex::new(Vec::new()),
    };
    let reporter = Counting::default();
    let services = BuildServices {
        reporter: &reporter,
        puller: Some(&puller),
        imports: &[],
        runtime: None,
    };
    let request = request(&context, "FROM base:1\nCOPY big.bin small.txt /\n");
    build_image(&store, &request, services).unwrap();
    let finished = |transfer| {
        let transfers = reporter.transfers.lock().unwrap();
        let reports: Vec<_> = transfers.iter().filter(|t| t.1 == transfer).collect();
        assert_eq!(reports.iter().filter(|t| t.3).count(), 1, "{reports:?}");
        assert!(reports.last().unwrap().3, "done comes last: {reports:?}");
        assert!(reports.windows(2).all(|w| w[0].2 <= w[1].2), "{reports:?}");
        (reports.last().unwrap().0, reports.last().unwrap().2)
    };
    // Step 1 is FROM, step 2 the COPY.
    assert_eq!(finished(Transfer::Context), (2, 300_005));
    assert_eq!(finished(Transfer::Copy), (2, 300_005));

    // Again, unchanged: the context's digests are remembered, nothing is read, and the cached step copies nothing.
    reporter.transfers.lock().unwrap().clear();
    build_image(&store, &request, services).unwrap();
    assert_eq!(
        *reporter.transfers.lock().unwrap(),
        [(2, Transfer::Context, 0, true)]
    );
}

fn build_error(store: &Store, request: &BuildRequest, services: BuildServices<'_>) -> String {
    match build_image(store, request, services) {
        Ok(_) => panic!("the build succeeded"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_failing_run_fails_the_build_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let runtime = FakeRuntime::default();
    let reporter = Counting::default();
    let services = BuildServices {
        reporter: &reporter,
        puller: None,
        imports: &[],
        runtime: Some(&runtime),
    };
    let request = request(dir.path(), "FROM scratch\nRUN make fail\n");
    let error = build_error(&store, &request, services);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.contains("ran make fail"), "{error}");
    // Without a puller, a missing base image says how to get it.
    let request = super::tests::request(dir.path(), "FROM missing:1\n");
    let error = build_error(&store, &request, services);
    assert!(error.contains("lade pull missing:1"), "{error}");
}
