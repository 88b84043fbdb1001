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
            println!(
                "{:<14}{:<20}{:<48}{:<10}COMMENT",
                "IMAGE", "CREATED", "CREATED BY", "SIZE"
            );
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
                println!(
                    "{:<14}{:<20}{:<48}{:<10}{}",
                    id,
                    time_ago(step.created.as_deref()),
                    created_by,
                    human_size(*size),
                    step.comment.clone().unwrap_or_default()
                );
            }
        }
        other => anyhow::bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(())
}
