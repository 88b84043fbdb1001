//! `lade logout [REGISTRY]`: remove a registry's credentials from Docker's `config.json` (or its helper).

use registry_client::credentials::{config_key, DockerConfig};

#[derive(clap::Args)]
pub struct Args {
    /// The registry (host[:port]; default: Docker Hub).
    registry: Option<String>,
}

pub fn run(_context: &super::Context, args: Args) -> anyhow::Result<()> {
    let registry = super::login::registry_host(args.registry.as_deref());
    let mut config = DockerConfig::load(&DockerConfig::default_path())?;
    if config.erase(&registry)? {
        println!("Removing login credentials for {}", config_key(&registry));
    } else {
        println!("Not logged in to {}", config_key(&registry));
    }
    Ok(())
}
