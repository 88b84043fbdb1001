//! A step that makes a layer: looked up by its planned key in the local cache, then in each `--cache-from`; on a
//! miss (explained from the inputs the same Dockerfile position saw last time) its work is done in a fresh snapshot
//! of the stage's layers, committed, and recorded in the cache.

use std::time::Instant;

use layerstore::layer::create::LayerOptions;
use layerstore::Digest;
use time::OffsetDateTime;

use super::cache::{explain_miss, CacheRecord, CachedLayer};
use super::plan::{LayerPlan, Work};
use super::stages::{rfc3339, Engine, StepContext};
use super::state::{layer_chain, StageEnv, StageState};
use super::step_copy::{self, Prepared};
use super::{step_run, step_workdir, BuildError, StepError};
use crate::snapshot::Snapshot;

/// What a layer step leaves the stage with, besides the layer: the planned env and history text.
pub(super) struct LayerOutcome {
    /// The stage's env after the step.
    pub env: StageEnv,
    /// The history entry's `created_by`.
    pub history: Option<String>,
}

impl Engine<'_> {
    /// Runs planned layer step `id` (begun at `started`): the cached layer when there is one, else the step's work,
    /// committed.
    pub(super) fn layer_step(
        &self,
        step: &StepContext<'_>,
        state: &mut StageState,
        outcome: LayerOutcome,
        layer: LayerPlan,
        prepared: &Prepared,
        (id, started): (usize, Instant),
    ) -> Result<(), BuildError> {
        let position_key = Digest::sha256_of(
            format!(
                "{}\0{}\0{}\0{}",
                self.context.root().display(),
                self.file_name,
                step.stage,
                step.position
            )
            .as_bytes(),
        );
        let cached = if self.request.no_cache {
            None
        } else {
            self.lookup(id, &layer.key)
        };
        let record = match cached {
            Some(record) => {
                self.services.reporter.cached(id);
                record
            }
            None => self.build_layer(step, state, &layer, prepared, id, &position_key)?,
        };
        let _ = self.cache.remember_inputs(&position_key, &layer.inputs);
        let created = match self.request.source_date_epoch {
            Some(_) => self.started.clone(),
            None => record.created.clone(),
        };
        state.env = outcome.env;
        state.layers.push(record.layer.clone().into());
        state.env.layers = layer_chain(&state.layers);
        if let Some(created_by) = outcome.history {
            let entry = state.env.add_history(created_by, false);
            state.timed_entries.push((entry, created));
        }
        state.records.push((layer.key, record));
        self.services.reporter.done(id, started.elapsed());
        Ok(())
    }

    /// A cache miss: says why, does the work in a snapshot of the stage's layers, commits and records the layer.
    fn build_layer(
        &self,
        step: &StepContext<'_>,
        state: &StageState,
        layer: &LayerPlan,
        prepared: &Prepared,
        id: usize,
        position_key: &Digest,
    ) -> Result<CacheRecord, BuildError> {
        if !self.request.no_cache {
            let previous = self.cache.previous_inputs(position_key);
            let mut why = explain_miss(previous.as_ref(), &layer.inputs);
            let imports = self.services.imports;
            if !imports.is_empty() {
                let names: Vec<&str> = imports.iter().map(|i| i.name.as_str()).collect();
                why.push_str(&format!("; not in {}", names.join(", ")));
            }
            self.services
                .reporter
                .note(id, &format!("cache miss: {why}"));
        }
        let mut snapshot = self
            .snapshotter
            .prepare(&state.layers)
            .map_err(BuildError::Snapshot)?;
        self.work(&layer.work, prepared, &mut snapshot, id)
            .map_err(|e| self.step_error(step, e))?;
        let options = LayerOptions {
            mtime_clamp: self.request.source_date_epoch.map(|e| e.max(0) as u64),
        };
        let committed = snapshot.commit(options).map_err(BuildError::Snapshot)?;
        let record = CacheRecord {
            layer: CachedLayer {
                descriptor: committed.descriptor,
                diff_id: committed.diff_id,
            },
            created: self.step_time(),
        };
        self.cache
            .put(&layer.key, &record)
            .map_err(|source| BuildError::Io {
                context: "writing the build cache".into(),
                source,
            })?;
        Ok(record)
    }

    /// Does a step's work in its snapshot, with the executor of its kind.
    fn work(
        &self,
        work: &Work,
        prepared: &Prepared,
        snapshot: &mut Snapshot,
        id: usize,
    ) -> Result<(), StepError> {
        match work {
            Work::Workdir { path, user } => step_workdir::execute(snapshot, path, user.as_deref()),
            Work::Run(run) => step_run::execute(self, run, snapshot, id),
            Work::Copy(copy) => step_copy::execute(self, copy, prepared, snapshot, id),
        }
    }

    /// The record of a step key: from the local cache, else from the first `--cache-from` that has it and whose
    /// layer blob arrives intact (then kept in the local cache). Says which, for `--explain-cache`.
    fn lookup(&self, id: usize, key: &Digest) -> Option<CacheRecord> {
        let imports = self.services.imports;
        if let Some(record) = self.cache.get(key) {
            // Without imports, CACHED says it all.
            if !imports.is_empty() {
                self.services.reporter.note(id, "cache hit: local");
            }
            return Some(record);
        }
        for import in imports {
            let Some(record) = import.record(key) else {
                continue;
            };
            match import.fetch_layer(self.store, record) {
                Ok(()) => {
                    if let Err(e) = self.cache.put(key, record) {
                        self.warn(id, format!("recording an imported cache step: {e}"));
                    }
                    self.services
                        .reporter
                        .note(id, &format!("cache hit: from {}", import.name));
                    return Some(record.clone());
                }
                Err(e) => self.warn(
                    id,
                    format!(
                        "cache from {}: layer {} of step {key} is unusable, so the step is built: {e}",
                        import.name, record.layer.descriptor.digest
                    ),
                ),
            }
        }
        None
    }

    /// A warning, shown with the step and returned with the build's.
    fn warn(&self, id: usize, message: String) {
        self.services
            .reporter
            .note(id, &format!("warning: {message}"));
        self.warnings
            .lock()
            .expect("not poisoned")
            .push(format!("[Warning] {message}"));
    }

    /// The creation time of a layer made now.
    fn step_time(&self) -> String {
        match self.request.source_date_epoch {
            Some(_) => self.started.clone(),
            None => rfc3339(OffsetDateTime::now_utc()),
        }
    }
}
