//! `lade images --filter`: Docker's image filters. `dangling=true|false`; `reference=PATTERN` (Go's path.Match on
//! `name:tag` or `name`, any of several); `label=KEY` or `label=KEY=VALUE` (all of several); `before=IMAGE` and
//! `since=IMAGE` (created strictly before or after that image).

use anyhow::{bail, Context as _};
use layerstore::{Image, Reference, Store};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The filters of one `lade images` call; an image is listed when it passes all of them.
#[derive(Default)]
pub struct ImageFilter {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    before: Option<OffsetDateTime>,
    since: Option<OffsetDateTime>,
}

impl ImageFilter {
    /// Parses `--filter KEY=VALUE` arguments; `before` and `since` name images in `store`.
    pub fn parse(values: &[String], store: &Store) -> anyhow::Result<ImageFilter> {
        let mut filter = ImageFilter::default();
        for value in values {
            let (key, argument) = value
                .split_once('=')
                .with_context(|| format!("bad format of filter {value:?} (expected name=value)"))?;
            match key {
                "dangling" => {
                    filter.dangling = Some(match argument.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("invalid filter 'dangling={argument}': use true or false"),
                    })
                }
                "reference" => {
                    builder::glob::matches(argument, "")
                        .with_context(|| format!("invalid filter 'reference={argument}'"))?;
                    filter.references.push(argument.to_string());
                }
                "label" => filter.labels.push(match argument.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (argument.to_string(), None),
                }),
                "before" => filter.before = Some(created_of(store, argument)?),
                "since" => filter.since = Some(created_of(store, argument)?),
                _ => bail!(
                    "invalid filter '{key}' (use dangling, reference, label, before or since)"
                ),
            }
        }
        Ok(filter)
    }

    /// Whether the image, listed under `name` (`None`: untagged), passes every filter.
    pub fn keeps(&self, name: Option<&Reference>, image: &Image) -> bool {
        if self
            .dangling
            .is_some_and(|dangling| dangling != name.is_none())
        {
            return false;
        }
        if !self.references.is_empty() {
            let Some(name) = name else { return false };
            let candidates = [name.familiar(), name.familiar_name()];
            let matched = self.references.iter().any(|pattern| {
                candidates
                    .iter()
                    .any(|c| builder::glob::matches(pattern, c).unwrap_or(false))
            });
            if !matched {
                return false;
            }
        }
        let labels = image.config.config.as_ref().and_then(|c| c.labels.as_ref());
        let has_label = |(key, value): &(String, Option<String>)| {
            labels
                .and_then(|l| l.get(key))
                .is_some_and(|v| value.as_ref().is_none_or(|wanted| wanted == v))
        };
        if !self.labels.iter().all(has_label) {
            return false;
        }
        let created = image.config.created.as_deref().and_then(parse_time);
        let in_window = |bound: Option<OffsetDateTime>, earlier: bool| {
            bound.is_none_or(|bound| {
                created.is_some_and(|created| {
                    if earlier {
                        created < bound
                    } else {
                        created > bound
                    }
                })
            })
        };
        in_window(self.before, true) && in_window(self.since, false)
    }
}

fn created_of(store: &Store, image: &str) -> anyhow::Result<OffsetDateTime> {
    let found = store
        .find_image(image)
        .with_context(|| format!("no such image: {image}"))?;
    found
        .image
        .config
        .created
        .as_deref()
        .and_then(parse_time)
        .with_context(|| format!("image {image} has no creation time"))
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}
