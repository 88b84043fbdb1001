//! Splitting an instruction line into its keyword, `--flags` and the rest, as BuildKit's `splitCommand`.
//!
//! Flags are the leading words that start with `--`; quotes and `\` escapes inside them are processed; a bare
//! `--` ends the flags. Positions are byte offsets into the line given.

use std::ops::Range;

/// An instruction line taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitCommand<'a> {
    /// The keyword as written.
    pub keyword: &'a str,
    /// Offset of the keyword in the line.
    pub keyword_start: usize,
    /// The flags with their byte ranges in the line.
    pub flags: Vec<(String, Range<usize>)>,
    /// The arguments, trimmed.
    pub args: &'a str,
    /// Offset of the arguments in the line.
    pub args_start: usize,
}

/// Whitespace as BuildKit's `[\t\v\f\r ]+` separator.
pub fn is_separator(ch: char) -> bool {
    matches!(ch, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits `line` into keyword, flags and arguments.
pub fn split_command(line: &str) -> SplitCommand<'_> {
    let trimmed = line.trim();
    let leading = line.len() - line.trim_start().len();
    let keyword_end = trimmed.find(is_separator).unwrap_or(trimmed.len());
    let keyword = &trimmed[..keyword_end];
    let after_keyword = trimmed[keyword_end..].trim_start_matches(is_separator);
    if after_keyword.is_empty() {
        return SplitCommand {
            keyword,
            keyword_start: leading,
            flags: Vec::new(),
            args: "",
            args_start: leading + trimmed.len(),
        };
    }
    let rest_start = leading + (trimmed.len() - after_keyword.len());
    let (args_offset, flags) = extract_builder_flags(after_keyword);
    let raw_args = &after_keyword[args_offset..];
    let args = raw_args.trim();
    let args_start = rest_start + args_offset + (raw_args.len() - raw_args.trim_start().len());
    SplitCommand {
        keyword,
        keyword_start: leading,
        flags: flags
            .into_iter()
            .map(|(text, range)| (text, range.start + rest_start..range.end + rest_start))
            .collect(),
        args,
        args_start,
    }
}

/// Reads the leading `--flag` words of `line`; returns where the arguments start and the flags.
fn extract_builder_flags(line: &str) -> (usize, Vec<(String, Range<usize>)>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(u8),
    }
    let bytes = line.as_bytes();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut word_start = 0;
    let mut blank_ok = false;
    let finish = |word: &[u8]| String::from_utf8_lossy(word).into_owned();
    let mut pos = 0;
    while pos <= bytes.len() {
        let at_end = pos == bytes.len();
        let ch = if at_end { 0 } else { bytes[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_ascii_whitespace() || ch == 0x0b {
                pos += 1;
                continue;
            }
            if ch != b'-' || bytes.get(pos + 1) != Some(&b'-') {
                return (pos, flags);
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if at_end {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                flags.push((finish(&word), word_start..pos));
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_ascii_whitespace() || ch == 0x0b {
                    phase = Phase::Spaces;
                    if word == b"--" {
                        return (pos, flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push((finish(&word), word_start..pos));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == b'\'' || ch == b'"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == b'\\' {
                    if pos + 1 < bytes.len() {
                        pos += 1;
                        word.push(bytes[pos]);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                } else if ch == b'\\' {
                    if pos + 1 == bytes.len() {
                        phase = Phase::Word;
                    } else {
                        pos += 1;
                        word.push(bytes[pos]);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => unreachable!("handled above"),
        }
        pos += 1;
    }
    (bytes.len(), flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_and_args(line: &str) -> (Vec<String>, String) {
        let split = split_command(line);
        (
            split.flags.into_iter().map(|(text, _)| text).collect(),
            split.args.to_string(),
        )
    }

    #[test]
    fn splits_keyword_flags_and_args() {
        let split = split_command("  COPY --from=a --chown=\"x y\"  a b ");
        assert_eq!(split.keyword, "COPY");
        assert_eq!(split.keyword_start, 2);
        assert_eq!(split.flags[0], ("--from=a".to_string(), 7..15));
        assert_eq!(split.flags[1].0, "--chown=x y");
        assert_eq!(split.args, "a b");
        assert_eq!(split.args_start, 31);
    }

    #[test]
    fn double_dash_ends_flags() {
        assert_eq!(flags_and_args("RUN -- --x"), (vec![], "--x".into()));
        assert_eq!(flags_and_args("RUN --"), (vec![], "".into()));
        assert_eq!(
            flags_and_args("RUN --x --"),
            (vec!["--x".into()], "".into())
        );
        assert_eq!(
            flags_and_args("RUN --a b c"),
            (vec!["--a".into()], "b c".into())
        );
        assert_eq!(flags_and_args("RUN -x"), (vec![], "-x".into()));
    }

    #[test]
    fn escapes_in_flags() {
        assert_eq!(
            flags_and_args(r"RUN --x=a\ b c"),
            (vec!["--x=a b".into()], "c".into())
        );
        assert_eq!(
            flags_and_args(r#"ADD --x="a \" b"  c"#),
            (vec![r#"--x=a " b"#.into()], "c".into())
        );
    }
}
