//! `lade rmi IMAGE...`: untag, and delete images left without tags. Blobs go with `lade prune`. An image a running
//! container uses needs `-f`, as in Docker (its blobs stay until the container exits).

#[derive(clap::Args)]
pub struct Args {
    /// Remove the image even when it is tagged in several repositories.
    #[arg(short, long)]
    force: bool,
    /// Images: name[:tag], name@digest or image ID (prefix).
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let leases = store.live_leases()?;
    let mut failed = false;
    for image in &args.images {
        if !args.force {
            // Of a multi-platform image, a container running any of its platforms counts.
            let ids: Vec<layerstore::Digest> = store
                .find_image(image)
                .ok()
                .and_then(|found| store.entry_images(found.descriptor()).ok())
                .map(|images| images.iter().map(|i| i.id().clone()).collect())
                .unwrap_or_default();
            if let Some(lease) = leases
                .iter()
                .find(|l| l.image.as_ref().is_some_and(|id| ids.contains(id)))
            {
                let id = lease.image.as_ref().map_or("", |id| &id.hex()[..12]);
                eprintln!(
                    "Error: conflict: unable to remove repository reference {image:?} (must force) - container {} is using its referenced image {id}",
                    lease.short_id()
                );
                failed = true;
                continue;
            }
        }
        match store.remove_image(image, args.force) {
            Ok(lines) => lines.iter().for_each(|line| println!("{line}")),
            Err(error) => {
                eprintln!("Error: {error}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
