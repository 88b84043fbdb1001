//! The parsers of the instructions that name a command: RUN (with `--mount`, `--network`, `--security`), CMD,
//! ENTRYPOINT, SHELL and HEALTHCHECK (BuildKit's `parseRun`, `parseCmd`, `parseEntrypoint`, `parseShell`,
//! `parseHealthcheck`).

use std::ops::Range;
use std::time::Duration;

use super::commands::*;
use super::context::Context;
use super::duration::parse_go_duration;
use super::flags::{FlagKind, ParsedFlags};
use super::mount::parse_mount;
use super::parse::InstructionError;

/// `RUN [--mount=…]… [--network=…] [--security=…] command`.
pub(super) fn parse_run(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    use FlagKind::{String as Text, StringList};
    let flags = cx.flags(&[("mount", StringList), ("network", Text), ("security", Text)])?;
    let mut mounts = Vec::new();
    let mut mount_specs = Vec::new();
    for (spec, span) in flags.list("mount") {
        let mount = parse_mount(&spec).map_err(|message| InstructionError {
            message: format!("invalid --mount: {message}"),
            expected: "type=bind|cache|tmpfs|secret|ssh,target=PATH,…".into(),
            span,
            help: None,
        })?;
        mounts.push(mount);
        mount_specs.push(spec);
    }
    let network = flags
        .string_with_span("network")
        .map(parse_network)
        .transpose()?;
    let security = flags
        .string_with_span("security")
        .map(parse_security)
        .transpose()?;
    let command = cx.command_line()?;
    Ok(Command::Run(Run {
        command,
        heredocs: cx.heredocs.to_vec(),
        mounts,
        mount_specs,
        network,
        security,
    }))
}

/// `RUN --network=default|none|host`.
fn parse_network((value, span): (String, Range<usize>)) -> Result<NetworkMode, InstructionError> {
    match value.as_str() {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(InstructionError {
            message: format!("unsupported network mode \"{value}\""),
            expected: "default, none or host".into(),
            span,
            help: None,
        }),
    }
}

/// `RUN --security=sandbox|insecure`.
fn parse_security((value, span): (String, Range<usize>)) -> Result<SecurityMode, InstructionError> {
    match value.as_str() {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(InstructionError {
            message: format!("security \"{value}\" is not valid"),
            expected: "sandbox or insecure".into(),
            span,
            help: None,
        }),
    }
}

/// `CMD command`.
pub(super) fn parse_cmd(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    Ok(Command::Cmd(Cmd {
        command: cx.command_line()?,
    }))
}

/// `ENTRYPOINT command`.
pub(super) fn parse_entrypoint(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    Ok(Command::Entrypoint(Entrypoint {
        command: cx.command_line()?,
    }))
}

/// `SHELL ["executable", "parameters"…]`: JSON form only.
pub(super) fn parse_shell(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    if cx.args().is_empty() || (!cx.node.json && cx.args() == [""]) {
        return Err(cx.error("SHELL requires at least one argument", "[\"executable\"]"));
    }
    if !cx.node.json {
        return Err(cx.error(
            "SHELL requires the arguments to be in JSON form",
            "[\"executable\", \"parameters\"]",
        ));
    }
    Ok(Command::Shell(Shell {
        shell: cx.args().to_vec(),
    }))
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=…] [--timeout=…] [--start-period=…] [--start-interval=…]
/// [--retries=…] CMD command`.
pub(super) fn parse_healthcheck(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    use FlagKind::String as Text;
    let flags = cx.flags(&[
        ("interval", Text),
        ("timeout", Text),
        ("start-period", Text),
        ("start-interval", Text),
        ("retries", Text),
    ])?;
    let Some(kind) = cx.args().first() else {
        return Err(cx.error(
            "HEALTHCHECK requires at least one argument",
            "NONE or CMD command",
        ));
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if cx.args().len() != 1 {
                return Err(cx.error("HEALTHCHECK NONE takes no arguments", "nothing after NONE"));
            }
            Ok(Command::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let rest = &cx.args()[1..];
            let command = if cx.node.json {
                CommandLine::Exec(rest.to_vec())
            } else {
                CommandLine::Shell(rest.join(" "))
            };
            let empty = match &command {
                CommandLine::Exec(words) => words.is_empty(),
                CommandLine::Shell(text) => text.trim().is_empty(),
            };
            if empty {
                return Err(cx.error("Missing command after HEALTHCHECK CMD", "a command"));
            }
            let retries = healthcheck_retries(&flags)?;
            Ok(Command::Healthcheck(Healthcheck::Check {
                command,
                interval: healthcheck_duration(&flags, "interval")?,
                timeout: healthcheck_duration(&flags, "timeout")?,
                start_period: healthcheck_duration(&flags, "start-period")?,
                start_interval: healthcheck_duration(&flags, "start-interval")?,
                retries,
            }))
        }
        _ => Err(cx.error(
            format!("Unknown type \"{kind}\" in HEALTHCHECK (try CMD)"),
            "NONE or CMD",
        )),
    }
}

/// A HEALTHCHECK duration flag. BuildKit v0.8's checks: an empty value is unset; a duration must be at least 1ms
/// (0 too is refused).
fn healthcheck_duration(
    flags: &ParsedFlags,
    flag: &str,
) -> Result<Option<Duration>, InstructionError> {
    let Some((text, span)) = flags.string_with_span(flag).filter(|(t, _)| !t.is_empty()) else {
        return Ok(None);
    };
    let error = |message: String| InstructionError {
        message,
        expected: "a duration like 30s or 1m30s".into(),
        span: span.clone(),
        help: None,
    };
    let value = parse_go_duration(&text).map_err(error)?;
    if value < Duration::from_millis(1) {
        return Err(error(format!(
            "Interval \"{flag}\" cannot be less than 1ms"
        )));
    }
    Ok(Some(value))
}

/// `HEALTHCHECK --retries`: empty is unset, 0 is refused.
fn healthcheck_retries(flags: &ParsedFlags) -> Result<Option<u32>, InstructionError> {
    let Some((text, span)) = flags
        .string_with_span("retries")
        .filter(|(t, _)| !t.is_empty())
    else {
        return Ok(None);
    };
    let parsed: i64 = text.parse().map_err(|_| InstructionError {
        message: format!("invalid --retries value \"{text}\""),
        expected: "a whole number".into(),
        span: span.clone(),
        help: None,
    })?;
    if parsed < 1 {
        return Err(InstructionError {
            message: format!("--retries must be at least 1 (not {parsed})"),
            expected: "1 or more".into(),
            span,
            help: None,
        });
    }
    Ok(Some(u32::try_from(parsed).unwrap_or(u32::MAX)))
}
