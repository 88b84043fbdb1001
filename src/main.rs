//! The `lade` command line: a thin layer over the library crates, with Docker's verbs and flags.

mod cmd;
mod format;
mod malloc;
mod output;
mod root;
mod rootless;

use clap::{CommandFactory, Parser, Subcommand};

use output::ProgressMode;

/// lade: build, store, ship and move container images — daemonless.
#[derive(Parser)]
#[command(name = "lade", version, about, propagate_version = true)]
struct Cli {
    /// Store root (default: $LADE_ROOT, else /var/lib/lade as root, else $XDG_DATA_HOME/lade).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// Progress output: auto (bars on a terminal), tty, or plain lines.
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context directory.
    Build(cmd::build::Args),
    /// Manage the build cache.
    Builder(cmd::builder::Args),
    /// List images.
    Images(cmd::images::Args),
    /// Manage images: ls, rm, prune, inspect, history.
    Image(cmd::image::Args),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(cmd::tag::Args),
    /// Run a command in a new container from an image.
    Run(cmd::run::Args),
    /// Remove one or more images.
    Rmi(cmd::rmi::Args),
    /// Display detailed information on one or more images.
    Inspect(cmd::inspect::Args),
    /// Show the history of an image.
    History(cmd::history::Args),
    /// Save one or more images to a tar archive (streamed to stdout by default).
    Save(cmd::save::Args),
    /// Load images from a tar archive or stdin.
    Load(cmd::load::Args),
    /// Import the contents from a tarball to create a filesystem image.
    Import(cmd::import::Args),
    /// Export an image's flattened filesystem as a tar archive.
    Export(cmd::export::Args),
    /// Remove blobs that no image uses.
    Prune(cmd::prune::Args),
    /// Run or maintain an OCI distribution registry.
    Registry(cmd::registry::RegistryArgs),
    /// Inspect Dockerfiles: parse, type-check and plan them.
    Dockerfile(cmd::dockerfile::DockerfileArgs),
    /// Upload an image to a registry.
    Push(cmd::push::Args),
    /// Download an image from a registry.
    Pull(cmd::pull::Args),
    /// Log in to a registry (credentials go to Docker's config.json).
    Login(cmd::login::Args),
    /// Log out from a registry.
    Logout(cmd::logout::Args),
    /// Copy an image between registries, OCI layouts, archives and the local store.
    Copy(cmd::copy::Args),
    /// Show the lade version with build information, the store root and the OCI runtime.
    Version(cmd::version::Args),
    /// Maintain the local store: check (and repair) its integrity, show its disk usage.
    System(cmd::system::Args),
    /// Display system-wide information: store, runtime, registry settings, host.
    Info(cmd::info::Args),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(cmd::completion::Args),
    /// Write man pages for every command into a directory.
    Man(cmd::man::Args),
}

/// Makes a closed stdout (`lade images | head`) end the process quietly, as it does for C programs, instead of
/// a panic report. SIGPIPE itself stays ignored (as Rust sets it up), so a registry closing a connection is an error
/// the client handles, not a signal that kills lade.
fn exit_quietly_on_broken_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}

fn main() {
    exit_quietly_on_broken_stdout();
    let cli = Cli::parse();
    // The registry sets up its own logging, from its configuration.
    if !matches!(cli.command, Command::Registry(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("LADE_LOG"))
            .with_writer(std::io::stderr)
            .init();
    }
    if matches!(
        cli.command,
        Command::Build(_) | Command::Run(_) | Command::Builder(_)
    ) {
        if let Err(error) = rootless::enter(&root::store_root(cli.root.clone())) {
            eprintln!("Error: {}", error_chain(&error));
            std::process::exit(1);
        }
    }
    let context = cmd::Context {
        root: cli.root,
        progress: cli.progress,
    };
    let result = match cli.command {
        Command::Build(args) => cmd::build::run(&context, args),
        Command::Builder(args) => cmd::builder::run(&context, args),
        Command::Images(args) => cmd::images::run(&context, args),
        Command::Image(args) => cmd::image::run(&context, args),
        Command::Tag(args) => cmd::tag::run(&context, args),
        Command::Run(args) => cmd::run::run(&context, args),
        Command::Rmi(args) => cmd::rmi::run(&context, args),
        Command::Inspect(args) => cmd::inspect::run(&context, args),
        Command::History(args) => cmd::history::run(&context, args),
        Command::Save(args) => cmd::save::run(&context, args),
        Command::Load(args) => cmd::load::run(&context, args),
        Command::Import(args) => cmd::import::run(&context, args),
        Command::Export(args) => cmd::export::run(&context, args),
        Command::Prune(args) => cmd::prune::run(&context, args),
        Command::System(args) => cmd::system::run(&context, args),
        Command::Info(args) => cmd::info::run(&context, args),
        Command::Dockerfile(args) => cmd::dockerfile::run(args),
        Command::Registry(args) => cmd::registry::run(&context, args),
        Command::Push(args) => cmd::push::run(&context, args),
        Command::Pull(args) => cmd::pull::run(&context, args),
        Command::Login(args) => cmd::login::run(&context, args),
        Command::Logout(args) => cmd::logout::run(&context, args),
        Command::Copy(args) => cmd::copy::run(&context, args),
        Command::Version(args) => cmd::version::run(&context, args),
        Command::Completion(args) => cmd::completion::run(args, Cli::command()),
        Command::Man(args) => cmd::man::run(args, Cli::command()),
    };
    if let Err(error) = result {
        // Dockerfile diagnostics are printed (with their source excerpt) where they arise.
        if error.downcast_ref::<cmd::dockerfile::Reported>().is_none() {
            eprintln!("Error: {}", error_chain(&error));
        }
        std::process::exit(1);
    }
}

/// The error and its causes, skipping a cause whose text the message already includes (library errors often embed
/// their source in their own message).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
