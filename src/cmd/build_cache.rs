//! `lade build --cache-from` / `--cache-to`: BuildKit's spelling of the options (`type=registry,ref=…`,
//! `type=local,src=…|dest=…`, `type=inline`, `mode=`, `compression=`, `oci-mediatypes=`, `ignore-error=`), and the
//! registry transport of the build cache over the registry client.

use anyhow::{bail, Context as _};
use builder::engine::cache_local::LocalCache;
use builder::engine::cache_transfer::{CacheTransport, ExportOptions, ImportedCache};
use builder::engine::CacheRecords;
use layerstore::manifest::Flavour;
use layerstore::media_types::Compression;
use layerstore::progress::NoProgress;
use layerstore::{Descriptor, Digest, Reference, Store};
use registry_client::{Connector, Session};

/// Where a cache lives.
#[derive(Debug, Clone)]
pub enum Place {
    /// `type=registry,ref=REF`.
    Registry(Reference),
    /// `type=local,src|dest=DIR[,tag=T]`.
    Local {
        dir: std::path::PathBuf,
        tag: String,
    },
}

/// A `--cache-to`.
#[derive(Debug, Clone)]
pub struct CacheTo {
    /// `None`: `type=inline` (the builder writes it into the image config).
    pub place: Option<Place>,
    /// `mode=max`: every step of every stage; `min` (the default): the final image's steps.
    pub max: bool,
    pub options: ExportOptions,
    /// `ignore-error=true`: a failed export is a warning.
    pub ignore_error: bool,
    /// The option as given, for messages.
    pub text: String,
}

fn fields(text: &str, flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .map(|field| match field.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                Ok((key.trim().to_string(), value.to_string()))
            }
            _ => bail!("{flag} {text:?}: {field:?} is not KEY=VALUE"),
        })
        .collect()
}

fn boolean(flag: &str, text: &str, key: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => bail!("{flag} {text:?}: {key}={value:?} must be true or false"),
    }
}

fn reference(flag: &str, text: &str, value: Option<&String>) -> anyhow::Result<Reference> {
    let value = value.with_context(|| {
        format!("{flag} {text:?}: type=registry needs ref=REGISTRY/REPOSITORY[:TAG]")
    })?;
    Reference::parse_tagged(value)
        .with_context(|| format!("{flag} {text:?}: invalid ref {value:?}"))
}

/// Parses a `--cache-from`: `type=registry,ref=REF`, `type=local,src=DIR[,tag=T]`, or a bare `REF` (a registry).
pub fn parse_cache_from(text: &str) -> anyhow::Result<Place> {
    const FLAG: &str = "--cache-from";
    if !text.contains('=') {
        return Ok(Place::Registry(reference(
            FLAG,
            text,
            Some(&text.to_string()),
        )?));
    }
    let fields = fields(text, FLAG)?;
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let kind = get("type").map(String::as_str).unwrap_or("registry");
    let allowed: &[&str] = match kind {
        "registry" => &["type", "ref"],
        "local" => &["type", "src", "tag", "digest"],
        "inline" => bail!(
            "{FLAG} {text:?}: type=inline is for --cache-to; import an inline cache with \
             --cache-from type=registry,ref=IMAGE"
        ),
        other => bail!("{FLAG} {text:?}: unsupported type {other:?} (registry or local)"),
    };
    if let Some((key, _)) = fields.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        bail!(
            "{FLAG} {text:?}: unknown option {key:?} for type={kind} (known: {})",
            allowed.join(", ")
        );
    }
    if kind == "registry" {
        return Ok(Place::Registry(reference(FLAG, text, get("ref"))?));
    }
    if get("digest").is_some() {
        bail!("{FLAG} {text:?}: digest= is not supported; name the cache by tag=");
    }
    let dir = get("src").with_context(|| format!("{FLAG} {text:?}: type=local needs src=DIR"))?;
    Ok(Place::Local {
        dir: dir.into(),
        tag: get("tag").cloned().unwrap_or_else(|| "latest".into()),
    })
}

/// Parses a `--cache-to`.
pub fn parse_cache_to(text: &str) -> anyhow::Result<CacheTo> {
    const FLAG: &str = "--cache-to";
    let fields = fields(text, FLAG)?;
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let kind = get("type")
        .map(String::as_str)
        .with_context(|| format!("{FLAG} {text:?}: missing type= (registry, local or inline)"))?;
    const EXPORT: &[&str] = &[
        "type",
        "mode",
        "compression",
        "oci-mediatypes",
        "image-manifest",
        "ignore-error",
    ];
    let own: &[&str] = match kind {
        "registry" => &["ref"],
        "local" => &["dest", "tag"],
        "inline" => &[],
        other => bail!("{FLAG} {text:?}: unsupported type {other:?} (registry, local or inline)"),
    };
    let mut cache = CacheTo {
        place: None,
        max: false,
        options: ExportOptions {
            flavour: Flavour::Oci,
            compression: Compression::Gzip,
        },
        ignore_error: false,
        text: text.to_string(),
    };
    for (key, value) in &fields {
        match key.as_str() {
            "mode" => {
                cache.max = match value.as_str() {
                    "min" => false,
                    "max" => true,
                    _ => bail!("{FLAG} {text:?}: mode={value:?} must be min or max"),
                }
            }
            "compression" => {
                cache.options.compression = match value.as_str() {
                    "gzip" => Compression::Gzip,
                    "zstd" => Compression::Zstd,
                    "uncompressed" => Compression::None,
                    _ => bail!(
                        "{FLAG} {text:?}: compression={value:?} must be gzip, zstd or uncompressed"
                    ),
                }
            }
            "oci-mediatypes" => {
                if !boolean(FLAG, text, key, value)? {
                    cache.options.flavour = Flavour::Docker;
                }
            }
            "image-manifest" => {
                if !boolean(FLAG, text, key, value)? {
                    bail!(
                        "{FLAG} {text:?}: lade writes the cache as an image manifest (BuildKit's \
                         image-manifest=true), which every registry stores; image-manifest=false is not supported"
                    );
                }
            }
            "ignore-error" => cache.ignore_error = boolean(FLAG, text, key, value)?,
            key if EXPORT.contains(&key) || own.contains(&key) => {}
            key => {
                let known: Vec<&str> = EXPORT.iter().chain(own).copied().collect();
                bail!(
                    "{FLAG} {text:?}: unknown option {key:?} for type={kind} (known: {})",
                    known.join(", ")
                );
            }
        }
    }
    if cache.options.flavour == Flavour::Docker && cache.options.compression == Compression::Zstd {
        bail!("{FLAG} {text:?}: zstd layers need OCI media types (oci-mediatypes=true)");
    }
    cache.place = match kind {
        "registry" => Some(Place::Registry(reference(FLAG, text, get("ref"))?)),
        "local" => Some(Place::Local {
            dir: get("dest")
                .with_context(|| format!("{FLAG} {text:?}: type=local needs dest=DIR"))?
                .into(),
            tag: get("tag").cloned().unwrap_or_else(|| "latest".into()),
        }),
        _ => {
            if cache.max {
                bail!("{FLAG} {text:?}: type=inline supports mode=min only (the image holds only its own layers)");
            }
            None
        }
    };
    Ok(cache)
}

impl Place {
    /// How the cache is named in messages.
    pub fn name(&self) -> String {
        match self {
            Place::Registry(reference) => format!("type=registry,ref={reference}"),
            Place::Local { dir, tag } => format!("type=local,{}:{tag}", dir.display()),
        }
    }

    /// The transport to reach it.
    pub fn transport(&self, connector: &Connector) -> anyhow::Result<Box<dyn CacheTransport>> {
        Ok(match self {
            Place::Registry(reference) => Box::new(RegistryCache {
                runtime: tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?,
                connector: connector.clone(),
                reference: reference.clone(),
                registry: tokio::sync::OnceCell::new(),
            }),
            Place::Local { dir, tag } => Box::new(LocalCache::new(dir, tag)),
        })
    }
}

/// Loads every `--cache-from` (manifests and documents only); one that cannot be read is a warning.
pub fn import(
    places: &[Place],
    connector: &Connector,
    store: &Store,
    quiet: bool,
) -> anyhow::Result<Vec<ImportedCache>> {
    let mut imports = Vec::new();
    for place in places {
        let name = place.name();
        match ImportedCache::load(&name, place.transport(connector)?, store) {
            Ok(cache) => {
                if !quiet {
                    eprintln!(
                        "importing cache manifest from {name}: {} records",
                        cache.len()
                    );
                }
                imports.push(cache);
            }
            Err(e) => eprintln!("[Warning] cache from {name} is not used: {e}"),
        }
    }
    Ok(imports)
}

/// Exports the build's records to each `--cache-to` with a place (inline is in the image already).
pub fn export(
    targets: &[CacheTo],
    records: &CacheRecords,
    connector: &Connector,
    store: &Store,
    quiet: bool,
) -> anyhow::Result<()> {
    for target in targets {
        let Some(place) = &target.place else {
            continue;
        };
        let records = if target.max {
            &records.all
        } else {
            &records.image
        };
        let outcome = place.transport(connector).and_then(|transport| {
            builder::engine::cache_transfer::export(
                store,
                records,
                transport.as_ref(),
                target.options,
            )
            .map_err(anyhow::Error::msg)
        });
        match outcome {
            Ok(exported) => {
                if !quiet {
                    eprintln!(
                        "exporting cache to {}: {} records, {} layers, manifest {} done",
                        place.name(),
                        exported.records,
                        exported.layers,
                        exported.manifest
                    );
                }
            }
            Err(e) if target.ignore_error => {
                eprintln!(
                    "[Warning] exporting cache to {} failed: {e:#}",
                    place.name()
                )
            }
            Err(e) => return Err(e.context(format!("--cache-to {}", target.text))),
        }
    }
    Ok(())
}

/// A cache in a registry repository, under a tag (`ref=`).
struct RegistryCache {
    runtime: tokio::runtime::Runtime,
    connector: Connector,
    reference: Reference,
    registry: tokio::sync::OnceCell<Session>,
}

impl RegistryCache {
    fn run<T>(
        &self,
        work: impl AsyncFnOnce(&Session, &str) -> Result<T, registry_client::Error>,
    ) -> Result<T, registry_client::Error> {
        self.runtime.block_on(async {
            let registry = self
                .registry
                .get_or_try_init(|| self.connector.connect(self.reference.domain()))
                .await?;
            work(registry, self.reference.path()).await
        })
    }
}

impl CacheTransport for RegistryCache {
    fn fetch_manifest(&self) -> Result<Option<Vec<u8>>, String> {
        let target = registry_client::pull::manifest_reference(&self.reference);
        match self.run(async |registry, repository| {
            registry_client::pull::fetch_manifest(registry, repository, &target).await
        }) {
            Ok(fetched) => Ok(Some(fetched.bytes)),
            Err(registry_client::Error::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn fetch_blob(&self, descriptor: &Descriptor, path: &std::path::Path) -> Result<(), String> {
        self.run(async |registry, repository| {
            registry_client::pull::download_blob(
                registry,
                repository,
                descriptor,
                path,
                &NoProgress,
            )
            .await
        })
        .map_err(|e| e.to_string())
    }

    fn push_blob(&self, store: &Store, descriptor: &Descriptor) -> Result<(), String> {
        self.run(async |registry, repository| {
            registry_client::push_blob(
                registry,
                store,
                repository,
                descriptor,
                &registry_client::PushOptions::default(),
                &NoProgress,
            )
            .await
        })
        .map_err(|e| e.to_string())
    }

    fn push_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<(), String> {
        let target = registry_client::pull::manifest_reference(&self.reference);
        let digest = Digest::sha256_of(bytes);
        self.run(async |registry, repository| {
            registry_client::push::put_manifest(
                registry, repository, &target, media_type, bytes, &digest,
            )
            .await
        })
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_spellings_parse() {
        let to = parse_cache_to("type=registry,ref=localhost:5000/app:cache,mode=max,compression=zstd,oci-mediatypes=true")
            .unwrap();
        assert!(to.max);
        assert_eq!(to.options.compression, Compression::Zstd);
        assert!(
            matches!(to.place, Some(Place::Registry(ref r)) if r.to_string() == "localhost:5000/app:cache")
        );
        let to = parse_cache_to("type=local,dest=/tmp/c").unwrap();
        assert!(!to.max);
        assert!(matches!(to.place, Some(Place::Local { ref tag, .. }) if tag == "latest"));
        assert!(parse_cache_to("type=inline").unwrap().place.is_none());
        assert!(matches!(
            parse_cache_from("localhost:5000/app:1").unwrap(),
            Place::Registry(_)
        ));
        assert!(matches!(
            parse_cache_from("type=local,src=/tmp/c,tag=v1").unwrap(),
            Place::Local { ref tag, .. } if tag == "v1"
        ));
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        let error = |result: anyhow::Result<()>| format!("{:#}", result.unwrap_err());
        let to = |t: &str| parse_cache_to(t).map(|_| ());
        let from = |t: &str| parse_cache_from(t).map(|_| ());
        assert!(error(to("type=s3,ref=x")).contains("unsupported type \"s3\""));
        assert!(
            error(to("type=registry,ref=r/x:1,colour=red")).contains("unknown option \"colour\"")
        );
        assert!(error(to("type=registry,mode=max")).contains("needs ref="));
        assert!(error(to("type=local,ref=x")).contains("unknown option \"ref\""));
        assert!(error(to("type=local")).contains("needs dest=DIR"));
        assert!(error(to("type=registry,ref=r/x:1,mode=all")).contains("min or max"));
        assert!(error(to("type=inline,mode=max")).contains("mode=min only"));
        assert!(error(to("mode=max")).contains("missing type="));
        assert!(error(to(
            "type=registry,ref=r/x:1,oci-mediatypes=false,compression=zstd"
        ))
        .contains("OCI media types"));
        assert!(error(from("type=local,dest=/x")).contains("unknown option \"dest\""));
        assert!(error(from("type=inline")).contains("--cache-to"));
        assert!(error(from("type=gha")).contains("unsupported type"));
    }
}
