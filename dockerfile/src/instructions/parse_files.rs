//! The parsers of the instructions about files: COPY, ADD, VOLUME and WORKDIR (BuildKit's `parseCopy`,
//! `parseAdd`, `parseVolume`, `parseWorkdir`).

use crate::heredoc::parse_heredoc_marker;

use super::commands::*;
use super::context::Context;
use super::flags::FlagKind;
use super::parse::InstructionError;

/// `ADD [--chown=…] [--chmod=…] [--checksum=…] [--keep-git-dir] [--link] [--exclude=…]… SOURCE… DEST`.
pub(super) fn parse_add(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    use FlagKind::{Bool, String as Text, StringList};
    let flags = cx.flags(&[
        ("chown", Text),
        ("chmod", Text),
        ("checksum", Text),
        ("keep-git-dir", Bool),
        ("link", Bool),
        ("exclude", StringList),
    ])?;
    let (sources, destination) = sources_and_destination(cx)?;
    Ok(Command::Add(Add {
        sources,
        destination,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        link: flags.bool("link"),
        excludes: flags
            .list("exclude")
            .into_iter()
            .map(|(value, _)| value)
            .collect(),
    }))
}

/// `COPY [--from=…] [--chown=…] [--chmod=…] [--link] [--parents] [--exclude=…]… SOURCE… DEST`.
pub(super) fn parse_copy(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    use FlagKind::{Bool, String as Text, StringList};
    let flags = cx.flags(&[
        ("from", Text),
        ("chown", Text),
        ("chmod", Text),
        ("link", Bool),
        ("parents", Bool),
        ("exclude", StringList),
    ])?;
    let (sources, destination) = sources_and_destination(cx)?;
    Ok(Command::Copy(Copy {
        sources,
        destination,
        from: flags.string("from").filter(|from| !from.is_empty()),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags
            .list("exclude")
            .into_iter()
            .map(|(value, _)| value)
            .collect(),
    }))
}

/// COPY and ADD sources (paths, or the heredocs their markers name) and destination.
fn sources_and_destination(cx: &Context<'_>) -> Result<(Vec<Source>, String), InstructionError> {
    let args = cx.args();
    let Some((destination, sources)) = args.split_last().filter(|_| args.len() >= 2) else {
        let message = if args.len() == 1 {
            format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined.",
                cx.name
            )
        } else {
            format!("{} requires at least two arguments", cx.name)
        };
        return Err(cx.error(message, "SOURCE... DESTINATION"));
    };
    let mut heredocs = cx.heredocs.iter();
    let mut typed = Vec::with_capacity(sources.len());
    for source in sources {
        let is_marker = !cx.node.json && parse_heredoc_marker(source).is_some();
        match if is_marker { heredocs.next() } else { None } {
            Some(heredoc) => typed.push(Source::Heredoc(heredoc.clone())),
            None => typed.push(Source::Path(source.clone())),
        }
    }
    Ok((typed, destination.clone()))
}

/// `VOLUME path…` or `VOLUME ["path", …]`.
pub(super) fn parse_volume(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    if cx.args().is_empty() {
        return Err(cx.error("VOLUME requires at least one argument", "a path"));
    }
    if cx.args().iter().any(|path| path.trim().is_empty()) {
        return Err(cx.error("VOLUME specified can not be an empty string", "a path"));
    }
    Ok(Command::Volume(Volume {
        paths: cx.args().to_vec(),
    }))
}

/// `WORKDIR path`.
pub(super) fn parse_workdir(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    Ok(Command::Workdir(Workdir {
        path: cx.exactly_one()?,
    }))
}
