//! Running the stages of a plan: stages whose dependencies are built run in parallel; each stage starts from its
//! base (`base`), runs its base's ONBUILD triggers, then plans each instruction (`plan`) and executes the plan with
//! the file for its kind of step. The target's config and layers become the image.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use layerstore::config::ImageConfig;
use layerstore::{Descriptor, Digest, Store};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::cache::{CacheRecord, StepCache};
use super::cache_format::{CacheConfig, INLINE_CACHE_FIELD};
use super::plan::{self, CopySpec, PlanSettings};
use super::state::{StageEnv, StageState};
use super::step_copy::{self, Prepared};
use super::{step_metadata, BuildError, BuildRequest, BuildServices, CacheRecords, StepError};
use crate::context::hashcache::HashCache;
use crate::context::BuildContext;
use crate::runtime::Runtime;
use crate::snapshot::{LayerRef, Snapshotter};
use lade_dockerfile::BuildPlan;
use lade_dockerfile::{Command, Instruction};

/// A built stage: its image config and layers, and the cache key of its last step.
#[derive(Debug, Clone)]
pub(super) struct StageResult {
    /// The stage's image config.
    pub config: ImageConfig,
    /// Its layers, bottom first.
    pub layers: Vec<LayerRef>,
    /// The key of its last step.
    pub key: Digest,
    /// See [`StageEnv::recipe`].
    pub recipe: Digest,
    /// The stage's variables at its end (see [`StageEnv::vars`]): a stage built FROM this one starts with them.
    pub vars: Vec<(String, String)>,
    /// The cache records of the stage's layers that the build made or looked up (a base image's have none).
    pub records: Vec<(Digest, CacheRecord)>,
}

/// What [`Engine::run`] made: the image, the cache records for `--cache-to`, and warnings.
pub(super) struct EngineOutput {
    /// The image's manifest.
    pub descriptor: Descriptor,
    /// The image ID.
    pub id: Digest,
    /// The build's cache records.
    pub records: CacheRecords,
    /// Warnings raised while building.
    pub warnings: Vec<String>,
}

/// One instruction being run: where it is, and how progress names it.
pub(super) struct StepContext<'s> {
    /// The stage's index in the plan.
    pub stage: usize,
    /// The instruction's position in the stage (ONBUILD triggers have their own, past any instruction's).
    pub position: usize,
    /// The instruction, its variables expanded.
    pub instruction: &'s Instruction,
    /// The progress line, like `[2/5] RUN make`.
    pub text: &'s str,
}

/// Runs a plan's stages.
pub(super) struct Engine<'a> {
    pub store: &'a Store,
    pub request: &'a BuildRequest,
    pub plan: &'a BuildPlan,
    pub file_name: &'a str,
    pub services: BuildServices<'a>,
    /// With `--pull`: the images pulled so far in this build (each is pulled once).
    pub pulled: Mutex<HashSet<String>>,
    pub cache: StepCache,
    /// Warnings raised while building (cache blobs that could not be imported).
    pub warnings: Mutex<Vec<String>>,
    pub hashes: Mutex<HashCache>,
    pub context: BuildContext,
    pub snapshotter: Snapshotter,
    /// The runc/crun runtime, detected at the first RUN when the services give none.
    pub detected_runtime: Mutex<Option<Runtime>>,
    pub results: Mutex<BTreeMap<usize, StageResult>>,
    next_step: AtomicUsize,
    /// The build's start time (or `SOURCE_DATE_EPOCH`), RFC 3339.
    pub started: String,
    pub scratch: layerstore::fsutil::TempDir,
}

/// RFC 3339 text of a time.
pub(super) fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

impl<'a> Engine<'a> {
    /// Opens the cache, context and snapshotter of a build.
    pub fn new(
        store: &'a Store,
        request: &'a BuildRequest,
        plan: &'a BuildPlan,
        file_name: &'a str,
        services: BuildServices<'a>,
    ) -> Result<Engine<'a>, BuildError> {
        let cache = StepCache::open(store).map_err(|source| BuildError::Io {
            context: "opening the build cache".into(),
            source,
        })?;
        let started = match request.source_date_epoch {
            Some(epoch) => {
                OffsetDateTime::from_unix_timestamp(epoch).unwrap_or(OffsetDateTime::UNIX_EPOCH)
            }
            None => OffsetDateTime::now_utc(),
        };
        Ok(Engine {
            store,
            request,
            plan,
            file_name,
            services,
            pulled: Mutex::new(HashSet::new()),
            cache,
            warnings: Mutex::new(Vec::new()),
            hashes: Mutex::new(HashCache::open(store)),
            context: BuildContext::open(&request.context, &request.dockerfile_path)?,
            snapshotter: Snapshotter::new(store)?,
            detected_runtime: Mutex::new(None),
            results: Mutex::new(BTreeMap::new()),
            next_step: AtomicUsize::new(1),
            started: rfc3339(started),
            scratch: store.temp_dir("build-")?,
        })
    }

    /// The build-wide settings steps are planned with.
    pub fn settings(&self) -> PlanSettings<'_> {
        PlanSettings {
            build_args: &self.request.build_args,
            global_env: &self.plan.global_env,
            proxy_env: &self.plan.proxy_env,
            network: self.request.network,
            extra_hosts: &self.request.extra_hosts,
            security: &self.request.security,
            entitlements: &self.request.entitlements,
        }
    }

    /// Builds every stage the target needs — stages whose dependencies are built run in parallel — then stores the
    /// target's image and returns its manifest and ID.
    pub fn run(&self) -> Result<EngineOutput, BuildError> {
        let mut remaining: Vec<usize> = self.plan.build_order.clone();
        while !remaining.is_empty() {
            let ready: Vec<usize> = remaining
                .iter()
                .copied()
                .filter(|&index| {
                    self.plan.stages[index]
                        .stage_dependencies
                        .iter()
                        .all(|dependency| !remaining.contains(dependency))
                })
                .collect();
            let outcomes: Vec<(usize, Result<StageResult, BuildError>)> =
                std::thread::scope(|scope| {
                    let running: Vec<_> = ready
                        .iter()
                        .map(|&index| scope.spawn(move || (index, self.run_stage(index))))
                        .collect();
                    running
                        .into_iter()
                        .map(|thread| thread.join().expect("a stage thread panicked"))
                        .collect()
                });
            for (index, outcome) in outcomes {
                self.results
                    .lock()
                    .expect("not poisoned")
                    .insert(index, outcome?);
            }
            remaining.retain(|index| !ready.contains(index));
        }
        let _ = self.hashes.lock().expect("not poisoned").save();
        self.finish()
    }

    /// Stores the target's image, with `--label`s and the inline cache, and gathers every stage's records.
    fn finish(&self) -> Result<EngineOutput, BuildError> {
        let mut results = self.results.lock().expect("not poisoned");
        // Every stage's records in build order (a stage built FROM another repeats its records: once is enough).
        let mut seen = HashSet::new();
        let all: Vec<(Digest, CacheRecord)> = self
            .plan
            .build_order
            .iter()
            .filter_map(|index| results.get(index))
            .flat_map(|result| result.records.iter())
            .filter(|(key, _)| seen.insert(key.clone()))
            .cloned()
            .collect();
        let mut result = results
            .remove(&self.plan.target)
            .expect("the target is built last");
        drop(results);
        if !self.request.labels.is_empty() {
            let labels = result
                .config
                .container_config_mut()
                .labels
                .get_or_insert_with(Default::default);
            labels.extend(self.request.labels.clone());
        }
        if self.request.inline_cache {
            let document = CacheConfig::from_records(&result.records);
            result.config.extra.insert(
                INLINE_CACHE_FIELD.to_string(),
                serde_json::Value::String(document.to_inline()),
            );
        }
        result.config.rootfs.diff_ids = result.layers.iter().map(|l| l.diff_id.clone()).collect();
        let layers: Vec<Descriptor> = result.layers.iter().map(|l| l.descriptor.clone()).collect();
        let (descriptor, id) = layerstore::import::store_image(self.store, &result.config, layers)?;
        Ok(EngineOutput {
            descriptor,
            id,
            records: CacheRecords {
                all,
                image: result.records,
            },
            warnings: std::mem::take(&mut *self.warnings.lock().expect("not poisoned")),
        })
    }

    /// A step's failure, with the Dockerfile line and the step's text.
    pub fn step_error(&self, step: &StepContext<'_>, source: StepError) -> BuildError {
        BuildError::Step {
            file: self.file_name.to_string(),
            line: step.instruction.location.start_line,
            step: step.text.to_string(),
            source: Box::new(source),
        }
    }

    /// The progress label of a stage's steps: `[2/5]`, or `[name 2/5]` in a multi-stage build.
    fn label(&self, index: usize, position: usize) -> String {
        let planned = &self.plan.stages[index];
        let count = planned.stage.instructions.len() + 1;
        if self.plan.stages.len() > 1 {
            let name = planned
                .stage
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{index}"));
            format!("[{name} {position}/{count}]")
        } else {
            format!("[{position}/{count}]")
        }
    }

    fn run_stage(&self, index: usize) -> Result<StageResult, BuildError> {
        let planned = &self.plan.stages[index];
        let from_text = format!("{} FROM {}", self.label(index, 1), planned.stage.from.image);
        let step_id = self.begin(&from_text);
        let base = self
            .base(&planned.base)
            .map_err(|source| BuildError::Step {
                file: self.file_name.to_string(),
                line: planned.stage.from_location.start_line,
                step: format!("FROM {}", planned.stage.from.image),
                source: Box::new(source),
            })?;
        self.services
            .reporter
            .done(step_id, std::time::Duration::ZERO);
        let mut config = base.config;
        // The base's ONBUILD triggers run first, and are not inherited further.
        let triggers = config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        let mut state = StageState {
            first_entry: config.history.len(),
            env: StageEnv::new(config, (base.key, base.recipe), &base.layers, base.vars),
            layers: base.layers,
            timed_entries: Vec::new(),
            records: base.records,
        };
        for (number, expression) in triggers.iter().enumerate() {
            self.run_trigger(index, number, expression, &mut state)?;
        }
        let instructions = self.plan.expand_stage(index, &state.env.vars)?;
        for (position, instruction) in instructions.iter().enumerate() {
            let text = format!(
                "{} {}",
                self.label(index, position + 2),
                instruction_text(&self.request.dockerfile, instruction)
            );
            let step = StepContext {
                stage: index,
                position,
                instruction,
                text: &text,
            };
            self.dispatch(&step, &mut state)?;
        }
        self.fill_history_times(&mut state);
        Ok(StageResult {
            config: state.env.config,
            layers: state.layers,
            key: state.env.key,
            recipe: state.env.recipe,
            vars: state.env.vars,
            records: state.records,
        })
    }

    /// Runs one of the base image's ONBUILD triggers, expanded with the stage's variables.
    fn run_trigger(
        &self,
        index: usize,
        number: usize,
        expression: &str,
        state: &mut StageState,
    ) -> Result<(), BuildError> {
        let planned = &self.plan.stages[index];
        let trigger = lade_dockerfile::Dockerfile::parse_onbuild_trigger(expression)?;
        let command = trigger
            .command
            .expand(
                &lade_dockerfile::Lexer::new('\\'),
                state.env.vars.as_slice(),
            )
            .map_err(|e| BuildError::Step {
                file: self.file_name.to_string(),
                line: planned.stage.from_location.start_line,
                step: format!("ONBUILD {expression}"),
                source: Box::new(StepError::Unsupported(e.to_string())),
            })?;
        let instruction = Instruction {
            command,
            location: planned.stage.from_location.clone(),
        };
        let text = format!("{} ONBUILD {expression}", self.label(index, 1));
        let step = StepContext {
            stage: index,
            // Positions past any instruction's, so that triggers have their own cache-explanation slots.
            position: usize::MAX - number,
            instruction: &instruction,
            text: &text,
        };
        self.dispatch(&step, state)
    }

    /// Numbers a step and reports its start.
    pub fn begin(&self, text: &str) -> usize {
        let id = self.next_step.fetch_add(1, Ordering::Relaxed);
        self.services.reporter.step(id, text);
        id
    }

    /// Plans one instruction and executes the plan: a config edit, or a layer step.
    fn dispatch(&self, step: &StepContext<'_>, state: &mut StageState) -> Result<(), BuildError> {
        let fail = |e| self.step_error(step, e);
        let copy = match &step.instruction.command {
            Command::Copy(copy) => Some(CopySpec::from(copy)),
            Command::Add(add) => Some(CopySpec::from(add)),
            _ => None,
        };
        let (plan, prepared, begun) = match copy {
            Some(spec) => {
                // Begun before its sources are read, which for a large context takes a while to show.
                let begun = (self.begin(step.text), Instant::now());
                let (plan, prepared) =
                    step_copy::plan(self, &state.env, &spec, begun.0).map_err(fail)?;
                (plan, prepared, Some(begun))
            }
            None => {
                let plan = plan::step(&self.settings(), &state.env, &step.instruction.command)
                    .map_err(fail)?;
                (plan, Prepared::default(), None)
            }
        };
        match plan.layer {
            None => {
                step_metadata::apply(state, plan.env, plan.history);
                Ok(())
            }
            Some(layer) => {
                let outcome = super::layer_step::LayerOutcome {
                    env: plan.env,
                    history: plan.history,
                };
                let begun = begun.unwrap_or_else(|| (self.begin(step.text), Instant::now()));
                self.layer_step(step, state, outcome, layer, &prepared, begun)
            }
        }
    }

    /// The stage a COPY/ADD `--from` (or RUN bind `from=`) names, by index or by name.
    pub fn stage_index(&self, from: &str) -> Option<usize> {
        stage_index(self.plan, from)
    }

    /// History entries without a time take the time of the next layer step of the stage, else the previous one.
    fn fill_history_times(&self, state: &mut StageState) {
        let fallback = state
            .timed_entries
            .last()
            .map_or_else(|| self.started.clone(), |(_, t)| t.clone());
        let timed = &state.timed_entries;
        let history = &mut state.env.config.history;
        for (index, entry) in history.iter_mut().enumerate().skip(state.first_entry) {
            if entry.created.is_some() {
                continue;
            }
            let time = timed
                .iter()
                .find(|(timed, _)| *timed >= index)
                .map_or_else(|| fallback.clone(), |(_, t)| t.clone());
            entry.created = Some(time);
        }
        state.env.config.created = history
            .last()
            .and_then(|h| h.created.clone())
            .or(Some(self.started.clone()));
    }
}

/// The stage `from` names in `plan`: an index, else the last stage of that name (as `Stages::find_by_name`
/// resolves it); `None` for an image.
pub(super) fn stage_index(plan: &BuildPlan, from: &str) -> Option<usize> {
    from.parse::<usize>()
        .ok()
        .filter(|i| *i < plan.stages.len())
        .or_else(|| {
            plan.stages
                .iter()
                .rposition(|s| s.stage.name.as_deref() == Some(&from.to_ascii_lowercase()))
        })
}

/// The instruction as written (continuations joined), as progress shows it.
pub(super) fn instruction_text(source: &str, instruction: &Instruction) -> String {
    let written = source
        .get(instruction.location.span.clone())
        .unwrap_or(instruction.command.name());
    let joined: Vec<&str> = written.split_whitespace().collect();
    let text = joined.join(" ");
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
