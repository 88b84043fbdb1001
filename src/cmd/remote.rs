//! What the registry verbs share: the `--insecure`/`--certs-dir` flags, lade's registry config file, the Docker
//! credentials file, and a tokio runtime to drive the async client.

use std::path::PathBuf;

use anyhow::Context as _;
use registry_client::{Connector, EndpointOptions};

/// Flags that say how to reach registries.
#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Reach this registry (host[:port]) over plain HTTP; repeatable. So are those listed as "insecure-registries"
    /// in $LADE_CONFIG (default ~/.config/lade/config.json), and loopback registries (names that resolve to
    /// 127.0.0.0/8 or ::1 included) that have no CA in --certs-dir.
    #[arg(long = "insecure", value_name = "REGISTRY")]
    insecure: Vec<String>,
    /// Docker's certs.d layout: DIR/<host:port>/ca.crt is trusted for that registry (and asks for TLS even on
    /// loopback).
    #[arg(
        long,
        env = "LADE_CERTS_DIR",
        value_name = "DIR",
        default_value = "/etc/docker/certs.d"
    )]
    certs_dir: PathBuf,
}

/// How blobs are uploaded (`lade push`, `lade copy`).
#[derive(clap::Args, Debug, Clone)]
pub struct UploadArgs {
    /// Blobs larger than this many bytes are uploaded in PATCH chunks of this size (resumable); smaller ones in one
    /// request.
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub chunk_size: u64,
    /// How layers stored uncompressed (loaded, imported) are sent: compressed with gzip (the default, as Docker
    /// does) or zstd — the pushed manifest digest then differs from the stored one — or as stored (none).
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: LayerCompression,
}

/// `--compression`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

impl From<LayerCompression> for layerstore::media_types::Compression {
    fn from(value: LayerCompression) -> Self {
        match value {
            LayerCompression::Gzip => Self::Gzip,
            LayerCompression::Zstd => Self::Zstd,
            LayerCompression::None => Self::None,
        }
    }
}

/// lade's own config file.
#[derive(serde::Deserialize, Default)]
pub struct LadeConfig {
    /// Registries reached over plain HTTP.
    #[serde(default, rename = "insecure-registries")]
    pub insecure_registries: Vec<String>,
}

impl LadeConfig {
    /// Reads `$LADE_CONFIG` (default `~/.config/lade/config.json`); a missing file is the empty config.
    pub fn load() -> anyhow::Result<(PathBuf, LadeConfig)> {
        let path = lade_config_path();
        let config = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LadeConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok((path, config))
    }
}

fn lade_config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LADE_CONFIG") {
        return PathBuf::from(path);
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"));
    config_home.join("lade/config.json")
}

impl RemoteArgs {
    /// The connector these flags, lade's config and Docker's credentials file describe.
    pub fn connector(&self) -> anyhow::Result<Connector> {
        let (_, config) = LadeConfig::load()?;
        let mut insecure = self.insecure.clone();
        insecure.extend(config.insecure_registries);
        Ok(Connector {
            endpoint: EndpointOptions {
                insecure,
                certs_dir: self.certs_dir.clone(),
            },
            docker_config: registry_client::credentials::DockerConfig::default_path(),
        })
    }
}

/// Runs a future on a small multi-threaded runtime.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Prints Docker's closing lines of a pull on stderr: the digest, and whether anything was downloaded.
pub fn report_pull(reference: &layerstore::Reference, pulled: &registry_client::Pulled) {
    eprintln!("Digest: {}", pulled.resolved);
    let status = if pulled.downloaded == 0 {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    eprintln!("Status: {status} {}", reference.familiar());
}

/// Pulls `reference` (for `platform`) into `store` and tags it with its own name, as `lade pull` does.
pub fn pull_image(
    connector: &Connector,
    store: &layerstore::Store,
    reference: &layerstore::Reference,
    options: &registry_client::PullOptions,
    progress: &dyn layerstore::progress::Progress,
) -> anyhow::Result<registry_client::Pulled> {
    Ok(block_on(async {
        let registry = connector.connect(reference.domain()).await?;
        registry_client::pull(
            &registry,
            store,
            reference,
            std::slice::from_ref(reference),
            options,
            progress,
        )
        .await
    })??)
}
