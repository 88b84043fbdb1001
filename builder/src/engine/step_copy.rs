//! COPY and ADD: before planning, the sources are gathered — heredocs written as files, the context's selected
//! sources checksummed (or a `--from` stage's or image's layers found), ADD's URLs fetched — so the plan can key the
//! step by their content; on a miss the sources are copied into the snapshot.

use std::path::PathBuf;

use super::plan::{self, CopySpec, CopyWork, SourceDigests, StepPlan};
use super::stages::Engine;
use super::state::StageEnv;
use super::StepError;
use crate::context::BuildContext;
use crate::copy;
use crate::copy::remote::{self, Fetched};
use crate::snapshot::{LayerRef, Snapshot};

/// What a COPY or ADD gathered before it was planned, for its execution; empty for other steps.
#[derive(Default)]
pub(super) struct Prepared {
    /// `--from`: the stage's or image's layers.
    from_layers: Option<Vec<LayerRef>>,
    /// The directory the heredoc sources were written to.
    heredoc_dir: Option<PathBuf>,
    /// ADD's downloaded URLs.
    fetched: Vec<Fetched>,
}

fn io_step(context: &'static str) -> impl FnOnce(std::io::Error) -> StepError {
    move |source| StepError::Io {
        context: context.to_string(),
        source,
    }
}

/// Gathers a COPY's or ADD's sources and plans the step with their digests.
pub(super) fn plan(
    engine: &Engine<'_>,
    env: &StageEnv,
    spec: &CopySpec<'_>,
) -> Result<(StepPlan, Prepared), StepError> {
    let work = plan::copy_work(env, spec)?;
    let mut prepared = Prepared::default();
    if !work.heredocs.is_empty() {
        let dir = engine
            .scratch
            .path()
            .join(layerstore::fsutil::unique_name("heredocs-"));
        std::fs::create_dir_all(&dir).map_err(io_step("writing a heredoc"))?;
        for (name, content) in &work.heredocs {
            std::fs::write(dir.join(name), content).map_err(io_step("writing a heredoc"))?;
        }
        prepared.heredoc_dir = Some(dir);
    }
    let sources = match &work.from {
        Some(from) => {
            let (layers, key) = engine.layers_of(from)?;
            prepared.from_layers = Some(layers);
            format!("stage {key}")
        }
        None => {
            let context = match &prepared.heredoc_dir {
                Some(dir) => BuildContext::unfiltered(dir),
                None => engine.context.clone(),
            };
            let selected = context.select(&work.paths)?;
            let excludes = work.options.exclude_matcher()?;
            let checksum = context.checksum(
                &selected,
                &excludes,
                None,
                work.options.chmod,
                &mut engine.hashes.lock().expect("not poisoned"),
            )?;
            checksum.to_string()
        }
    };
    let mut digests = SourceDigests {
        sources,
        urls: Vec::new(),
    };
    for url in &work.urls {
        let download = remote::fetch(url, work.checksum.as_ref(), engine.scratch.path())?;
        digests.urls.push((url.clone(), download.digest.clone()));
        prepared.fetched.push(download);
    }
    Ok((plan::copy(env, spec, work, &digests), prepared))
}

/// Copies the sources into the snapshot.
pub(super) fn execute(
    engine: &Engine<'_>,
    work: &CopyWork,
    prepared: &Prepared,
    snapshot: &mut Snapshot,
) -> Result<(), StepError> {
    let rootfs = snapshot.rootfs().to_path_buf();
    let (destination, options) = (&work.destination, &work.options);
    if !work.paths.is_empty() {
        match (&prepared.from_layers, &prepared.heredoc_dir) {
            (Some(layers), _) => {
                let source = engine.snapshotter.prepare(layers)?;
                let context = BuildContext::unfiltered(source.rootfs());
                copy::copy(&context, &work.paths, destination, &rootfs, options)?;
            }
            (None, Some(dir)) => copy::copy(
                &BuildContext::unfiltered(dir),
                &work.paths,
                destination,
                &rootfs,
                options,
            )?,
            (None, None) => {
                copy::copy(&engine.context, &work.paths, destination, &rootfs, options)?
            }
        }
    }
    for download in &prepared.fetched {
        remote::add_fetched(download, destination, &rootfs, options)?;
    }
    Ok(())
}
