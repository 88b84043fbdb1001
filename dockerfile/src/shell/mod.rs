//! Word expansion: a port of BuildKit's shell lexer (`frontend/dockerfile/shell`).
//!
//! Processes quotes (`'…'`, `"…"`), the escape character (`\` or `` ` ``) and variable references (`$VAR`,
//! `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#p}`,
//! `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`, `${VAR/p/r}`, `${VAR//p/r}`), producing either one word
//! ([`Lexer::process_word`]) or the words of a shell-form list split on unquoted whitespace
//! ([`Lexer::process_words`]).

use std::collections::{BTreeMap, BTreeSet};

use word::ShellWord;

mod word;

#[cfg(test)]
mod tests;

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
