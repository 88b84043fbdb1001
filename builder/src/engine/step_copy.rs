//! COPY and ADD: before planning, the sources are gathered — heredocs written as files, the context's selected
//! sources checksummed (or a `--from` stage's or image's layers found), ADD's URLs fetched — so the plan can key the
//! step by their content; on a miss the sources are copied into the snapshot.

use std::path::PathBuf;

use super::plan::{self, CopySpec, CopyWork, SourceDigests, StepPlan};
use super::progress::ByteCounter;
use super::stages::Engine;
use super::state::StageEnv;
use super::{StepError, Transfer};
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

/// Gathers the sources of COPY or ADD step `id` and plans it with their digests; the bytes read from the build
/// context to checksum them are reported as they are read.
pub(super) fn plan(
    engine: &Engine<'_>,
    env: &StageEnv,
    spec: &CopySpec<'_>,
    id: usize,
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
            let (context, mut counter) = match &prepared.heredoc_dir {
                Some(dir) => (BuildContext::unfiltered(dir), None),
                None => (
                    engine.context.clone(),
                    Some(ByteCounter::new(
                        engine.services.reporter,
                        id,
                        Transfer::Context,
                    )),
                ),
            };
            let selected = context.select(&work.paths)?;
            let excludes = work.options.exclude_matcher()?;
            let checksum = context.checksum(
                &selected,
                &excludes,
                None,
                work.options.chmod,
                &mut engine.hashes.lock().expect("not poisoned"),
                &mut |bytes| {
                    if let Some(counter) = counter.as_mut() {
                        counter.add(bytes);
                    }
                },
            )?;
            if let Some(counter) = counter {
                counter.finish();
            }
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

/// Copies the sources of step `id` into the snapshot, reporting the bytes written.
pub(super) fn execute(
    engine: &Engine<'_>,
    work: &CopyWork,
    prepared: &Prepared,
    snapshot: &mut Snapshot,
    id: usize,
) -> Result<(), StepError> {
    let rootfs = snapshot.rootfs().to_path_buf();
    let (destination, options) = (&work.destination, &work.options);
    let mut counter = ByteCounter::new(engine.services.reporter, id, Transfer::Copy);
    let written = &mut |bytes| counter.add(bytes);
    if !work.paths.is_empty() {
        match (&prepared.from_layers, &prepared.heredoc_dir) {
            (Some(layers), _) => {
                let source = engine.snapshotter.prepare(layers)?;
                let context = BuildContext::unfiltered(source.rootfs());
                copy::copy(
                    &context,
                    &work.paths,
                    destination,
                    &rootfs,
                    options,
                    written,
                )?;
            }
            (None, Some(dir)) => copy::copy(
                &BuildContext::unfiltered(dir),
                &work.paths,
                destination,
                &rootfs,
                options,
                written,
            )?,
            (None, None) => copy::copy(
                &engine.context,
                &work.paths,
                destination,
                &rootfs,
                options,
                written,
            )?,
        }
    }
    for download in &prepared.fetched {
        remote::add_fetched(download, destination, &rootfs, options, written)?;
    }
    counter.finish();
    Ok(())
}
