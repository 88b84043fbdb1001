//! `lade save [-o FILE] IMAGE...`: Docker 25's dual-format tarball, which every Docker, podman and skopeo reads.

use std::path::PathBuf;

use layerstore::archive::save::{save, SaveItem};

#[derive(clap::Args)]
pub struct Args {
    /// Write to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Images: name[:tag], name@digest or image ID (prefix).
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for argument in &args.images {
        let found = store.find_image(argument)?;
        // As Docker: saving by name records that name; saving by ID records every tag of the image.
        let names = match found.requested {
            Some(reference) if reference.tag().is_some() => vec![reference],
            _ => found.names.clone(),
        };
        match items
            .iter_mut()
            .find(|i| i.image.digest() == found.image.digest())
        {
            Some(item) => item.names.extend(names),
            None => items.push(SaveItem {
                image: found.image,
                names,
            }),
        }
    }
    let output = super::ArchiveOutput::new(args.output.as_deref())?;
    let progress = context.progress();
    output.write_with(|out| {
        save(&store, &items, out, &progress)?;
        Ok(())
    })
}
