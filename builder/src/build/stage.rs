//! Running the stages of a plan: each instruction either changes the image config (with a history entry, as
//! BuildKit writes it) or makes a layer in a snapshot — from the cache when its key is known.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use layerstore::config::{ContainerConfig, History, ImageConfig};
use layerstore::layer::create::LayerOptions;
use layerstore::{Descriptor, Digest, Image, Store};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::cache::{base_key, explain_miss, CacheRecord, CachedLayer, Inputs, StepCache};
use super::cache_format::{CacheConfig, INLINE_CACHE_FIELD};
use super::cache_transfer::ImportedCache;
use super::config_edit;
use super::history::{self, BUILDKIT_COMMENT, BUILDKIT_SUFFIX};
use super::mounts::{self, BindSources};
use super::{BuildError, BuildRequest, CacheRecords, ImagePuller, Reporter, StepError};
use crate::context::hashcache::HashCache;
use crate::context::BuildContext;
use crate::copy::{self, CopyOptions};
use crate::runtime::{Network, RunSpec, Runtime};
use crate::snapshot::{LayerRef, Snapshot, Snapshotter};
use crate::users::resolve_chown;
use lade_dockerfile::{
    Add, Command, CommandLine, Copy, Instruction, NetworkMode, Run, SecurityMode, Source,
};
use lade_dockerfile::{BaseImage, BuildPlan};

/// The default PATH BuildKit gives `FROM scratch` images and RUN steps without one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A built stage: its image config and layers, and the cache key of its last step.
#[derive(Debug, Clone)]
struct StageResult {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    key: Digest,
    /// The stage's variables at its end (see [`StageState::vars`]): a stage built FROM this one starts with them.
    vars: Vec<(String, String)>,
    /// The cache records of the stage's layers that the build made or looked up (a base image's have none).
    records: Vec<(Digest, CacheRecord)>,
}

/// The state of the stage being built.
struct StageState {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    key: Digest,
    /// Build args declared in the stage, in order, with their values (`None`: declared without a value).
    args: Vec<(String, Option<String>)>,
    /// The variables instructions expand and RUN sees, kept as BuildKit's LLB state keeps them: the base's (an
    /// image's ENV, or everything a base stage had), then each ARG that has a value and each ENV, in order, the later
    /// one winning. ARG values live here and never in the config.
    vars: Vec<(String, String)>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// Index in `config.history` of this stage's first entry.
    first_entry: usize,
    /// History entries that made (or looked up) a layer, with their creation time.
    timed_entries: Vec<(usize, String)>,
    /// See [`StageResult::records`].
    records: Vec<(Digest, CacheRecord)>,
}

impl StageState {
    fn workdir(&self) -> PathBuf {
        config_edit::workdir(&self.config)
    }

    fn shell(&self) -> Vec<String> {
        config_edit::shell(&self.config)
    }

    fn command_args(&self, command: &CommandLine) -> Vec<String> {
        config_edit::command_args(&self.config, command)
    }

    /// The stage's build args as RUN's history records them: each with its variable's current value (an ENV or a
    /// later ARG may have changed it, or a base stage set it), else `""`.
    fn run_args(&self) -> Vec<(String, String)> {
        self.args
            .iter()
            .map(|(key, value)| {
                let current = self
                    .vars
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone());
                (
                    key.clone(),
                    current.or_else(|| value.clone()).unwrap_or_default(),
                )
            })
            .collect()
    }

    fn add_history(&mut self, created_by: String, empty_layer: bool) -> usize {
        self.config.history.push(History {
            created_by: Some(created_by),
            comment: Some(BUILDKIT_COMMENT.to_string()),
            empty_layer,
            ..History::default()
        });
        self.config.history.len() - 1
    }
}

/// What [`Engine::run`] made: the image, the cache records for `--cache-to`, and warnings.
pub struct EngineOutput {
    pub descriptor: Descriptor,
    pub id: Digest,
    pub records: CacheRecords,
    pub warnings: Vec<String>,
}

/// Runs a plan's stages.
pub struct Engine<'a> {
    store: &'a Store,
    request: &'a BuildRequest,
    plan: &'a BuildPlan,
    file_name: &'a str,
    reporter: &'a dyn Reporter,
    puller: Option<&'a dyn ImagePuller>,
    /// With `--pull`: the images pulled so far in this build (each is pulled once).
    pulled: Mutex<std::collections::HashSet<String>>,
    cache: StepCache,
    /// `--cache-from` sources, tried in order after the local cache.
    imports: &'a [ImportedCache],
    /// Warnings raised while building (cache blobs that could not be imported).
    warnings: Mutex<Vec<String>>,
    hashes: Mutex<HashCache>,
    context: BuildContext,
    snapshotter: Snapshotter,
    runtime: Mutex<Option<Runtime>>,
    results: Mutex<BTreeMap<usize, StageResult>>,
    next_step: AtomicUsize,
    started: String,
    scratch: layerstore::fsutil::TempDir,
}

/// Sets a variable, moving it to the end as BuildKit's environment does.
fn set_var(vars: &mut Vec<(String, String)>, key: &str, value: String) {
    vars.retain(|(k, _)| k != key);
    vars.push((key.to_string(), value));
}

fn io_step(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
    let context = context.into();
    move |source| StepError::Io { context, source }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).expect("times format as RFC 3339")
}

impl<'a> Engine<'a> {
    pub fn new(
        store: &'a Store,
        request: &'a BuildRequest,
        plan: &'a BuildPlan,
        file_name: &'a str,
        reporter: &'a dyn Reporter,
        puller: Option<&'a dyn ImagePuller>,
        imports: &'a [ImportedCache],
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
            reporter,
            puller,
            pulled: Mutex::new(Default::default()),
            cache,
            imports,
            warnings: Mutex::new(Vec::new()),
            hashes: Mutex::new(HashCache::open(store)),
            context: BuildContext::open(&request.context, &request.dockerfile_path)?,
            snapshotter: Snapshotter::new(store)?,
            runtime: Mutex::new(None),
            results: Mutex::new(BTreeMap::new()),
            next_step: AtomicUsize::new(1),
            started: rfc3339(started),
            scratch: store.temp_dir("build-")?,
        })
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
        let mut results = self.results.lock().expect("not poisoned");
        // Every stage's records in build order (a stage built FROM another repeats its records: once is enough).
        let mut seen = std::collections::HashSet::new();
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

    fn step_error(&self, instruction: &Instruction, step: &str, source: StepError) -> BuildError {
        BuildError::Step {
            file: self.file_name.to_string(),
            line: instruction.location.start_line,
            step: step.to_string(),
            source: Box::new(source),
        }
    }

    fn run_stage(&self, index: usize) -> Result<StageResult, BuildError> {
        let planned = &self.plan.stages[index];
        let instructions_count = planned.stage.instructions.len() + 1;
        let label = |position: usize| {
            if self.plan.stages.len() > 1 {
                let name = planned
                    .stage
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage-{index}"));
                format!("[{name} {position}/{instructions_count}]")
            } else {
                format!("[{position}/{instructions_count}]")
            }
        };
        let from_text = format!("{} FROM {}", label(1), planned.stage.from.image);
        let step_id = self.begin(&from_text);
        let base = self
            .base(&planned.base)
            .map_err(|source| BuildError::Step {
                file: self.file_name.to_string(),
                line: planned.stage.from_location.start_line,
                step: format!("FROM {}", planned.stage.from.image),
                source: Box::new(source),
            })?;
        self.reporter.done(step_id, std::time::Duration::ZERO);
        let mut config = base.config;
        // The base's ONBUILD triggers run first, and are not inherited further.
        let triggers = config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        let mut state = StageState {
            first_entry: config.history.len(),
            config,
            layers: base.layers,
            key: base.key,
            args: Vec::new(),
            vars: base.vars,
            cmd_set: false,
            timed_entries: Vec::new(),
            records: base.records,
        };
        for (number, expression) in triggers.iter().enumerate() {
            let trigger = lade_dockerfile::Dockerfile::parse_onbuild_trigger(expression)?;
            let command = trigger
                .command
                .expand(&lade_dockerfile::Lexer::new('\\'), state.vars.as_slice())
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
            let text = format!("{} ONBUILD {expression}", label(1));
            // Positions past any instruction's, so that triggers have their own cache-explanation slots.
            self.dispatch(index, usize::MAX - number, &mut state, &instruction, &text)?;
        }
        let instructions = self.plan.expand_stage(index, &state.vars)?;
        for (position, instruction) in instructions.iter().enumerate() {
            let text = format!(
                "{} {}",
                label(position + 2),
                instruction_text(&self.request.dockerfile, instruction)
            );
            self.dispatch(index, position, &mut state, instruction, &text)?;
        }
        self.fill_history_times(&mut state);
        Ok(StageResult {
            config: state.config,
            layers: state.layers,
            key: state.key,
            vars: state.vars,
            records: state.records,
        })
    }

    fn begin(&self, text: &str) -> usize {
        let id = self.next_step.fetch_add(1, Ordering::Relaxed);
        self.reporter.step(id, text);
        id
    }

    /// The config, layers and cache key a stage starts from.
    fn base(&self, base: &BaseImage) -> Result<StageResult, StepError> {
        match base {
            BaseImage::Scratch => {
                let platform = layerstore::Platform::host();
                let config = ImageConfig {
                    architecture: platform.architecture,
                    os: platform.os,
                    variant: platform.variant,
                    config: Some(ContainerConfig {
                        env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
                        working_dir: Some("/".into()),
                        ..ContainerConfig::default()
                    }),
                    ..ImageConfig::default()
                };
                Ok(StageResult {
                    vars: config_edit::env(&config),
                    config,
                    layers: Vec::new(),
                    key: base_key("scratch"),
                    records: Vec::new(),
                })
            }
            BaseImage::Stage(index) => {
                let mut result = self.results.lock().expect("not poisoned")[index].clone();
                // BuildKit starts from the base stage's variables and applies the base's ENV over them again, so an
                // ARG there that shadowed an ENV yields to the ENV here.
                for (key, value) in config_edit::env(&result.config) {
                    set_var(&mut result.vars, &key, value);
                }
                Ok(result)
            }
            BaseImage::Image(reference) => {
                let image = self.find_image(reference)?;
                let key = base_key(&image.digest().to_string());
                let layers = LayerRef::of_image(&image);
                let config = known_fields_only(image.config);
                Ok(StageResult {
                    layers,
                    vars: config_edit::env(&config),
                    config,
                    key,
                    records: Vec::new(),
                })
            }
        }
    }

    /// An image from the store, pulled first when it is missing (or, with `--pull`, always) and a puller is
    /// available.
    fn find_image(&self, reference: &str) -> Result<Image, StepError> {
        if let (true, Some(puller)) = (self.request.pull, self.puller) {
            // Held while pulling, so that parallel stages wait for the one pull of an image.
            let mut pulled = self.pulled.lock().expect("not poisoned");
            if pulled.insert(reference.to_string()) {
                puller
                    .pull(reference)
                    .map_err(|reason| StepError::PullFailed {
                        image: reference.to_string(),
                        reason,
                    })?;
            }
        }
        let lookup = |store: &Store| match store.find_image(reference) {
            Ok(found) => Ok(Some(found.image)),
            Err(layerstore::tags::TagError::NotFound(_)) => Ok(None),
            Err(e) => Err(StepError::Image {
                image: reference.to_string(),
                message: e.to_string(),
            }),
        };
        if let Some(image) = lookup(self.store)? {
            return Ok(image);
        }
        let Some(puller) = self.puller else {
            return Err(StepError::BaseImageMissing(reference.to_string()));
        };
        puller
            .pull(reference)
            .map_err(|reason| StepError::PullFailed {
                image: reference.to_string(),
                reason,
            })?;
        lookup(self.store)?.ok_or_else(|| StepError::BaseImageMissing(reference.to_string()))
    }

    fn dispatch(
        &self,
        stage: usize,
        position: usize,
        state: &mut StageState,
        instruction: &Instruction,
        text: &str,
    ) -> Result<(), BuildError> {
        let metadata = |state: &mut StageState, created_by: String| {
            state.add_history(created_by, true);
        };
        match &instruction.command {
            Command::Arg(arg) => {
                let mut written = Vec::new();
                for declaration in &arg.declarations {
                    let value = self
                        .request
                        .build_args
                        .get(&declaration.name)
                        .cloned()
                        .or_else(|| declaration.default.clone())
                        .or_else(|| {
                            self.plan
                                .global_env
                                .iter()
                                .rev()
                                .find(|(k, _)| k == &declaration.name)
                                .map(|(_, v)| v.clone())
                        });
                    if let Some(value) = &value {
                        set_var(&mut state.vars, &declaration.name, value.clone());
                    }
                    state.args.retain(|(k, _)| k != &declaration.name);
                    state.args.push((declaration.name.clone(), value));
                    written.push(match &declaration.default {
                        Some(default) => format!("{}={default}", declaration.name),
                        None => declaration.name.clone(),
                    });
                }
                // One history entry for the line, as BuildKit writes it.
                let created_by = format!("ARG {}", written.join(" "));
                state.key = chain(&state.key, &created_by);
                metadata(state, created_by);
            }
            Command::Workdir(workdir) => {
                let path = config_edit::set_workdir(&mut state.config, &workdir.path);
                let created_by = format!("WORKDIR {path}");
                if path == "/" {
                    // BuildKit makes no directory, and so no layer, for the root.
                    state.key = chain(&state.key, &created_by);
                    metadata(state, created_by);
                    return Ok(());
                }
                // BuildKit creates the directory (and missing parents) as the current USER.
                let user = config_edit::user(&state.config);
                let mut inputs = Inputs::new();
                inputs.insert("instruction", created_by.clone());
                inputs.insert("user", user.clone().unwrap_or_default());
                self.layer_step(
                    stage,
                    position,
                    state,
                    instruction,
                    text,
                    created_by,
                    inputs,
                    |_, snapshot, _| {
                        // Created at the cleaned path (BuildKit's mkdir -p); a RUN's working directory is then
                        // made as written, by the runtime.
                        let cleaned = config_edit::normalize(Path::new(&path));
                        let relative = cleaned.trim_start_matches('/');
                        if !relative.is_empty() {
                            let owner = match &user {
                                Some(user) => resolve_chown(snapshot.rootfs(), user)
                                    .map_err(copy::CopyError::from)?,
                                None => (0, 0),
                            };
                            copy::ensure_dir(snapshot.rootfs(), Path::new(relative), owner)?;
                        }
                        Ok(())
                    },
                )?;
            }
            Command::Run(run) => self.run_step(stage, position, state, instruction, text, run)?,
            Command::Copy(copy) => self.copy_step(
                stage,
                position,
                state,
                instruction,
                text,
                CopyLike::Copy(copy),
            )?,
            Command::Add(add) => self.copy_step(
                stage,
                position,
                state,
                instruction,
                text,
                CopyLike::Add(add),
            )?,
            Command::From(_) => unreachable!("FROM starts a stage"),
            command => {
                let edited = config_edit::apply(&mut state.config, command, &mut state.cmd_set)
                    .map_err(|e| self.step_error(instruction, text, StepError::Unsupported(e)))?
                    .expect("every other instruction only changes the config");
                // Later RUN steps see ENV, USER and SHELL: they are part of the cache key.
                let key_text = match command {
                    Command::Shell(shell) => Some(format!("SHELL {:?}", shell.shell)),
                    Command::Env(_) | Command::User(_) => edited.history.clone(),
                    _ => None,
                };
                if let Some(key_text) = key_text {
                    state.key = chain(&state.key, &key_text);
                }
                if let Command::Env(env) = command {
                    for variable in &env.variables {
                        set_var(&mut state.vars, &variable.key, variable.value.clone());
                    }
                }
                if let Some(created_by) = edited.history {
                    metadata(state, created_by);
                }
            }
        }
        Ok(())
    }

    /// A step that may make a layer: looked up by key, else run in a fresh snapshot and committed.
    #[allow(clippy::too_many_arguments)]
    fn layer_step(
        &self,
        stage: usize,
        position: usize,
        state: &mut StageState,
        instruction: &Instruction,
        text: &str,
        created_by: String,
        mut inputs: Inputs,
        work: impl FnOnce(&Self, &mut Snapshot, usize) -> Result<(), StepError>,
    ) -> Result<(), BuildError> {
        let id = self.begin(text);
        let started = Instant::now();
        inputs.insert("parent", state.key.to_string());
        let key = StepCache::key(&inputs);
        let position_key = Digest::sha256_of(
            format!(
                "{}\0{}\0{stage}\0{position}",
                self.context.root().display(),
                self.file_name
            )
            .as_bytes(),
        );
        let cached = if self.request.no_cache {
            None
        } else {
            self.lookup(id, &key)
        };
        let record = match cached {
            Some(record) => {
                self.reporter.cached(id);
                record
            }
            None => {
                if !self.request.no_cache {
                    let previous = self.cache.previous_inputs(&position_key);
                    let mut why = explain_miss(previous.as_ref(), &inputs);
                    if !self.imports.is_empty() {
                        let names: Vec<&str> =
                            self.imports.iter().map(|i| i.name.as_str()).collect();
                        why.push_str(&format!("; not in {}", names.join(", ")));
                    }
                    self.reporter.note(id, &format!("cache miss: {why}"));
                }
                let mut snapshot = self
                    .snapshotter
                    .prepare(&state.layers)
                    .map_err(BuildError::Snapshot)?;
                work(self, &mut snapshot, id).map_err(|e| self.step_error(instruction, text, e))?;
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
                    .put(&key, &record)
                    .map_err(|source| BuildError::Io {
                        context: "writing the build cache".into(),
                        source,
                    })?;
                record
            }
        };
        let _ = self.cache.remember_inputs(&position_key, &inputs);
        let created = match self.request.source_date_epoch {
            Some(_) => self.started.clone(),
            None => record.created.clone(),
        };
        let entry = state.add_history(created_by, false);
        state.timed_entries.push((entry, created));
        state.records.push((key.clone(), record.clone()));
        state.layers.push(record.layer.into());
        state.key = key;
        self.reporter.done(id, started.elapsed());
        Ok(())
    }

    /// The record of a step key: from the local cache, else from the first `--cache-from` that has it and whose
    /// layer blob arrives intact (then kept in the local cache). Says which, for `--explain-cache`.
    fn lookup(&self, id: usize, key: &Digest) -> Option<CacheRecord> {
        if let Some(record) = self.cache.get(key) {
            // Without imports, CACHED says it all.
            if !self.imports.is_empty() {
                self.reporter.note(id, "cache hit: local");
            }
            return Some(record);
        }
        for import in self.imports {
            let Some(record) = import.record(key) else {
                continue;
            };
            match import.fetch_layer(self.store, record) {
                Ok(()) => {
                    if let Err(e) = self.cache.put(key, record) {
                        self.warn(id, format!("recording an imported cache step: {e}"));
                    }
                    self.reporter
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

    fn warn(&self, id: usize, message: String) {
        self.reporter.note(id, &format!("warning: {message}"));
        self.warnings
            .lock()
            .expect("not poisoned")
            .push(format!("[Warning] {message}"));
    }

    fn step_time(&self) -> String {
        match self.request.source_date_epoch {
            Some(_) => self.started.clone(),
            None => rfc3339(OffsetDateTime::now_utc()),
        }
    }

    fn run_step(
        &self,
        stage: usize,
        position: usize,
        state: &mut StageState,
        instruction: &Instruction,
        text: &str,
        run: &Run,
    ) -> Result<(), BuildError> {
        let args = run_args(state, run).map_err(|e| self.step_error(instruction, text, e))?;
        let run_build_args = state.run_args();
        let created_by = history::run(&args, &run_build_args);
        let mut env: Vec<(String, String)> = self.plan.proxy_env.clone();
        for (key, value) in &state.vars {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let workdir = state.workdir();
        if let Some(socket) = mounts::ssh_auth_sock(&run.mounts, &workdir) {
            if !env.iter().any(|(k, _)| k == "SSH_AUTH_SOCK") {
                env.push(("SSH_AUTH_SOCK".into(), socket));
            }
        }
        let network = match run.network {
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => Network::Host,
            Some(NetworkMode::Default) | None => self.request.network,
        };
        let insecure = run.security == Some(SecurityMode::Insecure);
        self.request
            .entitlements
            .check_run(run.network == Some(NetworkMode::Host), insecure)
            .map_err(|e| self.step_error(instruction, text, e.into()))?;
        let security = crate::runtime::Security {
            insecure,
            ..self.request.security.clone()
        };
        let user = config_edit::user(&state.config);
        let mut inputs = Inputs::new();
        inputs.insert("instruction", created_by.clone());
        inputs.insert(
            "env",
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        inputs.insert("user", user.clone().unwrap_or_default());
        inputs.insert("workdir", workdir.display().to_string());
        inputs.insert("network", format!("{network:?}"));
        let extra_hosts = self.request.extra_hosts.clone();
        if !extra_hosts.is_empty() {
            let hosts: Vec<String> = extra_hosts.iter().map(ToString::to_string).collect();
            inputs.insert("hosts", hosts.join("\n"));
        }
        inputs.insert("mounts", run.mount_specs.join("\n"));
        if let Some(sandbox) = security.cache_input() {
            inputs.insert("security", sandbox);
        }
        let secrets = self.request.secrets.clone();
        let ssh_agents = self.request.ssh_agents.clone();
        self.layer_step(
            stage,
            position,
            state,
            instruction,
            text,
            created_by,
            inputs,
            |engine, snapshot, step| {
                let runtime = engine.runtime()?;
                let sources = engine.bind_sources()?;
                let mounts =
                    mounts::to_specs(&run.mounts, &workdir, &secrets, &ssh_agents, &sources)?;
                let spec = RunSpec {
                    rootfs: snapshot.rootfs().to_path_buf(),
                    args,
                    env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    cwd: workdir.clone(),
                    user,
                    network,
                    extra_hosts,
                    mounts,
                    interactive: false,
                    security,
                    terminal: false,
                };
                let reporter = engine.reporter;
                let outcome = runtime
                    .run_in_snapshot(snapshot, &spec, &mut |_, data| reporter.output(step, data))?;
                drop(sources);
                if outcome.exit_code != 0 {
                    let tail = String::from_utf8_lossy(&outcome.output_tail);
                    let lines: Vec<&str> = tail.lines().collect();
                    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                    return Err(StepError::CommandFailed {
                        exit_code: outcome.exit_code,
                        tail,
                    });
                }
                Ok(())
            },
        )
    }

    fn runtime(&self) -> Result<Runtime, StepError> {
        let mut runtime = self.runtime.lock().expect("not poisoned");
        if runtime.is_none() {
            *runtime = Some(Runtime::detect(
                self.store,
                self.request.runtime.as_deref(),
            )?);
        }
        Ok(runtime.clone().expect("set above"))
    }

    /// Root filesystems that `RUN --mount=type=bind,from=…` may read from.
    fn bind_sources(&self) -> Result<StageRoots<'_>, StepError> {
        Ok(StageRoots {
            engine: self,
            prepared: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// The source a COPY/ADD `--from` (or RUN bind `from=`) names: a stage's or an image's layers.
    fn layers_of(&self, from: &str) -> Result<(Vec<LayerRef>, Digest), StepError> {
        let stage = from
            .parse::<usize>()
            .ok()
            .filter(|i| *i < self.plan.stages.len())
            .or_else(|| {
                // The last stage of that name, as `Stages::find_by_name` resolves it.
                self.plan
                    .stages
                    .iter()
                    .rposition(|s| s.stage.name.as_deref() == Some(&from.to_ascii_lowercase()))
            });
        if let Some(index) = stage {
            let results = self.results.lock().expect("not poisoned");
            let result = results.get(&index).ok_or_else(|| {
                StepError::Unsupported(format!("stage {from} is not built before it is used"))
            })?;
            return Ok((result.layers.clone(), result.key.clone()));
        }
        let image = self.find_image(from)?;
        let key = base_key(&image.digest().to_string());
        Ok((LayerRef::of_image(&image), key))
    }

    fn copy_step(
        &self,
        stage: usize,
        position: usize,
        state: &mut StageState,
        instruction: &Instruction,
        text: &str,
        copy: CopyLike<'_>,
    ) -> Result<(), BuildError> {
        let fail = |engine: &Self, e: StepError| engine.step_error(instruction, text, e);
        let (sources, destination, chown, chmod_text, excludes) = copy.parts();
        let chmod = chmod_text.and_then(copy::parse_chmod);
        let words: Vec<String> = sources
            .iter()
            .map(|s| match s {
                Source::Path(p) => p.clone(),
                Source::Heredoc(h) => format!("<<{}", h.name),
            })
            .chain(std::iter::once(destination.to_string()))
            .collect();
        let created_by = format!("{} {}{BUILDKIT_SUFFIX}", copy.name(), words.join(" "));
        let options = CopyOptions {
            chown: chown.map(str::to_string),
            chmod,
            excludes: excludes.to_vec(),
            parents: copy.parents(),
            workdir: state.workdir(),
            unpack_archives: matches!(copy, CopyLike::Add(_)),
        };
        let mut inputs = Inputs::new();
        inputs.insert("instruction", format!("{created_by} chown={chown:?} chmod={chmod:?} exclude={excludes:?} parents={} workdir={}", options.parents, options.workdir.display()));

        // Where the sources come from, and their checksum for the key.
        let heredoc_dir = self
            .scratch
            .path()
            .join(layerstore::fsutil::unique_name("heredocs-"));
        let mut paths: Vec<String> = Vec::new();
        let mut urls: Vec<String> = Vec::new();
        for source in sources {
            match source {
                Source::Path(path) if copy.is_add() && is_url(path) => urls.push(path.clone()),
                Source::Path(path) => paths.push(path.clone()),
                Source::Heredoc(heredoc) => {
                    std::fs::create_dir_all(&heredoc_dir)
                        .map_err(io_step("writing a heredoc"))
                        .map_err(|e| fail(self, e))?;
                    let content = heredoc_content(heredoc);
                    std::fs::write(heredoc_dir.join(&heredoc.name), content)
                        .map_err(io_step("writing a heredoc"))
                        .map_err(|e| fail(self, e))?;
                    paths.push(heredoc.name.clone());
                }
            }
        }
        let has_heredocs = sources.iter().any(|s| matches!(s, Source::Heredoc(_)));
        if has_heredocs && paths.len() != sources.len() {
            return Err(fail(
                self,
                StepError::Unsupported(
                    "mixing heredocs with other sources is not supported".into(),
                ),
            ));
        }
        let from = copy.from();
        let (from_layers, source_checksum) = match from {
            Some(from) => {
                let (layers, key) = self.layers_of(from).map_err(|e| fail(self, e))?;
                (Some(layers), format!("stage {key}"))
            }
            None => {
                let context = if has_heredocs {
                    BuildContext::unfiltered(&heredoc_dir)
                } else {
                    self.context.clone()
                };
                let selected = context.select(&paths).map_err(|e| fail(self, e.into()))?;
                let excludes = options
                    .exclude_matcher()
                    .map_err(|e| fail(self, e.into()))?;
                let checksum = context
                    .checksum(
                        &selected,
                        &excludes,
                        None,
                        chmod,
                        &mut self.hashes.lock().expect("not poisoned"),
                    )
                    .map_err(|e| fail(self, e.into()))?;
                (None, checksum.to_string())
            }
        };
        inputs.insert("sources", source_checksum);
        let mut fetched = Vec::new();
        for url in &urls {
            let checksum = copy.checksum();
            let download = crate::copy::remote::fetch(url, checksum.as_ref(), self.scratch.path())
                .map_err(|e| fail(self, e.into()))?;
            inputs.insert(
                "urls",
                format!(
                    "{}{url}={}\n",
                    inputs.get("urls").cloned().unwrap_or_default(),
                    download.digest
                ),
            );
            fetched.push(download);
        }

        let destination = destination.to_string();
        self.layer_step(
            stage,
            position,
            state,
            instruction,
            text,
            created_by,
            inputs,
            |engine, snapshot, _| {
                let rootfs = snapshot.rootfs().to_path_buf();
                if !paths.is_empty() {
                    match &from_layers {
                        Some(layers) => {
                            let source = engine.snapshotter.prepare(layers)?;
                            let context = BuildContext::unfiltered(source.rootfs());
                            copy::copy(&context, &paths, &destination, &rootfs, &options)?;
                        }
                        None if has_heredocs => copy::copy(
                            &BuildContext::unfiltered(&heredoc_dir),
                            &paths,
                            &destination,
                            &rootfs,
                            &options,
                        )?,
                        None => {
                            copy::copy(&engine.context, &paths, &destination, &rootfs, &options)?
                        }
                    }
                }
                for download in &fetched {
                    crate::copy::remote::add_fetched(download, &destination, &rootfs, &options)?;
                }
                Ok(())
            },
        )
    }

    /// History entries without a time take the time of the next layer step of the stage, else the previous one.
    fn fill_history_times(&self, state: &mut StageState) {
        let fallback = state
            .timed_entries
            .last()
            .map_or_else(|| self.started.clone(), |(_, t)| t.clone());
        for index in state.first_entry..state.config.history.len() {
            if state.config.history[index].created.is_some() {
                continue;
            }
            let time = state
                .timed_entries
                .iter()
                .find(|(entry, _)| *entry >= index)
                .map_or_else(|| fallback.clone(), |(_, t)| t.clone());
            state.config.history[index].created = Some(time);
        }
        state.config.created = state
            .config
            .history
            .last()
            .and_then(|h| h.created.clone())
            .or(Some(self.started.clone()));
    }
}

/// Prepared root filesystems of stages and images, for bind mounts; dropped (unmounted) after the step.
struct StageRoots<'e> {
    engine: &'e Engine<'e>,
    prepared: std::cell::RefCell<Vec<Snapshot>>,
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

/// COPY and ADD share their handling.
enum CopyLike<'a> {
    Copy(&'a Copy),
    Add(&'a Add),
}

impl CopyLike<'_> {
    fn name(&self) -> &'static str {
        match self {
            CopyLike::Copy(_) => "COPY",
            CopyLike::Add(_) => "ADD",
        }
    }

    fn is_add(&self) -> bool {
        matches!(self, CopyLike::Add(_))
    }

    #[allow(clippy::type_complexity)]
    fn parts(&self) -> (&[Source], &str, Option<&str>, Option<&str>, &[String]) {
        match self {
            CopyLike::Copy(c) => (
                &c.sources,
                &c.destination,
                c.chown.as_deref(),
                c.chmod.as_deref(),
                &c.excludes,
            ),
            CopyLike::Add(a) => (
                &a.sources,
                &a.destination,
                a.chown.as_deref(),
                a.chmod.as_deref(),
                &a.excludes,
            ),
        }
    }

    fn from(&self) -> Option<&str> {
        match self {
            CopyLike::Copy(c) => c.from.as_deref(),
            CopyLike::Add(_) => None,
        }
    }

    fn parents(&self) -> bool {
        match self {
            CopyLike::Copy(c) => c.parents,
            CopyLike::Add(_) => false,
        }
    }

    fn checksum(&self) -> Option<Digest> {
        match self {
            CopyLike::Add(a) => a.checksum.as_deref().and_then(|c| c.parse().ok()),
            CopyLike::Copy(_) => None,
        }
    }
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A heredoc's text as the file or script gets it: with `<<-`, leading tabs are stripped from every line.
fn heredoc_content(heredoc: &lade_dockerfile::Heredoc) -> String {
    if heredoc.chomp {
        let lines: Vec<&str> = heredoc
            .content
            .lines()
            .map(|l| l.trim_start_matches('\t'))
            .collect();
        lines.join("\n") + "\n"
    } else {
        heredoc.content.clone()
    }
}

/// The command a RUN executes: exec form as is; shell form through SHELL; a heredoc-only command as a script.
fn run_args(state: &StageState, run: &Run) -> Result<Vec<String>, StepError> {
    match (&run.command, run.heredocs.as_slice()) {
        (command, []) => Ok(state.command_args(command)),
        (CommandLine::Shell(text), [heredoc])
            if text.trim_start().starts_with("<<") && !text.trim().contains(' ') =>
        {
            let content = heredoc_content(heredoc);
            let mut args = state.shell();
            args.push(content);
            Ok(args)
        }
        _ => Err(StepError::Unsupported(
            "RUN heredocs are supported as the whole command (RUN <<EOF … EOF) only".into(),
        )),
    }
}

/// A base image's config as BuildKit carries it into a build: only the fields of the OCI image config and Docker's
/// build-relevant extensions (Healthcheck, OnBuild, Shell, ArgsEscaped); the rest (`container_config`,
/// `docker_version`, `Hostname`, …) is dropped.
fn known_fields_only(mut config: ImageConfig) -> ImageConfig {
    config.extra.clear();
    if let Some(inner) = config.config.as_mut() {
        inner.extra.clear();
        // Go's `omitempty`: empty strings and collections are not written.
        for text in [
            &mut inner.user,
            &mut inner.working_dir,
            &mut inner.stop_signal,
        ] {
            if text.as_deref() == Some("") {
                *text = None;
            }
        }
        for list in [
            &mut inner.env,
            &mut inner.entrypoint,
            &mut inner.cmd,
            &mut inner.on_build,
            &mut inner.shell,
        ] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                *list = None;
            }
        }
        for map in [&mut inner.exposed_ports, &mut inner.volumes] {
            if map.as_ref().is_some_and(|m| m.is_empty()) {
                *map = None;
            }
        }
        if inner.labels.as_ref().is_some_and(|m| m.is_empty()) {
            inner.labels = None;
        }
        if let Some(healthcheck) = inner.healthcheck.as_mut() {
            healthcheck.extra.clear();
        }
    }
    config.rootfs.extra.clear();
    for step in &mut config.history {
        step.extra.clear();
    }
    config
}

/// Chains a metadata instruction into the cache key, so later steps depend on it.
fn chain(key: &Digest, text: &str) -> Digest {
    Digest::sha256_of(format!("{key}\n{text}").as_bytes())
}

/// The instruction as written (continuations joined), as progress shows it.
fn instruction_text(source: &str, instruction: &Instruction) -> String {
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
