//! Shell wildcard patterns for `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`.
//!
//! BuildKit turns such a pattern into a Go regular expression (`*` → `.*` or `.*?`, `?` → `.`, escapes `\*`,
//! `\?`, `\\`, and `\}` / `\/` standing for the bare character) and uses Go's leftmost-first matching. This module
//! matches the same patterns directly with a memoised backtracking matcher that honours the same preference order,
//! so results agree with BuildKit without a regex engine. Like Go's `.`, wildcards never match a newline.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyString,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub struct ShellPattern {
    tokens: Vec<Token>,
    /// `*` prefers the longest match (else the shortest).
    greedy: bool,
}

impl ShellPattern {
    /// Compiles `pattern`; fails on an escape of anything but `*`, `?`, `\`, `}` or `/`.
    pub fn compile(pattern: &str, greedy: bool) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => tokens.push(Token::AnyString),
                '?' => tokens.push(Token::AnyChar),
                '\\' => {
                    if matches!(chars.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match chars.next() {
                        Some(escaped @ ('*' | '?' | '\\')) => tokens.push(Token::Literal(escaped)),
                        Some(other) => return Err(format!("invalid escape '\\{other}'")),
                        None => return Err("invalid escape at end of pattern".into()),
                    }
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(ShellPattern { tokens, greedy })
    }

    /// The first match at or after the start (only at the start when `anchored`), as a char-index range.
    fn find(&self, text: &[char], anchored: bool) -> Option<(usize, usize)> {
        let mut memo = HashMap::new();
        let last_start = if anchored { 0 } else { text.len() };
        (0..=last_start).find_map(|start| {
            self.match_at(text, 0, start, &mut memo)
                .map(|end| (start, end))
        })
    }

    /// Where a match of `tokens[token..]` starting at `pos` ends, trying alternatives in Go's preference order.
    fn match_at(
        &self,
        text: &[char],
        token: usize,
        pos: usize,
        memo: &mut HashMap<(usize, usize), Option<usize>>,
    ) -> Option<usize> {
        if let Some(known) = memo.get(&(token, pos)) {
            return *known;
        }
        let result = match self.tokens.get(token) {
            None => Some(pos),
            Some(Token::Literal(ch)) => {
                if text.get(pos) == Some(ch) {
                    self.match_at(text, token + 1, pos + 1, memo)
                } else {
                    None
                }
            }
            Some(Token::AnyChar) => match text.get(pos) {
                Some(ch) if *ch != '\n' => self.match_at(text, token + 1, pos + 1, memo),
                _ => None,
            },
            Some(Token::AnyString) => {
                let longest = text[pos..].iter().take_while(|ch| **ch != '\n').count();
                if self.greedy {
                    (0..=longest)
                        .rev()
                        .find_map(|len| self.match_at(text, token + 1, pos + len, memo))
                } else {
                    (0..=longest).find_map(|len| self.match_at(text, token + 1, pos + len, memo))
                }
            }
        };
        memo.insert((token, pos), result);
        result
    }

    /// Reverses the pattern for suffix matching, keeping escaped characters escaped.
    fn reversed(&self) -> ShellPattern {
        ShellPattern {
            tokens: self.tokens.iter().rev().cloned().collect(),
            greedy: self.greedy,
        }
    }
}

/// `${VAR#pattern}` / `${VAR##pattern}`: removes the shortest (longest when `greedy`) matching prefix.
pub fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = ShellPattern::compile(pattern, greedy)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match pattern.find(&chars, true) {
        Some((_, end)) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${VAR%pattern}` / `${VAR%%pattern}`: removes the shortest (longest when `greedy`) matching suffix.
pub fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = ShellPattern::compile(pattern, greedy)?.reversed();
    let reversed: Vec<char> = value.chars().rev().collect();
    Ok(match pattern.find(&reversed, true) {
        Some((_, end)) => reversed[end..].iter().rev().collect(),
        None => value.to_string(),
    })
}

/// `${VAR/pattern/replacement}` and `${VAR//pattern/replacement}` (`all`), with greedy wildcards.
///
/// Like Go's `Regexp.ReplaceAllString`, the replacement of `all` is a template: `$$` is a dollar, `$0` / `${0}`
/// the matched text, and any other `$name` is empty.
pub fn replace(pattern: &str, value: &str, replacement: &str, all: bool) -> Result<String, String> {
    let pattern = ShellPattern::compile(pattern, true)?;
    let chars: Vec<char> = value.chars().collect();
    if !all {
        return Ok(match pattern.find(&chars, false) {
            Some((start, end)) => {
                let mut out: String = chars[..start].iter().collect();
                out.push_str(replacement);
                out.extend(&chars[end..]);
                out
            }
            None => value.to_string(),
        });
    }
    let mut out = String::new();
    let mut copied_up_to = 0;
    let mut search_from = 0;
    let mut previous_match_end: Option<usize> = None;
    while search_from <= chars.len() {
        let Some((start, end)) = pattern
            .find(&chars[search_from..], false)
            .map(|(s, e)| (s + search_from, e + search_from))
        else {
            break;
        };
        // Go ignores an empty match right after the previous match.
        if start == end && previous_match_end == Some(start) {
            search_from = start + 1;
            continue;
        }
        out.extend(&chars[copied_up_to..start]);
        let matched: String = chars[start..end].iter().collect();
        out.push_str(&expand_template(replacement, &matched));
        copied_up_to = end;
        previous_match_end = Some(end);
        search_from = if end > start { end } else { end + 1 };
    }
    out.extend(&chars[copied_up_to.min(chars.len())..]);
    Ok(out)
}

/// Expands a Go regexp replacement template for a pattern without capture groups.
fn expand_template(template: &str, matched: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(close) if close > 0 && braced[..close].chars().all(is_name_char) => {
                    (&braced[..close], &braced[close + 1..])
                }
                _ => ("", rest),
            }
        } else {
            let len = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
            (&rest[..len], &rest[len..])
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u64>() == Ok(0) {
            out.push_str(matched);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix_trimming() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_suffix("x", "a/b/c", true).unwrap(), "a/b/c");
        assert_eq!(trim_prefix("a?", "abc", false).unwrap(), "c");
        assert_eq!(trim_prefix(r"\*", "*x", false).unwrap(), "x");
        assert!(trim_prefix(r"\x", "x", false).is_err());
    }

    #[test]
    fn replacement_first_and_all() {
        assert_eq!(replace("o", "foo", "0", false).unwrap(), "f0o");
        assert_eq!(replace("o", "foo", "0", true).unwrap(), "f00");
        assert_eq!(replace("o*", "foo bar", "X", false).unwrap(), "fX");
        assert_eq!(replace("", "ab", "-", true).unwrap(), "-a-b-");
        assert_eq!(replace("b", "abc", "[$0]", true).unwrap(), "a[b]c");
        assert_eq!(replace("b", "abc", "$$x$y", true).unwrap(), "a$xc");
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        assert_eq!(trim_prefix("*", "a\nb", true).unwrap(), "\nb");
    }
}
