//! `lade images`: the table of tagged (and dangling) images, one JSON object per line, or a Go template per image.
//! A multi-platform image kept whole is one row, as with Docker's containerd image store: IMAGE ID and DIGEST are
//! the index's, CREATED is this host's platform's, SIZE is every platform's summed.

use layerstore::Platform;

use super::image_filter::ImageFilter;
use crate::format::{self, Format};
use crate::output::{human_size, time_ago};

#[derive(clap::Args)]
pub struct Args {
    /// Show all images (the store has no intermediate images; kept for Docker compatibility).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Output format: table, json, or a Go template (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\t{{.Size}}`).
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Only list images of this repository (and tag).
    repository: Option<String>,
}

struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: Option<String>,
    size: u64,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let _ = args.all;
    let format = Format::parse(&args.format)?;
    let store = context.store()?;
    let image_filter = ImageFilter::parse(&args.filter, &store)?;
    let filter = args
        .repository
        .as_deref()
        .map(layerstore::Reference::parse)
        .transpose()?;
    let mut rows = Vec::new();
    for record in store.image_records()? {
        let images = store.entry_images(&record.descriptor)?;
        // For an index: this host's platform speaks for it (else its first), its size is every platform's.
        let host = store
            .platform_manifest(&record.descriptor, &Platform::host())
            .ok();
        let image = images
            .iter()
            .find(|i| Some(&i.descriptor.digest) == host.as_ref().map(|h| &h.digest))
            .unwrap_or(&images[0]);
        if !image_filter.keeps(record.name.as_ref(), image) {
            continue;
        }
        if let Some(filter) = &filter {
            let matches = record.name.as_ref().is_some_and(|n| {
                n.name() == filter.name() && (filter.tag().is_none() || n.tag() == filter.tag())
            });
            if !matches {
                continue;
            }
        }
        let id = store.entry_id(&record.descriptor)?;
        rows.push(Row {
            repository: record
                .name
                .as_ref()
                .map_or("<none>".into(), |n| n.familiar_name()),
            tag: record
                .name
                .as_ref()
                .and_then(|n| n.tag())
                .unwrap_or("<none>")
                .to_string(),
            digest: record.descriptor.digest.to_string(),
            id: if args.no_trunc {
                id.to_string()
            } else {
                id.short().to_string()
            },
            created: image.config.created.clone(),
            size: images.iter().map(|i| store.image_content_size(i)).sum(),
        });
    }
    rows.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.repository.cmp(&b.repository))
            .then(a.tag.cmp(&b.tag))
    });
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for row in rows.iter().filter(|r| seen.insert(r.id.clone())) {
            println!("{}", row.id);
        }
        return Ok(());
    }
    let mut columns = vec![("Repository", "REPOSITORY"), ("Tag", "TAG")];
    if args.digests {
        columns.push(("Digest", "DIGEST"));
    }
    columns.extend([
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("Size", "SIZE"),
    ]);
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "Repository": row.repository,
                "Tag": row.tag,
                "Digest": row.digest,
                "ID": row.id,
                "CreatedAt": row.created,
                "CreatedSince": time_ago(row.created.as_deref()),
                "Size": human_size(row.size),
                "SizeBytes": row.size,
            })
        })
        .collect();
    format::print_rows(&format, &columns, &rows)
}
