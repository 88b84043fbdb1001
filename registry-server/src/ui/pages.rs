//! The pages, rendered to HTML strings from what [`super::view`] read. Every piece of stored text (names, tags,
//! labels, history, annotations) goes through [`escape`], since whoever can push chooses it.

use std::fmt::Write as _;

use layerstore::{Descriptor, ImageConfig, Manifest};

use super::html::{
    copy_line, escape, human_size, image_link, page, repository_link, short_digest, size_cell,
};
use super::view::{is_attestation, platform_text, ImageKind, ImageView, TagRow};

/// An RFC 3339 time as `2026-01-02 03:04:05 UTC`; anything else as given.
fn when(created: Option<&str>) -> String {
    let Some(text) = created else {
        return String::new();
    };
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| text.to_string())
}

fn crumb_home() -> String {
    "<a href=\"/ui\">Repositories</a>".to_string()
}

fn crumb_repository(name: &str) -> String {
    format!(
        "{} › <a href=\"{}\">{}</a>",
        crumb_home(),
        escape(&repository_link(name)),
        escape(name)
    )
}

/// The most repositories listed on one page; a search narrows a longer list.
const MAX_LISTED: usize = 500;

/// The repository list, with the search form.
pub fn repositories(names: &[String], query: &str) -> String {
    let mut body = format!(
        "<h1>Repositories</h1>\n<form class=\"search\" method=\"get\" action=\"/ui\" role=\"search\">\
<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"Search repositories\" aria-label=\"Search repositories\"> \
<button type=\"submit\">Search</button></form>\n",
        escape(query)
    );
    if names.is_empty() {
        let what = if query.trim().is_empty() {
            "This registry holds no repository yet.".to_string()
        } else {
            format!("No repository matches “{}”.", escape(query.trim()))
        };
        let _ = write!(body, "<p class=\"muted\" id=\"empty\">{what}</p>");
        return page("Repositories", &crumb_home(), &body);
    }
    let shown = if names.len() > MAX_LISTED {
        format!(", the first {MAX_LISTED} shown: search to narrow them")
    } else {
        String::new()
    };
    let _ = write!(
        body,
        "<p class=\"muted\" id=\"count\">{} repositor{}{shown}</p>\n<table id=\"repositories\"><thead><tr><th>Repository</th></tr></thead><tbody>\n",
        names.len(),
        if names.len() == 1 { "y" } else { "ies" }
    );
    for name in names.iter().take(MAX_LISTED) {
        let _ = writeln!(
            body,
            "<tr><td><a class=\"repository\" href=\"{}\">{}</a></td></tr>",
            escape(&repository_link(name)),
            escape(name)
        );
    }
    body.push_str("</tbody></table>\n");
    page("Repositories", &crumb_home(), &body)
}

/// One repository: its tags.
pub fn repository(host: &str, name: &str, rows: &[TagRow]) -> String {
    let mut body = format!("<h1>{}</h1>\n", escape(name));
    if rows.is_empty() {
        body.push_str("<p class=\"muted\" id=\"empty\">No tags.</p>\n");
        return page(name, &crumb_repository(name), &body);
    }
    body.push_str(
        "<table id=\"tags\"><thead><tr><th>Tag</th><th>Digest</th><th>Size</th><th>Platforms</th><th>Created</th>\
<th>Type</th></tr></thead><tbody>\n",
    );
    for row in rows {
        let _ = writeln!(
            body,
            "<tr><td><a class=\"tag\" href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&image_link(name, &row.tag)),
            escape(&row.tag),
            short_digest(&row.digest),
            size_cell(row.size),
            escape(&row.platforms.join(", ")),
            escape(&when(row.created.as_deref())),
            escape(&row.media_type),
        );
    }
    body.push_str("</tbody></table>\n");
    // `latest` when there is one, as a bare `docker pull` would take it.
    let pulled = rows.iter().find(|r| r.tag == "latest").or(rows.first());
    if let Some(row) = pulled {
        body.push_str(&copy_line(&format!(
            "docker pull {host}/{name}:{}",
            row.tag
        )));
    }
    page(name, &crumb_repository(name), &body)
}

fn descriptor_rows(name: &str, descriptors: &[Descriptor], link: bool) -> String {
    let mut rows = String::new();
    for (i, d) in descriptors.iter().enumerate() {
        let digest = if link {
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&image_link(name, &d.digest.to_string())),
                short_digest(&d.digest)
            )
        } else {
            short_digest(&d.digest)
        };
        let platform = d
            .platform
            .as_ref()
            .map(|p| platform_text(&p.os, &p.architecture, p.variant.as_deref()))
            .unwrap_or_default();
        let kind = d.artifact_type.as_deref().unwrap_or(&d.media_type);
        let annotations = d
            .annotations
            .iter()
            .flatten()
            .map(|(k, v)| format!("<li><code>{}</code>={}</li>", escape(k), escape(v)))
            .collect::<String>();
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{digest}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><ul>{annotations}</ul></td></tr>",
            i + 1,
            size_cell(d.size),
            escape(&platform),
            escape(kind),
        );
    }
    rows
}

fn descriptor_table(id: &str, name: &str, descriptors: &[Descriptor], link: bool) -> String {
    format!(
        "<table id=\"{id}\"><thead><tr><th>#</th><th>Digest</th><th>Size</th><th>Platform</th><th>Type</th>\
<th>Annotations</th></tr></thead><tbody>\n{}</tbody></table>\n",
        descriptor_rows(name, descriptors, link)
    )
}

fn words(list: Option<&Vec<String>>) -> String {
    list.map(|items| {
        let json = serde_json::to_string(items).unwrap_or_default();
        format!("<code>{}</code>", escape(&json))
    })
    .unwrap_or_else(|| "<span class=\"muted\">none</span>".to_string())
}

fn config_section(config: &ImageConfig) -> String {
    let mut out = String::from("<h2>Config</h2>\n<dl id=\"config\">");
    let _ = write!(
        out,
        "<dt>Platform</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd>",
        escape(&platform_text(
            &config.os,
            &config.architecture,
            config.variant.as_deref()
        )),
        escape(&when(config.created.as_deref()))
    );
    let container = config.config.clone().unwrap_or_default();
    let env = container
        .env
        .iter()
        .flatten()
        .map(|e| format!("<li><code>{}</code></li>", escape(e)))
        .collect::<String>();
    let _ = write!(
        out,
        "<dt>Env</dt><dd><ul id=\"env\">{env}</ul></dd><dt>Entrypoint</dt><dd id=\"entrypoint\">{}</dd><dt>Cmd</dt><dd id=\"cmd\">{}</dd>",
        words(container.entrypoint.as_ref()),
        words(container.cmd.as_ref())
    );
    for (label, value) in [
        ("WorkingDir", container.working_dir.as_deref()),
        ("User", container.user.as_deref()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = write!(
                out,
                "<dt>{label}</dt><dd><code>{}</code></dd>",
                escape(value)
            );
        }
    }
    if let Some(ports) = &container.exposed_ports {
        let ports: Vec<&str> = ports.keys().map(String::as_str).collect();
        let _ = write!(
            out,
            "<dt>ExposedPorts</dt><dd><code>{}</code></dd>",
            escape(&ports.join(" "))
        );
    }
    out.push_str("</dl>\n<h2>Labels</h2>\n");
    match container.labels.as_ref().filter(|l| !l.is_empty()) {
        None => out.push_str("<p class=\"muted\">No labels.</p>\n"),
        Some(labels) => {
            out.push_str("<table id=\"labels\"><thead><tr><th>Label</th><th>Value</th></tr></thead><tbody>\n");
            for (key, value) in labels {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    escape(key),
                    escape(value)
                );
            }
            out.push_str("</tbody></table>\n");
        }
    }
    out
}

fn history_section(config: &ImageConfig, manifest: &Manifest) -> String {
    let mut out = String::from(
        "<h2>History</h2>\n<table id=\"history\"><thead><tr><th>Created</th><th>Created by</th><th>Size</th>\
<th>Comment</th></tr></thead><tbody>\n",
    );
    let mut layers = manifest.layers.iter();
    for entry in &config.history {
        let size = if entry.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.size)
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&when(entry.created.as_deref())),
            escape(entry.created_by.as_deref().unwrap_or("")),
            size_cell(size),
            escape(entry.comment.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

/// One manifest: an image with its layers, config, history and referrers, or an index with its platforms.
pub fn image(host: &str, name: &str, reference: &str, view: &ImageView) -> String {
    let by_digest = reference.contains(':');
    let title = if by_digest {
        format!("{name}@{reference}")
    } else {
        format!("{name}:{reference}")
    };
    let crumbs = format!("{} › {}", crumb_repository(name), escape(reference));
    let mut body = format!("<h1>{}</h1>\n", escape(&title));
    let pull = if by_digest {
        format!("docker pull {host}/{name}@{}", view.digest)
    } else {
        format!("docker pull {host}/{name}:{reference}")
    };
    body.push_str(&copy_line(&pull));
    let tags = view
        .tags
        .iter()
        .map(|t| {
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&image_link(name, t)),
                escape(t)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        body,
        "<dl id=\"summary\"><dt>Digest</dt><dd><code id=\"digest\">{}</code></dd><dt>Media type</dt><dd><code>{}</code></dd>\
<dt>Tags</dt><dd>{}</dd></dl>",
        escape(&view.digest.to_string()),
        escape(&view.media_type),
        if tags.is_empty() { "<span class=\"muted\">none</span>".to_string() } else { tags }
    );
    match &view.kind {
        ImageKind::Index { index } => {
            let (images, attestations): (Vec<Descriptor>, Vec<Descriptor>) = index
                .manifests
                .iter()
                .cloned()
                .partition(|d| !is_attestation(d));
            body.push_str("<h2>Platforms</h2>\n");
            body.push_str(&descriptor_table("manifests", name, &images, true));
            if !attestations.is_empty() {
                body.push_str("<h2>Attestations</h2>\n");
                body.push_str(&descriptor_table("attestations", name, &attestations, true));
            }
        }
        ImageKind::Image { manifest, config } => {
            let total = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
            let _ = write!(
                body,
                "<h2>Layers</h2>\n<p class=\"muted\">{} layer{}, {} with the config</p>\n",
                manifest.layers.len(),
                if manifest.layers.len() == 1 { "" } else { "s" },
                human_size(total)
            );
            body.push_str(&descriptor_table("layers", name, &manifest.layers, false));
            match config {
                Some(config) => {
                    body.push_str(&config_section(config));
                    body.push_str(&history_section(config, manifest));
                }
                None => {
                    let _ = write!(
                        body,
                        "<h2>Config</h2>\n<p class=\"muted\">An artifact: config of type <code>{}</code>{}.</p>\n",
                        escape(&manifest.config.media_type),
                        manifest
                            .artifact_type
                            .as_deref()
                            .map(|t| format!(", artifact type <code>{}</code>", escape(t)))
                            .unwrap_or_default()
                    );
                }
            }
            if let Some(subject) = &manifest.subject {
                let _ = writeln!(
                    body,
                    "<p>Refers to <a href=\"{}\">{}</a>.</p>",
                    escape(&image_link(name, &subject.digest.to_string())),
                    short_digest(&subject.digest)
                );
            }
        }
        ImageKind::Unreadable(reason) => {
            let _ = writeln!(
                body,
                "<p class=\"muted\">The manifest cannot be shown: {}</p>",
                escape(reason)
            );
        }
    }
    body.push_str("<h2>Referrers</h2>\n");
    if view.referrers.is_empty() {
        body.push_str(
            "<p class=\"muted\" id=\"no-referrers\">No signatures, SBOMs or other referrers.</p>\n",
        );
    } else {
        body.push_str(&descriptor_table("referrers", name, &view.referrers, true));
    }
    page(&title, &crumbs, &body)
}

/// An error page.
pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &crumb_home(),
        &format!(
            "<h1>{}</h1>\n<p id=\"error\">{}</p>\n",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_is_cut_and_says_so() {
        let names: Vec<String> = (0..MAX_LISTED + 7).map(|i| format!("r/{i:04}")).collect();
        let body = repositories(&names, "");
        assert_eq!(body.matches("class=\"repository\"").count(), MAX_LISTED);
        assert!(body.contains("507 repositories, the first 500 shown"));
        assert!(repositories(&names[..1], "").contains(">1 repository<"));
    }
}
