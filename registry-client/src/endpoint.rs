//! Where a registry is and how to reach it: the API host for a reference's domain, HTTP or HTTPS, and the TLS roots.
//!
//! Plain HTTP is used for registries the user declared insecure, and for loopback hosts (`localhost`, 127.0.0.0/8,
//! `::1`, and names that resolve to them, as in Docker) unless `certs.d/<host:port>/ca.crt` exists for the host,
//! which asks for TLS with that CA, as Docker's `/etc/docker/certs.d` does. Everything else is HTTPS, verified
//! against the system roots plus that CA.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// The domain Docker Hub references carry, and the host its API is served from.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Registries (`host[:port]`) to reach over plain HTTP.
    pub insecure: Vec<String>,
    /// Docker's `certs.d` layout: `<dir>/<host:port>/ca.crt` adds a CA for that registry.
    pub certs_dir: PathBuf,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            insecure: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
        }
    }
}

/// A registry's API base URL and an HTTP client set up for it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// `https://host[:port]` or `http://host[:port]`, without a trailing slash.
    pub base: String,
    /// The HTTP client, trusting the system roots plus this registry's `certs.d/<host>/ca.crt`.
    pub http: reqwest::Client,
    /// The `certs.d` directory the endpoint was set up with (for hints).
    pub certs_dir: PathBuf,
}

/// The API host of a reference domain.
pub fn api_host(domain: &str) -> &str {
    if domain == DOCKER_HUB_DOMAIN || domain == "index.docker.io" {
        DOCKER_HUB_API_HOST
    } else {
        domain
    }
}

/// The name part of `host` (`name[:port]`, `[v6]:port`).
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        },
    }
}

/// Is `host` (`name[:port]`, `[v6]:port`) a loopback address?
pub fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Does `host`'s name resolve to a loopback address (a name in `/etc/hosts` for 127.0.0.1, say)? Docker treats
/// such registries as insecure as it does 127.0.0.0/8 itself. A name that does not resolve is not.
fn resolves_to_loopback(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    let name = host_name(host);
    if name.parse::<IpAddr>().is_ok() {
        return false;
    }
    (name, 0)
        .to_socket_addrs()
        .is_ok_and(|mut addresses| addresses.any(|a| a.ip().is_loopback()))
}

impl Endpoint {
    /// Sets up the endpoint of `domain` (a reference's registry part).
    pub fn new(domain: &str, options: &EndpointOptions) -> Result<Endpoint, Error> {
        let host = api_host(domain);
        let ca_file = options.certs_dir.join(host).join("ca.crt");
        let has_ca = ca_file.is_file();
        let declared = options.insecure.iter().any(|i| i == domain || i == host);
        let insecure = declared
            || (!has_ca
                && (is_loopback(host)
                    || (host != DOCKER_HUB_API_HOST && resolves_to_loopback(host))));
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("lade/", env!("CARGO_PKG_VERSION")));
        // TLS is set up even for a plain-HTTP registry: its token server may still be HTTPS.
        let tls = crate::tls::client_config(domain, has_ca.then_some(ca_file.as_path()))?;
        let http = builder
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| Error::Tls {
                registry: domain.to_string(),
                reason: e.to_string(),
            })?;
        let scheme = if insecure { "http" } else { "https" };
        Ok(Endpoint {
            registry: domain.to_string(),
            base: format!("{scheme}://{host}"),
            http,
            certs_dir: options.certs_dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.0.1",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1:5000",
            "[2001:db8::1]:5000",
            "registry-1.docker.io",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
        // `localhost` always resolves to loopback; a name given as a registry with its port, too.
        assert!(resolves_to_loopback("localhost:5000"));
        assert!(!resolves_to_loopback("127.0.0.1:5000"));
        assert!(!resolves_to_loopback("name.invalid:5000"));
    }

    #[test]
    fn schemes() {
        let options = EndpointOptions {
            insecure: vec!["registry.internal:5000".into()],
            certs_dir: PathBuf::from("/nonexistent"),
        };
        assert_eq!(
            Endpoint::new("127.0.0.1:5000", &options).unwrap().base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            Endpoint::new("registry.internal:5000", &options)
                .unwrap()
                .base,
            "http://registry.internal:5000"
        );
        assert_eq!(
            Endpoint::new("docker.io", &options).unwrap().base,
            "https://registry-1.docker.io"
        );
    }
}
