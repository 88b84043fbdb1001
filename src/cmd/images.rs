//! `lade images`: the table of tagged (and dangling) images, or one JSON object per line.

use layerstore::Image;

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
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
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
    let store = context.store()?;
    let filter = args
        .repository
        .as_deref()
        .map(layerstore::Reference::parse)
        .transpose()?;
    let mut rows = Vec::new();
    for record in store.image_records()? {
        let image = Image::read(&store, &record.descriptor)?;
        if let Some(filter) = &filter {
            let matches = record.name.as_ref().is_some_and(|n| {
                n.name() == filter.name() && (filter.tag().is_none() || n.tag() == filter.tag())
            });
            if !matches {
                continue;
            }
        }
        let id = image.id().to_string();
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
            digest: image.digest().to_string(),
            id: if args.no_trunc {
                id
            } else {
                image.id().short().to_string()
            },
            created: image.config.created.clone(),
            size: image.size(),
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
    match args.format.as_str() {
        "json" => {
            for row in &rows {
                let value = serde_json::json!({
                    "Repository": row.repository,
                    "Tag": row.tag,
                    "Digest": row.digest,
                    "ID": row.id,
                    "CreatedAt": row.created,
                    "CreatedSince": time_ago(row.created.as_deref()),
                    "Size": human_size(row.size),
                    "SizeBytes": row.size,
                });
                println!("{value}");
            }
        }
        "table" => print_table(&rows, args.digests),
        other => anyhow::bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(())
}

fn print_table(rows: &[Row], digests: bool) {
    let mut lines = vec![{
        let mut header = vec!["REPOSITORY".to_string(), "TAG".to_string()];
        if digests {
            header.push("DIGEST".to_string());
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"].map(String::from));
        header
    }];
    for row in rows {
        let mut line = vec![row.repository.clone(), row.tag.clone()];
        if digests {
            line.push(row.digest.clone());
        }
        line.extend([
            row.id.clone(),
            time_ago(row.created.as_deref()),
            human_size(row.size),
        ]);
        lines.push(line);
    }
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c + 1 == columns {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        println!("{}", text.trim_end());
    }
}
