//! Raw nodes to typed instructions (BuildKit's `instructions/parse.go`): argument counts, flags, forms.
//!
//! Errors carry the source range to underline and what was expected there; warnings (deprecated MAINTAINER,
//! shell-form arguments that look like a JSON array with single quotes) are collected on the side.

use std::ops::Range;

use crate::ast::{Heredoc, Node};
use crate::heredoc::parse_heredoc_marker;

use super::commands::*;
use super::duration::parse_go_duration;
use super::flags::{parse_flags, FlagKind, ParsedFlags};
use super::mount::parse_mount;
use super::ports::parse_port_spec;
use super::signal::check_stop_signal;

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

struct Context<'a> {
    node: &'a Node,
    name: String,
    heredocs: &'a [Heredoc],
    warnings: &'a mut Vec<InstructionWarning>,
}

impl Context<'_> {
    fn error(&self, message: impl Into<String>, expected: impl Into<String>) -> InstructionError {
        InstructionError {
            message: message.into(),
            expected: expected.into(),
            span: self.args_or_keyword_span(),
            help: None,
        }
    }

    fn args_or_keyword_span(&self) -> Range<usize> {
        if self.node.args_span.is_empty() {
            self.node.keyword_span.clone()
        } else {
            self.node.args_span.clone()
        }
    }

    fn flags(&self, allowed: &[(&'static str, FlagKind)]) -> Result<ParsedFlags, InstructionError> {
        parse_flags(&self.name, &self.node.flags, allowed).map_err(|error| InstructionError {
            message: error.message,
            expected: error.expected,
            span: error.span,
            help: None,
        })
    }

    fn args(&self) -> &[String] {
        &self.node.args
    }

    fn at_least_one(&self) -> Result<(), InstructionError> {
        if self.args().is_empty()
            || (self.args().len() == 1 && self.args()[0].is_empty() && !self.node.json)
        {
            return Err(self.error(
                format!("{} requires at least one argument", self.name),
                "an argument",
            ));
        }
        Ok(())
    }

    fn exactly_one(&self) -> Result<String, InstructionError> {
        match self.args() {
            [single] if !single.is_empty() => Ok(single.clone()),
            _ => Err(self.error(
                format!("{} requires exactly one argument", self.name),
                "one argument",
            )),
        }
    }

    fn command_line(&mut self) -> Result<CommandLine, InstructionError> {
        if self.node.json {
            return Ok(CommandLine::Exec(self.args().to_vec()));
        }
        // A bare `RUN`, `CMD` or `ENTRYPOINT` is BuildKit's shell form of nothing: `/bin/sh -c ""`.
        let text = self.args().join(" ");
        self.warn_if_single_quoted_json(&text);
        Ok(CommandLine::Shell(text))
    }

    fn warn_if_single_quoted_json(&mut self, text: &str) {
        let trimmed = text.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            self.warnings.push(InstructionWarning {
                rule: "JSONArgsRecommended",
                message: format!(
                    "{} arguments look like a JSON array but are not valid JSON (single quotes?); they run in shell form",
                    self.name
                ),
                label: "use double quotes for exec form: [\"executable\", \"arg\"]".into(),
                span: self.node.args_span.clone(),
            });
        }
    }
}

/// Types one raw node.
pub fn parse_instruction(
    node: &Node,
    warnings: &mut Vec<InstructionWarning>,
) -> Result<Instruction, InstructionError> {
    let command = parse_command(node, &node.heredocs, warnings)?;
    Ok(Instruction {
        command,
        location: Location {
            start_line: node.start_line,
            end_line: node.end_line,
            span: node.span(),
        },
    })
}

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

fn parse_command(
    node: &Node,
    heredocs: &[Heredoc],
    warnings: &mut Vec<InstructionWarning>,
) -> Result<Command, InstructionError> {
    let name = node.instruction_name();
    let mut cx = Context {
        node,
        name: name.clone(),
        heredocs,
        warnings,
    };
    use FlagKind::{Bool, String as Text, StringList};
    let command = match name.as_str() {
        "FROM" => {
            let flags = cx.flags(&[("platform", Text)])?;
            let (image, stage_name) = match node.args.as_slice() {
                [image] => (image.clone(), None),
                [image, as_word, stage] if as_word.eq_ignore_ascii_case("as") => {
                    let keyword = &node.keyword;
                    let all = |text: &str, upper: bool| {
                        text.chars()
                            .filter(char::is_ascii_alphabetic)
                            .all(|c| c.is_ascii_uppercase() == upper)
                    };
                    if (all(keyword, true) && all(as_word, false))
                        || (all(keyword, false) && all(as_word, true))
                    {
                        cx.warnings.push(InstructionWarning {
                            rule: "FromAsCasing",
                            message: format!(
                                "'{as_word}' and '{keyword}' keywords' casing do not match"
                            ),
                            label: format!(
                                "write '{}'",
                                if all(keyword, true) { "AS" } else { "as" }
                            ),
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
                    (image.clone(), Some(validate_stage_name(&cx, stage)?))
                }
                _ => {
                    return Err(cx.error(
                        "FROM requires either one or three arguments",
                        "IMAGE [AS NAME]",
                    ))
                }
            };
            Command::From(From {
                image,
                stage_name,
                platform: flags.string("platform"),
            })
        }
        "RUN" => {
            let flags =
                cx.flags(&[("mount", StringList), ("network", Text), ("security", Text)])?;
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
            let network = match flags.string_with_span("network") {
                None => None,
                Some((value, span)) => Some(match value.as_str() {
                    "default" => NetworkMode::Default,
                    "none" => NetworkMode::None,
                    "host" => NetworkMode::Host,
                    _ => {
                        return Err(InstructionError {
                            message: format!("unsupported network mode \"{value}\""),
                            expected: "default, none or host".into(),
                            span,
                            help: None,
                        })
                    }
                }),
            };
            let security = match flags.string_with_span("security") {
                None => None,
                Some((value, span)) => Some(match value.as_str() {
                    "sandbox" => SecurityMode::Sandbox,
                    "insecure" => SecurityMode::Insecure,
                    _ => {
                        return Err(InstructionError {
                            message: format!("security \"{value}\" is not valid"),
                            expected: "sandbox or insecure".into(),
                            span,
                            help: None,
                        })
                    }
                }),
            };
            let command = cx.command_line()?;
            Command::Run(Run {
                command,
                heredocs: cx.heredocs.to_vec(),
                mounts,
                mount_specs,
                network,
                security,
            })
        }
        "CMD" => {
            cx.flags(&[])?;
            Command::Cmd(Cmd {
                command: cx.command_line()?,
            })
        }
        "ENTRYPOINT" => {
            cx.flags(&[])?;
            Command::Entrypoint(Entrypoint {
                command: cx.command_line()?,
            })
        }
        "ENV" | "LABEL" => {
            cx.flags(&[])?;
            if node.legacy_key_value {
                cx.warnings.push(InstructionWarning {
                    rule: "LegacyKeyValueFormat",
                    message: format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"),
                    label: "write key=value".into(),
                    span: node.args_span.clone(),
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
            if name == "ENV" {
                Command::Env(Env { variables: pairs })
            } else {
                Command::Label(Label { labels: pairs })
            }
        }
        "ARG" => {
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
            Command::Arg(Arg { declarations })
        }
        "MAINTAINER" => {
            cx.flags(&[])?;
            let maintainer = cx.exactly_one()?;
            cx.warnings.push(InstructionWarning {
                rule: "MaintainerDeprecated",
                message: "MAINTAINER is deprecated".into(),
                label: format!("use LABEL org.opencontainers.image.authors=\"{maintainer}\""),
                span: node.keyword_span.clone(),
            });
            Command::Maintainer(Maintainer { name: maintainer })
        }
        "EXPOSE" => {
            cx.flags(&[])?;
            cx.at_least_one()?;
            // Words with variables, quotes or escapes are checked once expanded.
            for port in cx.args() {
                if !port.contains(['$', '"', '\'', '\\', '`']) {
                    parse_port_spec(port)
                        .map_err(|message| cx.error(message, "PORT[-PORT][/tcp|udp|sctp]"))?;
                }
            }
            Command::Expose(Expose {
                ports: cx.args().to_vec(),
            })
        }
        "ADD" => {
            let flags = cx.flags(&[
                ("chown", Text),
                ("chmod", Text),
                ("checksum", Text),
                ("keep-git-dir", Bool),
                ("link", Bool),
                ("exclude", StringList),
            ])?;
            let (sources, destination) = sources_and_destination(&cx)?;
            Command::Add(Add {
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
            })
        }
        "COPY" => {
            let flags = cx.flags(&[
                ("from", Text),
                ("chown", Text),
                ("chmod", Text),
                ("link", Bool),
                ("parents", Bool),
                ("exclude", StringList),
            ])?;
            let (sources, destination) = sources_and_destination(&cx)?;
            Command::Copy(Copy {
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
            })
        }
        "VOLUME" => {
            cx.flags(&[])?;
            if cx.args().is_empty() {
                return Err(cx.error("VOLUME requires at least one argument", "a path"));
            }
            if cx.args().iter().any(|path| path.trim().is_empty()) {
                return Err(cx.error("VOLUME specified can not be an empty string", "a path"));
            }
            Command::Volume(Volume {
                paths: cx.args().to_vec(),
            })
        }
        "USER" => {
            cx.flags(&[])?;
            Command::User(User {
                user: cx.exactly_one()?,
            })
        }
        "WORKDIR" => {
            cx.flags(&[])?;
            Command::Workdir(Workdir {
                path: cx.exactly_one()?,
            })
        }
        "STOPSIGNAL" => {
            cx.flags(&[])?;
            let signal = cx.exactly_one()?;
            // A value with variables, quotes or escapes is checked once expanded.
            if !signal.contains(['$', '"', '\'', '\\', '`']) {
                check_stop_signal(&signal).map_err(|message| {
                    cx.error(message, "a signal name like SIGTERM, or a number")
                })?;
            }
            Command::StopSignal(StopSignal { signal })
        }
        "HEALTHCHECK" => parse_healthcheck(&mut cx)?,
        "SHELL" => {
            cx.flags(&[])?;
            if cx.args().is_empty() || (!node.json && cx.args() == [""]) {
                return Err(cx.error("SHELL requires at least one argument", "[\"executable\"]"));
            }
            if !node.json {
                return Err(cx.error(
                    "SHELL requires the arguments to be in JSON form",
                    "[\"executable\", \"parameters\"]",
                ));
            }
            Command::Shell(Shell {
                shell: cx.args().to_vec(),
            })
        }
        "ONBUILD" => {
            cx.flags(&[])?;
            let Some(trigger) = &node.sub_instruction else {
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
            // As BuildKit, the trigger is kept as text and only typed when a child build runs it.
            Command::Onbuild(Onbuild {
                expression: trigger.original.trim().to_string(),
            })
        }
        _ => {
            return Err(InstructionError {
                message: format!("unknown instruction: {}", node.keyword),
                expected: "a Dockerfile instruction".into(),
                span: node.keyword_span.clone(),
                help: closest_instruction(&node.keyword)
                    .map(|name| format!("did you mean {name}?")),
            })
        }
    };
    Ok(command)
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

fn sources_and_destination(cx: &Context<'_>) -> Result<(Vec<Source>, String), InstructionError> {
    let args = cx.args();
    if args.len() < 2 {
        let message = if args.len() == 1 {
            format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined.",
                cx.name
            )
        } else {
            format!("{} requires at least two arguments", cx.name)
        };
        return Err(cx.error(message, "SOURCE... DESTINATION"));
    }
    let (destination, sources) = args.split_last().expect("at least two arguments");
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

fn parse_healthcheck(cx: &mut Context<'_>) -> Result<Command, InstructionError> {
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
            // BuildKit v0.8's checks: an empty value is unset; a duration must be at least 1ms (0 too is refused,
            // as is --retries=0).
            let duration = |flag: &str| -> Result<Option<std::time::Duration>, InstructionError> {
                let Some((text, span)) =
                    flags.string_with_span(flag).filter(|(t, _)| !t.is_empty())
                else {
                    return Ok(None);
                };
                let error = |message: String| InstructionError {
                    message,
                    expected: "a duration like 30s or 1m30s".into(),
                    span: span.clone(),
                    help: None,
                };
                let value = parse_go_duration(&text).map_err(error)?;
                if value < std::time::Duration::from_millis(1) {
                    return Err(error(format!(
                        "Interval \"{flag}\" cannot be less than 1ms"
                    )));
                }
                Ok(Some(value))
            };
            let retries = match flags
                .string_with_span("retries")
                .filter(|(t, _)| !t.is_empty())
            {
                None => None,
                Some((text, span)) => {
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
                    Some(u32::try_from(parsed).unwrap_or(u32::MAX))
                }
            };
            Ok(Command::Healthcheck(Healthcheck::Check {
                command,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            }))
        }
        _ => Err(cx.error(
            format!("Unknown type \"{kind}\" in HEALTHCHECK (try CMD)"),
            "NONE or CMD",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
