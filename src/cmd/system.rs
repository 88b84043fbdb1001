//! `lade system check [--repair]`: verifies the local store (every blob against its digest, every image whole) and
//! finds what interrupted commands left behind; `--repair` removes what is broken.

use layerstore::check::CheckReport;

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SystemCommand,
}

#[derive(clap::Subcommand)]
enum SystemCommand {
    /// Verify the store: re-hash every blob, follow every image to its config and layers, find leftovers of
    /// interrupted commands. Exits 1 when something is wrong and was not repaired.
    Check {
        /// Remove corrupt blobs, stray files, leftovers and the tags of broken images
        #[arg(long)]
        repair: bool,
    },
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    match args.command {
        SystemCommand::Check { repair } => {
            let report = context.store()?.check(repair)?;
            print_report(&report);
            if report.has_problems() && !report.repaired {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

fn print_report(report: &CheckReport) {
    let verb = if report.repaired { "removed" } else { "found" };
    for digest in &report.corrupt_blobs {
        println!("{verb} corrupt blob {digest} (its content has another digest)");
    }
    for path in &report.stray_files {
        println!("{verb} stray file {}", path.display());
    }
    for image in &report.broken_images {
        println!("{verb} broken image {}: {}", image.name, image.reason);
    }
    for path in &report.leftovers {
        println!(
            "{verb} leftover of an interrupted command: {}",
            path.display()
        );
    }
    println!(
        "checked {} blobs ({}): {} corrupt, {} broken images, {} stray files, {} leftovers{}",
        report.blobs_checked,
        human_size(report.bytes_checked),
        report.corrupt_blobs.len(),
        report.broken_images.len(),
        report.stray_files.len(),
        report.leftovers.len(),
        if report.repaired { " (repaired)" } else { "" }
    );
}
