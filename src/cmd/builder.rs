//! `lade builder prune`: forget the build cache (step records, unpacked layers, cache mounts) and reclaim its blobs.

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BuilderCommand,
}

#[derive(clap::Subcommand)]
enum BuilderCommand {
    /// Remove the build cache.
    Prune {
        /// Do not prompt for confirmation (there is no prompt; accepted for Docker compatibility).
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    match args.command {
        BuilderCommand::Prune { force: _ } => {
            let report = builder::engine::cache::prune_builder(&context.store()?)?;
            println!("Deleted build cache records: {}", report.cache_records);
            println!("Deleted blobs: {}", report.blobs.blobs);
            if report.skipped_snapshots > 0 || report.blobs.skipped_blobs > 0 {
                println!(
                    "Skipped (in use): {} unpacked layers, {} blobs",
                    report.skipped_snapshots, report.blobs.skipped_blobs
                );
            }
            super::prune::print_in_use(&report.blobs.leases);
            println!("Total reclaimed space: {}", human_size(report.blobs.bytes));
        }
    }
    Ok(())
}
