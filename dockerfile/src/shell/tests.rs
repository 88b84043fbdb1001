//! Word expansion against BuildKit's behaviour, including its own test vectors from the shared corpus.

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
