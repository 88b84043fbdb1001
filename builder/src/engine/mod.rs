//! The build engine: a Dockerfile and a context directory become an image in the layer store.
//!
//! [`build_image`] parses and plans the Dockerfile with [`lade_dockerfile`], then runs the stages the target needs in
//! dependency order (`stages`). Each instruction is first planned, without touching anything (`plan`: the config
//! edit, history text, cache key and work of the step), then executed by the file for its kind of step
//! (`step_metadata`, `step_workdir`, `step_run`, `step_copy`). Every layer-producing step (RUN, COPY, ADD, WORKDIR)
//! is looked up in the content-addressed [`cache`] first (`layer_step`). The result is an image whose config and
//! history match what BuildKit writes for the same Dockerfile (`history`).

mod base;
pub mod cache;
mod cache_format;
pub mod cache_local;
pub mod cache_transfer;
pub mod config_edit;
mod history;
mod layer_step;
mod mounts;
mod plan;
mod progress;
mod stages;
mod state;
mod step_copy;
mod step_metadata;
mod step_run;
mod step_workdir;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use layerstore::fsutil::FileLock;
use layerstore::{Descriptor, Digest, Platform, Reference, Store};

use crate::context::ContextError;
use crate::copy::CopyError;
use crate::runtime::{
    ContainerRuntime, EntitlementError, Entitlements, ExtraHost, Network, RuntimeError, Security,
};
use crate::snapshot::SnapshotError;
use lade_dockerfile::{BuildOptions, Dockerfile, SourceDiagnostic, Stages};

/// Everything `lade build` was asked to do.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile's path (for its name in messages and `<Dockerfile>.dockerignore`).
    pub dockerfile_path: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// `--build-arg NAME=VALUE`, by name.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build; `None` builds the last stage.
    pub target: Option<String>,
    /// `--no-cache`: build every layer step instead of looking it up in the cache (results are still recorded).
    pub no_cache: bool,
    /// `--pull`: pull base images (and `COPY --from` images) even when the store has them.
    pub pull: bool,
    /// The network of RUN steps (`RUN --network` overrides it per step).
    pub network: Network,
    /// Entries added to every RUN step's `/etc/hosts` (`--add-host`).
    pub extra_hosts: Vec<ExtraHost>,
    /// `--label`: added to the final image's config.
    pub labels: BTreeMap<String, String>,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--ssh id=SOCKET`: SSH agent sockets for `RUN --mount=type=ssh`, by id.
    pub ssh_agents: BTreeMap<String, PathBuf>,
    /// `--security-opt`: the seccomp filter and no-new-privileges of RUN steps.
    pub security: Security,
    /// `--allow`: what RUN steps may do beyond the sandbox (`--network=host`, `--security=insecure`).
    pub entitlements: Entitlements,
    /// `--runtime`: an OCI runtime binary to use instead of detecting runc/crun.
    pub runtime: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`: clamps created times and file modification times in new layers.
    pub source_date_epoch: Option<i64>,
    /// Tags to give the result.
    pub tags: Vec<Reference>,
    /// Record the result in the store's images (untagged when `tags` is empty); off for `-o` outputs.
    pub record_image: bool,
    /// `--cache-to type=inline`: write the final stage's cache records into the image config, as BuildKit does.
    pub inline_cache: bool,
}

/// What a build made.
pub struct BuildResult {
    /// The manifest of the built image.
    pub descriptor: Descriptor,
    /// The image ID (config digest).
    pub id: Digest,
    /// Warnings (unused build args, deprecated forms).
    pub warnings: Vec<String>,
    /// The cache records of the build, for `--cache-to`.
    pub cache_records: CacheRecords,
    /// Held until the result is dropped, so `prune` cannot sweep an untagged result being exported.
    pub writer_lock: FileLock,
}

/// The cache records of a build: step keys and what each step produced.
#[derive(Debug, Clone, Default)]
pub struct CacheRecords {
    /// Every layer step of every stage built (`mode=max`).
    pub all: Vec<(Digest, cache::CacheRecord)>,
    /// The steps that made the final image's layers (`mode=min`, inline).
    pub image: Vec<(Digest, cache::CacheRecord)>,
}

/// Fetches a base image the store lacks (`lade build` pulls it through the registry client).
pub trait ImagePuller: Sync {
    /// Pulls `reference` into the store, the image for `platform` where it names several, or says why it could not.
    fn pull(&self, reference: &Reference, platform: &Platform) -> Result<(), PullError>;
}

/// Why an [`ImagePuller`] could not pull: its own error, kept whole with its causes.
pub type PullError = Box<dyn std::error::Error + Send + Sync>;

/// What a build works with besides the store and the request.
#[derive(Clone, Copy)]
pub struct BuildServices<'a> {
    /// Hears the build's progress.
    pub reporter: &'a dyn Reporter,
    /// Fetches base images the store lacks; `None`: a missing base image is an error.
    pub puller: Option<&'a dyn ImagePuller>,
    /// `--cache-from` sources, tried in order after the local cache.
    pub imports: &'a [cache_transfer::ImportedCache],
    /// Runs RUN steps; `None` detects runc or crun (or `BuildRequest::runtime`) at the first RUN.
    pub runtime: Option<&'a dyn ContainerRuntime>,
}

/// Receives the progress of a build, step by step.
pub trait Reporter: Sync {
    /// Step `id` (numbered from 1 across the build) starts; `name` is like `[2/5] RUN make`.
    fn step(&self, id: usize, name: &str);
    /// The step was found in the cache.
    fn cached(&self, id: usize);
    /// Output of a RUN step as it comes.
    fn output(&self, id: usize, data: &[u8]);
    /// A remark about the step (why the cache missed).
    fn note(&self, id: usize, message: &str);
    /// The step finished.
    fn done(&self, id: usize, elapsed: Duration);
    /// How far a transfer of the step has got: called as its bytes grow (at most every 100 ms), and once more,
    /// `done`, when it is over.
    fn bytes(&self, id: usize, progress: &TransferProgress);
}

/// The bytes a step has moved so far in one [`Transfer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferProgress {
    /// Which transfer.
    pub transfer: Transfer,
    /// Bytes moved so far.
    pub bytes: u64,
    /// Since the transfer began.
    pub elapsed: Duration,
    /// The transfer is over, and `bytes` its total.
    pub done: bool,
}

/// What a step moves bytes for, as BuildKit shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transfer {
    /// The build context's files a COPY or ADD reads to checksum its sources (BuildKit's "transferring context");
    /// files unchanged since they were last read are not read again, as BuildKit sends only what changed.
    Context,
    /// The files a COPY or ADD writes into its layer.
    Copy,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse or plan (syntax, unknown stage, bad flag); the diagnostic points into it.
    #[error("{0}")]
    Dockerfile(Box<SourceDiagnostic>),
    /// A step failed.
    #[error("{file}:{line}: {step}: {source}")]
    Step {
        /// The Dockerfile's name, as in the request's `dockerfile_path`.
        file: String,
        /// The line the step's instruction starts on, from 1.
        line: usize,
        /// The step's text, like `RUN make`.
        step: String,
        /// Why it failed.
        source: Box<StepError>,
    },
    /// The layer store failed (taking its writer lock, recording the result).
    #[error(transparent)]
    Store(#[from] layerstore::StoreError),
    /// The build context could not be opened.
    #[error("opening the build context: {0}")]
    Context(#[from] ContextError),
    /// The container runtime could not be found or failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The snapshotter could not be opened, or a step's snapshot could not be made or committed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A file operation of the engine failed (opening or writing the build cache).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The base image (a reference) is not in the store and there is no puller to fetch it.
    #[error("base image {0} is not in the local store; pull it first (`lade pull {0}`), or `lade load` it")]
    BaseImageMissing(String),
    /// The base image is not in the store and the puller failed.
    #[error("base image {image} is not in the local store, and pulling it failed: {source}")]
    PullFailed {
        /// The base image's reference.
        image: Reference,
        /// Why the puller failed.
        source: PullError,
    },
    /// The image could not be looked up or read from the store.
    #[error("reading image {image}: {message}")]
    Image {
        /// The image's reference.
        image: String,
        /// What went wrong.
        message: String,
    },
    /// COPY or ADD failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// RUN could not be run (the command's own failure is `CommandFailed`).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The step's root filesystem could not be prepared or committed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The RUN command exited with a non-zero code.
    #[error("the command exited with code {exit_code}; last output:\n{tail}")]
    CommandFailed {
        /// The command's exit code.
        exit_code: i32,
        /// The last lines of its output.
        tail: String,
    },
    /// The step asks for something lade does not do, or is malformed (a `--mount` without a target, a stage used
    /// before it is built); the text says what.
    #[error("{0}")]
    Unsupported(String),
    /// The step needs an entitlement (`--allow`) the build was not given.
    #[error(transparent)]
    Entitlement(#[from] EntitlementError),
    /// A file operation of the step failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl From<SourceDiagnostic> for BuildError {
    fn from(diagnostic: SourceDiagnostic) -> Self {
        BuildError::Dockerfile(Box::new(diagnostic))
    }
}

/// Builds the request's target stage and tags the result. Base images missing from the store are fetched with the
/// services' puller when there is one; steps missing from the local cache are looked up in their imports
/// (`--cache-from`).
pub fn build_image(
    store: &Store,
    request: &BuildRequest,
    services: BuildServices<'_>,
) -> Result<BuildResult, BuildError> {
    let file_name = request.dockerfile_path.display().to_string();
    let dockerfile = Dockerfile::parse(&request.dockerfile, &file_name)?;
    let stages = Stages::from_dockerfile(&dockerfile)?;
    let options = BuildOptions {
        build_args: request.build_args.clone(),
        target: request.target.clone(),
        platform_args: crate::platform::predefined_args(
            &crate::platform::host(),
            &crate::platform::host(),
        ),
    };
    let plan = crate::platform::plan(&stages, &options)?;
    // The plan's warnings include the parser's, with the Dockerfile's `# check=` settings applied.
    let mut warnings: Vec<String> = plan.warnings.iter().map(|w| w.to_string()).collect();
    for unused in &plan.unused_build_args {
        warnings.push(format!(
            "[Warning] One or more build-args [{unused}] were not consumed"
        ));
    }
    let writer_lock = store.writer_lock()?;
    let engine = stages::Engine::new(store, request, &plan, &file_name, services)?;
    let output = engine.run()?;
    if request.record_image {
        store.add_image(&output.descriptor, &request.tags)?;
    }
    warnings.extend(output.warnings);
    Ok(BuildResult {
        descriptor: output.descriptor,
        id: output.id,
        warnings,
        cache_records: output.records,
        writer_lock,
    })
}
