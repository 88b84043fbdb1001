//! RUN's layer: the planned container run over the snapshot by the build's [`ContainerRuntime`] (runc or crun
//! unless the services give one), with its `--mount`s resolved against the context, stages and images, and its
//! output streamed to the reporter; a non-zero exit fails the step with the last lines of output.

use std::cell::RefCell;
use std::path::PathBuf;

use super::mounts::{self, BindSources};
use super::plan::RunWork;
use super::stages::Engine;
use super::StepError;
use crate::runtime::{ContainerRuntime, RunSpec, Runtime, Streams};
use crate::snapshot::Snapshot;

/// How many lines of output a failed RUN's error keeps.
const FAILURE_TAIL_LINES: usize = 20;

/// Runs a RUN step's container in `snapshot`.
pub(super) fn execute(
    engine: &Engine<'_>,
    run: &RunWork,
    snapshot: &mut Snapshot,
    step: usize,
) -> Result<(), StepError> {
    // The runtime first: without one, nothing else is worth preparing.
    let runtime = runtime(engine)?;
    let sources = StageRoots {
        engine,
        prepared: RefCell::new(Vec::new()),
    };
    let request = engine.request;
    let mounts = mounts::to_specs(
        &run.mounts,
        &run.workdir,
        &request.secrets,
        &request.ssh_agents,
        &sources,
    )?;
    let spec = RunSpec {
        rootfs: snapshot.rootfs().to_path_buf(),
        args: run.args.clone(),
        env: run.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd: run.workdir.clone(),
        user: run.user.clone(),
        network: run.network,
        extra_hosts: run.extra_hosts.clone(),
        mounts,
        interactive: false,
        security: run.security.clone(),
        terminal: false,
        streams: Streams::Merged,
    };
    let reporter = engine.services.reporter;
    let outcome = runtime
        .get()
        .run_in_snapshot(snapshot, &spec, &mut |_, data| reporter.output(step, data))?;
    drop(sources);
    if outcome.exit_code != 0 {
        let tail = String::from_utf8_lossy(&outcome.output_tail);
        let lines: Vec<&str> = tail.lines().collect();
        let tail = lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..].join("\n");
        return Err(StepError::CommandFailed {
            exit_code: outcome.exit_code,
            tail,
        });
    }
    Ok(())
}

/// The runtime of a RUN step: the services' own, or the one detected at the build's first RUN.
enum StepRuntime<'e> {
    Given(&'e dyn ContainerRuntime),
    Detected(Runtime),
}

impl StepRuntime<'_> {
    fn get(&self) -> &dyn ContainerRuntime {
        match self {
            StepRuntime::Given(runtime) => *runtime,
            StepRuntime::Detected(runtime) => runtime,
        }
    }
}

/// The services' runtime, else runc or crun (or `--runtime`), detected once per build.
fn runtime<'e>(engine: &Engine<'e>) -> Result<StepRuntime<'e>, StepError> {
    if let Some(runtime) = engine.services.runtime {
        return Ok(StepRuntime::Given(runtime));
    }
    let mut detected = engine.detected_runtime.lock().expect("not poisoned");
    if let Some(runtime) = detected.as_ref() {
        return Ok(StepRuntime::Detected(runtime.clone()));
    }
    let runtime = Runtime::detect(engine.store, engine.request.runtime.as_deref())?;
    *detected = Some(runtime.clone());
    Ok(StepRuntime::Detected(runtime))
}

/// Prepared root filesystems of stages and images, for bind mounts; dropped (unmounted) after the step.
struct StageRoots<'e> {
    engine: &'e Engine<'e>,
    prepared: RefCell<Vec<Snapshot>>,
}

impl BindSources for StageRoots<'_> {
    fn root_for(&self, from: Option<&str>) -> Result<PathBuf, StepError> {
        match from {
            None => Ok(self.engine.context.root().to_path_buf()),
            Some(from) => Ok(self.stage_root(from)?.0),
        }
    }

    fn stage_root(&self, from: &str) -> Result<(PathBuf, String), StepError> {
        let (layers, key) = self.engine.layers_of(from)?;
        let snapshot = self.engine.snapshotter.prepare(&layers)?;
        let root = snapshot.rootfs().to_path_buf();
        self.prepared.borrow_mut().push(snapshot);
        Ok((root, key.to_string()))
    }
}
