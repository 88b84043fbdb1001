//! Step planning, pure: for an instruction and the [`StageEnv`] before it, a [`StepPlan`] says what the step is —
//! the stage's env after it (config edited, variables set, cache key chained), the history text BuildKit records,
//! and, for a step that makes a layer, its cache inputs, key and the [`Work`] to do on a miss. Nothing here reads
//! the filesystem or runs anything: what a plan needs from outside (COPY sources' checksums, downloaded URLs'
//! digests, a `COPY --from` stage's recipe) comes in as [`SourceDigests`], and the digest of the layers the stage
//! has so far is in the [`StageEnv`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use layerstore::Digest;

use super::cache::{Inputs, StepCache};
use super::config_edit;
use super::history::{self, BUILDKIT_SUFFIX};
use super::mounts;
use super::state::{set_var, StageEnv};
use super::StepError;
use crate::copy::{self, CopyOptions};
use crate::runtime::{Entitlements, ExtraHost, Network, Security};
use lade_dockerfile::Heredoc;
use lade_dockerfile::{
    Add, Arg, Command, CommandLine, Copy, Mount, NetworkMode, Run, SecurityMode, Source,
};

#[cfg(test)]
mod tests;

/// The default PATH BuildKit gives `FROM scratch` images and RUN steps without one.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The build-wide settings steps are planned with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanSettings<'a> {
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// The global ARGs' values (an ARG in a stage without a value of its own takes it).
    pub global_env: &'a [(String, String)],
    /// Proxy build args, which RUN gets without a declaration.
    pub proxy_env: &'a [(String, String)],
    /// `--network`: RUN's network unless `RUN --network` says otherwise.
    pub network: Network,
    /// `--add-host` entries.
    pub extra_hosts: &'a [ExtraHost],
    /// `--security-opt`.
    pub security: &'a Security,
    /// `--allow`.
    pub entitlements: &'a Entitlements,
}

/// What one step is, decided before anything runs.
#[derive(Debug, Clone)]
pub(crate) struct StepPlan {
    /// The stage's env after the step (its key is the step's key for a layer step, the chained key otherwise).
    pub env: StageEnv,
    /// The history entry's `created_by`; `None` for a step that records none (ONBUILD).
    pub history: Option<String>,
    /// For a step that makes a layer: its cache inputs and work; `None` for a config-only step.
    pub layer: Option<LayerPlan>,
}

/// A layer step: looked up in the cache by `key`, else `work` is done in a snapshot and committed.
#[derive(Debug, Clone)]
pub(crate) struct LayerPlan {
    /// The inputs the key is made of (the parent's key among them), kept to explain the next miss.
    pub inputs: Inputs,
    /// The step's cache key.
    pub key: Digest,
    /// What the step does on a miss.
    pub work: Work,
}

/// What a layer step does in its snapshot.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// WORKDIR: creates the directory (and missing parents) as the current USER.
    Workdir { path: String, user: Option<String> },
    /// RUN.
    Run(RunWork),
    /// COPY or ADD.
    Copy(CopyWork),
}

/// The container a RUN step runs.
#[derive(Debug, Clone)]
pub(crate) struct RunWork {
    /// The command's argv.
    pub args: Vec<String>,
    /// Its environment, in order.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub workdir: PathBuf,
    /// USER, when set.
    pub user: Option<String>,
    /// Its network.
    pub network: Network,
    /// `--add-host` entries.
    pub extra_hosts: Vec<ExtraHost>,
    /// `--mount`s.
    pub mounts: Vec<Mount>,
    /// Its sandbox.
    pub security: Security,
}

/// What a COPY or ADD copies, and how.
#[derive(Debug, Clone)]
pub(crate) struct CopyWork {
    /// The flags of the copy.
    pub options: CopyOptions,
    /// The destination as written.
    pub destination: String,
    /// Source paths (in the context, a stage, or the heredoc directory), heredocs by name.
    pub paths: Vec<String>,
    /// ADD's URL sources.
    pub urls: Vec<String>,
    /// Heredoc sources: name and content, written as files the copy reads from.
    pub heredocs: Vec<(String, String)>,
    /// `COPY --from`.
    pub from: Option<String>,
    /// `ADD --checksum`.
    pub checksum: Option<Digest>,
}

/// The outside facts a COPY's key depends on, gathered by the step's execution before it is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceDigests {
    /// The selected context sources' checksum, or `stage <recipe>` for `COPY --from`.
    pub sources: String,
    /// Each URL with the digest of what it gave.
    pub urls: Vec<(String, Digest)>,
}

/// COPY and ADD, seen alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopySpec<'a> {
    /// `COPY` or `ADD`.
    pub name: &'static str,
    /// The sources as written.
    pub sources: &'a [Source],
    /// The destination as written.
    pub destination: &'a str,
    /// `--chown`.
    pub chown: Option<&'a str>,
    /// `--chmod`, as written.
    pub chmod: Option<&'a str>,
    /// `--exclude` patterns.
    pub excludes: &'a [String],
    /// `COPY --from`.
    pub from: Option<&'a str>,
    /// `COPY --parents`.
    pub parents: bool,
    /// `ADD --checksum`.
    pub checksum: Option<&'a str>,
    /// ADD: URLs are fetched and local archives unpacked.
    pub is_add: bool,
}

impl<'a> From<&'a Copy> for CopySpec<'a> {
    fn from(copy: &'a Copy) -> Self {
        CopySpec {
            name: "COPY",
            sources: &copy.sources,
            destination: &copy.destination,
            chown: copy.chown.as_deref(),
            chmod: copy.chmod.as_deref(),
            excludes: &copy.excludes,
            from: copy.from.as_deref(),
            parents: copy.parents,
            checksum: None,
            is_add: false,
        }
    }
}

impl<'a> From<&'a Add> for CopySpec<'a> {
    fn from(add: &'a Add) -> Self {
        CopySpec {
            name: "ADD",
            sources: &add.sources,
            destination: &add.destination,
            chown: add.chown.as_deref(),
            chmod: add.chmod.as_deref(),
            excludes: &add.excludes,
            from: None,
            parents: false,
            checksum: add.checksum.as_deref(),
            is_add: true,
        }
    }
}

/// Plans any instruction but COPY and ADD (see [`copy_work`] and [`copy`]) and FROM.
pub(crate) fn step(
    settings: &PlanSettings<'_>,
    env: &StageEnv,
    command: &Command,
) -> Result<StepPlan, StepError> {
    match command {
        Command::Arg(arg) => Ok(self::arg(settings, env, arg)),
        Command::Workdir(workdir) => Ok(self::workdir(env, &workdir.path)),
        Command::Run(run) => self::run(settings, env, run),
        command => metadata(env, command),
    }
}

/// ARG: the variables get their values (build arg, else default, else the global ARG's); one history entry for
/// the line; the key chains its text.
fn arg(settings: &PlanSettings<'_>, env: &StageEnv, arg: &Arg) -> StepPlan {
    let mut next = env.clone();
    let mut written = Vec::new();
    for declaration in &arg.declarations {
        let value = settings
            .build_args
            .get(&declaration.name)
            .cloned()
            .or_else(|| declaration.default.clone())
            .or_else(|| {
                settings
                    .global_env
                    .iter()
                    .rev()
                    .find(|(k, _)| k == &declaration.name)
                    .map(|(_, v)| v.clone())
            });
        if let Some(value) = &value {
            set_var(&mut next.vars, &declaration.name, value.clone());
        }
        next.args.retain(|(k, _)| k != &declaration.name);
        next.args.push((declaration.name.clone(), value));
        written.push(match &declaration.default {
            Some(default) => format!("{}={default}", declaration.name),
            None => declaration.name.clone(),
        });
    }
    let created_by = format!("ARG {}", written.join(" "));
    next.chain(&created_by);
    StepPlan {
        env: next,
        history: Some(created_by),
        layer: None,
    }
}

/// WORKDIR: a config edit, and a layer with the directory unless it is `/` (BuildKit makes no directory, and so no
/// layer, for the root).
fn workdir(env: &StageEnv, written: &str) -> StepPlan {
    let mut next = env.clone();
    let path = config_edit::set_workdir(&mut next.config, written);
    let created_by = format!("WORKDIR {path}");
    if path == "/" {
        next.chain(&created_by);
        return StepPlan {
            env: next,
            history: Some(created_by),
            layer: None,
        };
    }
    let user = config_edit::user(&next.config);
    let mut inputs = Inputs::new();
    inputs.insert("instruction", created_by.clone());
    inputs.insert("user", user.clone().unwrap_or_default());
    layer(next, created_by, inputs, Work::Workdir { path, user })
}

/// A layer step's plan: its key is made of its inputs, the parent's key and the layers it runs on (after a rebuild
/// gave a step another result — `--no-cache`, a non-deterministic RUN — later steps built on the old result must not
/// be reused on the new one); its recipe of the inputs and the parent's recipe.
fn layer(mut next: StageEnv, created_by: String, mut inputs: Inputs, work: Work) -> StepPlan {
    inputs.insert("parent", next.recipe.to_string());
    next.recipe = StepCache::key(&inputs);
    inputs.insert("parent", next.key.to_string());
    inputs.insert("parent layers", next.layers.to_string());
    let key = StepCache::key(&inputs);
    next.key = key.clone();
    StepPlan {
        env: next,
        history: Some(created_by),
        layer: Some(LayerPlan { inputs, key, work }),
    }
}

/// The command a RUN executes: exec form as is; shell form through SHELL; a heredoc-only command as a script.
fn run_command(env: &StageEnv, run: &Run) -> Result<Vec<String>, StepError> {
    match (&run.command, run.heredocs.as_slice()) {
        (command, []) => Ok(env.command_args(command)),
        (CommandLine::Shell(text), [heredoc])
            if text.trim_start().starts_with("<<") && !text.trim().contains(' ') =>
        {
            let mut args = env.shell();
            args.push(heredoc_content(heredoc));
            Ok(args)
        }
        _ => Err(StepError::Unsupported(
            "RUN heredocs are supported as the whole command (RUN <<EOF … EOF) only".into(),
        )),
    }
}

/// RUN's environment: the proxy build args, then the stage's variables, then the default PATH and the SSH agent's
/// socket when missing.
fn run_env(settings: &PlanSettings<'_>, env: &StageEnv, run: &Run) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = settings.proxy_env.to_vec();
    for (key, value) in &env.vars {
        vars.retain(|(k, _)| k != key);
        vars.push((key.clone(), value.clone()));
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if let Some(socket) = mounts::ssh_auth_sock(&run.mounts, &env.workdir()) {
        if !vars.iter().any(|(k, _)| k == "SSH_AUTH_SOCK") {
            vars.push(("SSH_AUTH_SOCK".into(), socket));
        }
    }
    vars
}

/// RUN: a layer keyed by the command, the environment, user, working directory, network, hosts, mounts (as written)
/// and sandbox; `--network=host` and `--security=insecure` need their entitlements.
fn run(settings: &PlanSettings<'_>, env: &StageEnv, run: &Run) -> Result<StepPlan, StepError> {
    let args = run_command(env, run)?;
    let created_by = history::run(&args, &env.run_args());
    let vars = run_env(settings, env, run);
    let network = match run.network {
        Some(NetworkMode::None) => Network::None,
        Some(NetworkMode::Host) => Network::Host,
        Some(NetworkMode::Default) | None => settings.network,
    };
    let insecure = run.security == Some(SecurityMode::Insecure);
    settings
        .entitlements
        .check_run(run.network == Some(NetworkMode::Host), insecure)?;
    let security = Security {
        insecure,
        ..settings.security.clone()
    };
    let workdir = env.workdir();
    let user = config_edit::user(&env.config);
    let mut inputs = Inputs::new();
    inputs.insert("instruction", created_by.clone());
    let lines: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    inputs.insert("env", lines.join("\n"));
    inputs.insert("user", user.clone().unwrap_or_default());
    inputs.insert("workdir", workdir.display().to_string());
    inputs.insert("network", format!("{network:?}"));
    if !settings.extra_hosts.is_empty() {
        let hosts: Vec<String> = settings
            .extra_hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        inputs.insert("hosts", hosts.join("\n"));
    }
    inputs.insert("mounts", run.mount_specs.join("\n"));
    if let Some(sandbox) = security.cache_input() {
        inputs.insert("security", sandbox);
    }
    let work = Work::Run(RunWork {
        args,
        env: vars,
        workdir,
        user,
        network,
        extra_hosts: settings.extra_hosts.to_vec(),
        mounts: run.mounts.clone(),
        security,
    });
    Ok(layer(env.clone(), created_by, inputs, work))
}

/// The config-only instructions: the config edit and history text of [`config_edit::apply`]; ENV, USER and SHELL
/// also chain into the key, since later RUN steps see them, and ENV sets variables.
fn metadata(env: &StageEnv, command: &Command) -> Result<StepPlan, StepError> {
    let mut next = env.clone();
    let edited = config_edit::apply(&mut next.config, command, &mut next.cmd_set)
        .map_err(StepError::Unsupported)?
        .ok_or_else(|| {
            StepError::Unsupported(format!("{} is not a config instruction", command.name()))
        })?;
    let key_text = match command {
        Command::Shell(shell) => Some(format!("SHELL {:?}", shell.shell)),
        Command::Env(_) | Command::User(_) => edited.history.clone(),
        _ => None,
    };
    if let Some(key_text) = key_text {
        next.chain(&key_text);
    }
    if let Command::Env(variables) = command {
        for variable in &variables.variables {
            set_var(&mut next.vars, &variable.key, variable.value.clone());
        }
    }
    Ok(StepPlan {
        env: next,
        history: edited.history,
        layer: None,
    })
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A heredoc's text as the file or script gets it: with `<<-`, leading tabs are stripped from every line.
pub(crate) fn heredoc_content(heredoc: &Heredoc) -> String {
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

/// What a COPY or ADD copies: its sources sorted into paths, URLs and heredocs, and its options. Heredocs cannot be
/// mixed with URLs.
pub(crate) fn copy_work(env: &StageEnv, spec: &CopySpec<'_>) -> Result<CopyWork, StepError> {
    let options = CopyOptions {
        chown: spec.chown.map(str::to_string),
        chmod: spec.chmod.and_then(copy::parse_chmod),
        excludes: spec.excludes.to_vec(),
        parents: spec.parents,
        workdir: env.workdir(),
        unpack_archives: spec.is_add,
    };
    let mut work = CopyWork {
        options,
        destination: spec.destination.to_string(),
        paths: Vec::new(),
        urls: Vec::new(),
        heredocs: Vec::new(),
        from: spec.from.map(str::to_string),
        checksum: spec.checksum.and_then(|c| c.parse().ok()),
    };
    for source in spec.sources {
        match source {
            Source::Path(path) if spec.is_add && is_url(path) => work.urls.push(path.clone()),
            Source::Path(path) => work.paths.push(path.clone()),
            Source::Heredoc(heredoc) => {
                work.heredocs
                    .push((heredoc.name.clone(), heredoc_content(heredoc)));
                work.paths.push(heredoc.name.clone());
            }
        }
    }
    if !work.heredocs.is_empty() && work.paths.len() != spec.sources.len() {
        return Err(StepError::Unsupported(
            "mixing heredocs with other sources is not supported".into(),
        ));
    }
    Ok(work)
}

/// COPY or ADD: a layer keyed by the instruction and its flags, the working directory, the sources' checksum and
/// the URLs' digests.
pub(crate) fn copy(
    env: &StageEnv,
    spec: &CopySpec<'_>,
    work: CopyWork,
    digests: &SourceDigests,
) -> StepPlan {
    let words: Vec<String> = spec
        .sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => p.clone(),
            Source::Heredoc(h) => format!("<<{}", h.name),
        })
        .chain(std::iter::once(spec.destination.to_string()))
        .collect();
    let created_by = format!("{} {}{BUILDKIT_SUFFIX}", spec.name, words.join(" "));
    let options = &work.options;
    let mut inputs = Inputs::new();
    inputs.insert(
        "instruction",
        format!(
            "{created_by} chown={:?} chmod={:?} exclude={:?} parents={} workdir={}",
            spec.chown,
            options.chmod,
            spec.excludes,
            options.parents,
            options.workdir.display()
        ),
    );
    inputs.insert("sources", digests.sources.clone());
    if !digests.urls.is_empty() {
        let urls: String = digests
            .urls
            .iter()
            .map(|(url, digest)| format!("{url}={digest}\n"))
            .collect();
        inputs.insert("urls", urls);
    }
    layer(env.clone(), created_by, inputs, Work::Copy(work))
}
