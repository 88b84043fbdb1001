//! `lade prune`: what `docker image prune` does — delete dangling (untagged) images — and then every blob that no
//! image, no build cache entry and no running container uses (what was kept for a container is named).

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
    let in_use: Vec<_> = store
        .live_leases()?
        .into_iter()
        .filter_map(|l| l.image)
        .collect();
    let mut deleted = Vec::new();
    for record in store.image_records()? {
        if record.name.is_none() {
            let id = layerstore::Image::read(&store, &record.descriptor)?
                .id()
                .clone();
            // As `docker image prune`: an image a container uses is not dangling.
            if in_use.contains(&id) {
                continue;
            }
            deleted.extend(store.remove_image(&id.to_string(), false)?);
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
    if report.skipped_blobs > 0 {
        println!("Skipped (in use): {} blobs", report.skipped_blobs);
    }
    print_in_use(&report.leases);
    println!("Total reclaimed space: {}", human_size(report.bytes));
    Ok(())
}

/// Names what a prune left because running containers use it.
pub fn print_in_use(leases: &[layerstore::lease::LeaseRecord]) {
    for lease in leases {
        let image = lease
            .image
            .as_ref()
            .map_or(String::new(), |id| format!(" image {}", &id.hex()[..12]));
        println!("In use by {}:{image}", lease.describe());
    }
}
