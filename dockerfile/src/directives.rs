//! Parser directives (`# syntax=`, `# escape=`, `# check=`) at the top of a Dockerfile.
//!
//! A port of BuildKit's directive handling: directives are only recognised before the first instruction, comment
//! or blank line; their names are case-insensitive and each may appear once.

/// The parser directives seen at the top of a Dockerfile, and whether directive parsing is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// The value of `# syntax=`, if given.
    pub syntax: Option<String>,
    /// The value of `# check=`, if given.
    pub check: Option<String>,
    /// Where the `# check=` value is written (byte range in the source), set by the parser.
    pub check_span: Option<std::ops::Range<usize>>,
    escape_seen: bool,
    done: bool,
}

/// A directive that is repeated or has an invalid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError {
    /// What went wrong.
    pub message: String,
    /// Byte range of the directive's value within the line given to [`Directives::observe_line`].
    pub value_range: std::ops::Range<usize>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
            check_span: None,
            escape_seen: false,
            done: false,
        }
    }
}

/// Splits `# name = value` into name and value ranges, like BuildKit's
/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (where `\s` is `[\t\n\f\r ]`).
fn match_directive(line: &str) -> Option<(&str, std::ops::Range<usize>)> {
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let bytes = line.as_bytes();
    let mut pos = 0;
    if bytes.first() != Some(&b'#') {
        return None;
    }
    pos += 1;
    while pos < bytes.len() && is_space(bytes[pos]) {
        pos += 1;
    }
    let name_start = pos;
    if pos >= bytes.len() || !bytes[pos].is_ascii_alphabetic() {
        return None;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_alphanumeric() {
        pos += 1;
    }
    let name = &line[name_start..pos];
    while pos < bytes.len() && is_space(bytes[pos]) {
        pos += 1;
    }
    if bytes.get(pos) != Some(&b'=') {
        return None;
    }
    pos += 1;
    while pos < bytes.len() && is_space(bytes[pos]) {
        pos += 1;
    }
    let mut end = bytes.len();
    while end > pos && is_space(bytes[end - 1]) {
        end -= 1;
    }
    if end == pos {
        return None;
    }
    Some((name, pos..end))
}

impl Directives {
    /// Looks at one line (newline and leading whitespace already removed) while directives may still appear.
    /// Anything that is not a known directive ends directive parsing. Returns the range of the value of a
    /// `# check=` directive within the line.
    pub fn observe_line(
        &mut self,
        line: &str,
    ) -> Result<Option<std::ops::Range<usize>>, DirectiveError> {
        if self.done {
            return Ok(None);
        }
        let Some((name, value_range)) = match_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let value = &line[value_range.clone()];
        let name = name.to_ascii_lowercase();
        let slot = match name.as_str() {
            "syntax" => &mut self.syntax,
            "check" => &mut self.check,
            "escape" => {
                if self.escape_seen {
                    return Err(DirectiveError {
                        message: "only one escape parser directive can be used".into(),
                        value_range,
                    });
                }
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(DirectiveError {
                            message: format!(
                                "invalid escape token '{value}' does not match ` or \\"
                            ),
                            value_range,
                        })
                    }
                };
                self.escape_seen = true;
                return Ok(None);
            }
            _ => {
                self.done = true;
                return Ok(None);
            }
        };
        if slot.is_some() {
            return Err(DirectiveError {
                message: format!("only one {name} parser directive can be used"),
                value_range,
            });
        }
        *slot = Some(value.to_string());
        Ok((name == "check").then_some(value_range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_directive_is_case_insensitive_and_trimmed() {
        let mut directives = Directives::default();
        directives.observe_line("#  ESCAPE = `  ").unwrap();
        assert_eq!(directives.escape, '`');
    }

    #[test]
    fn directives_end_at_first_other_line() {
        let mut directives = Directives::default();
        directives
            .observe_line("# syntax=docker/dockerfile:1")
            .unwrap();
        directives.observe_line("# a comment").unwrap();
        directives.observe_line("# escape=`").unwrap();
        assert_eq!(directives.escape, '\\');
        assert_eq!(directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    }

    #[test]
    fn check_directive_is_recorded() {
        let mut directives = Directives::default();
        directives.observe_line("# check=skip=all").unwrap();
        directives.observe_line("# escape=`").unwrap();
        assert_eq!(directives.check.as_deref(), Some("skip=all"));
        assert_eq!(directives.escape, '`');
    }

    #[test]
    fn repeated_or_invalid_directives_fail() {
        let mut directives = Directives::default();
        directives.observe_line("# escape=`").unwrap();
        assert!(directives.observe_line("# escape=\\").is_err());
        let mut directives = Directives::default();
        let error = directives.observe_line("# escape=x").unwrap_err();
        assert_eq!(error.value_range, 9..10);
    }
}
