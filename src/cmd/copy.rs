//! `lade copy SRC DST`: copy an image between registries (`docker://`), OCI layouts (`oci:DIR[:TAG]`), archives
//! (`oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`) and the local store (`lade:NAME`), without going through
//! the local store unless one side names it.

use anyhow::Context as _;
use layerstore::Platform;
use registry_client::location::{copy, CopyOptions, Location};
use registry_client::multi::Platforms;
use registry_client::{PullOptions, PushOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Source: docker://NAME[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF],
    /// lade:NAME.
    source: String,
    /// Destination, in the same forms.
    destination: String,
    /// The platform to pick when the source is a multi-platform image (default: this host's). Several (comma
    /// separated or repeated) copy an index holding those platforms only.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_delimiter = ',')]
    platform: Vec<String>,
    /// Copy a multi-platform image whole: the index, unchanged, and every platform's image (as skopeo's --all).
    #[arg(short, long, conflicts_with = "platform")]
    all: bool,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    #[command(flatten)]
    upload: super::remote::UploadArgs,
    /// Suppress the progress output.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let source: Location = args.source.parse()?;
    let destination: Location = args.destination.parse()?;
    let platforms = args
        .platform
        .iter()
        .map(|text| registry_client::pull::parse_platform(text))
        .collect::<Result<Vec<_>, _>>()?;
    let platform = platforms.first().cloned().unwrap_or_else(Platform::host);
    let multi = if args.all {
        Some(Platforms::All)
    } else if platforms.len() > 1 {
        Some(Platforms::List(platforms))
    } else {
        None
    };
    let connector = args.remote.connector()?;
    let local_store = || {
        context
            .store()
            .map_err(|e| registry_client::Error::Location(format!("{e:#}")))
    };
    let options = CopyOptions {
        connector: &connector,
        local_store: &local_store,
        pull: PullOptions {
            platform,
            jobs: args.jobs,
        },
        push: PushOptions {
            jobs: args.jobs,
            chunk_size: args.upload.chunk_size,
            compression: args.upload.compression.into(),
            ..PushOptions::default()
        },
        platforms: multi,
    };
    let progress = context.progress();
    let quiet = layerstore::progress::NoProgress;
    let progress: &dyn layerstore::progress::Progress = if args.quiet { &quiet } else { &progress };
    let copied = super::remote::block_on(copy(&source, &destination, &options, progress))?
        .with_context(|| format!("copying {} to {}", args.source, args.destination))?;
    if let Some(from) = &copied.converted_from {
        eprintln!(
            "Converted the Docker schema 2 manifest {from} to OCI media types for the OCI layout (same blobs and image ID, new manifest digest)"
        );
    }
    println!("{}", copied.digest);
    Ok(())
}
