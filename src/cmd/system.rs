//! `lade system check [--repair]`: verifies the local store (every blob against its digest, every image whole) and
//! finds what interrupted commands left behind; `--repair` removes what is broken. `lade system df`: the disk use
//! of images, running containers and the build cache, with what a prune would reclaim, as `docker system df` shows.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use layerstore::check::CheckReport;
use layerstore::{Digest, Store};

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
    /// Show disk usage: images, running containers, build cache, and what is reclaimable.
    Df {
        /// Output format: table or json
        #[arg(long, default_value = "table")]
        format: String,
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
        SystemCommand::Df { format } => {
            let usage = disk_usage(&context.store()?)?;
            match format.as_str() {
                "table" => print_usage(&usage),
                "json" => println!("{}", serde_json::to_string(&usage.rows())?),
                other => anyhow::bail!("unknown --format {other:?}: use table or json"),
            }
        }
    }
    Ok(())
}

/// One line of `system df`.
struct UsageRow {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

struct DiskUsage {
    images: UsageRow,
    containers: UsageRow,
    build_cache: UsageRow,
}

impl DiskUsage {
    fn rows(&self) -> Vec<serde_json::Value> {
        [&self.images, &self.containers, &self.build_cache]
            .iter()
            .map(|row| {
                serde_json::json!({
                    "Type": row.kind,
                    "TotalCount": row.total,
                    "Active": row.active,
                    "Size": human_size(row.size),
                    "SizeBytes": row.size,
                    "Reclaimable": human_size(row.reclaimable),
                    "ReclaimableBytes": row.reclaimable,
                })
            })
            .collect()
    }
}

/// Counts each blob once: images share layers, and a layer the build cache also names belongs to the images.
fn disk_usage(store: &Store) -> anyhow::Result<DiskUsage> {
    let leases = store.live_leases()?;
    let active_ids: HashSet<Digest> = leases.iter().filter_map(|l| l.image.clone()).collect();
    // Keyed by entry ID; an index is one image holding every platform's blobs, active when a container uses any
    // of its platforms.
    let mut images: HashMap<Digest, Vec<Digest>> = HashMap::new();
    let mut active_entries: HashSet<Digest> = HashSet::new();
    for record in store.image_records()? {
        let (Ok(id), Ok(entry)) = (
            store.entry_id(&record.descriptor),
            store.entry_images(&record.descriptor),
        ) else {
            continue;
        };
        let mut blobs = vec![record.descriptor.digest.clone()];
        for image in &entry {
            blobs.push(image.digest().clone());
            blobs.push(image.id().clone());
            blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
            if active_ids.contains(image.id()) {
                active_entries.insert(id.clone());
            }
        }
        images.insert(id, blobs);
    }
    let size_of = |blobs: &HashSet<&Digest>| -> u64 {
        blobs.iter().map(|d| store.blob_size(d).unwrap_or(0)).sum()
    };
    let all: HashSet<&Digest> = images.values().flatten().collect();
    let active: HashSet<&Digest> = images
        .iter()
        .filter(|(id, _)| active_entries.contains(*id))
        .flat_map(|(_, blobs)| blobs)
        .collect();
    let image_bytes = size_of(&all);
    let cache = builder::engine::cache::StepCache::open(store)?;
    let cache_layers: Vec<Digest> = cache.layer_digests()?;
    let cache_only: HashSet<&Digest> = cache_layers.iter().filter(|d| !all.contains(d)).collect();
    let unpacked = directory_size(&store.root().join("snapshots/layers"));
    let mounts = directory_size(&store.root().join("cache-mounts"));
    let cache_bytes = size_of(&cache_only) + unpacked + mounts;
    Ok(DiskUsage {
        images: UsageRow {
            kind: "Images",
            total: images.len(),
            active: active_entries.len(),
            size: image_bytes,
            reclaimable: image_bytes - size_of(&active).min(image_bytes),
        },
        containers: UsageRow {
            kind: "Containers",
            total: leases.len(),
            active: leases.len(),
            size: 0,
            reclaimable: 0,
        },
        build_cache: UsageRow {
            kind: "Build Cache",
            total: cache_layers.len(),
            active: 0,
            size: cache_bytes,
            reclaimable: cache_bytes,
        },
    })
}

/// Bytes of the regular files under `dir` (0 when it is missing or unreadable).
fn directory_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn print_usage(usage: &DiskUsage) {
    println!(
        "{:<15} {:<9} {:<9} {:<10} RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for row in [&usage.images, &usage.containers, &usage.build_cache] {
        let percent = (row.reclaimable * 100).checked_div(row.size).unwrap_or(0);
        println!(
            "{:<15} {:<9} {:<9} {:<10} {} ({percent}%)",
            row.kind,
            row.total,
            row.active,
            human_size(row.size),
            human_size(row.reclaimable)
        );
    }
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
