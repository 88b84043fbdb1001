//! The `created_by` text BuildKit records in image history for each instruction, reproduced exactly — including
//! the Go `fmt` renderings it uses (`%q` of string slices, `%v` of maps and slices, `time.Duration` strings) — so that
//! `docker history` shows the same thing for a lade build as for a BuildKit one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The suffix BuildKit appends to steps that produce a layer.
pub const BUILDKIT_SUFFIX: &str = " # buildkit";
/// The history comment BuildKit writes on every step.
pub const BUILDKIT_COMMENT: &str = "buildkit.dockerfile.v0";

/// Go's `strconv.Quote`.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`, which `%q` uses for integers.
pub fn go_quote_rune(value: u32) -> String {
    let mut out = String::from("'");
    match char::from_u32(value) {
        Some('\'') => out.push_str("\\'"),
        Some('\\') => out.push_str("\\\\"),
        Some(c) => push_escaped(&mut out, c),
        None => out.push_str("\\ufffd"),
    }
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Close to Go's `unicode.IsPrint`: not a control, not a non-space separator, not unassigned-looking.
fn is_go_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c,
            '\u{00a0}' | '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{feff}'
        )
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| go_quote(i)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `%v` of a `[]string`: `[a b]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `%v` of a `map[string]struct{}`: `map[53/udp:{} 80/tcp:{}]` (Go prints maps with sorted keys).
pub fn go_set(keys: &BTreeMap<String, serde_json::Value>) -> String {
    let entries: Vec<String> = keys.keys().map(|k| format!("{k}:{{}}")).collect();
    format!("map[{}]", entries.join(" "))
}

/// Go's `time.Duration.String()`.
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = trim_fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with the fractional part printed without trailing zeros.
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = unit.to_string().len() - 1;
    let text = format!("{whole}.{fraction:0digits$}");
    text.trim_end_matches('0').to_string()
}

/// `HEALTHCHECK %q` of BuildKit v0.8's health config: `&{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x02'}`.
pub fn healthcheck(
    test: &[String],
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
) -> String {
    format!(
        "HEALTHCHECK &{{{} {} {} {} {}}}",
        go_quoted_list(test),
        go_quote(&go_duration(interval)),
        go_quote(&go_duration(timeout)),
        go_quote(&go_duration(start_period)),
        go_quote_rune(retries)
    )
}

/// `RUN` history: build args in scope as `|N K=V …` before the command words.
pub fn run(args: &[String], build_args: &[(String, String)]) -> String {
    let mut words: Vec<String> = Vec::new();
    if !build_args.is_empty() {
        words.push(format!("|{}", build_args.len()));
        words.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    format!("RUN {}{BUILDKIT_SUFFIX}", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_renderings() {
        assert_eq!(
            go_quoted_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"\n".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\"\n"]"#
        );
        assert_eq!(go_list(&["/bin/sh".into(), "-c".into()]), "[/bin/sh -c]");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_quote_rune(2), r"'\x02'");
        assert_eq!(go_quote_rune(65), "'A'");
        let mut ports = BTreeMap::new();
        ports.insert("80/tcp".to_string(), serde_json::json!({}));
        ports.insert("53/udp".to_string(), serde_json::json!({}));
        assert_eq!(go_set(&ports), "map[53/udp:{} 80/tcp:{}]");
        assert_eq!(
            healthcheck(
                &["CMD-SHELL".into(), "true".into()],
                Duration::from_secs(5),
                Duration::ZERO,
                Duration::ZERO,
                2
            ),
            r#"HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x02'}"#
        );
        assert_eq!(
            run(
                &["/bin/sh".into(), "-c".into(), "echo $A".into()],
                &[("A".into(), "".into()), ("B".into(), "2".into())]
            ),
            "RUN |2 A= B=2 /bin/sh -c echo $A # buildkit"
        );
    }
}
