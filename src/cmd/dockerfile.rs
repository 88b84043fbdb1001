//! `lade dockerfile …`: inspect Dockerfiles with the front end, `lade_dockerfile`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use lade_dockerfile::{BaseImage, BuildOptions, Dockerfile, SourceDiagnostic};
use layerstore::Platform;

/// Arguments of `lade dockerfile`.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    #[command(subcommand)]
    pub command: DockerfileCommand,
}

/// What to do with a Dockerfile.
#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Parse a Dockerfile and print its instructions (warnings go to stderr).
    Parse(ParseArgs),
    /// Check a Dockerfile's instructions and stages and print the build plan for a target.
    Plan(PlanArgs),
}

/// Arguments of `lade dockerfile plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The stage to build (default: the last stage).
    #[arg(long)]
    pub target: Option<String>,
    /// A build argument, NAME=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// The platform to build for, os/arch[/variant] (default: this machine's).
    #[arg(long)]
    pub platform: Option<String>,
    /// The Dockerfile.
    pub file: PathBuf,
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
        DockerfileCommand::Plan(plan_args) => plan(plan_args),
    }
}

/// Prints a diagnostic and turns it into the error that makes the process exit 1.
fn fail(diagnostic: SourceDiagnostic) -> anyhow::Error {
    let message = diagnostic.to_string();
    report(diagnostic);
    Reported(message).into()
}

fn read_dockerfile(path: &std::path::Path) -> anyhow::Result<Dockerfile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Dockerfile::parse(&text, &path.display().to_string()).map_err(fail)
}

fn parse(args: ParseArgs) -> anyhow::Result<()> {
    let dockerfile = read_dockerfile(&args.file)?;
    // The raw parse is printed even when instructions do not type-check (as BuildKit's parser does);
    // warnings come from typing when it succeeds.
    match dockerfile.stages() {
        Ok(stages) => stages.warnings.into_iter().for_each(report),
        Err(_) => dockerfile.warnings.iter().cloned().for_each(report),
    }
    match write_parse(&dockerfile, args.format) {
        // A closed stdout (`| head`) ends the process quietly, as main's panic hook does for println!.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        other => Ok(other?),
    }
}

/// Prints the raw parse, streamed through one buffer: a large Dockerfile's dump is many times its size.
fn write_parse(dockerfile: &Dockerfile, format: OutputFormat) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &dockerfile.raw_json())?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            for node in &dockerfile.nodes {
                writeln!(
                    out,
                    "{:>4}-{:<4} {}",
                    node.start_line, node.end_line, node.original
                )?;
            }
        }
    }
    out.flush()
}

fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let dockerfile = read_dockerfile(&args.file)?;
    let host = builder::platform::host();
    let target_platform = match &args.platform {
        Some(platform) => Platform::parse(platform)?,
        None => host.clone(),
    };
    let mut options = BuildOptions {
        target: args.target,
        platform_args: builder::platform::predefined_args(&target_platform, &host),
        ..BuildOptions::default()
    };
    for build_arg in &args.build_args {
        let (name, value) = build_arg
            .split_once('=')
            .with_context(|| format!("--build-arg {build_arg}: expected NAME=VALUE"))?;
        options
            .build_args
            .insert(name.to_string(), value.to_string());
    }
    let plan = dockerfile
        .stages()
        .and_then(|stages| builder::platform::plan(&stages, &options))
        .map_err(fail)?;
    let platforms = builder::platform::stage_platforms(&plan).map_err(fail)?;
    plan.warnings.iter().cloned().for_each(report);
    if !plan.unused_build_args.is_empty() {
        eprintln!(
            "warning: build-args not consumed by any ARG: {}",
            plan.unused_build_args.join(", ")
        );
    }
    for planned in plan.stages_to_build() {
        let stage = &planned.stage;
        let name = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index));
        let base = match &planned.base {
            BaseImage::Scratch => "scratch".to_string(),
            BaseImage::Image(image) => image.clone(),
            BaseImage::Stage(index) => format!("stage {index}"),
        };
        let platform = platforms[stage.index]
            .as_ref()
            .map(|p| format!(" --platform={p}"))
            .unwrap_or_default();
        println!(
            "[{}] {name}: FROM {base}{platform} (line {}), {} instructions",
            stage.index,
            stage.from_location.start_line,
            stage.instructions.len()
        );
        if !planned.stage_dependencies.is_empty() {
            let needs: Vec<String> = planned
                .stage_dependencies
                .iter()
                .map(usize::to_string)
                .collect();
            println!("    needs stages: {}", needs.join(", "));
        }
        if !planned.image_dependencies.is_empty() {
            println!(
                "    needs images: {}",
                planned.image_dependencies.join(", ")
            );
        }
    }
    Ok(())
}
