//! The parsers of the instructions that only set the image config: ENV, LABEL, MAINTAINER, EXPOSE, USER and
//! STOPSIGNAL (BuildKit's `parseEnv`, `parseLabel`, `parseMaintainer`, `parseExpose`, `parseUser`,
//! `parseStopSignal`).

use super::commands::*;
use super::context::Context;
use super::parse::{InstructionError, InstructionWarning};
use super::ports::parse_port_spec;
use super::signal::check_stop_signal;

/// `ENV name=value…` (or the legacy `ENV name value`).
pub(super) fn parse_env(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    Ok(Command::Env(Env {
        variables: key_value_pairs(cx)?,
    }))
}

/// `LABEL key=value…` (or the legacy `LABEL key value`).
pub(super) fn parse_label(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    Ok(Command::Label(Label {
        labels: key_value_pairs(cx)?,
    }))
}

/// The pairs of ENV or LABEL, warning about the legacy `KEY value` form.
fn key_value_pairs(cx: &mut Context<'_>) -> Result<Vec<KeyValue>, InstructionError> {
    cx.flags(&[])?;
    let name = cx.name.clone();
    if cx.node.legacy_key_value {
        cx.warnings.push(InstructionWarning {
            rule: "LegacyKeyValueFormat",
            message: format!(
                "\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"
            ),
            label: "write key=value".into(),
            span: cx.node.args_span.clone(),
        });
    }
    if cx.args().is_empty() {
        return Err(cx.error(
            format!("{name} requires at least one argument"),
            "NAME=VALUE",
        ));
    }
    if cx.args().len() % 2 == 1 {
        return Err(cx.error(
            format!("Bad input to {name}, too many arguments"),
            "NAME=VALUE pairs",
        ));
    }
    let pairs: Vec<KeyValue> = cx
        .args()
        .chunks(2)
        .map(|pair| KeyValue {
            key: pair[0].clone(),
            value: pair[1].clone(),
        })
        .collect();
    if pairs.iter().any(|pair| pair.key.is_empty()) {
        return Err(cx.error(format!("{name} names can not be blank"), "NAME=VALUE"));
    }
    Ok(pairs)
}

/// `MAINTAINER name` (deprecated, with a warning).
pub(super) fn parse_maintainer(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    let maintainer = cx.exactly_one()?;
    cx.warnings.push(InstructionWarning {
        rule: "MaintainerDeprecated",
        message: "MAINTAINER is deprecated".into(),
        label: format!("use LABEL org.opencontainers.image.authors=\"{maintainer}\""),
        span: cx.node.keyword_span.clone(),
    });
    Ok(Command::Maintainer(Maintainer { name: maintainer }))
}

/// `EXPOSE port[/protocol]…`.
pub(super) fn parse_expose(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    cx.at_least_one()?;
    // Words with variables, quotes or escapes are checked once expanded.
    for port in cx.args() {
        if !port.contains(['$', '"', '\'', '\\', '`']) {
            parse_port_spec(port)
                .map_err(|message| cx.error(message, "PORT[-PORT][/tcp|udp|sctp]"))?;
        }
    }
    Ok(Command::Expose(Expose {
        ports: cx.args().to_vec(),
    }))
}

/// `USER user[:group]`.
pub(super) fn parse_user(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    Ok(Command::User(User {
        user: cx.exactly_one()?,
    }))
}

/// `STOPSIGNAL signal`.
pub(super) fn parse_stop_signal(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    let signal = cx.exactly_one()?;
    // A value with variables, quotes or escapes is checked once expanded.
    if !signal.contains(['$', '"', '\'', '\\', '`']) {
        check_stop_signal(&signal)
            .map_err(|message| cx.error(message, "a signal name like SIGTERM, or a number"))?;
    }
    Ok(Command::StopSignal(StopSignal { signal }))
}
