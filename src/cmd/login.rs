//! `lade login [REGISTRY] -u USER (-p PASS | --password-stdin)`: check the credentials against the registry, as
//! docker does, and store them in Docker's `config.json` (or its credential helper) — the refresh token instead of
//! the password when the registry's token server issues one.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Context as _;
use registry_client::credentials::{Credential, DockerConfig};

#[derive(clap::Args)]
pub struct Args {
    /// The registry (host[:port]; default: Docker Hub).
    registry: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
}

/// `https://host:port/v2/` and similar as docker accepts them, reduced to `host:port`.
pub fn registry_host(argument: Option<&str>) -> String {
    let Some(argument) = argument else {
        return registry_client::endpoint::DOCKER_HUB_DOMAIN.to_string();
    };
    let host = argument
        .strip_prefix("https://")
        .or_else(|| argument.strip_prefix("http://"))
        .unwrap_or(argument);
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => {
            registry_client::endpoint::DOCKER_HUB_DOMAIN.to_string()
        }
        _ => host.to_string(),
    }
}

/// Asks for a line on the terminal (stdin), without echo for secrets.
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "cannot ask for the {label}: stdin is not a terminal (use -u and --password-stdin)"
        );
    }
    eprint!("{label}: ");
    std::io::stderr().flush()?;
    let saved = if echo {
        None
    } else {
        let saved = rustix::termios::tcgetattr(&stdin).context("reading the terminal mode")?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)
            .context("turning off echo")?;
        Some(saved)
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
        eprintln!();
    }
    read.with_context(|| format!("reading the {label}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn run(_context: &super::Context, args: Args) -> anyhow::Result<()> {
    let registry = registry_host(args.registry.as_deref());
    let username = match args.username {
        Some(username) => username,
        None if args.password_stdin => {
            anyhow::bail!("--password-stdin needs the user name given with -u")
        }
        None => prompt("Username", true)?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(password), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            password
        }
        (None, true) => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from stdin")?;
            password.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password", false)?,
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    let credential = Credential::Basic { username, password };
    let connector = args.remote.connector()?;
    let refresh_token = super::remote::block_on(async {
        let session = registry_client::Session::connect(
            &registry,
            &connector.endpoint,
            Some(credential.clone()),
        )
        .await?;
        session.verify_login().await
    })?
    .with_context(|| format!("logging in to {registry}"))?;
    // As docker does: when the token server hands out a refresh token, that is stored instead of the password.
    let stored = refresh_token.map_or(credential, Credential::IdentityToken);
    let mut config = DockerConfig::load(&connector.docker_config)?;
    config.store(&registry, &stored)?;
    println!("Login Succeeded");
    Ok(())
}
