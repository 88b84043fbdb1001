//! Per-instruction argument splitting (BuildKit's `line_parsers.go`).
//!
//! Each instruction's arguments are split by one rule: JSON-or-shell (`RUN`, `CMD`, `ENTRYPOINT`, `SHELL`),
//! JSON-or-whitespace list (`ADD`, `COPY`, `VOLUME`), whitespace list (`FROM`, `EXPOSE`), one string
//! (`MAINTAINER`, `USER`, `WORKDIR`, `STOPSIGNAL`), name/value pairs (`ENV`, `LABEL`), names with optional
//! values (`ARG`) and `HEALTHCHECK`'s type plus command. Unknown instructions keep a single empty argument.

use super::json_array::{decode_json_array, JsonArray};
use super::split_command::is_separator;

/// The argument-splitting rule of an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentRule {
    /// JSON array, else the whole text as one argument.
    MaybeJson,
    /// JSON array, else whitespace-separated words.
    MaybeJsonList,
    /// Whitespace-separated words.
    Words,
    /// The whole text as one argument.
    Single,
    /// `name value` or `name=value …` pairs, for the named instruction.
    NameValue(&'static str),
    /// `name` or `name=value` words.
    NameOrNameValue,
    /// `HEALTHCHECK`: a type word, then JSON-or-shell.
    HealthCheck,
    /// `ONBUILD`: another instruction.
    SubInstruction,
    /// An unknown instruction.
    Ignore,
}

/// The rule for a keyword (case-insensitive).
pub fn rule_for(keyword: &str) -> ArgumentRule {
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => ArgumentRule::MaybeJsonList,
        "arg" => ArgumentRule::NameOrNameValue,
        "cmd" | "entrypoint" | "run" | "shell" => ArgumentRule::MaybeJson,
        "env" => ArgumentRule::NameValue("ENV"),
        "label" => ArgumentRule::NameValue("LABEL"),
        "expose" | "from" => ArgumentRule::Words,
        "healthcheck" => ArgumentRule::HealthCheck,
        "maintainer" | "stopsignal" | "user" | "workdir" => ArgumentRule::Single,
        "onbuild" => ArgumentRule::SubInstruction,
        _ => ArgumentRule::Ignore,
    }
}

/// Arguments as split by a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitArgs {
    /// The argument list.
    pub values: Vec<String>,
    /// Whether they came from a JSON array.
    pub json: bool,
}

/// BuildKit's message for a JSON array holding something other than strings.
pub const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// `MaybeJson`: a JSON array of strings, else the text as one argument.
pub fn parse_maybe_json(rest: &str) -> Result<SplitArgs, String> {
    if rest.is_empty() {
        return Ok(SplitArgs::default());
    }
    match decode_json_array(rest) {
        JsonArray::Strings(values) => Ok(SplitArgs { values, json: true }),
        JsonArray::NotAllStrings => Err(NOT_STRING_ARRAY.into()),
        JsonArray::NotJson => Ok(SplitArgs {
            values: vec![rest.to_string()],
            json: false,
        }),
    }
}

/// `MaybeJsonList`: a JSON array of strings, else whitespace-separated words.
pub fn parse_maybe_json_list(rest: &str) -> Result<SplitArgs, String> {
    match decode_json_array(rest) {
        JsonArray::Strings(values) => Ok(SplitArgs { values, json: true }),
        JsonArray::NotAllStrings => Err(NOT_STRING_ARRAY.into()),
        JsonArray::NotJson => Ok(split_words(rest)),
    }
}

/// `Words`: split on runs of `[\t\v\f\r ]`.
pub fn split_words(rest: &str) -> SplitArgs {
    if rest.is_empty() {
        return SplitArgs::default();
    }
    SplitArgs {
        values: split_on_separator_runs(rest, usize::MAX),
        json: false,
    }
}

/// Go's `regexp.Split` with `[\t\v\f\r ]+`, into at most `limit` parts.
fn split_on_separator_runs(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while parts.len() + 1 < limit {
        let Some(start) = rest.find(is_separator) else {
            break;
        };
        let after = rest[start..].trim_start_matches(is_separator);
        parts.push(rest[..start].to_string());
        rest = after;
    }
    parts.push(rest.to_string());
    parts
}

/// `Single`: the text as one argument.
pub fn parse_single(rest: &str) -> SplitArgs {
    SplitArgs {
        values: if rest.is_empty() {
            vec![]
        } else {
            vec![rest.to_string()]
        },
        json: false,
    }
}

/// Splits into words on whitespace, keeping quotes and escapes (BuildKit's `parseWords`).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(mut ch) = chars.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some(next) = chars.next() else {
                        continue;
                    };
                    word.push(ch);
                    ch = next;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    let Some(next) = chars.next() else {
                        phase = Phase::Word;
                        continue;
                    };
                    word.push(ch);
                    ch = next;
                }
                word.push(ch);
            }
            Phase::Spaces => unreachable!("left above"),
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `NameValue`: `KEY name value` (old form) or `KEY n1=v1 n2=v2 …`; values are flattened name, value, ….
pub fn parse_name_value(rest: &str, instruction: &str, escape: char) -> Result<SplitArgs, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(SplitArgs::default());
    }
    if is_legacy_name_value(rest, escape) {
        let parts = split_on_separator_runs(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{instruction} must have two arguments"));
        }
        return Ok(SplitArgs {
            values: parts,
            json: false,
        });
    }
    let mut values = Vec::with_capacity(words.len() * 2);
    for word in &words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(word)
            ));
        };
        values.push(name.to_string());
        values.push(value.to_string());
    }
    Ok(SplitArgs {
        values,
        json: false,
    })
}

/// Whether `NameValue` arguments are in the legacy `KEY value` form: their first word (quotes kept, so `"a b"=c`
/// is one word) has no `=`.
pub fn is_legacy_name_value(rest: &str, escape: char) -> bool {
    parse_words(rest, escape)
        .first()
        .is_some_and(|first| !first.contains('='))
}

/// `NameOrNameValue`: the words as they are.
pub fn parse_name_or_name_value(rest: &str, escape: char) -> SplitArgs {
    SplitArgs {
        values: parse_words(rest, escape),
        json: false,
    }
}

/// `HealthCheck`: the type word, then the command as `MaybeJson`.
pub fn parse_health_check(rest: &str) -> Result<SplitArgs, String> {
    let type_end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '\x0b')
        .unwrap_or(rest.len());
    if type_end == 0 {
        return Ok(SplitArgs::default());
    }
    let command =
        rest[type_end..].trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let mut split = parse_maybe_json(command)?;
    split.values.insert(0, rest[..type_end].to_string());
    Ok(split)
}

/// Quotes a string like Go's `%q`.
pub fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(split: SplitArgs) -> Vec<String> {
        split.values
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            parse_words(r#"a="b c" d\ e 'f\'g'"#, '\\'),
            [r#"a="b c""#, r"d\ e", r"'f\'g'"]
        );
        assert_eq!(parse_words(r#"x="" y"#, '\\'), [r#"x="""#, "y"]);
        assert_eq!(parse_words("a\\", '\\'), ["a"]);
    }

    #[test]
    fn name_value_forms() {
        assert_eq!(
            values(parse_name_value("a b c", "ENV", '\\').unwrap()),
            ["a", "b c"]
        );
        assert_eq!(
            values(parse_name_value("a=b c=d", "ENV", '\\').unwrap()),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            parse_name_value("a", "LABEL", '\\').unwrap_err(),
            "LABEL must have two arguments"
        );
        assert!(parse_name_value("a=b c", "ENV", '\\')
            .unwrap_err()
            .contains("can't find = in \"c\""));
        assert!(values(parse_name_value("", "ENV", '\\').unwrap()).is_empty());
    }

    #[test]
    fn json_and_shell_forms() {
        assert_eq!(
            parse_maybe_json(r#"["a", "b"]"#).unwrap(),
            SplitArgs {
                values: vec!["a".into(), "b".into()],
                json: true
            }
        );
        assert_eq!(values(parse_maybe_json("['a']").unwrap()), ["['a']"]);
        assert!(parse_maybe_json("[1]").is_err());
        assert_eq!(
            values(parse_maybe_json_list("a  b\tc").unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(
            values(parse_health_check("CMD  [\"x\"]").unwrap()),
            ["CMD", "x"]
        );
        assert_eq!(values(parse_health_check("NONE").unwrap()), ["NONE"]);
    }
}
