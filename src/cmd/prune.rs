//! `lade prune`: what `docker image prune` does — delete dangling (untagged) images, or with `-a` every image no
//! running container uses — and then every blob that no image, no build cache entry and no running container uses
//! (what was kept for a container is named).

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    /// Do not prompt for confirmation (there is no prompt; accepted for Docker compatibility).
    #[arg(short, long)]
    force: bool,
    /// Remove all images no running container uses, not just dangling ones
    #[arg(short, long)]
    all: bool,
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
    let mut removed = std::collections::HashSet::new();
    for record in store.image_records()? {
        if record.name.is_none() || args.all {
            let id = store.entry_id(&record.descriptor)?;
            // As `docker image prune`: an image a container uses (of an index: any platform's) is not dangling,
            // nor unused.
            let used = store
                .entry_images(&record.descriptor)?
                .iter()
                .any(|image| in_use.contains(image.id()));
            if used || !removed.insert(id.clone()) {
                continue;
            }
            // With `-a`, every name of the image goes with it (`docker image prune -a` untags them all).
            deleted.extend(store.remove_image(&id.to_string(), args.all)?);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for line in deleted {
            // `docker image prune` says it in lower case, unlike `docker rmi`.
            let line = line.replacen("Deleted: ", "deleted: ", 1);
            println!("{}", line.replacen("Untagged: ", "untagged: ", 1));
        }
        println!();
    }
    let report = builder::engine::cache::prune_unused(&store)?;
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
