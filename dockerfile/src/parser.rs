//! Text to raw instructions: a port of BuildKit's `parser.Parse`.
//!
//! Handles the byte-order mark, CRLF, parser directives, comments, line continuations with the escape
//! character (including comment and blank lines inside a continuation), heredoc bodies for `RUN`, `COPY` and
//! `ADD` (also under `ONBUILD`), and keeps source positions so later stages can point at the exact text.

use std::ops::Range;

use super::ast::{Node, RawFlag};
use super::directives::Directives;
use super::heredoc::heredocs_in_line;
use super::line_parsers::{self, ArgumentRule, SplitArgs};
use super::split_command::split_command;

/// A raw parse: the instructions, the directives and parser warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDockerfile {
    /// The instructions in file order.
    pub nodes: Vec<Node>,
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// Problems that do not stop parsing (e.g. empty continuation lines), with where they are.
    pub warnings: Vec<(String, Range<usize>)>,
}

/// A parse failure with the source range it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// BuildKit's message.
    pub message: String,
    /// Byte range in the source.
    pub span: Range<usize>,
    /// What was expected at the span.
    pub expected: String,
}

/// One physical line of the source.
struct SourceLine<'a> {
    /// The line including its line ending.
    text: &'a str,
    /// Byte offset of the line in the source.
    start: usize,
}

/// Splits on `\n`, keeping line endings (like BuildKit's scanner).
fn source_lines(source: &str) -> impl Iterator<Item = SourceLine<'_>> {
    let mut start = 0;
    source.split_inclusive('\n').map(move |text| {
        let line = SourceLine { text, start };
        start += text.len();
        line
    })
}

fn trim_newline(text: &str) -> &str {
    text.trim_end_matches(['\r', '\n'])
}

fn is_comment(text: &str) -> bool {
    trim_newline(text).trim_start().starts_with('#')
}

/// The continuation lines of an instruction joined into one, mapping offsets back to the source.
struct JoinedLine {
    text: String,
    /// (offset in `text`, offset in the source) for each joined piece, in order.
    pieces: Vec<(usize, usize)>,
}

impl JoinedLine {
    fn push(&mut self, piece: &str, source_offset: usize) {
        self.pieces.push((self.text.len(), source_offset));
        self.text.push_str(piece);
    }

    fn source_offset(&self, offset: usize) -> usize {
        let index = self
            .pieces
            .partition_point(|(joined, _)| *joined <= offset)
            .saturating_sub(1);
        match self.pieces.get(index) {
            Some((joined, source)) => source + (offset - joined),
            None => offset,
        }
    }

    fn source_range(&self, range: Range<usize>) -> Range<usize> {
        let start = self.source_offset(range.start);
        if range.end <= range.start {
            return start..start;
        }
        start..self.source_offset(range.end - 1) + 1
    }
}

/// Removes a trailing escape character (and trailing blanks) that continues the line onto the next one.
/// Returns the remaining text, or `None` when the line does not continue. Like BuildKit, an escape character
/// preceded by another escape character does not continue the line.
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let before = trimmed.strip_suffix(escape)?;
    if before.ends_with(escape) {
        return None;
    }
    Some(before)
}

/// Parses a Dockerfile's text into raw instructions.
pub fn parse(source: &str) -> Result<RawDockerfile, ParseError> {
    let mut directives = Directives::default();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut lines = source_lines(source);
    let mut line_number = 0usize;

    while let Some(line) = lines.next() {
        let mut text = line.text;
        let mut line_start = line.start;
        if line_number == 0 {
            if let Some(rest) = text.strip_prefix('\u{feff}') {
                text = rest;
                line_start += '\u{feff}'.len_utf8();
            }
        }
        let content = trim_newline(text);
        let stripped = content.trim_start();
        let content_start = line_start + (content.len() - stripped.len());
        if let Some(comment) = stripped.strip_prefix('#') {
            comments.push(comment.trim().to_string());
        }
        let check_range = directives
            .observe_line(stripped)
            .map_err(|error| ParseError {
                expected: if error.message.starts_with("only one") {
                    "each directive only once".into()
                } else {
                    "` or \\".into()
                },
                message: error.message,
                span: content_start + error.value_range.start
                    ..content_start + error.value_range.end,
            })?;
        if let Some(range) = check_range {
            directives.check_span = Some(content_start + range.start..content_start + range.end);
        }
        line_number += 1;
        let start_line = line_number;
        let uncommented = if stripped.starts_with('#') {
            ""
        } else {
            stripped
        };
        let escape = directives.escape;

        let mut joined = JoinedLine {
            text: String::new(),
            pieces: Vec::new(),
        };
        let mut continues = match strip_continuation(uncommented, escape) {
            Some(before) => {
                joined.push(before, content_start);
                true
            }
            None => {
                if uncommented.is_empty() {
                    continue;
                }
                joined.push(uncommented, content_start);
                false
            }
        };
        let mut last_line_end = content_start + uncommented.len();
        let mut has_empty_continuation = false;
        while continues {
            let Some(next) = lines.next() else {
                break;
            };
            line_number += 1;
            if is_comment(next.text) {
                continue;
            }
            let content = trim_newline(next.text);
            if content.trim_start().is_empty() {
                has_empty_continuation = true;
                continue;
            }
            match strip_continuation(content, escape) {
                Some(before) => joined.push(before, next.start),
                None => {
                    joined.push(content, next.start);
                    continues = false;
                }
            }
            last_line_end = next.start + content.len();
        }
        if has_empty_continuation {
            warnings.push((
                "Empty continuation line found in instruction (empty continuation lines will become errors)".into(),
                content_start..last_line_end,
            ));
        }

        let mut node = new_node_from_line(&joined, 0, escape, 0)?;
        node.comments = std::mem::take(&mut comments);

        read_heredocs(&mut node, &joined.text, &mut lines, &mut line_number)?;
        node.start_line = start_line;
        node.end_line = line_number;
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(ParseError {
            message: "file with no instructions".into(),
            span: source.len()..source.len(),
            expected: "an instruction".into(),
        });
    }
    Ok(RawDockerfile {
        nodes,
        directives,
        warnings,
    })
}

/// Reads the bodies of the heredocs `line` opens (for RUN, COPY and ADD, or an ONBUILD trigger of theirs, in shell
/// form) from `lines` into `node`, counting the lines read in `line_number`.
fn read_heredocs<'a>(
    node: &mut Node,
    line: &str,
    lines: &mut impl Iterator<Item = SourceLine<'a>>,
    line_number: &mut usize,
) -> Result<(), ParseError> {
    let heredoc_holder = match &node.sub_instruction {
        Some(sub) if node.keyword.eq_ignore_ascii_case("onbuild") => sub.as_ref(),
        _ => &*node,
    };
    let can_contain_heredoc = matches!(
        heredoc_holder.keyword.to_ascii_lowercase().as_str(),
        "run" | "copy" | "add"
    ) && !heredoc_holder.json;
    if !can_contain_heredoc {
        return Ok(());
    }
    for mut heredoc in heredocs_in_line(line) {
        let mut terminated = false;
        for body_line in lines.by_ref() {
            *line_number += 1;
            let mut candidate = trim_newline(body_line.text);
            if heredoc.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == heredoc.name {
                terminated = true;
                break;
            }
            heredoc.content.push_str(body_line.text);
        }
        if !terminated {
            return Err(ParseError {
                expected: format!("a line \"{}\" closing the heredoc", heredoc.name),
                message: format!(
                    "unterminated heredoc (expected a line \"{}\")",
                    heredoc.name
                ),
                span: node.span(),
            });
        }
        node.heredocs.push(heredoc);
    }
    Ok(())
}

/// How deep `ONBUILD ONBUILD …` chains are parsed; deeper triggers are kept unparsed (the typed layer rejects
/// any chain anyway), which bounds recursion and copying on hostile input.
const MAX_ONBUILD_NESTING: usize = 16;

/// Builds the node for the instruction starting at `offset` in the joined line; `depth` counts enclosing
/// ONBUILDs.
fn new_node_from_line(
    joined: &JoinedLine,
    offset: usize,
    escape: char,
    depth: usize,
) -> Result<Node, ParseError> {
    let line = &joined.text[offset..];
    let split = split_command(line);
    let keyword_start = offset + split.keyword_start;
    let keyword_span = joined.source_range(keyword_start..keyword_start + split.keyword.len());
    let args_start = offset + split.args_start;
    let args_span = joined.source_range(args_start..args_start + split.args.len());
    let rule = line_parsers::rule_for(split.keyword);
    let error = |message: String| ParseError {
        message,
        span: args_span.clone(),
        expected: match rule {
            ArgumentRule::NameValue(_) => "NAME VALUE or NAME=VALUE ...".into(),
            _ => "a JSON array of strings, or shell-form text".into(),
        },
    };
    let mut sub_instruction = None;
    let SplitArgs { values, json } = match rule {
        ArgumentRule::MaybeJson => line_parsers::parse_maybe_json(split.args).map_err(error)?,
        ArgumentRule::MaybeJsonList => {
            line_parsers::parse_maybe_json_list(split.args).map_err(error)?
        }
        ArgumentRule::Words => line_parsers::split_words(split.args),
        ArgumentRule::Single => line_parsers::parse_single(split.args),
        ArgumentRule::NameValue(instruction) => {
            line_parsers::parse_name_value(split.args, instruction, escape).map_err(error)?
        }
        ArgumentRule::NameOrNameValue => line_parsers::parse_name_or_name_value(split.args, escape),
        ArgumentRule::HealthCheck => line_parsers::parse_health_check(split.args).map_err(error)?,
        ArgumentRule::SubInstruction => {
            if split.args.is_empty() {
                SplitArgs::default()
            } else {
                if depth < MAX_ONBUILD_NESTING {
                    sub_instruction = Some(Box::new(new_node_from_line(
                        joined,
                        args_start,
                        escape,
                        depth + 1,
                    )?));
                }
                // BuildKit's node for ONBUILD has one empty-valued argument holding the trigger.
                SplitArgs {
                    values: vec![String::new()],
                    json: false,
                }
            }
        }
        ArgumentRule::Ignore => SplitArgs {
            values: vec![String::new()],
            json: false,
        },
    };
    let legacy_key_value = matches!(rule, ArgumentRule::NameValue(_))
        && line_parsers::is_legacy_name_value(split.args, escape);
    Ok(Node {
        keyword: split.keyword.to_string(),
        flags: split
            .flags
            .into_iter()
            .map(|(text, range)| RawFlag {
                text,
                span: joined.source_range(offset + range.start..offset + range.end),
            })
            .collect(),
        args: values,
        json,
        legacy_key_value,
        sub_instruction,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        keyword_span,
        args_span,
        comments: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(source: &str) -> Vec<(String, Vec<String>, usize, usize)> {
        parse(source)
            .unwrap()
            .nodes
            .into_iter()
            .map(|node| (node.keyword, node.args, node.start_line, node.end_line))
            .collect()
    }

    fn owned(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn continuations_comments_and_blank_lines() {
        let parsed = summary("FROM x\nRUN a \\\n# c\n\n  b\n");
        assert_eq!(parsed[1], ("RUN".into(), owned(&["a   b"]), 2, 5));
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        let parsed = summary("FROM a \\\\\nRUN x");
        assert_eq!(parsed[0].1, owned(&["a", "\\\\"]));
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn bom_crlf_and_backtick_escape() {
        let parsed = summary("\u{feff}# escape=`\r\n\r\nFROM a `\r\n  b\r\n");
        assert_eq!(parsed, vec![("FROM".into(), owned(&["a", "b"]), 3, 4)]);
    }

    #[test]
    fn heredocs_are_read_after_the_line() {
        let parsed = parse("FROM a\nRUN <<-\"EOF\" cat <<E2\n\ta\n\tEOF\nb\nE2\n").unwrap();
        let run = &parsed.nodes[1];
        assert_eq!((run.start_line, run.end_line), (2, 6));
        let heredocs: Vec<_> = run
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
            .collect();
        assert_eq!(heredocs, [("EOF", "\ta\n", false), ("E2", "b\n", true)]);
    }

    #[test]
    fn unterminated_heredoc_fails() {
        let error = parse("RUN <<EOF\nx").unwrap_err();
        assert!(error.message.starts_with("unterminated heredoc"));
        assert_eq!(error.span, 0..9);
    }

    #[test]
    fn onbuild_carries_its_instruction() {
        let parsed = parse("ONBUILD --x RUN --y echo hi").unwrap();
        let node = &parsed.nodes[0];
        assert_eq!(node.flags[0].text, "--x");
        let sub = node.sub_instruction.as_ref().unwrap();
        assert_eq!(
            (sub.keyword.as_str(), sub.args.clone()),
            ("RUN", owned(&["echo hi"]))
        );
        assert_eq!(sub.keyword_span, 12..15);
    }

    #[test]
    fn nested_onbuild_is_bounded() {
        let line = "ONBUILD ".repeat(10_000) + "RUN x";
        let parsed = parse(&line).unwrap();
        let mut depth = 0;
        let mut node = &parsed.nodes[0];
        while let Some(sub) = &node.sub_instruction {
            node = sub;
            depth += 1;
        }
        assert_eq!(depth, MAX_ONBUILD_NESTING);
        assert_eq!(node.args, [""]);
    }

    #[test]
    fn spans_follow_continuations() {
        let source = "FROM a\nCOPY \\\n  --chown=1 \\\n  src dst\n";
        let parsed = parse(source).unwrap();
        let copy = &parsed.nodes[1];
        assert_eq!(&source[copy.flags[0].span.clone()], "--chown=1");
        assert_eq!(&source[copy.args_span.clone()], "src dst");
    }

    #[test]
    fn empty_files_fail() {
        assert_eq!(
            parse("# only a comment\n\n").unwrap_err().message,
            "file with no instructions"
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn directive_errors_point_at_the_value() {
        let error = parse("# escape=x\nFROM a").unwrap_err();
        assert_eq!(error.span, 9..10);
    }
}
