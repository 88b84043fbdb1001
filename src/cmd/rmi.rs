//! `lade rmi IMAGE...`: untag, and delete images left without tags. Blobs go with `lade prune`.

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
    let mut failed = false;
    for image in &args.images {
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
