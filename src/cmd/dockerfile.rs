//! `lade dockerfile …`: inspect Dockerfiles with the front end in `builder::dockerfile`.

use std::path::PathBuf;

use anyhow::Context;
use builder::dockerfile::{Dockerfile, SourceDiagnostic};
use clap::{Args, Subcommand, ValueEnum};

/// Arguments of `lade dockerfile`.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    #[command(subcommand)]
    pub command: DockerfileCommand,
}

/// What to do with a Dockerfile.
#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Parse a Dockerfile and print its instructions.
    Parse(ParseArgs),
}

/// Arguments of `lade dockerfile parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// The Dockerfile to parse.
    pub file: PathBuf,
}

/// Output formats of `lade dockerfile parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per instruction.
    Text,
    /// The raw parse as JSON (BuildKit parser schema).
    Json,
}

/// Error returned after a diagnostic has already been printed, so the process exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(String);

fn report(diagnostic: SourceDiagnostic) {
    eprintln!("{:?}", miette::Report::new(diagnostic));
}

/// Runs `lade dockerfile …`.
pub fn run(args: DockerfileArgs) -> anyhow::Result<()> {
    match args.command {
        DockerfileCommand::Parse(parse_args) => parse(parse_args),
    }
}

fn parse(args: ParseArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let file_name = args.file.display().to_string();
    let dockerfile = match Dockerfile::parse(&text, &file_name) {
        Ok(dockerfile) => dockerfile,
        Err(error) => {
            let message = error.to_string();
            report(error);
            return Err(Reported(message).into());
        }
    };
    dockerfile.warnings.iter().cloned().for_each(report);
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&dockerfile.raw_json())?),
        OutputFormat::Text => {
            for node in &dockerfile.nodes {
                println!(
                    "{:>4}-{:<4} {}",
                    node.start_line, node.end_line, node.original
                );
            }
        }
    }
    Ok(())
}
