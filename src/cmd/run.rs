//! `lade run [OPTIONS] IMAGE [COMMAND…]`: one container from an image, with the build's OCI runtime executor.
//! ENTRYPOINT and CMD combine as in Docker; the command's exit code becomes lade's (125 when lade itself fails,
//! 126 and 127 when the command cannot be executed or found, as Docker has them).
//!
//! While it runs, the container holds a lease on its image and unpacked layers ([`layerstore::lease`]), so that no
//! prune removes them under it; `--name` is unique among the running containers of the store.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use builder::runtime::{
    BindMount, ExtraHost, MountSpec, Network, RunSpec, Runtime, Security, Stream, Streams,
};
use builder::snapshot::{unpack::chain_ids, LayerRef, Snapshotter};
use layerstore::lease::LeaseRecord;
use layerstore::{FoundImage, Platform, Reference, Store};

/// Exit code when lade fails before the command runs (Docker's for a daemon error).
const EXIT_LADE_FAILED: i32 = 125;
/// Exit code when the command exists but cannot be executed.
const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command is not found.
const EXIT_NOT_FOUND: i32 = 127;

/// When `lade run` pulls the image (Docker's `--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PullPolicy {
    /// Pull only when the image is not in the store.
    Missing,
    /// Pull every time.
    Always,
    /// Never pull: fail when the image is not in the store.
    Never,
}

#[derive(clap::Args)]
pub struct Args {
    /// Remove the container when it exits. Without a daemon there is nothing to keep a stopped container for, so
    /// lade always does (`--rm` is accepted as in Docker; `--name` is free again once the container exits).
    #[arg(long)]
    rm: bool,
    /// Name the container (unique among this store's running containers).
    #[arg(long)]
    name: Option<String>,
    /// Pull the image before running: missing (default), always or never.
    #[arg(long, value_enum, default_value = "missing")]
    pull: PullPolicy,
    /// The platform to pull when the image is pulled.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short, long)]
    user: Option<String>,
    /// Network: host (default) or none.
    #[arg(long, default_value = "host")]
    network: String,
    /// Add an entry to the container's /etc/hosts: HOST:IP; repeatable.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_hosts: Vec<ExtraHost>,
    /// Mount a host path: /HOST/PATH:/CONTAINER/PATH[:ro|rw] (created on the host when missing, as Docker does).
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volumes: Vec<String>,
    /// Keep stdin open: the command reads lade's stdin.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-terminal for the command (`-it` for an interactive shell); stdin must be a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Overwrite the image's ENTRYPOINT.
    #[arg(long)]
    entrypoint: Option<String>,
    /// The OCI runtime binary (default: the first of runc, crun that works).
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// Security options: seccomp=unconfined|PROFILE.json (default: Docker's profile), no-new-privileges; repeatable.
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opts: Vec<String>,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
    image: String,
    /// The command (replaces the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    // As `docker run`: lade's own failures exit 125, so that they are told apart from the command's exit codes.
    match run_container(context, &args) {
        Ok(0) => Ok(()),
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("lade: {}", crate::error_chain(&error));
            std::process::exit(EXIT_LADE_FAILED);
        }
    }
}

/// Runs the container; its exit code.
fn run_container(context: &super::Context, args: &Args) -> anyhow::Result<i32> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    if args.tty && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    let store = context.store()?;
    let found = find_or_pull(context, &store, args)?;
    let config = found.image.config.config.clone().unwrap_or_default();
    let entrypoint = match &args.entrypoint {
        Some(entrypoint) if entrypoint.is_empty() => Vec::new(),
        Some(entrypoint) => vec![entrypoint.clone()],
        None => config.entrypoint.clone().unwrap_or_default(),
    };
    let command = if !args.command.is_empty() {
        args.command.clone()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd.clone().unwrap_or_default()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(command).collect();
    if argv.is_empty() {
        bail!("no command specified: the image has neither ENTRYPOINT nor CMD");
    }
    let mut env = config.env.clone().unwrap_or_default();
    for entry in &args.env {
        let entry = match entry.split_once('=') {
            Some(_) => entry.clone(),
            None => match std::env::var(entry) {
                Ok(value) => format!("{entry}={value}"),
                Err(_) => continue,
            },
        };
        let key = entry
            .split_once('=')
            .map_or(entry.as_str(), |(k, _)| k)
            .to_string();
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(entry);
    }
    let network = match args.network.as_str() {
        "host" | "default" => Network::Host,
        "none" => Network::None,
        other => bail!("unsupported --network {other:?}: use host or none"),
    };
    let cwd = args
        .workdir
        .clone()
        .or(config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let security = Security::from_options(&args.security_opts)?;
    let mounts = args
        .volumes
        .iter()
        .map(|v| volume(v))
        .collect::<anyhow::Result<_>>()?;
    let runtime = Runtime::detect(&store, args.runtime.as_deref())?;
    let snapshotter = Snapshotter::new(&store)?;
    let layers = LayerRef::of_image(&found.image);
    // The lease is taken under the writer lock, before the layers are unpacked: a prune either runs before (and
    // the layers are unpacked afresh) or sees the lease.
    let writer = store.writer_lock()?;
    let lease = take_lease(&store, &found, &layers, args)?;
    let snapshot = snapshotter.prepare(&layers)?;
    drop(writer);
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    if let Err((code, message)) = check_executable(snapshot.rootfs(), &argv[0], path, &cwd) {
        eprintln!("lade: starting container process: {message}");
        return Ok(code);
    }
    let spec = RunSpec {
        rootfs: snapshot.rootfs().to_path_buf(),
        args: argv,
        env,
        cwd: PathBuf::from(cwd),
        user: args
            .user
            .clone()
            .or(config.user.clone())
            .filter(|u| !u.is_empty()),
        network,
        extra_hosts: args.add_hosts.clone(),
        mounts,
        interactive: args.interactive,
        security,
        terminal: args.tty,
        streams: Streams::Apart,
    };
    // The container's stdout and stderr stay apart, as with `docker run`.
    let outcome = runtime
        .run(&spec, &mut |stream, data| {
            let mut out: Box<dyn Write> = match stream {
                Stream::Stderr => Box::new(std::io::stderr().lock()),
                // Apart, nothing comes combined.
                Stream::Stdout | Stream::Combined => Box::new(std::io::stdout().lock()),
            };
            let _ = out.write_all(data);
            let _ = out.flush();
        })
        .context("running the container")?;
    drop(snapshot);
    drop(lease);
    Ok(outcome.exit_code)
}

/// `PATH` when the image sets none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image from the store, pulled first as `--pull` says (with `docker run`'s messages).
fn find_or_pull(
    context: &super::Context,
    store: &Store,
    args: &Args,
) -> anyhow::Result<FoundImage> {
    let platform = match &args.platform {
        Some(text) => registry_client::pull::parse_platform(text)?,
        None => Platform::host(),
    };
    // A multi-platform image in the store runs as its image for the platform.
    let local = store.find_image_on(&args.image, &platform);
    let pull = match (args.pull, &local) {
        (PullPolicy::Always, _) => true,
        (PullPolicy::Missing, Err(_)) => true,
        (PullPolicy::Never, Err(error)) => bail!("{error}"),
        (_, Ok(_)) => false,
    };
    if !pull {
        return Ok(local?);
    }
    let reference = match Reference::parse_tagged(&args.image) {
        Ok(reference) => reference,
        // Not a name (an image ID that is not there): say what the store said.
        Err(_) => return Ok(local?),
    };
    if local.is_err() {
        eprintln!("Unable to find image '{}' locally", reference.familiar());
    }
    let connector = args.remote.connector()?;
    let options = registry_client::PullOptions {
        platform: platform.clone(),
        jobs: 3,
    };
    eprintln!("Pulling from {}", reference.path());
    let pulled =
        super::remote::pull_image(&connector, store, &reference, &options, &context.progress())?;
    super::remote::report_pull(&reference, &pulled);
    Ok(store.find_image_on(&reference.to_string(), &platform)?)
}

/// Docker's rule for container names.
fn check_name(name: &str) -> anyhow::Result<()> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        bail!("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

/// Leases the image's blobs and unpacked layers for the container's lifetime, refusing a `--name` in use.
fn take_lease(
    store: &Store,
    found: &FoundImage,
    layers: &[LayerRef],
    args: &Args,
) -> anyhow::Result<layerstore::lease::Lease> {
    let name = args
        .name
        .as_ref()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string());
    if let Some(name) = &name {
        if let Some(other) = store
            .live_leases()?
            .into_iter()
            .find(|l| l.name.as_ref() == Some(name))
        {
            bail!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to \
                 remove (or rename) that container to be able to reuse that name.",
                other.id
            );
        }
    }
    let image = &found.image;
    let diff_ids: Vec<_> = layers.iter().map(|l| &l.diff_id).collect();
    let mut blobs = vec![
        image.descriptor.digest.clone(),
        image.manifest.config.digest.clone(),
    ];
    blobs.extend(layers.iter().map(|l| l.descriptor.digest.clone()));
    Ok(store.take_lease(LeaseRecord {
        id: String::new(),
        holder: format!("lade run {}, pid {}", args.image, std::process::id()),
        name,
        image: Some(image.id().clone()),
        blobs,
        snapshots: chain_ids(&diff_ids),
    })?)
}

/// Whether `command` can be executed in `rootfs` (looked up on `path` when it has no slash), as the runtime would
/// find it: `Err` holds the exit code and Docker's message when it cannot.
fn check_executable(
    rootfs: &Path,
    command: &str,
    path: &str,
    cwd: &str,
) -> Result<(), (i32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let candidates: Vec<PathBuf> = if command.contains('/') {
        vec![Path::new(cwd).join(command)]
    } else {
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(command))
            .collect()
    };
    for candidate in &candidates {
        let Some(host) = resolve_file(rootfs, candidate) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&host) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(());
        }
        if command.contains('/') || meta.is_file() {
            return Err((
                EXIT_NOT_EXECUTABLE,
                format!("exec: {command:?}: permission denied"),
            ));
        }
    }
    if command.contains('/') {
        return Err((
            EXIT_NOT_FOUND,
            format!("exec: {command:?}: stat {command}: no such file or directory"),
        ));
    }
    Err((
        EXIT_NOT_FOUND,
        format!("exec: {command:?}: executable file not found in $PATH"),
    ))
}

/// Where the container path `path` is on the host, following symlinks (the last one too) without leaving `rootfs`.
fn resolve_file(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    let mut relative = path.strip_prefix("/").unwrap_or(path).to_path_buf();
    for _ in 0..40 {
        let host = layerstore::layer::apply::resolve_in_root(rootfs, &relative, false).ok()?;
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(host);
        }
        let target = std::fs::read_link(&host).ok()?;
        let parent = host.strip_prefix(rootfs).ok()?.parent()?.to_path_buf();
        relative = match target.strip_prefix("/") {
            Ok(absolute) => absolute.to_path_buf(),
            Err(_) => parent.join(target),
        };
    }
    None
}

/// `-v /host:/container[:ro|rw]`. Named volumes (a name instead of a host path) have no place without a daemon.
fn volume(value: &str) -> anyhow::Result<MountSpec> {
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, readwrite) = match parts.as_slice() {
        [host, container] => (*host, *container, true),
        [host, container, "ro"] => (*host, *container, false),
        [host, container, "rw"] => (*host, *container, true),
        _ => bail!("-v {value:?}: expected /HOST/PATH:/CONTAINER/PATH[:ro|rw]"),
    };
    if !host.starts_with('/') {
        bail!("-v {value:?}: named volumes need a daemon; give an absolute host path");
    }
    if !container.starts_with('/') {
        bail!("-v {value:?}: the container path must be absolute");
    }
    if !std::path::Path::new(host).exists() {
        std::fs::create_dir_all(host).with_context(|| format!("-v {value:?}: creating {host}"))?;
    }
    Ok(MountSpec::Volume(BindMount {
        target: PathBuf::from(container),
        source: PathBuf::from(host),
        readwrite,
    }))
}
