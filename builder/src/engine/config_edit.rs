//! How the config-only instructions change an image config — ENV, LABEL, MAINTAINER, EXPOSE, VOLUME, USER,
//! STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD, and the config half of WORKDIR — and the history text
//! BuildKit records for each. Build steps use `apply`; [`apply_changes`] gives `lade import --change` the very same
//! semantics, as Docker's `--change` does (the change is parsed as a Dockerfile line and its variables expanded
//! against the image's environment).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use layerstore::config::{ContainerConfig, Healthcheck as ConfigHealthcheck, ImageConfig};

use super::history;
use lade_dockerfile::check_stop_signal;
use lade_dockerfile::parse_instruction;
use lade_dockerfile::{Command, CommandLine, Healthcheck};
use lade_dockerfile::{Dockerfile, Lexer};

/// The instructions Docker accepts as `--change`.
const CHANGE_INSTRUCTIONS: [&str; 11] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A `--change` that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("invalid change {change:?}: {reason}")]
pub struct ChangeError {
    /// The `--change` as given.
    pub(crate) change: String,
    /// Why it cannot be applied.
    pub(crate) reason: String,
}

/// What a config-only instruction did.
pub(crate) struct Edited {
    /// The history entry's `created_by` (ONBUILD records none).
    pub history: Option<String>,
}

/// Applies a config-only instruction (its variables already expanded); `Ok(None)` when `command` is not one (ARG,
/// WORKDIR, RUN, COPY, ADD, FROM). `cmd_set` says whether CMD was set in this stage: ENTRYPOINT clears an inherited
/// CMD, not one set in the same stage.
pub(crate) fn apply(
    config: &mut ImageConfig,
    command: &Command,
    cmd_set: &mut bool,
) -> Result<Option<Edited>, String> {
    let history = match command {
        Command::Env(env) => {
            for variable in &env.variables {
                set_env(config, &variable.key, &variable.value);
            }
            let pairs: Vec<String> = env
                .variables
                .iter()
                .map(|v| format!("{}={}", v.key, v.value))
                .collect();
            Some(format!("ENV {}", pairs.join(" ")))
        }
        Command::Label(label) => {
            let labels = container(config)
                .labels
                .get_or_insert_with(Default::default);
            for pair in &label.labels {
                labels.insert(pair.key.clone(), pair.value.clone());
            }
            let pairs: Vec<String> = label
                .labels
                .iter()
                .map(|v| format!("{}={}", v.key, v.value))
                .collect();
            Some(format!("LABEL {}", pairs.join(" ")))
        }
        Command::Maintainer(maintainer) => {
            config.author = Some(maintainer.name.clone());
            Some(format!("MAINTAINER {}", maintainer.name))
        }
        Command::Expose(expose) => {
            let mut these = BTreeMap::new();
            for key in expose.port_ranges()?.iter().flat_map(|r| r.config_keys()) {
                these.insert(key, serde_json::json!({}));
            }
            let ports = container(config)
                .exposed_ports
                .get_or_insert_with(Default::default);
            ports.extend(these.clone());
            Some(format!("EXPOSE {}", history::go_set(&these)))
        }
        Command::Volume(volume) => {
            if volume.paths.iter().any(String::is_empty) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            let volumes = container(config)
                .volumes
                .get_or_insert_with(Default::default);
            for path in &volume.paths {
                volumes.insert(path.clone(), serde_json::json!({}));
            }
            Some(format!("VOLUME {}", history::go_list(&volume.paths)))
        }
        Command::User(user) => {
            container(config).user = Some(user.user.clone());
            Some(format!("USER {}", user.user))
        }
        Command::StopSignal(signal) => {
            check_stop_signal(&signal.signal)?;
            container(config).stop_signal = Some(signal.signal.clone());
            Some(format!("STOPSIGNAL {}", signal.signal))
        }
        Command::Shell(shell) => {
            container(config).shell = Some(shell.shell.clone());
            Some(format!("SHELL {}", history::go_list(&shell.shell)))
        }
        Command::Cmd(cmd) => {
            let args = command_args(config, &cmd.command);
            container(config).cmd = Some(args.clone());
            container(config).args_escaped = Some(true);
            *cmd_set = true;
            Some(format!("CMD {}", history::go_quoted_list(&args)))
        }
        Command::Entrypoint(entrypoint) => {
            let args = command_args(config, &entrypoint.command);
            container(config).entrypoint = Some(args.clone());
            if !*cmd_set {
                container(config).cmd = None;
            }
            Some(format!("ENTRYPOINT {}", history::go_quoted_list(&args)))
        }
        Command::Healthcheck(healthcheck) => {
            let (healthcheck, created_by) = healthcheck_config(healthcheck);
            container(config).healthcheck = Some(healthcheck);
            Some(created_by)
        }
        Command::Onbuild(onbuild) => {
            container(config)
                .on_build
                .get_or_insert_with(Vec::new)
                .push(onbuild.expression.clone());
            None
        }
        Command::Arg(_)
        | Command::Workdir(_)
        | Command::Run(_)
        | Command::Copy(_)
        | Command::Add(_)
        | Command::From(_) => return Ok(None),
    };
    Ok(Some(Edited { history }))
}

/// Applies Docker `--change` instructions, in order, to `config`.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), ChangeError> {
    let mut cmd_set = false;
    for change in changes {
        let fail = |reason: String| ChangeError {
            change: change.clone(),
            reason,
        };
        let dockerfile = Dockerfile::parse(change, "--change").map_err(|e| fail(e.to_string()))?;
        let [node] = dockerfile.nodes.as_slice() else {
            return Err(fail("give exactly one instruction".into()));
        };
        let name = node.instruction_name().to_ascii_uppercase();
        if !CHANGE_INSTRUCTIONS.contains(&name.as_str()) {
            return Err(fail(format!(
                "{name} is not a valid change command (use one of {})",
                CHANGE_INSTRUCTIONS.join(", ")
            )));
        }
        let instruction = parse_instruction(node, &mut Vec::new()).map_err(|e| fail(e.message))?;
        let command = match instruction.command.expands_words() {
            true => instruction
                .command
                .expand(&Lexer::new(dockerfile.directives.escape), &env(config))
                .map_err(|e| fail(e.to_string()))?,
            false => instruction.command,
        };
        match &command {
            Command::Workdir(workdir) => {
                set_workdir(config, &workdir.path);
            }
            command => {
                apply(config, command, &mut cmd_set).map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn container(config: &mut ImageConfig) -> &mut ContainerConfig {
    config.container_config_mut()
}

/// The config's environment as `(key, value)` pairs, in order.
pub(crate) fn env(config: &ImageConfig) -> Vec<(String, String)> {
    config
        .config
        .as_ref()
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.clone(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `key` in the environment, in place when it is already there.
pub(crate) fn set_env(config: &mut ImageConfig, key: &str, value: &str) {
    let env = container(config).env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// USER, when set.
pub(crate) fn user(config: &ImageConfig) -> Option<String> {
    config
        .config
        .as_ref()
        .and_then(|c| c.user.clone())
        .filter(|u| !u.is_empty())
}

/// The working directory, `/` when unset.
pub(crate) fn workdir(config: &ImageConfig) -> PathBuf {
    config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.as_deref())
        .filter(|w| !w.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Sets the working directory; returns it. An absolute path is kept as written, a relative one is joined to the
/// current directory and cleaned (BuildKit's `path.Join`).
pub(crate) fn set_workdir(config: &mut ImageConfig, path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        normalize(&workdir(config).join(path))
    };
    container(config).working_dir = Some(path.clone());
    path
}

/// The shell that runs shell-form commands (SHELL, else `/bin/sh -c`).
pub(crate) fn shell(config: &ImageConfig) -> Vec<String> {
    config
        .config
        .as_ref()
        .and_then(|c| c.shell.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// A command's argv: exec form as written, shell form run by the config's shell.
pub(crate) fn command_args(config: &ImageConfig, command: &CommandLine) -> Vec<String> {
    match command {
        CommandLine::Exec(args) => args.clone(),
        CommandLine::Shell(text) => {
            let mut args = shell(config);
            args.push(text.clone());
            args
        }
    }
}

/// An absolute path with `.` and `..` resolved lexically.
pub(crate) fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// The health check config and BuildKit's history text for it.
fn healthcheck_config(healthcheck: &Healthcheck) -> (ConfigHealthcheck, String) {
    use std::time::Duration;
    match healthcheck {
        Healthcheck::None => {
            let test = vec!["NONE".to_string()];
            let created_by =
                history::healthcheck(&test, Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
            (
                ConfigHealthcheck {
                    test: Some(test),
                    ..ConfigHealthcheck::default()
                },
                created_by,
            )
        }
        Healthcheck::Check {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match command {
                CommandLine::Exec(args) => std::iter::once("CMD".to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                CommandLine::Shell(text) => vec!["CMD-SHELL".to_string(), text.clone()],
            };
            let nanos =
                |d: &Option<Duration>| d.filter(|d| !d.is_zero()).map(|d| d.as_nanos() as i64);
            let created_by = history::healthcheck(
                &test,
                interval.unwrap_or_default(),
                timeout.unwrap_or_default(),
                start_period.unwrap_or_default(),
                retries.unwrap_or(0),
            );
            (
                ConfigHealthcheck {
                    test: Some(test),
                    interval: nanos(interval),
                    timeout: nanos(timeout),
                    start_period: nanos(start_period),
                    start_interval: nanos(start_interval),
                    retries: retries.filter(|r| *r != 0).map(i64::from),
                    ..ConfigHealthcheck::default()
                },
                created_by,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> ContainerConfig {
        let mut config = ImageConfig::default();
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        apply_changes(&mut config, &changes).unwrap();
        config.config.unwrap_or_default()
    }

    #[test]
    fn changes_apply_like_docker_import() {
        let config = changed(&[
            r#"CMD ["/bin/sh"]"#,
            "ENV PATH=/usr/bin:/bin",
            r#"LABEL a="b c" d=e"#,
            "EXPOSE 80 53/udp",
            "entrypoint echo hi",
        ]);
        assert_eq!(config.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(config.env.unwrap(), ["PATH=/usr/bin:/bin"]);
        assert_eq!(config.labels.unwrap()["a"], "b c");
        assert!(config.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(config.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
    }

    #[test]
    fn changes_expand_variables_and_take_every_change_instruction() {
        let config = changed(&[
            "ENV APP=/srv/app",
            "WORKDIR $APP",
            "WORKDIR data",
            "USER ${NOBODY:-65534}",
            "HEALTHCHECK --interval=5s CMD true",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo later",
        ]);
        assert_eq!(config.working_dir.as_deref(), Some("/srv/app/data"));
        assert_eq!(config.user.as_deref(), Some("65534"));
        let healthcheck = config.healthcheck.unwrap();
        assert_eq!(healthcheck.test.unwrap(), ["CMD-SHELL", "true"]);
        assert_eq!(healthcheck.interval, Some(5_000_000_000));
        assert!(config.volumes.unwrap().contains_key("/data"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(config.on_build.unwrap(), ["RUN echo later"]);
    }

    #[test]
    fn bad_changes_are_refused_with_the_reason() {
        let mut config = ImageConfig::default();
        for (change, reason) in [
            ("RUN x", "RUN is not a valid change command"),
            ("FROM scratch", "FROM is not a valid change command"),
            ("EXPOSE 80/nope", "nope"),
            ("STOPSIGNAL SIGFOO", "Invalid signal: SIGFOO"),
            ("STOPSIGNAL $UNSET", "Invalid signal: "),
            ("VOLUME \"\"", "VOLUME specified can not be an empty string"),
            ("BOGUS x", "BOGUS is not a valid change command"),
        ] {
            let error = apply_changes(&mut config, &[change.to_string()]).unwrap_err();
            assert!(error.to_string().contains(reason), "{change}: {error}");
        }
    }
}
