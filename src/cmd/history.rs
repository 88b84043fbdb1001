//! `lade history IMAGE`: the image's history steps, newest first, with layer sizes.

use crate::output::{human_size, time_ago};

#[derive(clap::Args)]
pub struct Args {
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    image: String,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let found = context.store()?.find_image(&args.image)?;
    let image = &found.image;
    let mut layers = image.manifest.layers.iter();
    let mut rows = Vec::new();
    for step in &image.config.history {
        let size = if step.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
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
    match args.format.as_str() {
        "json" => {
            for (index, (step, size)) in rows.iter().enumerate() {
                let value = serde_json::json!({
                    "ID": if index == 0 { top_id.clone() } else { "<missing>".to_string() },
                    "CreatedAt": step.created,
                    "CreatedSince": time_ago(step.created.as_deref()),
                    "CreatedBy": step.created_by.clone().unwrap_or_default(),
                    "Size": human_size(*size),
                    "SizeBytes": size,
                    "Comment": step.comment.clone().unwrap_or_default(),
                });
                println!("{value}");
            }
        }
        "table" => {
            let mut lines =
                vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
            for (index, (step, size)) in rows.iter().enumerate() {
                let id = if index == 0 {
                    top_id.clone()
                } else {
                    "<missing>".to_string()
                };
                let mut created_by = step
                    .created_by
                    .clone()
                    .unwrap_or_default()
                    .replace('\t', " ");
                if !args.no_trunc && created_by.chars().count() > 45 {
                    created_by = created_by.chars().take(44).collect::<String>() + "…";
                }
                lines.push([
                    id,
                    time_ago(step.created.as_deref()),
                    created_by,
                    human_size(*size),
                    step.comment.clone().unwrap_or_default(),
                ]);
            }
            print_columns(&lines);
        }
        other => anyhow::bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(())
}

/// Prints rows in columns padded to their widest cell, three spaces apart, like Docker's tabwriter.
fn print_columns(lines: &[[String; 5]]) {
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if c + 1 < line.len() {
                text.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        println!("{}", text.trim_end());
    }
}
