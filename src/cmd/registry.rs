//! `lade registry serve` runs an OCI distribution registry; `lade registry gc` collects a registry root's garbage;
//! `lade registry check` verifies (and repairs) a root. The registry logs as its configuration says (`log.level`,
//! `log.formatter: text|json`), and takes registry:2's environment variables for the settings its flags carry
//! (`REGISTRY_HTTP_ADDR`, …), as the `registry:2` image does.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use registry_server::config::{
    AuthConfig, LogConfig, LogFormatter, LogLevel, ProxyConfig, Storage, TlsConfig,
};
use registry_server::gc::{self, GcOptions};
use registry_server::registry::Registry;
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
    /// Verify a registry root: re-hash every blob, parse every manifest revision and follow it to its content,
    /// resolve every tag and layer link. Exits 1 when something is wrong and was not repaired. Run it while no
    /// server writes to the root
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (`:5000` means every address) [default: 0.0.0.0:5000]
    #[arg(long, env = "REGISTRY_HTTP_ADDR", value_parser = parse_addr)]
    addr: Option<SocketAddr>,
    /// Storage root [default: `registry` in the store root: $LADE_ROOT/registry, /var/lib/lade/registry as root,
    /// else $XDG_DATA_HOME/lade/registry]
    #[arg(long, env = "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")]
    root: Option<PathBuf>,
    /// YAML configuration file; flags override its values
    #[arg(long)]
    config: Option<PathBuf>,
    /// PEM certificate chain for HTTPS
    #[arg(long, requires = "tls_key", env = "REGISTRY_HTTP_TLS_CERTIFICATE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, requires = "tls_cert", env = "REGISTRY_HTTP_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Require basic authentication against this htpasswd file (bcrypt entries)
    #[arg(long, env = "REGISTRY_AUTH_HTPASSWD_PATH")]
    htpasswd: Option<PathBuf>,
    /// Do not serve the web page at / and /ui
    #[arg(long)]
    no_ui: bool,
    /// Log format: text lines or one JSON object a line [default: text, or `log.formatter` of the config]
    #[arg(long, env = "REGISTRY_LOG_FORMATTER", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Least severe level logged: error, warn, info, debug, trace [default: info, or `log.level`]
    #[arg(long, env = "REGISTRY_LOG_LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: Option<String>,
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
    /// Serve /metrics on this address, unauthenticated, instead of on the main one behind its auth (registry:2's
    /// `http.debug.addr`)
    #[arg(long, value_name = "ADDR")]
    debug_addr: Option<std::net::SocketAddr>,
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

#[derive(Debug, Args)]
struct CheckArgs {
    /// Storage root [default: as for serve]
    #[arg(long)]
    root: Option<PathBuf>,
    /// YAML configuration file (its root is used)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Remove corrupt blobs, stale layer links, broken manifest revisions and the tags that point at them
    #[arg(long)]
    repair: bool,
}

/// registry:2's listen address forms: `HOST:PORT`, or `:PORT` for every address.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    full.parse()
        .map_err(|_| format!("{text:?} is not an address (HOST:PORT or :PORT)"))
}

/// Sets up logging as `log` says; `RUST_LOG` (a tracing filter) overrides the level.
fn init_logging(log: &LogConfig) {
    let mut directives = log.level.as_str().to_string();
    if log.accesslog.disabled {
        directives.push_str(",lade::registry::access=off");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match log.formatter {
        LogFormatter::Text => builder.try_init(),
        LogFormatter::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Runs `lade registry`.
pub fn run(context: &super::Context, args: RegistryArgs) -> anyhow::Result<()> {
    match args.command {
        RegistryCommand::Serve(args) => serve(context, args),
        RegistryCommand::Gc(args) => collect(context, args),
        RegistryCommand::Check(args) => check(context, args),
    }
}

/// The configuration file's, or the defaults; a filesystem root left at its default lives in the store root, as
/// `registry/` (so `$LADE_ROOT` moves it with the store). `--root` (before `registry` or after the verb) names the
/// registry root itself.
fn load_config(context: &super::Context, path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let mut config = match path {
        None => Config::default(),
        Some(path) => {
            let (config, warnings) = Config::load_with_warnings(path)?;
            for warning in warnings {
                eprintln!("warning: {}: {warning}", path.display());
            }
            config
        }
    };
    if config.root == registry_server::config::default_root() {
        config.root = crate::root::store_root(context.root.clone()).join("registry");
    }
    Ok(config)
}

fn serve(context: &super::Context, args: ServeArgs) -> anyhow::Result<()> {
    crate::malloc::bound_server_memory();
    let mut config = load_config(context, args.config.as_ref())?;
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
    if args.debug_addr.is_some() {
        config.debug.addr = args.debug_addr;
    }
    if let Some(url) = args.proxy_remote_url {
        match &mut config.proxy {
            Some(proxy) => proxy.remoteurl = url,
            None => config.proxy = Some(ProxyConfig::new(url)),
        }
    }
    config.ui &= !args.no_ui;
    match args.log_format.as_deref() {
        Some("json") => config.log.formatter = LogFormatter::Json,
        Some(_) => config.log.formatter = LogFormatter::Text,
        None => {}
    }
    if let Some(level) = args.log_level.as_deref() {
        config.log.level = match level {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => LogLevel::Info,
        };
    }
    init_logging(&config.log);
    let listener =
        TcpListener::bind(config.addr).with_context(|| format!("binding {}", config.addr))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let storage = match &config.storage {
        Storage::Filesystem => format!("root {}", config.root.display()),
        Storage::InMemory => "in memory".to_string(),
        Storage::S3(s3) => format!(
            "bucket {}{}{}",
            s3.bucket,
            if s3.root_directory.is_empty() {
                ""
            } else {
                " under "
            },
            s3.root_directory
        ),
    };
    println!(
        "lade registry listening on {scheme}://{} ({storage})",
        listener.local_addr()?,
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

/// The registry the config names (any storage), or the filesystem root `--root` names; a filesystem root must exist.
fn open_registry(root: Option<PathBuf>, config: &mut Config) -> anyhow::Result<Registry> {
    if let Some(root) = root {
        config.root = root;
        config.storage = Storage::Filesystem;
    }
    if matches!(config.storage, Storage::Filesystem) {
        anyhow::ensure!(
            config.root.is_dir(),
            "registry root {} does not exist",
            config.root.display()
        );
    }
    Ok(Registry::new(registry_server::server::open_storage(
        config,
    )?))
}

fn check(context: &super::Context, args: CheckArgs) -> anyhow::Result<()> {
    let mut config = load_config(context, args.config.as_ref())?;
    init_logging(&config.log);
    let registry = open_registry(args.root, &mut config)?;
    let report = registry_server::check::check(&registry, args.repair)?;
    let verb = if report.repaired { "removed" } else { "found" };
    for digest in &report.corrupt_blobs {
        println!("{verb} corrupt blob {digest} (its content has another digest)");
    }
    for (what, problems) in [
        ("stale layer link", &report.stale_links),
        ("broken manifest", &report.broken_manifests),
        ("broken tag", &report.broken_tags),
    ] {
        for p in problems {
            println!("{verb} {what} {}:{}: {}", p.repository, p.subject, p.reason);
        }
    }
    println!(
        "checked {} blobs ({} bytes): {} corrupt, {} stale links, {} broken manifests, {} broken tags; {} uploads in progress{}",
        report.blobs_checked,
        report.bytes_checked,
        report.corrupt_blobs.len(),
        report.stale_links.len(),
        report.broken_manifests.len(),
        report.broken_tags.len(),
        report.uploads,
        if report.repaired { " (repaired)" } else { "" }
    );
    if report.has_problems() && !report.repaired {
        std::process::exit(1);
    }
    Ok(())
}

fn collect(context: &super::Context, args: GcArgs) -> anyhow::Result<()> {
    let mut config = load_config(context, args.config.as_ref())?;
    init_logging(&config.log);
    let registry = open_registry(args.root, &mut config)?;
    let options = GcOptions {
        dry_run: args.dry_run,
        delete_untagged: args.delete_untagged || config.gc.delete_untagged,
        grace_period: Duration::from_secs(args.grace_period),
        upload_max_age: Duration::from_secs(config.gc.upload_max_age_secs),
    };
    // On shared storage replicas may be serving: collect under the sweep lease, as their online collection does.
    let report = if matches!(config.storage, Storage::S3(_)) {
        let settle = Duration::from_secs(config.gc.settle_secs);
        gc::collect_leased(&registry, &options, &RwLock::new(()), settle)?
            .context("another collector holds the sweep lease (lade/gc-lease); try again later")?
    } else {
        gc::collect(&registry, &options, &RwLock::new(()))?
    };
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
