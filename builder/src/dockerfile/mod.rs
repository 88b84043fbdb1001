//! The Dockerfile front end: text → raw instructions → typed instructions → stages, with no execution.
//!
//! A port of BuildKit's `frontend/dockerfile` packages: [`parser`] (with [`directives`], [`split_command`],
//! [`line_parsers`], [`json_array`], [`heredoc`]) produces [`ast::Node`]s; [`shell`] expands words.

pub mod ast;
pub mod diagnostic;
pub mod directives;
pub mod heredoc;
pub mod instructions;
pub mod json_array;
pub mod line_parsers;
pub mod parser;
pub mod raw_dump;
pub mod shell;
pub mod shell_pattern;
pub mod split_command;

pub use ast::{Heredoc, Node, RawFlag};
pub use diagnostic::{SourceDiagnostic, SourceFile};
pub use directives::Directives;
pub use shell::{Environment, ExpandError, Expansion, Lexer};

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
            let label = if error.message == "file with no instructions" {
                "expected an instruction"
            } else {
                "here"
            };
            file.error(error.message, error.span, label)
        })?;
        let warnings = raw
            .warnings
            .into_iter()
            .map(|(message, span)| {
                file.warning(message, span, "empty continuation line in this instruction")
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

    /// The raw parse as JSON in the reference schema (see [`raw_dump`]).
    pub fn raw_json(&self) -> serde_json::Value {
        raw_dump::dump(&self.nodes)
    }
}
