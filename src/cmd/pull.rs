//! `lade pull REF [--platform os/arch[/variant]] [--all-platforms]`: download an image from a registry into the local
//! store; with `--all-platforms` a multi-platform image is stored whole (its index and every platform's image).

use anyhow::Context as _;
use layerstore::{Platform, Reference};
use registry_client::multi::Platforms;
use registry_client::pull::parse_platform;
use registry_client::PullOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The image: name[:tag] or name@digest.
    reference: String,
    /// The platform to pick from a multi-platform image (default: this host's). With --all-platforms, a
    /// comma-separated list of the platforms to keep (the index is then rewritten to hold those only).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Store a multi-platform image whole: every platform's image, and the index byte for byte, tagged as REF.
    #[arg(long)]
    all_platforms: bool,
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
        Some(text) if !args.all_platforms => parse_platform(text)?,
        _ => Platform::host(),
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
    let whole = if args.all_platforms {
        let platforms = match &args.platform {
            None => Platforms::All,
            Some(list) => Platforms::List(
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(parse_platform)
                    .collect::<Result<_, _>>()?,
            ),
        };
        super::remote::block_on(async {
            let registry = connector.connect(reference.domain()).await?;
            registry_client::multi::pull_index(
                &registry,
                &store,
                &reference,
                std::slice::from_ref(&reference),
                &platforms,
                options.jobs,
                progress,
            )
            .await
        })??
    } else {
        None
    };
    // A single-platform image under --all-platforms is pulled as it is, as Docker does.
    let pulled = match whole {
        Some(pulled) => pulled,
        None => super::remote::pull_image(&connector, &store, &reference, &options, progress)?,
    };
    if !args.quiet {
        super::remote::report_pull(&reference, &pulled);
    }
    if args.platform.is_some() && !args.all_platforms {
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
