//! `lade export IMAGE [-o FILE]`: the image's merged filesystem as one tarball.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Write to a file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    image: String,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let found = store.find_image(&args.image)?;
    let output = super::ArchiveOutput::new(args.output.as_deref())?;
    output.write_with(|out| {
        layerstore::import::export_flattened(&store, &found.image, out)?;
        Ok(())
    })
}
