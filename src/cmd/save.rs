//! `lade save [-o FILE] IMAGE...`: Docker 25's dual-format tarball, which every Docker, podman and skopeo reads.

use std::path::PathBuf;

use layerstore::archive::save::{save, SaveItem, SavedIndex};
use layerstore::transport::{ImageSource, StoreSource};
use layerstore::{Digest, Image, Reference};

#[derive(clap::Args)]
pub struct Args {
    /// Write to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Images: name[:tag], name@digest or image ID (prefix).
    #[arg(required = true)]
    images: Vec<String>,
}

/// One image to save: a single-platform image, or a multi-platform one with its index and children.
struct Entry {
    /// The image ID, or the index digest: what makes two arguments the same image.
    key: Digest,
    /// The image, or the platform's child of an index.
    image: Image,
    /// An index's bytes, media type and children.
    index: Option<(Vec<u8>, String, Vec<Image>)>,
    names: Vec<Reference>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let mut entries: Vec<Entry> = Vec::new();
    for argument in &args.images {
        let found = store.find_image(argument)?;
        let key = found.id().clone();
        // As Docker: saving by name records that name; saving by ID records every tag of the image.
        let names = match found.requested {
            Some(reference) if reference.tag().is_some() => vec![reference],
            _ => found.names.clone(),
        };
        match entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) => entry.names.extend(names),
            None => {
                // A multi-platform image kept whole is saved whole.
                let index = match &found.index {
                    Some(descriptor) => Some((
                        store.read_blob(&descriptor.digest)?,
                        descriptor.media_type.clone(),
                        store.entry_images(descriptor)?,
                    )),
                    None => None,
                };
                entries.push(Entry {
                    key,
                    image: found.image,
                    index,
                    names,
                })
            }
        }
    }
    let sources: Vec<(StoreSource, Vec<StoreSource>)> = entries
        .iter()
        .map(|entry| {
            let children = entry.index.iter().flat_map(|(_, _, children)| children);
            (
                StoreSource::new(&store, &entry.image),
                children
                    .map(|child| StoreSource::new(&store, child))
                    .collect(),
            )
        })
        .collect();
    let items: Vec<SaveItem> = sources
        .iter()
        .zip(&entries)
        .map(|((source, children), entry)| SaveItem {
            source,
            index: entry
                .index
                .as_ref()
                .map(|(bytes, media_type, _)| SavedIndex {
                    bytes: bytes.clone(),
                    media_type: media_type.clone(),
                    children: children.iter().map(|c| c as &dyn ImageSource).collect(),
                }),
            names: entry.names.clone(),
        })
        .collect();
    let output = super::ArchiveOutput::new(args.output.as_deref())?;
    let progress = context.progress();
    output.write_with(|out| {
        save(&items, out, &progress)?;
        Ok(())
    })
}
