//! The `lade` command line: a thin layer over the library crates.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lade",
    version,
    about = "A daemonless container image builder and registry toolchain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run or maintain an OCI distribution registry
    Registry(cmd::registry::RegistryArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Registry(args) => cmd::registry::run(args),
    }
}
