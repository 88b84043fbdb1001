//! `lade push IMAGE [DEST]` (or `--all-tags REPOSITORY`): upload images from the local store to a registry, printing
//! each digest like docker. A multi-platform image kept whole (`pull --all-platforms`) is pushed whole: every
//! platform's image as stored, then the index byte for byte.

use anyhow::{bail, Context as _};
use layerstore::Reference;
use registry_client::PushOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The image in the local store (name[:tag], name@digest or ID).
    image: String,
    /// Where to push it (default: the name the image was given by).
    destination: Option<String>,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    #[command(flatten)]
    upload: super::remote::UploadArgs,
    /// Suppress the progress output.
    #[arg(short, long)]
    quiet: bool,
    /// Push every tag of the repository IMAGE names.
    #[arg(short, long)]
    all_tags: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let pushes = if args.all_tags {
        all_tags(&store, &args)?
    } else {
        let found = store.find_image(&args.image)?;
        let destination = match &args.destination {
            Some(destination) => Reference::parse_tagged(destination)
                .with_context(|| format!("invalid destination {destination:?}"))?,
            None => found.requested.clone().with_context(|| {
                format!(
                    "{} is not a name: give a destination (lade push IMAGE NAME[:TAG])",
                    args.image
                )
            })?,
        };
        vec![(found, destination)]
    };
    let progress = context.progress().every_item();
    let quiet = layerstore::progress::NoProgress;
    let progress: &dyn layerstore::progress::Progress = if args.quiet { &quiet } else { &progress };
    if let Some((_, first)) = pushes.first() {
        println!("The push refers to repository [{}]", first.name());
    }
    let connector = args.remote.connector()?;
    for (found, destination) in &pushes {
        push_one(&store, &args, &connector, found, destination, progress)?;
    }
    Ok(())
}

/// `--all-tags`: every tag of the repository `args.image` names, each pushed to itself.
fn all_tags(
    store: &layerstore::Store,
    args: &Args,
) -> anyhow::Result<Vec<(layerstore::FoundImage, Reference)>> {
    let repository = Reference::parse(&args.image)?;
    if repository.tag().is_some() || repository.digest().is_some() || args.destination.is_some() {
        bail!("--all-tags takes a repository name alone: no tag, digest or destination");
    }
    let mut pushes = Vec::new();
    for record in store.image_records()? {
        let Some(name) = record.name else { continue };
        if name.name() == repository.name() {
            pushes.push((store.find_image(&name.to_string())?, name));
        }
    }
    if pushes.is_empty() {
        bail!("no tags of {} in the store", repository.familiar_name());
    }
    Ok(pushes)
}

fn push_one(
    store: &layerstore::Store,
    args: &Args,
    connector: &registry_client::Connector,
    found: &layerstore::FoundImage,
    destination: &Reference,
    progress: &dyn layerstore::progress::Progress,
) -> anyhow::Result<()> {
    // The image's other names in the same registry (where it was pulled from, say) may hold its blobs.
    let mount_from = found
        .names
        .iter()
        .filter(|n| n.domain() == destination.domain() && n.path() != destination.path())
        .map(|n| n.path().to_string())
        .collect();
    let options = PushOptions {
        jobs: args.jobs,
        chunk_size: args.upload.chunk_size,
        mount_from,
        compression: args.upload.compression.into(),
    };
    let pushed = super::remote::block_on(async {
        let registry = connector.connect(destination.domain()).await?;
        match &found.index {
            // A multi-platform image kept whole goes whole, its children as stored.
            Some(index) => {
                registry_client::multi::push_index(
                    &registry,
                    store,
                    index,
                    destination,
                    &options,
                    progress,
                )
                .await
            }
            None => {
                registry_client::push(
                    &registry,
                    store,
                    &found.image,
                    destination,
                    &options,
                    progress,
                )
                .await
            }
        }
    })??;
    let label = destination
        .tag()
        .map_or_else(|| pushed.digest.to_string(), str::to_string);
    println!("{label}: digest: {} size: {}", pushed.digest, pushed.size);
    Ok(())
}
