//! `lade save [-o FILE] IMAGE...`: Docker 25's dual-format tarball, which every Docker, podman and skopeo reads.

use std::path::PathBuf;

use layerstore::archive::save::{save, SaveItem};
use layerstore::transport::StoreSource;
use layerstore::Image;

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
    let mut images: Vec<(Image, Vec<layerstore::Reference>)> = Vec::new();
    for argument in &args.images {
        let found = store.find_image(argument)?;
        // As Docker: saving by name records that name; saving by ID records every tag of the image.
        let names = match found.requested {
            Some(reference) if reference.tag().is_some() => vec![reference],
            _ => found.names.clone(),
        };
        match images
            .iter_mut()
            .find(|(image, _)| image.digest() == found.image.digest())
        {
            Some((_, known)) => known.extend(names),
            None => images.push((found.image, names)),
        }
    }
    let sources: Vec<StoreSource> = images
        .iter()
        .map(|(image, _)| StoreSource::new(&store, image))
        .collect();
    let items: Vec<SaveItem> = sources
        .iter()
        .zip(&images)
        .map(|(source, (_, names))| SaveItem {
            source,
            names: names.clone(),
        })
        .collect();
    let output = super::ArchiveOutput::new(args.output.as_deref())?;
    let progress = context.progress();
    output.write_with(|out| {
        save(&items, out, &progress)?;
        Ok(())
    })
}
