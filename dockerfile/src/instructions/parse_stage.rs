//! The parsers of the instructions that shape stages and builds rather than the image: FROM (with its naming
//! checks), ARG and ONBUILD (BuildKit's `parseFrom`, `parseArg`, `parseOnBuild`).

use super::commands::*;
use super::context::Context;
use super::flags::FlagKind;
use super::parse::{InstructionError, InstructionWarning};

/// `FROM [--platform=…] image [AS name]`.
pub(super) fn parse_from(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    let flags = cx.flags(&[("platform", FlagKind::String)])?;
    let node = cx.node;
    let (image, stage_name) = match node.args.as_slice() {
        [image] => (image.clone(), None),
        [image, as_word, stage] if as_word.eq_ignore_ascii_case("as") => {
            warn_about_casing(cx, as_word, stage);
            (image.clone(), Some(validate_stage_name(cx, stage)?))
        }
        _ => {
            return Err(cx.error(
                "FROM requires either one or three arguments",
                "IMAGE [AS NAME]",
            ))
        }
    };
    Ok(Command::From(From {
        image,
        stage_name,
        platform: flags.string("platform"),
    }))
}

/// BuildKit's FromAsCasing and StageNameCasing checks.
fn warn_about_casing(cx: &mut Context<'_>, as_word: &str, stage: &str) {
    let node = cx.node;
    let keyword = &node.keyword;
    let all = |text: &str, upper: bool| {
        text.chars()
            .filter(char::is_ascii_alphabetic)
            .all(|c| c.is_ascii_uppercase() == upper)
    };
    if (all(keyword, true) && all(as_word, false)) || (all(keyword, false) && all(as_word, true)) {
        cx.warnings.push(InstructionWarning {
            rule: "FromAsCasing",
            message: format!("'{as_word}' and '{keyword}' keywords' casing do not match"),
            label: format!("write '{}'", if all(keyword, true) { "AS" } else { "as" }),
            span: node.args_span.clone(),
        });
    }
    if stage.chars().any(|c| c.is_uppercase()) {
        cx.warnings.push(InstructionWarning {
            rule: "StageNameCasing",
            message: format!("Stage name '{stage}' should be lowercase"),
            label: format!("write '{}'", stage.to_lowercase()),
            span: node.args_span.clone(),
        });
    }
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lower-casing.
fn validate_stage_name(cx: &Context<'_>, name: &str) -> Result<String, InstructionError> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let valid = chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(cx.error(
            format!("invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"),
            "a name like build-stage_1",
        ));
    }
    Ok(lower)
}

/// `ARG name[=default]…`.
pub(super) fn parse_arg(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    cx.at_least_one()?;
    let mut declarations = Vec::new();
    for word in cx.args() {
        let (name, default) = match word.split_once('=') {
            Some((name, default)) => (name, Some(default.to_string())),
            None => (word.as_str(), None),
        };
        if name.is_empty() {
            return Err(cx.error("ARG names can not be blank", "NAME[=DEFAULT]"));
        }
        declarations.push(ArgDeclaration {
            name: name.to_string(),
            default,
        });
    }
    Ok(Command::Arg(Arg { declarations }))
}

/// `ONBUILD instruction`: the trigger is checked, then kept as text (as BuildKit does) and only typed when a
/// child build runs it.
pub(super) fn parse_onbuild(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    cx.flags(&[])?;
    let Some(trigger) = &cx.node.sub_instruction else {
        return Err(cx.error("ONBUILD requires at least one argument", "an instruction"));
    };
    let trigger_name = trigger.instruction_name();
    if matches!(trigger_name.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        let message = if trigger_name == "ONBUILD" {
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()
        } else {
            format!("{trigger_name} isn't allowed as an ONBUILD trigger")
        };
        return Err(InstructionError {
            message,
            expected: "another instruction".into(),
            span: trigger.keyword_span.clone(),
            help: None,
        });
    }
    Ok(Command::Onbuild(Onbuild {
        expression: trigger.original.trim().to_string(),
    }))
}
