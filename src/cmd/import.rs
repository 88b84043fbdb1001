//! `lade import FILE|- [REPOSITORY[:TAG]]`: a root filesystem tarball becomes a one-layer image, with `--change`
//! applying Dockerfile instructions to its config as `docker import` does.

use std::path::PathBuf;

use builder::engine::config_edit::apply_changes;
use layerstore::config::ImageConfig;
use layerstore::import::{import_rootfs, ImportOptions};
use layerstore::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR), with the Dockerfile's syntax and variable expansion.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Commit message for the imported image's history.
    #[arg(short, long)]
    message: Option<String>,
    /// The tarball (plain, gzip or zstd), or - for stdin.
    file: PathBuf,
    /// The name to give the image.
    reference: Option<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let names = match &args.reference {
        Some(reference) => vec![Reference::parse_tagged(reference)?],
        None => Vec::new(),
    };
    let mut config = ImageConfig::default();
    apply_changes(&mut config, &args.changes)?;
    let source = if args.file.as_os_str() == "-" {
        "-".to_string()
    } else {
        args.file.display().to_string()
    };
    let created = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("now formats");
    let options = ImportOptions {
        config: config.config.unwrap_or_default(),
        created,
        comment: args
            .message
            .unwrap_or_else(|| format!("Imported from {source}")),
    };
    let input = super::open_input(Some(&args.file))?;
    let (_, id) = import_rootfs(&store, input, options, &names)?;
    println!("{id}");
    Ok(())
}
