//! `lade prune`: delete blobs that no image and no build cache entry uses.

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    /// Do not prompt for confirmation (there is no prompt; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let _ = args.force;
    let report = builder::build::cache::prune_unused(&context.store()?)?;
    println!("Deleted blobs: {}", report.blobs);
    println!("Total reclaimed space: {}", human_size(report.bytes));
    Ok(())
}
