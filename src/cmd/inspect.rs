//! `lade inspect IMAGE...`: Docker-like JSON (Id, RepoTags, RepoDigests, Created, Config, RootFS, Size, ...). For a
//! multi-platform image kept whole, `Id`, `RepoDigests` and `Descriptor` are the index's and the rest describes this
//! host's platform (`ImageManifestDescriptor` names its manifest).

use serde_json::{json, Value};

use crate::format;

#[derive(clap::Args)]
pub struct Args {
    /// Images: name[:tag], name@digest or image ID (prefix).
    #[arg(required = true)]
    images: Vec<String>,
    /// Format the output with a Go template (`{{.Id}}`, `{{json .Config}}`, `{{index .RepoDigests 0}}`), or json.
    #[arg(short, long)]
    format: Option<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(source) => Some(format::template(source)?),
    };
    let store = context.store()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for argument in &args.images {
        match store.find_image(argument) {
            Ok(found) => out.push(describe(&store, &found)),
            Err(layerstore::tags::TagError::NotFound(_)) => missing.push(argument.clone()),
            Err(error) => return Err(error.into()),
        }
    }
    match &template {
        None => println!("{}", serde_json::to_string_pretty(&out)?),
        Some(template) => {
            for object in &out {
                println!("{}", format::render(template, object)?);
            }
        }
    }
    if !missing.is_empty() {
        for name in missing {
            eprintln!("Error: No such image: {name}");
        }
        std::process::exit(1);
    }
    Ok(())
}

fn describe(store: &layerstore::Store, found: &layerstore::FoundImage) -> Value {
    let image = &found.image;
    let config = &image.config;
    let repo_tags: Vec<String> = found.names.iter().map(|n| n.familiar()).collect();
    let mut repo_digests: Vec<String> = found
        .names
        .iter()
        .map(|n| format!("{}@{}", n.familiar_name(), found.descriptor().digest))
        .collect();
    repo_digests.dedup();
    let mut value = json!({
        "Id": found.id().to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_default(),
        "DockerVersion": config.extra.get("docker_version").cloned().unwrap_or(Value::from("")),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config.clone(),
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": store.image_content_size(image),
        "RootFS": {
            "Type": config.rootfs.kind,
            "Layers": config.rootfs.diff_ids,
        },
        "Descriptor": found.descriptor(),
    });
    if found.index.is_some() {
        // A multi-platform image: Id and Descriptor are the index's (as Docker's containerd image store shows
        // them), the rest is this platform's image, whose manifest is here.
        value["ImageManifestDescriptor"] = json!(image.descriptor);
    }
    if let Some(variant) = &config.variant {
        value["Variant"] = Value::from(variant.clone());
    }
    value
}
