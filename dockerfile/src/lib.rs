//! lade's Dockerfile front end: text → raw instructions → typed instructions → stages → a build plan, with no
//! execution, no file system and no image store.
//!
//! A port of BuildKit's `frontend/dockerfile` packages. [`Dockerfile::parse`] reads the text (parser directives,
//! line continuations, heredocs, each instruction's line parser) into raw [`Node`]s, as BuildKit's `parser`
//! package; [`parse_instruction`] types one node into an [`Instruction`] (one [`Command`] variant per
//! instruction, BuildKit's `instructions` package); [`Stages`] groups them into stages and [`Stages::plan`]
//! resolves those for a build ([`BuildOptions`]: build args, target, the platform ARGs) into a [`BuildPlan`];
//! [`Lexer`] expands words as BuildKit's `shell` package. Every problem is a [`SourceDiagnostic`] naming the
//! file, line and column, with the offending source underlined.
//!
//! Known, deliberate differences from BuildKit (v0.12.5 is the reference the corpus was made with):
//! - `--flags` are read as UTF-8; BuildKit reads them byte by byte, garbling non-ASCII text and taking the
//!   bytes 0x85 and 0xA0 for spaces.
//! - Lines longer than 64 KiB are accepted; BuildKit's line scanner rejects them.
//! - `# check=` is a parser directive (as in current BuildKit; v0.12.5 ends the directives there).
//! - Heredoc markers are found on lines that use `${VAR#…}`, `${VAR%…}` or `${VAR/…}` (current BuildKit;
//!   v0.12.5 cannot lex those modifiers and so misses heredocs on such lines).
//! - Hostile nesting is bounded: ONBUILD chains are parsed 16 deep, `${…}` nests 200 deep, a pattern has at
//!   most 256 `*`.
//!
//! ```
//! use lade_dockerfile::{BuildOptions, Dockerfile};
//!
//! let dockerfile = Dockerfile::parse("FROM alpine AS base\nRUN echo hi\n", "Dockerfile").unwrap();
//! let plan = dockerfile.plan(&BuildOptions::default()).unwrap();
//! assert_eq!(plan.build_order, [0]);
//! ```

mod ast;
mod checks;
mod diagnostic;
mod directives;
mod heredoc;
mod instructions;
mod json_array;
mod line_parsers;
mod parser;
mod plan;
mod predefined;
mod raw_dump;
mod scope;
mod shell;
mod shell_pattern;
mod split_command;
mod stages;

pub use ast::{Heredoc, Node, RawFlag};
pub use checks::CheckConfig;
pub use diagnostic::{DiagnosticDetails, SourceDiagnostic, SourceFile};
pub use directives::Directives;
pub use instructions::{
    check_stop_signal, parse_instruction, Add, Arg, ArgDeclaration, CacheSharing, Cmd, Command,
    CommandExpandError, CommandLine, Copy, Entrypoint, Env, Expose, From, Healthcheck, Instruction,
    InstructionError, InstructionWarning, KeyValue, Label, Location, Maintainer, Mount, MountType,
    NetworkMode, Onbuild, PortRange, Protocol, Run, SecurityMode, Shell, Source, StopSignal, User,
    Volume, Workdir,
};
pub use plan::{BaseImage, BuildOptions, BuildPlan, PlannedStage};
pub use shell::{Environment, ExpandError, Expansion, Lexer};
pub use stages::{GlobalArg, Stage, Stages};

/// A parsed Dockerfile: its source, directives, raw instructions and parser warnings.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The file's name and text (for diagnostics).
    pub source: SourceFile,
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// The raw instructions in file order.
    pub nodes: Vec<Node>,
    /// Warnings from parsing.
    pub warnings: Vec<SourceDiagnostic>,
}

impl Dockerfile {
    /// Parses `source`; `file_name` is used in diagnostics.
    pub fn parse(source: &str, file_name: &str) -> Result<Dockerfile, SourceDiagnostic> {
        let file = SourceFile::new(file_name, source);
        let raw = parser::parse(source).map_err(|error| {
            file.error(
                error.message,
                error.span,
                format!("expected {}", error.expected),
            )
        })?;
        let warnings = raw
            .warnings
            .into_iter()
            .map(|(message, span)| {
                file.warning(
                    "NoEmptyContinuation",
                    message,
                    span,
                    "empty continuation line in this instruction",
                )
            })
            .collect();
        Ok(Dockerfile {
            source: file,
            directives: raw.directives,
            nodes: raw.nodes,
            warnings,
        })
    }

    /// The escape character in force (`\` or `` ` ``).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// Types the instructions and splits them into stages.
    pub fn stages(&self) -> Result<Stages, SourceDiagnostic> {
        Stages::from_dockerfile(self)
    }

    /// Types, splits into stages and resolves them for a build with `options`.
    pub fn plan(&self, options: &BuildOptions) -> Result<BuildPlan, SourceDiagnostic> {
        self.stages()?.plan(options)
    }

    /// Parses and types an ONBUILD trigger stored in a base image's config (e.g. `RUN make`), to run at the
    /// start of a stage built on that image.
    pub fn parse_onbuild_trigger(expression: &str) -> Result<Instruction, SourceDiagnostic> {
        let trigger = Dockerfile::parse(expression, "ONBUILD trigger")?;
        let file = &trigger.source;
        let [node] = trigger.nodes.as_slice() else {
            return Err(file.error(
                "an ONBUILD trigger must be one instruction",
                0..expression.len(),
                "expected one instruction",
            ));
        };
        let name = node.instruction_name();
        if matches!(name.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
            return Err(file.error(
                format!("{name} isn't allowed as an ONBUILD trigger"),
                node.keyword_span.clone(),
                "expected another instruction",
            ));
        }
        parse_instruction(node, &mut Vec::new()).map_err(|error| {
            file.error(
                error.message,
                error.span,
                format!("expected {}", error.expected),
            )
        })
    }

    /// The raw parse as JSON in the reference schema (see [`raw_dump`]).
    pub fn raw_json(&self) -> serde_json::Value {
        raw_dump::dump(&self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onbuild_triggers_from_image_configs() {
        let trigger = Dockerfile::parse_onbuild_trigger("RUN make install").unwrap();
        assert_eq!(
            trigger.command,
            Command::Run(Run {
                command: CommandLine::Shell("make install".into()),
                heredocs: vec![],
                mounts: vec![],
                mount_specs: vec![],
                network: None,
                security: None,
            })
        );
        let error = Dockerfile::parse_onbuild_trigger("FROM x").unwrap_err();
        assert_eq!(error.message, "FROM isn't allowed as an ONBUILD trigger");
        assert!(Dockerfile::parse_onbuild_trigger("COPY a").is_err());
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let error = Dockerfile::parse("FROM a\n\nENV PATH\n", "build/Dockerfile").unwrap_err();
        assert_eq!(
            error.to_string(),
            "build/Dockerfile:3:5: ENV must have two arguments"
        );
        assert_eq!(error.label, "expected NAME VALUE or NAME=VALUE ...");
    }
}
