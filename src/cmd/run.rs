//! `lade run [OPTIONS] IMAGE [COMMAND…]`: one container from an image, with the build's OCI runtime executor.
//! ENTRYPOINT and CMD combine as in Docker; the command's exit code becomes lade's.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use builder::runtime::{
    BindMount, ExtraHost, MountSpec, Network, RunSpec, Runtime, Security, Stream,
};
use builder::snapshot::{LayerRef, Snapshotter};

#[derive(clap::Args)]
pub struct Args {
    /// Remove the container when it exits (always the case: containers are not kept).
    #[arg(long)]
    rm: bool,
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
    /// Allocate a terminal: not supported (lade run streams output; use -i for stdin).
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
    image: String,
    /// The command (replaces the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let _ = args.rm;
    if args.tty {
        bail!("-t: lade run cannot allocate a terminal; -i passes stdin through without one");
    }
    let store = context.store()?;
    let found = store.find_image(&args.image)?;
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
    let runtime = Runtime::detect(&store, args.runtime.as_deref())?;
    let snapshotter = Snapshotter::new(&store)?;
    let snapshot = snapshotter.prepare(&LayerRef::of_image(&found.image))?;
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
        mounts: args
            .volumes
            .iter()
            .map(|v| volume(v))
            .collect::<anyhow::Result<_>>()?,
        interactive: args.interactive,
        security,
    };
    // The container's stdout and stderr stay apart, as with `docker run`.
    let outcome = runtime
        .run(&spec, &mut |stream, data| {
            let mut out: Box<dyn Write> = match stream {
                Stream::Stdout => Box::new(std::io::stdout().lock()),
                Stream::Stderr => Box::new(std::io::stderr().lock()),
            };
            let _ = out.write_all(data);
            let _ = out.flush();
        })
        .context("running the container")?;
    drop(snapshot);
    if outcome.exit_code != 0 {
        std::process::exit(outcome.exit_code);
    }
    Ok(())
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
