//! `lade build [OPTIONS] CONTEXT`: a Dockerfile and its context become an image in the store, daemonless.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use builder::engine::{BuildError, BuildRequest};
use builder::export::Exporter;
use builder::runtime::{Entitlements, ExtraHost, Network, Security};
use layerstore::Platform;
use layerstore::{Image, Reference};

#[derive(clap::Args)]
pub struct Args {
    /// Name and optionally a tag (name:tag); repeatable.
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from stdin.
    #[arg(short, long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// A build argument; without a value it is taken from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    no_cache: bool,
    /// The network of RUN steps: default (the host's), host or none.
    #[arg(long, default_value = "default")]
    network: String,
    /// Add an entry to RUN's /etc/hosts: HOST:IP; repeatable.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_hosts: Vec<ExtraHost>,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Set metadata on the image.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Output instead of tagging in the store: type=oci|docker|tar,dest=FILE (`-` for stdout) or type=local,dest=DIR;
    /// `-o DIR` is type=local, `-o -` is type=tar to stdout.
    #[arg(short, long, value_name = "type=…,dest=…")]
    output: Option<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (default: the variable named ID).
    #[arg(long = "secret", value_name = "id=ID[,src=FILE|,env=VAR]")]
    secrets: Vec<String>,
    /// Always pull base images, even when the store has them.
    #[arg(long)]
    pull: bool,
    /// The platform to build for; lade runs RUN natively, so only this host's platform.
    #[arg(long, value_name = "os/arch[/variant]")]
    platform: Option<String>,
    /// An SSH agent for RUN --mount=type=ssh: default|ID[=SOCKET] (without a socket, $SSH_AUTH_SOCK).
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    ssh: Vec<String>,
    /// The OCI runtime binary for RUN (default: the first of runc, crun that works).
    #[arg(long, value_name = "PATH")]
    runtime: Option<PathBuf>,
    /// Security options of RUN steps: seccomp=unconfined|PROFILE.json (default: Docker's profile),
    /// no-new-privileges; repeatable.
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opts: Vec<String>,
    /// Allow an entitlement: network.host (RUN --network=host), security.insecure (RUN --security=insecure);
    /// repeatable or comma-separated.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// Say for each step whether it was hit locally, hit from which --cache-from, or why it missed (always shown
    /// with --progress=plain).
    #[arg(long)]
    explain_cache: bool,
    /// Import build cache: type=registry,ref=REF (or a bare REF; an image with an inline cache too) or
    /// type=local,src=DIR[,tag=T]; repeatable, tried in order after the local cache.
    #[arg(long = "cache-from", value_name = "type=…")]
    cache_from: Vec<String>,
    /// Export build cache: type=registry,ref=REF | type=local,dest=DIR[,tag=T] | type=inline, with
    /// [,mode=min|max][,compression=gzip|zstd|uncompressed][,oci-mediatypes=true|false][,ignore-error=true];
    /// repeatable.
    #[arg(long = "cache-to", value_name = "type=…")]
    cache_to: Vec<String>,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
    /// The build context directory, or `-`: a context archive (tar, gzip, zstd) or a lone Dockerfile on stdin.
    context: PathBuf,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    if let Some(platform) = &args.platform {
        check_platform(platform)?;
    }
    let store = context.store()?;
    let secrets = Secrets::parse(&args.secrets, &store)?;
    let from_stdin = if args.context.as_os_str() == "-" {
        if args.file.as_ref().is_some_and(|f| f.as_os_str() == "-") {
            bail!("the context and the Dockerfile cannot both come from stdin");
        }
        Some(stdin_context(&store)?)
    } else {
        None
    };
    let context_dir = from_stdin
        .as_ref()
        .map_or_else(|| args.context.clone(), |dir| dir.path().to_path_buf());
    let (dockerfile_path, dockerfile) = read_dockerfile(&args, &context_dir)?;
    let build_args = parse_build_args(&args.build_args)?;
    let source_date_epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a number of seconds"))
        })
        .transpose()?;
    let tags = args
        .tags
        .iter()
        .map(|t| Reference::parse_tagged(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let output = args.output.as_deref().map(Exporter::parse).transpose()?;
    let cache_from = args
        .cache_from
        .iter()
        .map(|text| super::build_cache::parse_cache_from(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache_to = args
        .cache_to
        .iter()
        .map(|text| super::build_cache::parse_cache_to(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let security = Security::from_options(&args.security_opts)?;
    let entitlements = Entitlements::from_allow(&args.allow)?;
    let request = BuildRequest {
        context: context_dir.clone(),
        dockerfile_path,
        dockerfile,
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        network: match args.network.as_str() {
            "default" | "host" => Network::Host,
            "none" => Network::None,
            other => bail!("unsupported --network {other:?}: use default, host or none"),
        },
        extra_hosts: args.add_hosts.clone(),
        labels: parse_key_values(&args.labels, "--label")?,
        secrets: secrets.files.clone(),
        ssh_agents: parse_ssh(&args.ssh)?,
        security,
        entitlements,
        runtime: args.runtime.clone(),
        source_date_epoch,
        tags: if output.is_some() {
            Vec::new()
        } else {
            tags.clone()
        },
        record_image: output.is_none(),
        inline_cache: cache_to.iter().any(|c| c.place.is_none()),
    };
    let tty = match context.progress {
        crate::output::ProgressMode::Auto => std::io::stderr().is_terminal(),
        crate::output::ProgressMode::Tty => true,
        crate::output::ProgressMode::Plain => false,
    };
    let display = super::build_display::BuildDisplay::new(tty, args.quiet, args.explain_cache);
    let reporter = display.reporter();
    let connector = args.remote.connector()?;
    let puller = Puller {
        store: store.clone(),
        connector: connector.clone(),
        quiet: args.quiet,
    };
    // --no-cache uses no cache, imported or local (the build's own steps are still exported).
    let imports = if args.no_cache {
        Vec::new()
    } else {
        super::build_cache::import(&cache_from, &connector, &store, args.quiet)?
    };
    let services = builder::engine::BuildServices {
        reporter,
        puller: Some(&puller),
        imports: &imports,
        runtime: None,
    };
    let result = match builder::engine::build_image(&store, &request, services) {
        Ok(result) => result,
        Err(BuildError::Dockerfile(diagnostic)) => {
            eprintln!("{:?}", miette::Report::new(*diagnostic));
            std::process::exit(1);
        }
        Err(error) => {
            let step = match &error {
                BuildError::Step { step, .. } => Some(step.as_str()),
                _ => None,
            };
            display.failed(step);
            return Err(error.into());
        }
    };
    for warning in &result.warnings {
        eprintln!("{warning}");
    }
    super::build_cache::export(
        &cache_to,
        &result.cache_records,
        &connector,
        &store,
        args.quiet,
    )?;
    if let Some(output) = &output {
        let image = Image::read(&store, &result.descriptor)?;
        export(output, &store, &image, &tags)?;
    } else if !args.quiet {
        eprintln!("writing image {} done", result.id);
        for tag in &tags {
            eprintln!("naming to {tag} done");
        }
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, result.id.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.quiet {
        if output.as_ref().is_some_and(Exporter::is_stdout) {
            eprintln!("{}", result.id);
        } else {
            println!("{}", result.id);
        }
    }
    Ok(())
}

/// `--platform` must be this host's: RUN steps run natively, with no emulation.
fn check_platform(requested: &str) -> anyhow::Result<()> {
    let wanted = Platform::parse(requested)?;
    let host = builder::platform::host();
    let same = wanted.os == host.os
        && wanted.architecture == host.architecture
        && (wanted.variant.is_none() || wanted.variant == host.variant);
    if !same {
        bail!(
            "--platform {requested}: lade builds for this host's platform ({}/{}) only, running RUN natively \
             without emulation",
            host.os,
            host.architecture
        );
    }
    Ok(())
}

/// `lade build -`: the context (an archive, or a Dockerfile alone) from stdin, in a private directory of the store
/// that lives as long as the build.
fn stdin_context(store: &layerstore::Store) -> anyhow::Result<layerstore::fsutil::TempDir> {
    let dir = store.temp_dir("context-")?;
    builder::context::unpack_context_stream(std::io::stdin().lock(), dir.path())
        .context("reading the build context from stdin")?;
    Ok(dir)
}

fn read_dockerfile(args: &Args, context_dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    match &args.file {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the Dockerfile from stdin")?;
            Ok((PathBuf::from("Dockerfile"), text))
        }
        file => {
            let path = file
                .clone()
                .unwrap_or_else(|| context_dir.join("Dockerfile"));
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading the Dockerfile {}", path.display()))?;
            let relative = std::fs::canonicalize(&path)
                .ok()
                .zip(std::fs::canonicalize(context_dir).ok())
                .and_then(|(file, context)| file.strip_prefix(context).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| path.clone());
            Ok((relative, String::from_utf8_lossy(&bytes).into_owned()))
        }
    }
}

fn parse_build_args(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for value in values {
        match value.split_once('=') {
            Some((key, value)) => {
                args.insert(key.to_string(), value.to_string());
            }
            None => {
                // Docker: `--build-arg KEY` takes the value from the environment, and is ignored when unset.
                if let Ok(env) = std::env::var(value) {
                    args.insert(value.clone(), env);
                }
            }
        }
    }
    Ok(args)
}

/// `KEY=VALUE` items (repeated flags, or the comma-separated fields of one flag's value).
fn parse_key_values<S: AsRef<str>>(
    values: impl IntoIterator<Item = S>,
    flag: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    values
        .into_iter()
        .map(|v| match v.as_ref().split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} {:?}: expected KEY=VALUE", v.as_ref()),
        })
        .collect()
}

/// `--secret id=ID[,src=FILE|,env=VAR]` as buildx takes them: a file, an environment variable, or (with neither) the
/// variable named like the id. Values from the environment are written to 0600 files in a private directory of the
/// store that lives as long as the build.
struct Secrets {
    files: BTreeMap<String, PathBuf>,
    _from_env: Option<layerstore::fsutil::TempDir>,
}

impl Secrets {
    fn parse(values: &[String], store: &layerstore::Store) -> anyhow::Result<Secrets> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut files = BTreeMap::new();
        let mut from_env: Option<layerstore::fsutil::TempDir> = None;
        for value in values {
            let fields = parse_key_values(value.split(','), "--secret")?;
            let id = fields
                .get("id")
                .with_context(|| format!("--secret {value:?}: missing id="))?;
            let path = match (
                fields.get("src").or_else(|| fields.get("source")),
                fields.get("env"),
            ) {
                (Some(src), _) => {
                    let path = PathBuf::from(src);
                    if !path.is_file() {
                        bail!("--secret {value:?}: {src} is not a file");
                    }
                    path
                }
                (None, variable) => {
                    let variable = variable.unwrap_or(id);
                    let secret = std::env::var_os(variable).with_context(|| {
                        format!("--secret {value:?}: give src=FILE, or set the environment variable {variable}")
                    })?;
                    let dir = match &mut from_env {
                        Some(dir) => dir,
                        None => from_env.insert(store.temp_dir("secrets-")?),
                    };
                    let path = dir
                        .path()
                        .join(layerstore::Digest::sha256_of(id.as_bytes()).hex());
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .and_then(|mut file| file.write_all(secret.as_encoded_bytes()))
                        .with_context(|| format!("--secret {value:?}: writing it for the build"))?;
                    path
                }
            };
            files.insert(id.clone(), path);
        }
        Ok(Secrets {
            files,
            _from_env: from_env,
        })
    }
}

/// `--ssh default|ID[=SOCKET]`: agent sockets by id.
fn parse_ssh(values: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    use std::os::unix::fs::FileTypeExt;
    let mut agents = BTreeMap::new();
    for value in values {
        let (id, socket) = match value.split_once('=') {
            Some((id, socket)) => (id, PathBuf::from(socket)),
            None => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(socket) => (value.as_str(), PathBuf::from(socket)),
                None => bail!(
                    "--ssh {value}: SSH_AUTH_SOCK is not set; start ssh-agent or give ID=SOCKET"
                ),
            },
        };
        let kind = std::fs::metadata(&socket)
            .with_context(|| format!("--ssh {value}: {}", socket.display()))?
            .file_type();
        if !kind.is_socket() {
            bail!(
                "--ssh {value}: {} is not an agent socket (lade forwards agents, not key files: \
                 run ssh-agent, ssh-add the key, and give --ssh {id}=$SSH_AUTH_SOCK)",
                socket.display()
            );
        }
        agents.insert(id.to_string(), socket);
    }
    Ok(agents)
}

/// Writes the built image where `-o` says: a stream to a file (renamed into place once complete) or stdout, or a
/// directory.
fn export(
    exporter: &Exporter,
    store: &layerstore::Store,
    image: &Image,
    names: &[Reference],
) -> anyhow::Result<()> {
    match exporter.stream_destination() {
        Some(dest) => super::ArchiveOutput::new(Some(dest))?
            .write_with(|out| Ok(exporter.write_stream(store, image, names, out)?)),
        None => Ok(exporter.write_directory(store, image)?),
    }
}

/// Pulls missing base images through the registry client, as `lade pull` does.
struct Puller {
    store: layerstore::Store,
    connector: registry_client::Connector,
    quiet: bool,
}

impl builder::engine::ImagePuller for Puller {
    fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<(), builder::engine::PullError> {
        if !self.quiet {
            eprintln!("pulling {reference}");
        }
        let options = registry_client::PullOptions {
            platform: platform.clone(),
            jobs: 3,
        };
        super::remote::pull_image(
            &self.connector,
            &self.store,
            reference,
            &options,
            &layerstore::progress::NoProgress,
        )?;
        Ok(())
    }
}
