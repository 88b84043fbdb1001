//! Robustness of the Dockerfile front end: random input never makes the parser, the typed layer, the
//! planner or the word expander panic, and very long lines or many continuations are handled in linear time.

use std::collections::BTreeMap;

use lade_dockerfile::{BuildOptions, Dockerfile, Lexer};
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "FROM",
    "from",
    "RUN",
    "CMD",
    "ENV",
    "LABEL",
    "ARG",
    "COPY",
    "ADD",
    "ONBUILD",
    "HEALTHCHECK",
    "EXPOSE",
    "VOLUME",
    "USER",
    "WORKDIR",
    "SHELL",
    "MAINTAINER",
    "STOPSIGNAL",
    "ENTRYPOINT",
    "AS",
    "NONE",
    " ",
    "\t",
    "\\",
    "`",
    "\\\n",
    "`\n",
    "\n",
    "\r\n",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "# check=skip=all\n",
    "\"",
    "'",
    "=",
    "a",
    "b=c",
    "--from=0",
    "--from=x",
    "--mount=type=cache,target=/c,from=x",
    "--link",
    "--",
    "[",
    "]",
    "[\"a\"]",
    "[1]",
    "<<EOF",
    "<<-EOF",
    "EOF",
    "\tEOF",
    "<<\"EOF\"",
    "2<<X",
    "X",
    "$x",
    "${x}",
    "${x:-y}",
    "${x#*}",
    "${x//a/b}",
    "${",
    "}",
    ":",
    "é",
    "\u{a0}",
    "\u{feff}",
    "80/udp",
    "1-2",
    "--platform=$P",
    "scratch",
    "--interval=5s",
];

fn dockerfile_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => "[ -~]{0,6}",
    ];
    prop::collection::vec(fragment, 0..48).prop_map(|parts| parts.concat())
}

fn word_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        4 => prop::sample::select(&[
            "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "*", "\\", "`", "'", "\"", " ", "A", "B", "x",
            "${A", "${B:", "$A", "\n",
        ][..])
        .prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

fn options() -> BuildOptions {
    BuildOptions {
        build_args: BTreeMap::from([("x".to_string(), "1".to_string())]),
        target: None,
        platform_args: vec![
            ("TARGETPLATFORM".to_string(), "linux/amd64".to_string()),
            ("BUILDARCH".to_string(), "amd64".to_string()),
        ],
    }
}

/// Runs every front-end layer over `source`; any of them may reject it, none may panic.
fn exercise(source: &str) {
    let Ok(dockerfile) = Dockerfile::parse(source, "Dockerfile") else {
        return;
    };
    let _ = dockerfile.raw_json();
    let Ok(stages) = dockerfile.stages() else {
        return;
    };
    let Ok(plan) = stages.plan(&options()) else {
        return;
    };
    for index in 0..plan.stages.len() {
        let _ = plan.expand_stage(index, &[("PATH".to_string(), "/bin".to_string())]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn dockerfile_like_input_never_panics(source in dockerfile_like()) {
        exercise(&source);
    }

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        exercise(&source);
    }

    #[test]
    fn expansion_never_panics(word in word_like(), backtick in any::<bool>(), raw in any::<(bool, bool, bool)>()) {
        let env = vec![("A".to_string(), "a/b*c".to_string()), ("B".to_string(), String::new())];
        let lexer = Lexer {
            raw_quotes: raw.0,
            raw_escapes: raw.1,
            skip_unset_env: raw.2,
            ..Lexer::new(if backtick { '`' } else { '\\' })
        };
        let _ = lexer.process_word(&word, &env);
        let _ = lexer.process_words(&word, &env);
    }
}

#[test]
fn one_megabyte_line_parses() {
    let source = format!(
        "FROM a\nRUN echo {}\nENV {}\n",
        "x".repeat(1 << 20),
        "k=v ".repeat(100_000)
    );
    let dockerfile = Dockerfile::parse(&source, "Dockerfile").unwrap();
    assert_eq!(dockerfile.nodes[1].args[0].len(), 5 + (1 << 20));
    assert_eq!(dockerfile.nodes[2].args.len(), 200_000);
    let plan = dockerfile.plan(&options()).unwrap();
    plan.expand_stage(0, &[]).unwrap();
}

#[test]
fn hundred_thousand_continuations_parse() {
    let source = format!(
        "FROM a\nRUN a \\\n{}  b\n",
        "  # comment\n  c \\\n\n".repeat(100_000)
    );
    let dockerfile = Dockerfile::parse(&source, "Dockerfile").unwrap();
    let run = &dockerfile.nodes[1];
    assert_eq!((run.start_line, run.end_line), (2, 300_003));
    assert!(run.args[0].ends_with("c   b"));
    assert_eq!(
        dockerfile.warnings.len(),
        1,
        "one empty-continuation warning"
    );
}

#[test]
fn long_words_expand() {
    let env = vec![("V".to_string(), "ab".repeat(500_000))];
    let lexer = Lexer::new('\\');
    let word = format!("\"{}\" ${{V//a/}} ${{V%%b*}}", "q".repeat(1 << 20));
    let words = lexer.process_words(&word, &env).unwrap();
    assert_eq!(words.len(), 3);
    assert_eq!(words[1].len(), 500_000);
    assert_eq!(words[2], "a");
}
