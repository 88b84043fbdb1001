//! `lade history IMAGE`: the image's history steps, newest first, with layer sizes.

use crate::format::{self, Format};
use crate::output::{human_size, time_ago};

#[derive(clap::Args)]
pub struct Args {
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table, json, or a Go template (`{{.CreatedBy}}`, `table {{.ID}}\t{{.Size}}`).
    #[arg(long, default_value = "table")]
    format: String,
    image: String,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let format = Format::parse(&args.format)?;
    let store = context.store()?;
    let found = store.find_image(&args.image)?;
    let image = &found.image;
    let mut layers = image.manifest.layers.iter();
    let mut rows = Vec::new();
    for step in &image.config.history {
        let size = if step.empty_layer {
            0
        } else {
            layers
                .next()
                .map_or(0, |l| store.descriptor_content_size(l))
        };
        rows.push((step, size));
    }
    rows.reverse();
    let top_id = if args.no_trunc {
        image.id().to_string()
    } else {
        image.id().short().to_string()
    };
    if args.quiet {
        println!("{top_id}");
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(index, (step, size))| {
            let mut created_by = step.created_by.clone().unwrap_or_default();
            if !args.no_trunc && created_by.chars().count() > 45 {
                created_by = created_by.chars().take(44).collect::<String>() + "…";
            }
            serde_json::json!({
                "ID": if index == 0 { top_id.clone() } else { "<missing>".to_string() },
                "CreatedAt": step.created,
                "CreatedSince": time_ago(step.created.as_deref()),
                "CreatedBy": created_by.replace('\t', " "),
                "Size": human_size(*size),
                "SizeBytes": size,
                "Comment": step.comment.clone().unwrap_or_default(),
            })
        })
        .collect();
    let columns = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    format::print_rows(&format, &columns, &rows)
}
