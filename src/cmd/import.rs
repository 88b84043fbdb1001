//! `lade import FILE|- [REPOSITORY[:TAG]]`: a root filesystem tarball becomes a one-layer image, with `--change`
//! applying Dockerfile instructions to its config as `docker import` does.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use layerstore::config::ContainerConfig;
use layerstore::import::{import_rootfs, ImportOptions};
use layerstore::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
    /// USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Commit message for the imported image's history.
    #[arg(short, long)]
    message: Option<String>,
    /// The tarball (plain, gzip or zstd), or - for stdin.
    file: PathBuf,
    /// The name to give the image.
    reference: Option<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let names = match &args.reference {
        Some(reference) => vec![Reference::parse_tagged(reference)?],
        None => Vec::new(),
    };
    let mut config = ContainerConfig::default();
    for change in &args.changes {
        apply_change(&mut config, change).with_context(|| format!("--change {change:?}"))?;
    }
    let source = if args.file.as_os_str() == "-" {
        "-".to_string()
    } else {
        args.file.display().to_string()
    };
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now formats");
    let options = ImportOptions {
        config,
        created,
        comment: args
            .message
            .unwrap_or_else(|| format!("Imported from {source}")),
    };
    let input = super::open_input(Some(&args.file))?;
    let (_, id) = import_rootfs(&store, input, options, &names)?;
    println!("{id}");
    Ok(())
}

/// Applies one `--change` instruction.
fn apply_change(config: &mut ContainerConfig, change: &str) -> anyhow::Result<()> {
    let (instruction, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    match instruction.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command_form(rest)?),
        "ENTRYPOINT" => config.entrypoint = Some(command_form(rest)?),
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (key, value) in key_values(rest)? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                env.push(format!("{key}={value}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(Default::default);
            labels.extend(key_values(rest)?);
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(Default::default);
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_string() } else { format!("{port}/tcp") };
                ports.insert(port, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let volumes = config.volumes.get_or_insert_with(Default::default);
            let paths = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(paths) => paths,
                Err(_) => rest.split_whitespace().map(str::to_string).collect(),
            };
            for path in paths {
                volumes.insert(path, serde_json::json!({}));
            }
        }
        "USER" => config.user = Some(rest.to_string()),
        "WORKDIR" => config.working_dir = Some(rest.to_string()),
        "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
        "ONBUILD" => config.on_build.get_or_insert_with(Vec::new).push(rest.to_string()),
        other => bail!("{other} is not a valid change command (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)"),
    }
    Ok(())
}

/// The exec form when the argument is a JSON array of strings, else the shell form `/bin/sh -c ARG`.
fn command_form(argument: &str) -> anyhow::Result<Vec<String>> {
    if argument.is_empty() {
        bail!("missing argument");
    }
    Ok(serde_json::from_str::<Vec<String>>(argument)
        .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), argument.to_string()]))
}

/// `K=V K2="V 2"` pairs, or the legacy single `K V` form.
fn key_values(argument: &str) -> anyhow::Result<Vec<(String, String)>> {
    let words = split_words(argument);
    if words.is_empty() {
        bail!("missing argument");
    }
    if !words[0].contains('=') {
        let (key, value) = argument
            .split_once(char::is_whitespace)
            .with_context(|| format!("{argument:?} needs a value"))?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("{word:?} is not of the form KEY=VALUE"),
        })
        .collect()
}

/// Splits on whitespace outside double or single quotes, removing the quotes.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut config = ContainerConfig::default();
        apply_change(&mut config, r#"CMD ["/bin/sh"]"#).unwrap();
        apply_change(&mut config, "ENV PATH=/usr/bin:/bin").unwrap();
        apply_change(&mut config, r#"LABEL a="b c" d=e"#).unwrap();
        apply_change(&mut config, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut config, "entrypoint echo hi").unwrap();
        assert_eq!(config.cmd.unwrap(), ["/bin/sh"]);
        assert_eq!(config.env.unwrap(), ["PATH=/usr/bin:/bin"]);
        assert_eq!(config.labels.unwrap()["a"], "b c");
        assert!(config.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(config.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert!(apply_change(&mut ContainerConfig::default(), "RUN x").is_err());
    }
}
