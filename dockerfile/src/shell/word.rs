//! The expansion of one word: quotes, escapes and `$…` references processed character by character, as
//! BuildKit's `shell.shellWord`, with the words split on unquoted whitespace on the side.

use std::collections::BTreeSet;

use super::Lexer;
use crate::shell_pattern;

/// Accumulates words split on unquoted whitespace.
#[derive(Default)]
struct WordSplitter {
    current: String,
    words: Vec<String>,
    in_word: bool,
}

impl WordSplitter {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_string(&mut self, text: &str) {
        self.current.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) struct ShellWord<'a> {
    pub(super) lexer: Lexer,
    pub(super) chars: Vec<char>,
    pub(super) pos: usize,
    pub(super) env: Lookup<'a>,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
    /// How many `${…}` enclose the current position.
    pub(super) nesting: usize,
}

/// Deepest `${…${…}…}` nesting accepted; bounds recursion on hostile input.
const MAX_NESTING: usize = 200;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += 1;
        Some(ch)
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        if value.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        value
    }

    /// Processes up to `stop` (consumed) or the end of input; returns the word and its split words.
    pub(super) fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = WordSplitter::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' if !self.lexer.skip_process_quotes => {
                    let value = self.process_single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' if !self.lexer.skip_process_quotes => {
                    let value = self.process_double_quote(raw_escapes)?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self, raw_escapes: bool) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.lexer.escape {
                        if raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.pos += 1;
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        if self.nesting >= MAX_NESTING {
            return Err(format!(
                "variable substitutions nested more than {MAX_NESTING} deep"
            ));
        }
        self.nesting += 1;
        let result = self.process_braced();
        self.nesting -= 1;
        result
    }

    /// `${…}` after the opening brace.
    fn process_braced(&mut self) -> Result<String, String> {
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut modifier) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut modifier_text = modifier.to_string();
        let mut null_is_unset = false;
        match modifier {
            '}' => {
                return Ok(match self.get_env(&name) {
                    Some(value) => value,
                    None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.process_replacement(&name),
            ':' => {
                null_is_unset = true;
                let Some(after_colon) = self.next() else {
                    return Err("syntax error: missing '}'".into());
                };
                modifier = after_colon;
                modifier_text.push(after_colon);
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => {
                return Err(format!(
                    "unsupported modifier ({modifier_text}) in substitution"
                ))
            }
        }
        let pattern_modifier = modifier == '#' || modifier == '%';
        if null_is_unset && pattern_modifier {
            return Err(format!(
                "unsupported modifier ({modifier_text}) in substitution"
            ));
        }
        let word = match self.process_stop_on(Some('}'), pattern_modifier) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(error) => return Err(error),
        };
        let value = self.get_env(&name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier_text}{word}}}"));
        }
        let is_null = |value: &Option<String>| {
            value.is_none() || (null_is_unset && value.as_deref() == Some(""))
        };
        match modifier {
            '-' => Ok(if is_null(&value) {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if is_null(&value) { String::new() } else { word }),
            '?' => match value {
                None => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                )),
                Some(value) if null_is_unset && value.is_empty() => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    }
                )),
                Some(value) => Ok(value),
            },
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let value = value.unwrap_or_default();
                let trimmed = if modifier == '%' {
                    shell_pattern::trim_suffix(&pattern, &value, greedy)
                } else {
                    shell_pattern::trim_prefix(&pattern, &value, greedy)
                };
                trimmed.map_err(|error| {
                    format!("invalid pattern ({pattern}) in substitution: {error}")
                })
            }
            _ => Err(format!(
                "unsupported modifier ({modifier_text}) in substitution"
            )),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`, after the first `/`.
    fn process_replacement(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((pattern, _)) => pattern,
            Err(_) if self.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".into())
            }
            Err(error) => return Err(error),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((replacement, _)) => replacement,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(error) => return Err(error),
        };
        let Some(value) = self.get_env(name) else {
            if self.lexer.skip_unset_env {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return shell_pattern::replace(&pattern, "", &replacement, all)
                .map_err(|error| format!("invalid pattern ({pattern}) in substitution: {error}"));
        };
        shell_pattern::replace(&pattern, &value, &replacement, all)
            .map_err(|error| format!("invalid pattern ({pattern}) in substitution: {error}"))
    }

    /// Reads a variable name: letters, digits and `_`; a run of digits; or one special parameter.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(digit) = self.peek().filter(char::is_ascii_digit) {
                    name.push(digit);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}
