//! `EXPOSE` port specifications: `80`, `80/udp`, `8000-8010/tcp`.

/// A transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The name as written after the slash.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One exposed port or range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (equal to `start` for a single port).
    pub end: u16,
    /// Protocol.
    pub protocol: Protocol,
}

impl PortRange {
    /// The ports as image-config keys (`80/tcp`), one per port in the range.
    pub fn config_keys(&self) -> Vec<String> {
        (self.start..=self.end)
            .map(|port| format!("{port}/{}", self.protocol.name()))
            .collect()
    }
}

/// Parses `port[-port][/protocol]`.
pub fn parse_port_spec(spec: &str) -> Result<PortRange, String> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, protocol)) => (ports, protocol),
        None => (spec, "tcp"),
    };
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(format!("invalid proto: {protocol}")),
    };
    let parse_port = |text: &str| -> Result<u16, String> {
        text.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {text}"))
    };
    let (start, end) = match ports.split_once('-') {
        Some((start, end)) => (parse_port(start)?, parse_port(end)?),
        None => {
            let port = parse_port(ports)?;
            (port, port)
        }
    };
    if end < start {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok(PortRange {
        start,
        end,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_and_ranges() {
        assert_eq!(
            parse_port_spec("80").unwrap(),
            PortRange {
                start: 80,
                end: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(parse_port_spec("53/udp").unwrap().protocol, Protocol::Udp);
        assert_eq!(
            parse_port_spec("8000-8002/tcp").unwrap().config_keys(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        for bad in ["http", "80/xtp", "90-80", "70000", ""] {
            assert!(parse_port_spec(bad).is_err(), "{bad}");
        }
    }
}
