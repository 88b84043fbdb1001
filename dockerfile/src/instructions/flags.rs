//! Validating an instruction's `--flags` (BuildKit's `BFlags`).
//!
//! Each instruction declares which flags it takes and of what kind; unknown flags, repeated single-valued
//! flags, boolean flags with a non-boolean value and string flags without a value are errors that point at
//! the flag in the source.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::ast::RawFlag;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=value`, at most once.
    String,
    /// `--mount=value`, any number of times.
    StringList,
}

/// A flag error and the flag's source range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// What is wrong.
    pub message: String,
    /// What was expected.
    pub expected: String,
    /// Where the flag is written.
    pub span: Range<usize>,
}

/// Flags that passed validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFlags {
    strings: BTreeMap<&'static str, (String, Range<usize>)>,
    lists: BTreeMap<&'static str, Vec<(String, Range<usize>)>>,
    bools: BTreeMap<&'static str, bool>,
}

impl ParsedFlags {
    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.strings.get(name).map(|(value, _)| value.clone())
    }

    /// The value and source range of a string flag, if given.
    pub fn string_with_span(&self, name: &str) -> Option<(String, Range<usize>)> {
        self.strings.get(name).cloned()
    }

    /// The values of a repeatable flag with their source ranges.
    pub fn list(&self, name: &str) -> Vec<(String, Range<usize>)> {
        self.lists.get(name).cloned().unwrap_or_default()
    }

    /// Whether a boolean flag was given as true.
    pub fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
}

/// Validates `flags` of `instruction` against the allowed `(name, kind)` pairs.
pub fn parse_flags(
    instruction: &str,
    flags: &[RawFlag],
    allowed: &[(&'static str, FlagKind)],
) -> Result<ParsedFlags, FlagError> {
    let mut parsed = ParsedFlags::default();
    let allowed_list = || {
        if allowed.is_empty() {
            format!("{instruction} takes no flags")
        } else {
            let names: Vec<String> = allowed
                .iter()
                .map(|(name, _)| format!("--{name}"))
                .collect();
            format!("one of {}", names.join(", "))
        }
    };
    for flag in flags {
        let error = |message: String, expected: String| FlagError {
            message,
            expected,
            span: flag.span.clone(),
        };
        let Some(body) = flag.text.strip_prefix("--") else {
            return Err(error(
                format!("arg should start with -- : {}", flag.text),
                "a --flag".into(),
            ));
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(&(name, kind)) = allowed
            .iter()
            .find(|(allowed_name, _)| *allowed_name == name)
        else {
            return Err(error(format!("unknown flag: {name}"), allowed_list()));
        };
        let duplicate = parsed.strings.contains_key(name) || parsed.bools.contains_key(name);
        if duplicate && kind != FlagKind::StringList {
            return Err(error(
                format!("Duplicate flag specified: {name}"),
                format!("--{name} only once"),
            ));
        }
        match kind {
            FlagKind::Bool => {
                let enabled = match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(error(
                            format!(
                                "expecting boolean value for flag {name}, not: {}",
                                value.unwrap_or_default()
                            ),
                            "true or false".into(),
                        ))
                    }
                };
                parsed.bools.insert(name, enabled);
            }
            FlagKind::String | FlagKind::StringList => {
                let Some(value) = value else {
                    return Err(error(
                        format!("missing a value on flag: {name}"),
                        format!("--{name}=<value>"),
                    ));
                };
                if kind == FlagKind::String {
                    parsed
                        .strings
                        .insert(name, (value.to_string(), flag.span.clone()));
                } else {
                    parsed
                        .lists
                        .entry(name)
                        .or_default()
                        .push((value.to_string(), flag.span.clone()));
                }
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(flags: &[&str]) -> Vec<RawFlag> {
        flags
            .iter()
            .enumerate()
            .map(|(i, text)| RawFlag {
                text: text.to_string(),
                span: i * 10..i * 10 + text.len(),
            })
            .collect()
    }

    const COPY_FLAGS: &[(&str, FlagKind)] = &[
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::StringList),
    ];

    #[test]
    fn accepts_declared_flags() {
        let parsed = parse_flags(
            "COPY",
            &raw(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            COPY_FLAGS,
        )
        .unwrap();
        assert_eq!(parsed.string("from").as_deref(), Some("a"));
        assert!(parsed.bool("link"));
        assert_eq!(parsed.list("exclude").len(), 2);
    }

    #[test]
    fn rejects_bad_flags() {
        let message = |flags: &[&str]| {
            parse_flags("COPY", &raw(flags), COPY_FLAGS)
                .unwrap_err()
                .message
        };
        assert_eq!(message(&["--bogus=1"]), "unknown flag: bogus");
        assert_eq!(
            message(&["--from=a", "--from=b"]),
            "Duplicate flag specified: from"
        );
        assert_eq!(message(&["--from"]), "missing a value on flag: from");
        assert_eq!(
            message(&["--link=maybe"]),
            "expecting boolean value for flag link, not: maybe"
        );
        let error = parse_flags("COPY", &raw(&["--from=a", "--nope"]), COPY_FLAGS).unwrap_err();
        assert_eq!(error.span, 10..16);
    }
}
