//! `lade man DIR`: man pages generated from the CLI definition (clap_mangen), one per command and subcommand
//! (`lade.1`, `lade-build.1`, `lade-registry-serve.1`, …), written into DIR.

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `lade man`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory to write the pages to (created if missing), e.g. /usr/local/share/man/man1
    dir: PathBuf,
}

/// Writes every page into `args.dir` and lists them.
pub fn run(args: Args, command: clap::Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    clap_mangen::generate_to(command, &args.dir)
        .with_context(|| format!("writing man pages to {}", args.dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(&args.dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lade") && n.ends_with(".1"))
        .collect();
    pages.sort();
    println!("wrote {} man pages to {}", pages.len(), args.dir.display());
    Ok(())
}
