//! The `lade` command line: a thin layer over the library crates.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "lade", version, about = "A daemonless container image builder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with Dockerfiles.
    Dockerfile(cmd::dockerfile::DockerfileArgs),
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Dockerfile(args) => cmd::dockerfile::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if error.downcast_ref::<cmd::dockerfile::Reported>().is_none() {
                eprintln!("error: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
