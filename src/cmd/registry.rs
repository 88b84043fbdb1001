//! `lade registry serve` runs an OCI distribution registry; `lade registry gc` collects a registry root's garbage.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use registry_server::config::{AuthConfig, ProxyConfig, TlsConfig};
use registry_server::gc::{self, GcOptions};
use registry_server::registry::Registry;
use registry_server::storage::fs::FsDriver;
use registry_server::Config;

/// Arguments of `lade registry`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Serve the OCI distribution API (a drop-in for registry:2 and its storage layout)
    Serve(ServeArgs),
    /// Delete blobs no manifest references (mark and sweep); run it while no server writes to the root (serve it
    /// with `read_only: true` meanwhile), or rely on the server's online collection (`gc.enabled` in the config)
    Gc(GcArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: 0.0.0.0:5000]
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Storage root [default: /var/lib/lade/registry as root, else $XDG_DATA_HOME/lade/registry]
    #[arg(long)]
    root: Option<PathBuf>,
    /// YAML configuration file; flags override its values
    #[arg(long)]
    config: Option<PathBuf>,
    /// PEM certificate chain for HTTPS
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require basic authentication against this htpasswd file (bcrypt entries)
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Allow DELETE of blobs, manifests and tags (the default; overrides `delete: false` in the config file)
    #[arg(long, conflicts_with = "disable_delete")]
    enable_delete: bool,
    /// Refuse DELETE of blobs, manifests and tags (405 UNSUPPORTED), as registry:2 does by default
    #[arg(long)]
    disable_delete: bool,
    /// Let a mount request without `from` link any blob this registry holds (the spec's automatic content discovery)
    #[arg(long)]
    automatic_crossmount: bool,
    /// Accept manifests whose layers or child manifests are not in the repository (sparse images)
    #[arg(long)]
    allow_sparse_manifests: bool,
    /// Serve as a pull-through mirror of this registry (registry:2's `proxy.remoteurl`; credentials and ttl come
    /// from the config's `proxy` section)
    #[arg(long, value_name = "URL")]
    proxy_remote_url: Option<String>,
}

#[derive(Debug, Args)]
struct GcArgs {
    /// Storage root [default: as for serve]
    #[arg(long)]
    root: Option<PathBuf>,
    /// YAML configuration file (its root and gc settings are used)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Report what would be deleted without deleting
    #[arg(long)]
    dry_run: bool,
    /// Also delete manifests that no tag reaches (keeping referrers of kept manifests)
    #[arg(long)]
    delete_untagged: bool,
    /// Keep blobs modified within this many seconds
    #[arg(long, default_value_t = 0)]
    grace_period: u64,
}

/// Runs `lade registry`.
pub fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match args.command {
        RegistryCommand::Serve(args) => serve(args),
        RegistryCommand::Gc(args) => collect(args),
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    if let Some(root) = args.root {
        config.root = root;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig { cert, key });
    }
    if let Some(htpasswd) = args.htpasswd {
        let previous = config.auth.take();
        config.auth = Some(AuthConfig {
            htpasswd,
            realm: previous
                .as_ref()
                .map_or_else(|| "lade registry".to_string(), |a| a.realm.clone()),
            anonymous_read: previous.is_some_and(|a| a.anonymous_read),
        });
    }
    config.delete = (config.delete || args.enable_delete) && !args.disable_delete;
    config.automatic_crossmount |= args.automatic_crossmount;
    config.allow_sparse_manifests |= args.allow_sparse_manifests;
    if let Some(url) = args.proxy_remote_url {
        match &mut config.proxy {
            Some(proxy) => proxy.remoteurl = url,
            None => config.proxy = Some(ProxyConfig::new(url)),
        }
    }
    let listener =
        TcpListener::bind(config.addr).with_context(|| format!("binding {}", config.addr))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "lade registry listening on {scheme}://{} (root {})",
        listener.local_addr()?,
        config.root.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(registry_server::serve(
        config,
        listener,
        registry_server::shutdown_signal(),
    ))?;
    Ok(())
}

fn collect(args: GcArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref())?;
    let root = args.root.unwrap_or(config.root);
    anyhow::ensure!(
        root.is_dir(),
        "registry root {} does not exist",
        root.display()
    );
    let options = GcOptions {
        dry_run: args.dry_run,
        delete_untagged: args.delete_untagged || config.gc.delete_untagged,
        grace_period: Duration::from_secs(args.grace_period),
        upload_max_age: Duration::from_secs(config.gc.upload_max_age_secs),
    };
    let registry = Registry::new(std::sync::Arc::new(FsDriver::new(&root)));
    let report = gc::collect(&registry, &options, &RwLock::new(()))?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for (repo, digest) in &report.manifests_removed {
        println!("{verb} manifest {repo}@{digest}");
    }
    for digest in &report.blobs_removed {
        println!("{verb} blob {digest}");
    }
    println!(
        "{verb} {} manifests, {} blobs ({} bytes), {} stale uploads; kept {} blobs",
        report.manifests_removed.len(),
        report.blobs_removed.len(),
        report.bytes_freed,
        report.uploads_removed,
        report.blobs_kept
    );
    Ok(())
}
