//! `lade pull REF [--platform os/arch[/variant]]`: download an image from a registry into the local store.

use anyhow::Context as _;
use layerstore::{Platform, Reference};
use registry_client::pull::parse_platform;
use registry_client::PullOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The image: name[:tag] or name@digest.
    reference: String,
    /// The platform to pick from a multi-platform image (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Blobs downloaded at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Suppress the progress output.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let reference = Reference::parse_tagged(&args.reference)
        .with_context(|| format!("invalid reference {:?}", args.reference))?;
    let platform = match &args.platform {
        Some(text) => parse_platform(text)?,
        None => Platform::host(),
    };
    let store = context.store()?;
    let connector = args.remote.connector()?;
    let progress = context.progress();
    let quiet = layerstore::progress::NoProgress;
    let progress: &dyn layerstore::progress::Progress = if args.quiet { &quiet } else { &progress };
    let options = PullOptions {
        platform,
        jobs: args.jobs,
    };
    if !args.quiet {
        eprintln!("Pulling from {}", reference.path());
    }
    let pulled = super::remote::pull_image(&connector, &store, &reference, &options, progress)?;
    if !args.quiet {
        super::remote::report_pull(&reference, &pulled);
    }
    if args.platform.is_some() {
        warn_on_other_platform(&store, &pulled.descriptor, &options.platform)?;
    }
    println!("{reference}");
    Ok(())
}

/// A single-platform image is pulled whatever `--platform` asked for, as Docker 20.10 does; unlike it, say so.
fn warn_on_other_platform(
    store: &layerstore::Store,
    descriptor: &layerstore::Descriptor,
    requested: &Platform,
) -> anyhow::Result<()> {
    let config = layerstore::Image::read(store, descriptor)?.config;
    let variant_differs = requested
        .variant
        .as_ref()
        .is_some_and(|wanted| config.variant.as_ref() != Some(wanted));
    if config.os != requested.os || config.architecture != requested.architecture || variant_differs
    {
        let show = |os: &str, architecture: &str, variant: Option<&String>| match variant {
            Some(variant) => format!("{os}/{architecture}/{variant}"),
            None => format!("{os}/{architecture}"),
        };
        eprintln!(
            "WARNING: The image's platform ({}) does not match the requested platform ({})",
            show(&config.os, &config.architecture, config.variant.as_ref()),
            show(
                &requested.os,
                &requested.architecture,
                requested.variant.as_ref()
            )
        );
    }
    Ok(())
}
