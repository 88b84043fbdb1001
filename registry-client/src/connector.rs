//! Opening registry sessions with the user's settings: endpoint options and credentials from Docker's `config.json`.

use std::path::PathBuf;

use crate::credentials::DockerConfig;
use crate::endpoint::EndpointOptions;
use crate::error::Error;
use crate::session::Session;

/// Everything needed to connect to any registry.
#[derive(Debug, Clone)]
pub struct Connector {
    /// How to reach registries: which ones use plain HTTP, and the `certs.d` directory of their CA certificates.
    pub endpoint: EndpointOptions,
    /// The Docker `config.json` holding credentials.
    pub docker_config: PathBuf,
}

impl Connector {
    /// A session with the registry of a reference domain, authenticated with the stored credentials for it.
    pub async fn connect(&self, domain: &str) -> Result<Session, Error> {
        let credential = DockerConfig::load(&self.docker_config)?.get(domain)?;
        Session::connect(domain, &self.endpoint, credential).await
    }
}
