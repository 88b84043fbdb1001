//! `lade image ls|rm|prune|inspect|history`: Docker's management-command spellings of `images`, `rmi`, `prune`,
//! `inspect` and `history`, with the same flags.

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(clap::Subcommand)]
enum ImageCommand {
    /// List images (`lade images`).
    #[command(visible_alias = "list")]
    Ls(super::images::Args),
    /// Remove one or more images (`lade rmi`).
    #[command(visible_alias = "remove")]
    Rm(super::rmi::Args),
    /// Remove dangling images and unused blobs (`lade prune`).
    Prune(super::prune::Args),
    /// Display detailed information on one or more images (`lade inspect`).
    Inspect(super::inspect::Args),
    /// Show the history of an image (`lade history`).
    History(super::history::Args),
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Ls(args) => super::images::run(context, args),
        ImageCommand::Rm(args) => super::rmi::run(context, args),
        ImageCommand::Prune(args) => super::prune::run(context, args),
        ImageCommand::Inspect(args) => super::inspect::run(context, args),
        ImageCommand::History(args) => super::history::run(context, args),
    }
}
