//! `lade load [-i FILE]`: images from a `docker save` tarball (any Docker version), an OCI layout archive, or a
//! gzip/zstd-compressed one of those; stdin by default.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Read from a file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the progress output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let input = super::open_input(args.input.as_deref())?;
    let progress = context.progress();
    let quiet = layerstore::progress::NoProgress;
    let progress: &dyn layerstore::progress::Progress = if args.quiet { &quiet } else { &progress };
    let loaded = layerstore::archive::load::load(&store, input, progress)?;
    for image in loaded {
        if image.names.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for name in &image.names {
            println!("Loaded image: {}", name.familiar());
        }
    }
    Ok(())
}
