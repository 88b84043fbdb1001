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

/// Most `*` a pattern may have; bounds the matcher's recursion.
const MAX_WILDCARDS: usize = 256;

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
                // `**` matches what `*` matches, with the same preference.
                '*' if tokens.last() == Some(&Token::AnyString) => {}
                '*' => {
                    tokens.push(Token::AnyString);
                    if tokens
                        .iter()
                        .filter(|token| **token == Token::AnyString)
                        .count()
                        > MAX_WILDCARDS
                    {
                        return Err(format!(
                            "more than {MAX_WILDCARDS} '*' wildcards in pattern"
                        ));
                    }
                }
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

    /// A matcher over `text`.
    fn search<'a>(&'a self, text: &'a [char]) -> Search<'a> {
        Search {
            pattern: self,
            text,
            line_end: line_ends(text),
            memo: HashMap::new(),
        }
    }

    /// Reverses the pattern for suffix matching, keeping escaped characters escaped.
    fn reversed(&self) -> ShellPattern {
        ShellPattern {
            tokens: self.tokens.iter().rev().cloned().collect(),
            greedy: self.greedy,
        }
    }
}

/// For each position, where the line containing it ends (wildcards stop there).
fn line_ends(text: &[char]) -> Vec<usize> {
    let mut ends = vec![text.len(); text.len() + 1];
    for pos in (0..text.len()).rev() {
        ends[pos] = if text[pos] == '\n' {
            pos
        } else {
            ends[pos + 1]
        };
    }
    ends
}

/// One matching run over a text, memoising the outcome at each wildcard position.
struct Search<'a> {
    pattern: &'a ShellPattern,
    text: &'a [char],
    line_end: Vec<usize>,
    memo: HashMap<(usize, usize), Option<usize>>,
}

impl Search<'_> {
    /// The first match starting at `from` or later (only at `from` when `anchored`), as a char-index range.
    fn find(&mut self, from: usize, anchored: bool) -> Option<(usize, usize)> {
        let last_start = if anchored { from } else { self.text.len() };
        (from..=last_start).find_map(|start| self.match_at(0, start).map(|end| (start, end)))
    }

    /// Where a match of `tokens[token..]` starting at `pos` ends, trying alternatives in Go's preference order.
    /// Literal runs are matched in a loop; recursion happens only at `*`, so its depth is bounded by the
    /// number of stars.
    fn match_at(&mut self, mut token: usize, mut pos: usize) -> Option<usize> {
        loop {
            match self.pattern.tokens.get(token) {
                None => return Some(pos),
                Some(Token::Literal(ch)) if self.text.get(pos) == Some(ch) => {}
                Some(Token::AnyChar) if self.text.get(pos).is_some_and(|ch| *ch != '\n') => {}
                Some(Token::AnyString) => break,
                Some(_) => return None,
            }
            token += 1;
            pos += 1;
        }
        if let Some(known) = self.memo.get(&(token, pos)) {
            return *known;
        }
        let longest = self.line_end[pos] - pos;
        let result = if self.pattern.greedy {
            (0..=longest)
                .rev()
                .find_map(|len| self.match_at(token + 1, pos + len))
        } else {
            (0..=longest).find_map(|len| self.match_at(token + 1, pos + len))
        };
        self.memo.insert((token, pos), result);
        result
    }
}

/// `${VAR#pattern}` / `${VAR##pattern}`: removes the shortest (longest when `greedy`) matching prefix.
pub fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = ShellPattern::compile(pattern, greedy)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match pattern.search(&chars).find(0, true) {
        Some((_, end)) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${VAR%pattern}` / `${VAR%%pattern}`: removes the shortest (longest when `greedy`) matching suffix.
pub fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let pattern = ShellPattern::compile(pattern, greedy)?.reversed();
    let reversed: Vec<char> = value.chars().rev().collect();
    Ok(match pattern.search(&reversed).find(0, true) {
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
    let mut search = pattern.search(&chars);
    if !all {
        return Ok(match search.find(0, false) {
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
        let Some((start, end)) = search.find(search_from, false) else {
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
    fn long_values_and_patterns() {
        let value = "a".repeat(200_000) + "/b";
        assert_eq!(trim_prefix("*/", &value, true).unwrap(), "b");
        assert_eq!(trim_suffix("/*", &value, false).unwrap().len(), 200_000);
        let pattern = "a".repeat(200_000);
        assert_eq!(trim_prefix(&pattern, &value, false).unwrap(), "/b");
        assert!(trim_prefix(&"*a".repeat(1000), "a", false).is_err());
        let many = "ab".repeat(100_000);
        assert_eq!(replace("a", &many, "", true).unwrap(), "b".repeat(100_000));
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        assert_eq!(trim_prefix("*", "a\nb", true).unwrap(), "\nb");
    }
}
