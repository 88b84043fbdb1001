//! The raw parse of a Dockerfile: one [`Node`] per instruction, before instructions are typed.
//!
//! Mirrors BuildKit's `parser.Node` as far as its consumers see it: the instruction word as written, the
//! `--flags` verbatim, the argument list as the per-instruction line parser splits it (before variable
//! expansion), whether the arguments were in JSON form, heredocs, and source positions.

use std::ops::Range;

/// A heredoc attached to an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// Whether variables in the content are to be expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content and the delimiter line.
    pub chomp: bool,
    /// The content as written, line endings included, leading tabs not yet stripped.
    pub content: String,
}

impl Heredoc {
    /// The content with leading tabs removed from every line when the heredoc was written `<<-`.
    pub fn effective_content(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|line| line.trim_start_matches('\t'))
            .collect()
    }
}

/// A `--name[=value]` flag written before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFlag {
    /// The flag with quotes and escapes processed, e.g. `--chown=a b` for `--chown="a b"`.
    pub text: String,
    /// Where the flag is written in the source (byte offsets).
    pub span: Range<usize>,
}

/// One instruction as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction word as written (`from`, `RUN`, …).
    pub keyword: String,
    /// Flags before the arguments.
    pub flags: Vec<RawFlag>,
    /// The arguments as split by the instruction's line parser.
    pub args: Vec<String>,
    /// Whether the arguments were given in JSON (exec) form.
    pub json: bool,
    /// Whether ENV or LABEL arguments are in the legacy `KEY value` form.
    pub legacy_key_value: bool,
    /// The instruction carried by `ONBUILD`.
    pub sub_instruction: Option<Box<Node>>,
    /// Heredocs read after the instruction line (for `ONBUILD`, those of its trigger).
    pub heredocs: Vec<Heredoc>,
    /// The instruction line with continuations joined.
    pub original: String,
    /// First source line (1-based).
    pub start_line: usize,
    /// Last source line (1-based), heredoc bodies included.
    pub end_line: usize,
    /// Where the instruction word is written (byte offsets).
    pub keyword_span: Range<usize>,
    /// Where the arguments are written (byte offsets; empty at the end of the keyword when there are none).
    pub args_span: Range<usize>,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// The instruction word in upper case.
    pub fn instruction_name(&self) -> String {
        self.keyword.to_ascii_uppercase()
    }

    /// The whole instruction's source range.
    pub fn span(&self) -> Range<usize> {
        self.keyword_span.start..self.args_span.end.max(self.keyword_span.end)
    }
}
