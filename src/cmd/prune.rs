//! `lade prune`: what `docker image prune` does — delete dangling (untagged) images — and then every blob that no
//! image and no build cache entry uses.

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    /// Do not prompt for confirmation (there is no prompt; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let _ = args.force;
    let store = context.store()?;
    let mut deleted = Vec::new();
    for record in store.image_records()? {
        if record.name.is_none() {
            let id = layerstore::Image::read(&store, &record.descriptor)?
                .id()
                .to_string();
            deleted.extend(store.remove_image(&id, false)?);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for line in deleted {
            println!("{}", line.replacen("Deleted: ", "deleted: ", 1));
        }
        println!();
    }
    let report = builder::build::cache::prune_unused(&store)?;
    println!("Deleted blobs: {}", report.blobs);
    println!("Total reclaimed space: {}", human_size(report.bytes));
    Ok(())
}
