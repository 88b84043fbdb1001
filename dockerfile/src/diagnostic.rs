//! Errors and warnings that point into the Dockerfile: file, line, column, the source line and a caret.
//!
//! [`SourceDiagnostic`] is a `miette::Diagnostic` carrying the named source and a labelled span, so any miette
//! report handler renders the offending line with the span underlined.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, Severity, SourceCode};

/// A Dockerfile's text with its name, shared by all diagnostics about it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
    /// Byte offset where each line starts.
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    /// Wraps a file's name and text.
    pub fn new(name: &str, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(newline, _)| newline + 1))
            .collect();
        SourceFile {
            name: name.into(),
            text: text.into(),
            line_starts,
        }
    }

    /// The file name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_and_column(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let line_start = self.line_starts[line - 1];
        (line, self.text[line_start..offset].chars().count() + 1)
    }

    /// An error about `span`, labelled with what was expected there.
    pub fn error(
        &self,
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> SourceDiagnostic {
        self.diagnostic(Severity::Error, message.into(), span, label.into())
    }

    /// A warning about `span` from the check (lint rule) named `rule`, e.g. `MaintainerDeprecated`.
    pub fn warning(
        &self,
        rule: &'static str,
        message: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> SourceDiagnostic {
        let mut diagnostic = self.diagnostic(Severity::Warning, message.into(), span, label.into());
        diagnostic.details.rule = Some(rule);
        diagnostic
    }

    fn diagnostic(
        &self,
        severity: Severity,
        message: String,
        span: Range<usize>,
        label: String,
    ) -> SourceDiagnostic {
        let start = floor_char_boundary(&self.text, span.start.min(self.text.len()));
        let end = floor_char_boundary(&self.text, span.end.clamp(start, self.text.len()));
        let (line, column) = self.line_and_column(start);
        SourceDiagnostic {
            details: Box::new(DiagnosticDetails {
                severity,
                rule: None,
                message,
                label,
                help: None,
                span: start..end,
                line,
                column,
                source: self.clone(),
            }),
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// An error or warning located in a Dockerfile; its details are reached through `Deref`.
#[derive(Clone)]
pub struct SourceDiagnostic {
    details: Box<DiagnosticDetails>,
}

impl std::ops::Deref for SourceDiagnostic {
    type Target = DiagnosticDetails;

    fn deref(&self) -> &DiagnosticDetails {
        &self.details
    }
}

/// What a [`SourceDiagnostic`] says and where.
#[derive(Clone)]
pub struct DiagnosticDetails {
    severity: Severity,
    /// The check (lint rule) a warning comes from, e.g. `MaintainerDeprecated`.
    pub rule: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// What was expected at the span.
    pub label: String,
    /// An optional hint.
    pub help: Option<String>,
    /// Byte range in the source.
    pub span: Range<usize>,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (characters) of the span's start.
    pub column: usize,
    source: SourceFile,
}

impl SourceDiagnostic {
    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.details.help = Some(help.into());
        self
    }

    /// The same diagnostic as an error (for `# check=error=true`).
    pub fn into_error(mut self) -> Self {
        self.details.severity = Severity::Error;
        self
    }

    /// Whether this is a warning rather than an error.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// The file name the diagnostic is about.
    pub fn file_name(&self) -> &str {
        self.source.name()
    }

    /// A miette source with the file name, for rendering.
    pub fn named_source(&self) -> NamedSource<Arc<str>> {
        NamedSource::new(self.source.name(), self.source.text.clone())
    }
}

impl fmt::Debug for SourceDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceDiagnostic")
            .field("severity", &self.severity)
            .field("message", &self.message)
            .field("file", &self.source.name())
            .field("line", &self.line)
            .field("column", &self.column)
            .finish()
    }
}

impl fmt::Display for SourceDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.source.name(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for SourceDiagnostic {}

impl miette::Diagnostic for SourceDiagnostic {
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.rule
            .map(|rule| Box::new(rule) as Box<dyn fmt::Display>)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = LabeledSpan::new(Some(self.label.clone()), self.span.start, self.span.len());
        Some(Box::new(std::iter::once(span)))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column() {
        let file = SourceFile::new("Dockerfile", "FROM a\nRUN  ébc\n");
        let error = file.error("bad", 14..15, "here");
        assert_eq!((error.line, error.column), (2, 7));
        assert_eq!(error.to_string(), "Dockerfile:2:7: bad");
        assert_eq!(file.line_and_column(0), (1, 1));
        assert_eq!(file.line_and_column(7), (2, 1));
        assert_eq!(file.line_and_column(100), (3, 1));
    }

    #[test]
    fn renders_source_line_with_label() {
        let file = SourceFile::new("Dockerfile", "FROM a\nCOPY --bogus=1 a b\n");
        let error = file.error("unknown flag: bogus", 12..21, "not a COPY flag");
        let mut rendered = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut rendered, &error)
            .unwrap();
        assert!(rendered.contains("Dockerfile:2:6"), "{rendered}");
        assert!(rendered.contains("COPY --bogus=1 a b"), "{rendered}");
        assert!(rendered.contains("not a COPY flag"), "{rendered}");
    }

    #[test]
    fn warnings_name_their_rule() {
        let file = SourceFile::new("Dockerfile", "MAINTAINER me\n");
        let warning = file.warning("MaintainerDeprecated", "deprecated", 0..10, "use LABEL");
        assert!(warning.is_warning());
        assert_eq!(warning.rule, Some("MaintainerDeprecated"));
        assert!(!warning.into_error().is_warning());
    }
}
