//! Docker's `--format` for listing and inspecting commands: the command's default `table`, `json` (one object per
//! line), or a Go template over the same fields Docker offers (`{{.Repository}}:{{.Tag}}`,
//! `table {{.ID}}\t{{.Size}}`, `{{json .Config}}`, `{{index .RepoDigests 0}}`), with Docker's template functions
//! (`json`, `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`) besides Go's builtins. A field the object
//! lacks is an error, worded as Go's `missingkey=error` words it (`template: :1:2: executing "" at <.Nope>: map has
//! no entry for key "Nope"`), as Docker's are.

use std::sync::Arc;

use anyhow::Context as _;
use gotmpl::{MissingKey, TemplateError, Value};
use serde_json::Value as Json;

/// A compiled `--format` template and its source (for Go-style error positions).
pub struct Template {
    compiled: gotmpl::Template,
    source: String,
}

/// What `--format` asked for.
pub enum Format {
    /// The command's default table.
    Table,
    /// One JSON object per line (Docker's `{{json .}}`).
    Json,
    /// A Go template; with the `table` prefix its lines are aligned in columns under a header line.
    Template { template: Template, table: bool },
}

impl Format {
    /// Parses a `--format` value; the default table is `table`.
    pub fn parse(value: &str) -> anyhow::Result<Format> {
        match value.trim() {
            "" | "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            _ => {
                let (source, table) = match value.strip_prefix("table ") {
                    Some(rest) => (rest, true),
                    None => (value, false),
                };
                Ok(Format::Template {
                    template: template(source)?,
                    table,
                })
            }
        }
    }
}

/// Compiles a Go template with Docker's functions; `\t` and `\n` written literally in a shell argument count as
/// tab and newline, as Docker's do.
pub fn template(source: &str) -> anyhow::Result<Template> {
    let source = source.replace("\\t", "\t").replace("\\n", "\n");
    let compiled = gotmpl::Template::new("format")
        .missing_key(MissingKey::Error)
        .func("json", |args| {
            Ok(Value::from(to_json(first(args)).to_string()))
        })
        .func("join", |args| {
            let separator = string_arg(args, 1);
            let items: Vec<String> = list(first(args)).iter().map(|v| v.to_string()).collect();
            Ok(Value::from(items.join(&separator)))
        })
        .func("split", |args| {
            let text = string_arg(args, 0);
            let separator = string_arg(args, 1);
            let parts: Vec<Value> = text.split(separator.as_str()).map(Value::from).collect();
            Ok(Value::List(parts.into()))
        })
        .func("lower", |args| {
            Ok(Value::from(string_arg(args, 0).to_lowercase()))
        })
        .func("upper", |args| {
            Ok(Value::from(string_arg(args, 0).to_uppercase()))
        })
        .func("title", |args| Ok(Value::from(title(&string_arg(args, 0)))))
        .func("pad", |args| {
            let left = int_arg(args, 1);
            let right = int_arg(args, 2);
            let text = string_arg(args, 0);
            Ok(Value::from(format!(
                "{}{text}{}",
                " ".repeat(left),
                " ".repeat(right)
            )))
        })
        .func("truncate", |args| {
            let text = string_arg(args, 0);
            Ok(Value::from(
                text.chars().take(int_arg(args, 1)).collect::<String>(),
            ))
        })
        .parse(&source)
        .with_context(|| format!("invalid --format template {source:?}"))?;
    Ok(Template { compiled, source })
}

/// Renders one object with a template.
pub fn render(template: &Template, object: &Json) -> anyhow::Result<String> {
    let value = gotmpl::to_value(object).context("converting output for the template")?;
    template
        .compiled
        .execute_to_string(&value)
        .map_err(|error| match &error {
            TemplateError::MissingKey { key } => go_exec_error(
                &template.source,
                key,
                &format!("map has no entry for key {key:?}"),
            ),
            TemplateError::Exec(message) => match message
                .strip_prefix("can't evaluate field ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                Some(field) => go_exec_error(&template.source, field, message),
                None => anyhow::Error::new(error).context("executing the --format template"),
            },
            _ => anyhow::Error::new(error).context("executing the --format template"),
        })
}

/// Go's execution error for a failed field access, as Docker 20.10 prints it: `template parsing error: template:
/// :LINE:COL: executing "" at <CHAIN>: MESSAGE`, where CHAIN is the first field chain of the source naming `field`
/// and COL the 0-based column of that field in its line (Go's `ErrorContext`).
fn go_exec_error(source: &str, field: &str, message: &str) -> anyhow::Error {
    let position = field_chains(source).into_iter().find_map(|(start, chain)| {
        let mut offset = 0;
        for segment in chain.split_inclusive('.') {
            let name = segment.trim_end_matches('.');
            if name == field && offset > 0 {
                // Go places the node at the dot before the field.
                return Some((start + offset - 1, chain));
            }
            offset += segment.len();
        }
        None
    });
    let Some((at, chain)) = position else {
        return anyhow::anyhow!("template parsing error: template: executing \"\": {message}");
    };
    let before = &source[..at];
    let line = 1 + before.matches('\n').count();
    let column = before.rfind('\n').map_or(at, |newline| at - newline - 1);
    anyhow::anyhow!(
        "template parsing error: template: :{line}:{column}: executing \"\" at <{chain}>: {message}"
    )
}

/// The field chains inside the actions of `source` (`.A.B`, `$x.A`), with their byte offsets.
fn field_chains(source: &str) -> Vec<(usize, &str)> {
    let mut chains = Vec::new();
    let mut rest = 0;
    while let Some(open) = source[rest..].find("{{") {
        let start = rest + open + 2;
        let end = source[start..]
            .find("}}")
            .map_or(source.len(), |e| start + e);
        let action = &source[start..end];
        let bytes = action.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let starts_chain = (bytes[i] == b'.' || bytes[i] == b'$')
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
            if !starts_chain {
                i += 1;
                continue;
            }
            let begin = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
            chains.push((start + begin, &action[begin..i]));
        }
        rest = end;
    }
    chains
}

/// Prints `rows` as `format` says. `columns` are the default table's fields with their headers; the headers of a
/// `table` template come from the same list (a field it lacks is headed by its name in capitals).
pub fn print_rows(format: &Format, columns: &[(&str, &str)], rows: &[Json]) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for row in rows {
                println!("{row}");
            }
            Ok(())
        }
        Format::Table => {
            let source: Vec<String> = columns
                .iter()
                .map(|(f, _)| format!("{{{{.{f}}}}}"))
                .collect();
            print_table(&template(&source.join("\t"))?, columns, rows)
        }
        Format::Template {
            template,
            table: true,
        } => print_table(template, columns, rows),
        Format::Template {
            template,
            table: false,
        } => {
            for row in rows {
                println!("{}", render(template, row)?);
            }
            Ok(())
        }
    }
}

fn print_table(template: &Template, columns: &[(&str, &str)], rows: &[Json]) -> anyhow::Result<()> {
    let mut header = serde_json::Map::new();
    if let Some(Json::Object(fields)) = rows.first() {
        for field in fields.keys() {
            header.insert(field.clone(), Json::from(field.to_uppercase()));
        }
    }
    for (field, title) in columns {
        header.insert(field.to_string(), Json::from(*title));
    }
    let mut lines = vec![render(template, &Json::Object(header))?];
    for row in rows {
        lines.push(render(template, row)?);
    }
    print!("{}", align(&lines.join("\n")));
    Ok(())
}

/// Aligns tab-separated cells the way Docker's tabwriter does (minimum width 10, padding 3); the text after a line's
/// last tab is not padded.
pub fn align(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (column, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let width = (cell.chars().count() + PADDING).max(MIN_WIDTH);
            match widths.get_mut(column) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for cells in lines {
        let last = cells.len() - 1;
        for (column, cell) in cells.iter().enumerate() {
            if column == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}", width = widths[column]));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

fn first(args: &[Value]) -> &Value {
    args.first().unwrap_or(&Value::Nil)
}

fn string_arg(args: &[Value], index: usize) -> String {
    args.get(index).map(|v| v.to_string()).unwrap_or_default()
}

fn int_arg(args: &[Value], index: usize) -> usize {
    args.get(index)
        .and_then(Value::as_int)
        .map_or(0, |n| n.max(0) as usize)
}

fn list(value: &Value) -> Arc<[Value]> {
    match value {
        Value::List(items) => items.clone(),
        Value::Nil => Arc::new([]),
        other => Arc::new([other.clone()]),
    }
}

fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// A template value as JSON (maps come out with sorted keys).
fn to_json(value: &Value) -> Json {
    match value {
        Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::from(*b),
        Value::Int(n) => Json::from(*n),
        Value::Uint(n) => Json::from(*n),
        Value::Float(n) => Json::from(*n),
        Value::String(s) => Json::from(s.as_ref()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(source: &str, object: Json) -> String {
        render(&template(source).unwrap(), &object).unwrap()
    }

    #[test]
    fn renders_fields_and_docker_functions() {
        let image = json!({
            "Repository": "app", "Tag": "1",
            "RepoDigests": ["app@sha256:ab"],
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}},
        });
        assert_eq!(run("{{.Repository}}:{{.Tag}}", image.clone()), "app:1");
        assert_eq!(
            run("{{index .RepoDigests 0}}", image.clone()),
            "app@sha256:ab"
        );
        assert_eq!(run("{{join .Config.Env \",\"}}", image.clone()), "A=1,B=2");
        assert_eq!(
            run("{{json .Config.Labels}}", image.clone()),
            r#"{"k":"v"}"#
        );
        assert_eq!(
            run("{{range .Config.Env}}[{{.}}]{{end}}", image.clone()),
            "[A=1][B=2]"
        );
        assert_eq!(
            run("{{upper .Repository}} {{title \"a-b c\"}}", image.clone()),
            "APP A-B C"
        );
        assert_eq!(run("{{.Repository}}\\t{{.Tag}}", image), "app\t1");
    }

    #[test]
    fn a_bad_template_is_an_error() {
        assert!(template("{{.Repository").is_err());
        assert!(Format::parse("{{if}}").is_err());
    }

    #[test]
    fn a_missing_field_is_an_error_worded_as_go_words_it() {
        let image = json!({"Id": "x", "Config": {"Env": []}});
        let error = |source: &str| {
            render(&template(source).unwrap(), &image)
                .unwrap_err()
                .to_string()
        };
        // What Docker 20.10 prints for the same templates over `docker inspect`.
        assert_eq!(
            error("{{.Nope}}"),
            r#"template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(
            error("x {{json .Config.Nope}}"),
            r#"template parsing error: template: :1:16: executing "" at <.Config.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(
            error("{{.Id}}\n{{.Config.Nope}}"),
            r#"template parsing error: template: :2:9: executing "" at <.Config.Nope>: map has no entry for key "Nope""#
        );
        assert_eq!(run("{{.Id}}", image.clone()), "x");
    }

    #[test]
    fn aligns_like_dockers_tabwriter() {
        let text = "REPOSITORY\tTAG\tSIZE\nbusybox\tlatest\t1.2MB";
        assert_eq!(
            align(text),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    1.2MB\n"
        );
    }
}
