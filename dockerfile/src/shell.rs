//! Word expansion: a port of BuildKit's shell lexer (`frontend/dockerfile/shell`).
//!
//! Processes quotes (`'…'`, `"…"`), the escape character (`\` or `` ` ``) and variable references (`$VAR`,
//! `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#p}`,
//! `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`), producing either one word
//! ([`Lexer::process_word`]) or the words of a shell-form list split on unquoted whitespace
//! ([`Lexer::process_words`]).

use std::collections::{BTreeMap, BTreeSet};

use super::shell_pattern;

/// Variables visible to word expansion.
pub trait Environment {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Environment for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Environment for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Environment for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Environment::get(self.as_slice(), name)
    }
}

/// A failed expansion, e.g. an unterminated quote or `${VAR:?message}` with `VAR` unset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process \"{input}\": {reason}")]
pub struct ExpandError {
    /// The word that was being expanded.
    pub input: String,
    /// What went wrong.
    pub reason: String,
}

/// The outcome of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The whole word, quotes removed and variables substituted.
    pub word: String,
    /// The same split into words on unquoted whitespace (shell-form lists).
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but not set.
    pub unmatched: BTreeSet<String>,
}

/// Shell word processor; the options mirror BuildKit's `shell.Lex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
    /// Treat quotes as ordinary characters (used for heredoc content).
    pub skip_process_quotes: bool,
}

impl Lexer {
    /// A lexer with the given escape character and no raw options.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Expands `word` into a single word.
    pub fn process_word(
        &self,
        word: &str,
        env: &(impl Environment + ?Sized),
    ) -> Result<String, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.word)
    }

    /// Expands `word` and splits it into words on unquoted whitespace.
    pub fn process_words(
        &self,
        word: &str,
        env: &(impl Environment + ?Sized),
    ) -> Result<Vec<String>, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.words)
    }

    /// Expands `word`, returning the word, its split words and which variables were used.
    pub fn expand(
        &self,
        word: &str,
        env: &(impl Environment + ?Sized),
    ) -> Result<Expansion, ExpandError> {
        let mut state = ShellWord {
            lexer: *self,
            chars: word.chars().collect(),
            pos: 0,
            env: &|name: &str| env.get(name).map(str::to_string),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            nesting: 0,
        };
        match state.process_stop_on(None, self.raw_escapes) {
            Ok((word, words)) => Ok(Expansion {
                word,
                words,
                matched: state.matched,
                unmatched: state.unmatched,
            }),
            Err(reason) => Err(ExpandError {
                input: word.to_string(),
                reason,
            }),
        }
    }
}

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

struct ShellWord<'a> {
    lexer: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: Lookup<'a>,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// How many `${…}` enclose the current position.
    nesting: usize,
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
    fn process_stop_on(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_modifiers() {
        let vars = env(&[("A", "a/b/c.tar.gz"), ("EMPTY", "")]);
        let lexer = Lexer::new('\\');
        let cases = [
            ("${A#*/}", "b/c.tar.gz"),
            ("${A##*/}", "c.tar.gz"),
            ("${A%.*}", "a/b/c.tar"),
            ("${A%%.*}", "a/b/c"),
            ("${A/\\//-}", "a-b/c.tar.gz"),
            ("${A//\\//-}", "a-b-c.tar.gz"),
            ("${EMPTY-x}", ""),
            ("${EMPTY:-x}", "x"),
            ("${EMPTY+x}", "x"),
            ("${EMPTY:+x}", ""),
            ("${UNSET+x}", ""),
            ("${EMPTY?}", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(
                lexer.process_word(input, &vars).unwrap(),
                expected,
                "{input}"
            );
        }
        let error = lexer
            .process_word("${UNSET?custom message}", &vars)
            .unwrap_err();
        assert_eq!(error.reason, "UNSET: custom message");
        assert!(lexer.process_word("${A:#x}", &vars).is_err());
    }

    /// Pattern modifiers, including regex metacharacters and escaped separators (cases from BuildKit's suite).
    #[test]
    fn pattern_modifiers_match_buildkit() {
        let lexer = Lexer::new('\\');
        // (input, variables, expected word or None for an error)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (
                r"${FOO#()[]{\}^$.\*\?|\\}",
                &[("FOO", r"()[]{}^$.*?|\x")],
                Some("x"),
            ),
            (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx")),
            ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
            ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
            ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
            (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y")),
            (
                "${ABC:-.}${FOO%x}${ABC:-.}",
                &[("FOO", "xxyy")],
                Some(".xxyy."),
            ),
            (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a")),
            ("${FOO:#}", &[], None),
            ("${FOO:%%}", &[], None),
            ("${FOO=aaa}", &[("FOO", "xxx")], None),
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
                Some("/foo.*/*.txt - /foo..*.txt"),
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
                Some("/tmp/bar.txt - /bar.txt"),
            ),
            (
                "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
                &[
                    ("FOO", "/a/foo/b/c.txt"),
                    ("NEEDLE", "/?/"),
                    ("REPLACEMENT", "/"),
                ],
                Some("/foo/b/c.txt - /foo/c.txt"),
            ),
            (
                r"${FOO//\//\/}",
                &[("FOO", "/tmp/foo.txt")],
                Some(r"\/tmp\/foo.txt"),
            ),
            (
                "${FOO/$BAR/ww}",
                &[("FOO", "xxyy"), ("BAR", "")],
                Some("wwxxyy"),
            ),
            ("${FOO//ww}", &[("FOO", "xxyy")], None),
            ("${FOO//}", &[("FOO", "xxyy")], None),
            ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO///}", &[], Some("")),
            (
                "x-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}",
                &[("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")],
                Some("x-arm-v7"),
            ),
        ];
        for (input, vars, expected) in cases {
            let result = lexer.process_word(input, &env(vars));
            match expected {
                Some(expected) => assert_eq!(result.as_deref(), Ok(*expected), "{input}"),
                None => assert!(result.is_err(), "{input} gave {result:?}"),
            }
        }
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        let vars = env(&[("X", "1")]);
        assert_eq!(lexer.process_word(r"`$X\$X", &vars).unwrap(), r"$X\1");
        assert_eq!(lexer.process_word("\"a`\"b\"", &vars).unwrap(), "a\"b");
    }

    #[test]
    fn skip_unset_and_raw_quotes_keep_text() {
        let lexer = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset_env: true,
            ..Lexer::new('\\')
        };
        let words = lexer
            .process_words(r#"RUN <<"EOF" $X ${Y:-z} a\ b"#, &env(&[]))
            .unwrap();
        assert_eq!(words, ["RUN", "<<\"EOF\"", "$X", "${Y:-z}", r"a\ b"]);
    }

    #[test]
    fn deep_nesting_fails_cleanly() {
        let word = "${A:-".repeat(100_000) + &"}".repeat(100_000);
        let error = Lexer::new('\\').process_word(&word, &env(&[])).unwrap_err();
        assert!(error.reason.contains("nested"));
        let fine = "${A:-".repeat(50) + "x" + &"}".repeat(50);
        assert_eq!(
            Lexer::new('\\').process_word(&fine, &env(&[])).unwrap(),
            "x"
        );
    }

    #[test]
    fn skip_process_quotes_keeps_quotes_literal() {
        let lexer = Lexer {
            skip_process_quotes: true,
            ..Lexer::new('\\')
        };
        let vars = env(&[("X", "1")]);
        assert_eq!(
            lexer.process_word("echo \"$X\" 'it''s'\n", &vars).unwrap(),
            "echo \"1\" 'it''s'\n"
        );
    }

    #[test]
    fn records_used_variables() {
        let expansion = Lexer::new('\\')
            .expand("$A ${B:-x}", &env(&[("A", "1")]))
            .unwrap();
        assert_eq!(expansion.matched.into_iter().collect::<Vec<_>>(), ["A"]);
        assert_eq!(expansion.unmatched.into_iter().collect::<Vec<_>>(), ["B"]);
    }

    /// BuildKit's word-expansion vectors from the shared corpus (skipped when the corpus is absent).
    mod corpus_vectors {
        use super::*;

        const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/shell");

        fn read_vectors(name: &str) -> Option<String> {
            let path = format!("{CORPUS}/{name}");
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(_) => {
                    println!("SKIP: {path} not found; corpus vectors not run");
                    None
                }
            }
        }

        #[test]
        fn env_var_vectors() {
            let Some(text) = read_vectors("envVarTest") else {
                return;
            };
            let vars = env(&[
                ("PWD", "/home"),
                ("SHELL", "bash"),
                ("KOREAN", "한국어"),
                ("NULL", ""),
            ]);
            let lexer = Lexer::new('\\');
            let mut checked = 0;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let fields: Vec<&str> = line.split('|').collect();
                assert_eq!(fields.len(), 3, "line {}: {line}", number + 1);
                let (platform, input, expected) =
                    (fields[0].trim(), fields[1].trim(), fields[2].trim());
                if platform == "W" {
                    continue;
                }
                let result = lexer.process_word(input, &vars);
                if expected == "error" {
                    assert!(
                        result.is_err(),
                        "line {}: {input:?} gave {result:?}",
                        number + 1
                    );
                } else {
                    assert_eq!(
                        result.as_deref(),
                        Ok(expected),
                        "line {}: {input:?}",
                        number + 1
                    );
                }
                checked += 1;
            }
            println!("envVarTest: {checked} A/U vectors passed");
            assert!(checked > 200);
        }

        #[test]
        fn words_vectors() {
            let Some(text) = read_vectors("wordsTest") else {
                return;
            };
            let mut vars: Vec<(String, String)> = Vec::new();
            let lexer = Lexer::new('\\');
            let mut checked = 0;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim_start();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(assignment) = line.strip_prefix("ENV ") {
                    let assignment = assignment.trim_start_matches(' ');
                    let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
                    vars.push((name.to_string(), value.to_string()));
                    continue;
                }
                let fields: Vec<&str> = line.split('|').collect();
                assert_eq!(fields.len(), 2, "line {}: {line}", number + 1);
                let input = fields[0].trim();
                let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
                let words = match lexer.process_words(input, &vars) {
                    Ok(words) => words,
                    Err(_) => vec!["error".to_string()],
                };
                assert_eq!(words, expected, "line {}: {input:?}", number + 1);
                checked += 1;
            }
            println!("wordsTest: {checked} vectors passed");
            assert!(checked > 20);
        }
    }
}
