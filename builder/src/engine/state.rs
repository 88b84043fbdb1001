//! The state of the stage being built: the pure part that planning reads and every step replaces ([`StageEnv`]),
//! and what the executed steps accumulate beside it ([`StageState`]).

use std::path::PathBuf;

use layerstore::config::{History, ImageConfig};
use layerstore::Digest;

use super::cache::CacheRecord;
use super::config_edit;
use super::history::BUILDKIT_COMMENT;
use crate::snapshot::LayerRef;
use lade_dockerfile::CommandLine;

/// What a step can see and change, as plain data: the image config, the cache key so far, the build args and
/// variables in scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StageEnv {
    /// The image config (its history included).
    pub config: ImageConfig,
    /// The cache key so far: the steps and the layers they gave, so that a step is reused only on the layers it was
    /// built on.
    pub key: Digest,
    /// The steps so far without their results: what `COPY --from` of this stage depends on (the copied layer is a
    /// snapshot, consistent whatever the stage gave when it was made, as BuildKit keys it on content not history).
    pub recipe: Digest,
    /// The digest of the stage's layers so far ([`layer_chain`]), set as each layer step's layer becomes known.
    pub layers: Digest,
    /// Build args declared in the stage, in order, with their values (`None`: declared without a value).
    pub args: Vec<(String, Option<String>)>,
    /// The variables instructions expand and RUN sees, kept as BuildKit's LLB state keeps them: the base's (an
    /// image's ENV, or everything a base stage had), then each ARG that has a value and each ENV, in order, the later
    /// one winning. ARG values live here and never in the config.
    pub vars: Vec<(String, String)>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl StageEnv {
    /// A stage's starting point: a base's config, key, recipe, layers and variables.
    pub fn new(
        config: ImageConfig,
        (key, recipe): (Digest, Digest),
        layers: &[LayerRef],
        vars: Vec<(String, String)>,
    ) -> StageEnv {
        StageEnv {
            config,
            key,
            recipe,
            layers: layer_chain(layers),
            args: Vec::new(),
            vars,
            cmd_set: false,
        }
    }

    /// The working directory, `/` when unset.
    pub fn workdir(&self) -> PathBuf {
        config_edit::workdir(&self.config)
    }

    /// The shell of shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        config_edit::shell(&self.config)
    }

    /// A command's argv under the current SHELL.
    pub fn command_args(&self, command: &CommandLine) -> Vec<String> {
        config_edit::command_args(&self.config, command)
    }

    /// The stage's build args as RUN's history records them: each with its variable's current value (an ENV or a
    /// later ARG may have changed it, or a base stage set it), else `""`.
    pub fn run_args(&self) -> Vec<(String, String)> {
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

    /// A step that changes the state but makes no layer: its text chains into the key and the recipe.
    pub fn chain(&mut self, text: &str) {
        self.key = chain(&self.key, text);
        self.recipe = chain(&self.recipe, text);
    }

    /// Appends a history entry as BuildKit writes it; returns its index.
    pub fn add_history(&mut self, created_by: String, empty_layer: bool) -> usize {
        self.config.history.push(History {
            created_by: Some(created_by),
            comment: Some(BUILDKIT_COMMENT.to_string()),
            empty_layer,
            ..History::default()
        });
        self.config.history.len() - 1
    }
}

/// Sets a variable, moving it to the end as BuildKit's environment does.
pub(crate) fn set_var(vars: &mut Vec<(String, String)>, key: &str, value: String) {
    vars.retain(|(k, _)| k != key);
    vars.push((key.to_string(), value));
}

/// One digest for a stack of layers, bottom first, from their diff IDs.
pub(crate) fn layer_chain(layers: &[LayerRef]) -> Digest {
    let ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    Digest::sha256_of(ids.join("\n").as_bytes())
}

/// Chains a metadata instruction into a key, so later steps depend on it.
pub(crate) fn chain(key: &Digest, text: &str) -> Digest {
    Digest::sha256_of(format!("{key}\n{text}").as_bytes())
}

/// The stage being built: its [`StageEnv`] and what its executed steps made.
pub(crate) struct StageState {
    /// Config, key and variables.
    pub env: StageEnv,
    /// The layers so far, bottom first.
    pub layers: Vec<LayerRef>,
    /// Index in `env.config.history` of this stage's first entry.
    pub first_entry: usize,
    /// History entries that made (or looked up) a layer, with their creation time.
    pub timed_entries: Vec<(usize, String)>,
    /// The cache records of the stage's layers that the build made or looked up (a base image's have none).
    pub records: Vec<(Digest, CacheRecord)>,
}
