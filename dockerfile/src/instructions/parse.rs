//! Raw nodes to typed instructions (BuildKit's `instructions/parse.go`): one parser per instruction, in
//! `parse_stage` (FROM, ARG, ONBUILD), `parse_run` (RUN, CMD,
//! ENTRYPOINT, SHELL, HEALTHCHECK), `parse_files` (COPY, ADD, VOLUME, WORKDIR) and
//! `parse_config` (ENV, LABEL, MAINTAINER, EXPOSE, USER, STOPSIGNAL), chosen here by name.
//!
//! Errors carry the source range to underline and what was expected there; warnings (deprecated MAINTAINER,
//! shell-form arguments that look like a JSON array with single quotes) are collected on the side.

use std::ops::Range;

use crate::ast::Node;

use super::commands::{Command, Instruction, Location};
use super::context::Context;
use super::{parse_config, parse_files, parse_run, parse_stage};

/// Why an instruction is invalid, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionError {
    /// What is wrong.
    pub message: String,
    /// What was expected at the span.
    pub expected: String,
    /// Where.
    pub span: Range<usize>,
    /// A hint, e.g. the instruction probably meant.
    pub help: Option<String>,
}

/// Something suspicious about an instruction that does not stop the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionWarning {
    /// The check (lint rule) that found it, named as in BuildKit.
    pub rule: &'static str,
    /// What is suspicious.
    pub message: String,
    /// What to write instead.
    pub label: String,
    /// Where.
    pub span: Range<usize>,
}

/// Every instruction the front end knows.
pub const INSTRUCTION_NAMES: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Types one raw node.
pub fn parse_instruction(
    node: &Node,
    warnings: &mut Vec<InstructionWarning>,
) -> Result<Instruction, InstructionError> {
    let mut cx = Context {
        node,
        name: node.instruction_name(),
        heredocs: &node.heredocs,
        warnings,
    };
    let command = parse_command(&mut cx)?;
    Ok(Instruction {
        command,
        location: Location {
            start_line: node.start_line,
            end_line: node.end_line,
            span: node.span(),
        },
    })
}

/// The parser of the node's instruction.
fn parse_command(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
    match cx.name.as_str() {
        "FROM" => parse_stage::parse_from(cx),
        "ARG" => parse_stage::parse_arg(cx),
        "ONBUILD" => parse_stage::parse_onbuild(cx),
        "RUN" => parse_run::parse_run(cx),
        "CMD" => parse_run::parse_cmd(cx),
        "ENTRYPOINT" => parse_run::parse_entrypoint(cx),
        "SHELL" => parse_run::parse_shell(cx),
        "HEALTHCHECK" => parse_run::parse_healthcheck(cx),
        "COPY" => parse_files::parse_copy(cx),
        "ADD" => parse_files::parse_add(cx),
        "VOLUME" => parse_files::parse_volume(cx),
        "WORKDIR" => parse_files::parse_workdir(cx),
        "ENV" => parse_config::parse_env(cx),
        "LABEL" => parse_config::parse_label(cx),
        "MAINTAINER" => parse_config::parse_maintainer(cx),
        "EXPOSE" => parse_config::parse_expose(cx),
        "USER" => parse_config::parse_user(cx),
        "STOPSIGNAL" => parse_config::parse_stop_signal(cx),
        _ => Err(InstructionError {
            message: format!("unknown instruction: {}", cx.node.keyword),
            expected: "a Dockerfile instruction".into(),
            span: cx.node.keyword_span.clone(),
            help: closest_instruction(&cx.node.keyword).map(|name| format!("did you mean {name}?")),
        }),
    }
}

/// The known instruction within two edits of `keyword`, for a "did you mean" hint.
fn closest_instruction(keyword: &str) -> Option<&'static str> {
    let upper = keyword.to_ascii_uppercase();
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut previous: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut current = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let substitution = previous[j] + usize::from(ca != *cb);
                current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
            }
            previous = current;
        }
        previous[b.len()]
    };
    INSTRUCTION_NAMES
        .iter()
        .map(|name| (distance(&upper, name), *name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::*;
    use crate::parser::parse;

    fn typed(source: &str) -> Result<Command, InstructionError> {
        let parsed = parse(source).unwrap();
        let mut warnings = Vec::new();
        parse_instruction(&parsed.nodes[0], &mut warnings).map(|instruction| instruction.command)
    }

    fn error(source: &str) -> String {
        typed(source).unwrap_err().message
    }

    #[test]
    fn from_forms() {
        assert_eq!(
            typed("FROM --platform=linux/arm64 alpine:3 AS Build").unwrap(),
            Command::From(From {
                image: "alpine:3".into(),
                stage_name: Some("build".into()),
                platform: Some("linux/arm64".into()),
            })
        );
        assert_eq!(
            error("FROM a b"),
            "FROM requires either one or three arguments"
        );
        assert!(error("FROM a AS 1x").starts_with("invalid name for build stage"));
        assert_eq!(error("FROM --bogus a"), "unknown flag: bogus");
    }

    #[test]
    fn run_forms_and_flags() {
        let Command::Run(run) =
            typed("RUN --mount=type=cache,target=/c --network=none [\"make\", \"all\"]").unwrap()
        else {
            panic!("not RUN");
        };
        assert_eq!(
            run.command,
            CommandLine::Exec(vec!["make".into(), "all".into()])
        );
        assert_eq!(run.network, Some(NetworkMode::None));
        assert_eq!(run.mounts.len(), 1);
        let Command::Run(run) = typed("RUN <<EOF\necho hi\nEOF\n").unwrap() else {
            panic!("not RUN");
        };
        assert_eq!(run.command, CommandLine::Shell("<<EOF".into()));
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert_eq!(
            error("RUN --network=bridge x"),
            "unsupported network mode \"bridge\""
        );
        assert_eq!(error("RUN --security=x y"), "security \"x\" is not valid");
        assert!(error("RUN --mount=type=nope,target=/ x").contains("unsupported mount type"));
        for bare in ["RUN", "CMD", "ENTRYPOINT"] {
            let command = match typed(bare).unwrap() {
                Command::Run(run) => run.command,
                Command::Cmd(cmd) => cmd.command,
                Command::Entrypoint(entrypoint) => entrypoint.command,
                other => panic!("{other:?}"),
            };
            assert_eq!(command, CommandLine::Shell(String::new()), "{bare}");
        }
    }

    #[test]
    fn env_label_arg() {
        assert_eq!(
            typed("ENV a=1 b=\"2 3\"").unwrap(),
            Command::Env(Env {
                variables: vec![
                    KeyValue {
                        key: "a".into(),
                        value: "1".into()
                    },
                    KeyValue {
                        key: "b".into(),
                        value: "\"2 3\"".into()
                    },
                ]
            })
        );
        assert_eq!(error("ENV"), "ENV requires at least one argument");
        assert_eq!(error("LABEL"), "LABEL requires at least one argument");
        let Command::Arg(arg) = typed("ARG a b=2 c=").unwrap() else {
            panic!("not ARG");
        };
        let summary: Vec<_> = arg
            .declarations
            .iter()
            .map(|d| (d.name.as_str(), d.default.as_deref()))
            .collect();
        assert_eq!(summary, [("a", None), ("b", Some("2")), ("c", Some(""))]);
        assert_eq!(error("ARG =x"), "ARG names can not be blank");
        assert_eq!(error("ARG"), "ARG requires at least one argument");
    }

    #[test]
    fn copy_and_add() {
        let Command::Copy(copy) =
            typed("COPY --from=build --chown=1:1 --link --parents --exclude=*.md a b /dst/")
                .unwrap()
        else {
            panic!("not COPY");
        };
        assert_eq!(copy.from.as_deref(), Some("build"));
        assert!(copy.link && copy.parents);
        assert_eq!(copy.excludes, ["*.md"]);
        assert_eq!(
            copy.sources,
            [Source::Path("a".into()), Source::Path("b".into())]
        );
        let Command::Copy(copy) = typed("COPY <<one <<two /dst/\n1\none\n2\ntwo\n").unwrap() else {
            panic!("not COPY");
        };
        assert!(
            matches!(&copy.sources[1], Source::Heredoc(h) if h.name == "two" && h.content == "2\n")
        );
        let Command::Add(add) =
            typed("ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tgz /y").unwrap()
        else {
            panic!("not ADD");
        };
        assert!(add.keep_git_dir);
        assert_eq!(error("ADD --from=x a b"), "unknown flag: from");
        assert!(error("COPY a").contains("requires at least two arguments"));
        assert_eq!(
            error("COPY --link --link a b"),
            "Duplicate flag specified: link"
        );
    }

    #[test]
    fn expose_volume_and_singles() {
        assert!(typed("EXPOSE 80 53/udp 8000-8010 $PORT").is_ok());
        assert_eq!(error("EXPOSE 80/xtp"), "Invalid proto: xtp");
        assert_eq!(error("EXPOSE"), "EXPOSE requires at least one argument");
        assert!(typed("VOLUME [\"/a\", \"/b\"]").is_ok());
        assert_eq!(
            error("VOLUME [\"\"]"),
            "VOLUME specified can not be an empty string"
        );
        assert_eq!(error("WORKDIR"), "WORKDIR requires exactly one argument");
        assert_eq!(error("USER"), "USER requires exactly one argument");
        assert_eq!(
            error("STOPSIGNAL"),
            "STOPSIGNAL requires exactly one argument"
        );
    }

    #[test]
    fn healthcheck() {
        assert_eq!(
            typed("HEALTHCHECK NONE").unwrap(),
            Command::Healthcheck(Healthcheck::None)
        );
        let Command::Healthcheck(Healthcheck::Check {
            interval,
            retries,
            command,
            ..
        }) = typed("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/").unwrap()
        else {
            panic!("not a check");
        };
        assert_eq!(interval, Some(std::time::Duration::from_secs(5)));
        assert_eq!(retries, Some(3));
        assert_eq!(command, CommandLine::Shell("curl -f http://x/".into()));
        assert_eq!(
            error("HEALTHCHECK NONE x"),
            "HEALTHCHECK NONE takes no arguments"
        );
        assert_eq!(
            error("HEALTHCHECK CMD"),
            "Missing command after HEALTHCHECK CMD"
        );
        assert_eq!(
            error("HEALTHCHECK --retries=-1 CMD x"),
            "--retries must be at least 1 (not -1)"
        );
        assert_eq!(
            error("HEALTHCHECK --interval=1us CMD x"),
            "Interval \"interval\" cannot be less than 1ms"
        );
        // BuildKit v0.8 refuses zero too; an empty value is unset.
        assert_eq!(
            error("HEALTHCHECK --start-period=0s CMD x"),
            "Interval \"start-period\" cannot be less than 1ms"
        );
        assert_eq!(
            error("HEALTHCHECK --retries=0 CMD x"),
            "--retries must be at least 1 (not 0)"
        );
        assert!(typed("HEALTHCHECK --interval= --retries= CMD x").is_ok());
        assert_eq!(
            error("HEALTHCHECK FOO x"),
            "Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
        );
    }

    #[test]
    fn shell_onbuild_unknown() {
        assert_eq!(
            error("SHELL /bin/sh -c"),
            "SHELL requires the arguments to be in JSON form"
        );
        let Command::Onbuild(onbuild) = typed("ONBUILD RUN echo hi").unwrap() else {
            panic!("not ONBUILD");
        };
        assert_eq!(onbuild.expression, "RUN echo hi");
        let Command::Onbuild(onbuild) = typed("ONBUILD BOGUS x").unwrap() else {
            panic!("not ONBUILD");
        };
        assert_eq!(onbuild.expression, "BOGUS x");
        assert_eq!(
            error("ONBUILD ONBUILD RUN x"),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            error("ONBUILD FROM x"),
            "FROM isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            error("ONBUILD MAINTAINER x"),
            "MAINTAINER isn't allowed as an ONBUILD trigger"
        );
        let unknown = typed("RUNN x").unwrap_err();
        assert_eq!(unknown.message, "unknown instruction: RUNN");
        assert_eq!(unknown.help.as_deref(), Some("did you mean RUN?"));
    }

    #[test]
    fn warnings() {
        let parsed = parse(
            "MAINTAINER me\nCMD ['a']\nFROM a as Build\nENV a b\nLABEL a=b\nLABEL \"a b\"='c d'\n",
        )
        .unwrap();
        let mut warnings = Vec::new();
        for node in &parsed.nodes {
            parse_instruction(node, &mut warnings).unwrap();
        }
        let rules: Vec<_> = warnings.iter().map(|warning| warning.rule).collect();
        assert_eq!(
            rules,
            [
                "MaintainerDeprecated",
                "JSONArgsRecommended",
                "FromAsCasing",
                "StageNameCasing",
                "LegacyKeyValueFormat"
            ]
        );
        assert_eq!(warnings[0].message, "MAINTAINER is deprecated");
        assert!(warnings[1].message.contains("single quotes"));
        assert_eq!(
            warnings[2].message,
            "'as' and 'FROM' keywords' casing do not match"
        );
        assert_eq!(
            warnings[4].message,
            "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
        );
    }
}
