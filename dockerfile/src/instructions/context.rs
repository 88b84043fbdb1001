//! What every instruction parser shares: the node being typed, its heredocs, the warnings collected so far, and
//! the argument checks BuildKit's `instructions/parse.go` repeats (at least one, exactly one, command forms).

use std::ops::Range;

use crate::ast::{Heredoc, Node};

use super::commands::CommandLine;
use super::flags::{parse_flags, FlagKind, ParsedFlags};
use super::parse::{InstructionError, InstructionWarning};

/// One raw node being typed.
pub(super) struct Context<'a> {
    /// The node.
    pub(super) node: &'a Node,
    /// Its instruction name, upper case.
    pub(super) name: String,
    /// The heredocs read after its line.
    pub(super) heredocs: &'a [Heredoc],
    /// Where warnings go.
    pub(super) warnings: &'a mut Vec<InstructionWarning>,
}

impl Context<'_> {
    /// An error underlining the arguments (the keyword when there are none).
    pub(super) fn error(
        &self,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> InstructionError {
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

    /// The node's flags, validated against the `allowed` names and kinds.
    pub(super) fn flags(
        &self,
        allowed: &[(&'static str, FlagKind)],
    ) -> Result<ParsedFlags, InstructionError> {
        parse_flags(&self.name, &self.node.flags, allowed).map_err(|error| InstructionError {
            message: error.message,
            expected: error.expected,
            span: error.span,
            help: None,
        })
    }

    /// The arguments as the line parser split them.
    pub(super) fn args(&self) -> &[String] {
        &self.node.args
    }

    /// Fails unless there is a non-empty argument.
    pub(super) fn at_least_one(&self) -> Result<(), InstructionError> {
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

    /// The single, non-empty argument.
    pub(super) fn exactly_one(&self) -> Result<String, InstructionError> {
        match self.args() {
            [single] if !single.is_empty() => Ok(single.clone()),
            _ => Err(self.error(
                format!("{} requires exactly one argument", self.name),
                "one argument",
            )),
        }
    }

    /// The arguments as a command in exec (JSON) or shell form.
    pub(super) fn command_line(&mut self) -> Result<CommandLine, InstructionError> {
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
