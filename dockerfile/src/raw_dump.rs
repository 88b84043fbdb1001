//! The raw parse as JSON, in the schema of BuildKit's parser as exposed by the `dockerfile` Python package.
//!
//! `{"instructions": [{cmd, sub_cmd, json, original, start_line, end_line, flags, value, heredocs}]}`. For
//! `ONBUILD`, `json` and `value` describe the trigger instruction while `flags` are ONBUILD's own, and
//! `heredocs` is empty: that is how the reference tool reports BuildKit's tree. The reference tool passes
//! strings through C, so each string ends at its first NUL character and an empty `cmd` is `null`; the dump
//! does the same.

use serde_json::{json, Value};

use super::ast::{Heredoc, Node};

/// A string as the reference tool reports it: cut at the first NUL.
fn c_string(text: &str) -> &str {
    text.split('\0').next().unwrap_or_default()
}

fn heredocs_json(heredocs: &[Heredoc]) -> Value {
    heredocs
        .iter()
        .map(|heredoc| {
            json!({
                "name": c_string(&heredoc.name),
                "file_descriptor": heredoc.file_descriptor,
                "content": c_string(&heredoc.content),
            })
        })
        .collect()
}

/// One instruction in the reference schema.
pub fn node_json(node: &Node) -> Value {
    let (sub_cmd, described, heredocs) = match &node.sub_instruction {
        Some(sub) => (
            Some(c_string(&sub.keyword)),
            sub.as_ref(),
            Value::Array(vec![]),
        ),
        None => (None, node, heredocs_json(&node.heredocs)),
    };
    json!({
        "cmd": Some(c_string(&node.keyword)).filter(|keyword| !keyword.is_empty()),
        "sub_cmd": sub_cmd,
        "json": described.json,
        "original": c_string(&node.original),
        "start_line": node.start_line,
        "end_line": node.end_line,
        "flags": node.flags.iter().map(|flag| c_string(&flag.text)).collect::<Vec<_>>(),
        "value": described.args.iter().map(|arg| c_string(arg)).collect::<Vec<_>>(),
        "heredocs": heredocs,
    })
}

/// A whole parse in the reference schema.
pub fn dump(nodes: &[Node]) -> Value {
    json!({ "instructions": nodes.iter().map(node_json).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    #[test]
    fn onbuild_reports_trigger_values() {
        let parsed = parse("ONBUILD --f RUN [\"a\"]").unwrap();
        let value = dump(&parsed.nodes);
        let instruction = &value["instructions"][0];
        assert_eq!(instruction["cmd"], "ONBUILD");
        assert_eq!(instruction["sub_cmd"], "RUN");
        assert_eq!(instruction["json"], true);
        assert_eq!(instruction["flags"], json!(["--f"]));
        assert_eq!(instruction["value"], json!(["a"]));
    }

    #[test]
    fn strings_end_at_nul() {
        let parsed = parse("CMD [\"a\\u0000b\"]").unwrap();
        assert_eq!(parsed.nodes[0].args, ["a\0b"]);
        assert_eq!(
            dump(&parsed.nodes)["instructions"][0]["value"],
            json!(["a"])
        );
    }

    /// Every corpus Dockerfile parses exactly as BuildKit's parser (skipped when the corpus is absent).
    #[test]
    fn corpus_matches_reference_parser() {
        let root =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
        if !root.is_dir() {
            println!(
                "SKIP: {} not found; corpus comparison not run",
                root.display()
            );
            return;
        }
        let mut pending = vec![root.to_path_buf()];
        let (mut passed, mut failed) = (0, Vec::new());
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Some(dockerfile) = path.to_str().and_then(|p| p.strip_suffix(".expected.json"))
                else {
                    continue;
                };
                let expected: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let bytes = std::fs::read(dockerfile).unwrap();
                let got = parse(&String::from_utf8_lossy(&bytes)).map(|parsed| dump(&parsed.nodes));
                let matches = match (&got, expected.get("instructions")) {
                    (Err(_), None) => true,
                    (Ok(got), Some(want)) => {
                        let strip = |value: &Value| -> Vec<Value> {
                            value
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|instruction| {
                                    let mut instruction = instruction.clone();
                                    instruction.as_object_mut().unwrap().remove("original");
                                    instruction
                                })
                                .collect()
                        };
                        strip(&got["instructions"]) == strip(want)
                    }
                    _ => false,
                };
                if matches {
                    passed += 1;
                } else {
                    failed.push(dockerfile.to_string());
                }
            }
        }
        println!("corpus: {passed} passed, {} failed", failed.len());
        assert!(failed.is_empty(), "differs from BuildKit: {failed:?}");
        assert!(passed >= 300);
    }
}
