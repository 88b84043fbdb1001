//! `lade tag SOURCE TARGET`.

#[derive(clap::Args)]
pub struct Args {
    /// The image to tag (name[:tag], name@digest, or image ID).
    source: String,
    /// The new name[:tag].
    target: String,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    context.store()?.tag(&args.source, &args.target)?;
    Ok(())
}
