//! `lade dockerfile parse|plan`: output, warnings on stderr, diagnostics and exit codes.

use std::process::{Command, Output};

fn lade(args: &[&str], dockerfile: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, dockerfile).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_lade"));
    command.args(args).arg(&path);
    command.output().unwrap()
}

#[test]
fn parse_prints_the_reference_schema() {
    let output = lade(
        &["dockerfile", "parse", "--format", "json"],
        "FROM alpine AS base\nCOPY --link <<EOF /x\nhi\nEOF\n",
    );
    assert!(output.status.success());
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let copy = &parsed["instructions"][1];
    assert_eq!(copy["cmd"], "COPY");
    assert_eq!(copy["flags"], serde_json::json!(["--link"]));
    assert_eq!(copy["value"], serde_json::json!(["<<EOF", "/x"]));
    assert_eq!(copy["heredocs"][0]["content"], "hi\n");
    assert_eq!(
        (copy["start_line"].as_u64(), copy["end_line"].as_u64()),
        (Some(2), Some(4))
    );
}

#[test]
fn parse_errors_exit_1_with_location() {
    let output = lade(
        &["dockerfile", "parse", "--format", "json"],
        "FROM a\nENV PATH\n",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Dockerfile:2:5"), "{stderr}");
    assert!(stderr.contains("ENV must have two arguments"), "{stderr}");
    assert!(stderr.contains("ENV PATH"), "{stderr}");
}

#[test]
fn warnings_go_to_stderr() {
    let output = lade(
        &["dockerfile", "parse", "--format", "json"],
        "FROM a\nMAINTAINER me\nCMD a\nCMD b\n",
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MAINTAINER is deprecated"), "{stderr}");
    assert!(stderr.contains("Multiple CMD instructions"), "{stderr}");
}

#[test]
fn plan_reports_typing_errors_and_stages() {
    let output = lade(&["dockerfile", "plan"], "FROM a\nCOPY --bogus=1 a b\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Dockerfile:2:6: unknown flag: bogus"),
        "{stderr}"
    );

    let output = lade(
        &[
            "dockerfile",
            "plan",
            "--target",
            "build",
            "--build-arg",
            "UNUSED=1",
        ],
        "FROM golang AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[0] build: FROM golang"), "{stdout}");
    assert!(!stdout.contains("[1]"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("UNUSED"));
}
