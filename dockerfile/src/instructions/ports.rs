//! `EXPOSE` port specifications: `80`, `80/udp`, `8000-8010/tcp`, parsed as Docker's `nat.ParsePortSpec` parses
//! them for BuildKit (v0.8): a `[ip:]hostPort:` prefix is accepted and checked, then dropped (EXPOSE keeps the
//! container port only), an empty protocol is tcp and the protocol's case does not matter.

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

/// Parses `[[ip:]hostPort:]port[-port][/protocol]` with Docker's rules and messages.
pub fn parse_port_spec(spec: &str) -> Result<PortRange, String> {
    let (ip, host_port, container) = split_parts(spec);
    let (protocol, ports) = split_proto_port(container);
    check_ip(ip)?;
    if ports.is_empty() {
        return Err(format!("No port specified: {spec}<empty>"));
    }
    let (start, end) =
        parse_range(ports).map_err(|()| format!("Invalid containerPort: {ports}"))?;
    if !host_port.is_empty() {
        let (host_start, host_end) =
            parse_range(host_port).map_err(|()| format!("Invalid hostPort: {host_port}"))?;
        // A host range may go with one container port (as a range to allocate from), else both span alike.
        if end - start != host_end - host_start && end != start {
            return Err(format!(
                "Invalid ranges specified for container and host Ports: {ports} and {host_port}"
            ));
        }
    }
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => return Err(format!("Invalid proto: {protocol}")),
    };
    Ok(PortRange {
        start,
        end,
        protocol,
    })
}

/// `ip:host:container` split on colons from the right; more than three parts leave the extra colons in the IP.
fn split_parts(spec: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    match n {
        1 => ("", "", container),
        2 => ("", parts[0], container),
        _ => {
            let ip_len = parts[..n - 2].iter().map(|p| p.len() + 1).sum::<usize>() - 1;
            (&spec[..ip_len], parts[n - 2], container)
        }
    }
}

/// `port/proto` as Docker splits it: no protocol, or an empty one, is tcp; only the first two parts count.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or("");
    if port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(protocol) => (protocol, port),
    }
}

/// The host IP of a mapping: empty, an IPv4 or IPv6 address, IPv6 possibly in brackets.
fn check_ip(ip: &str) -> Result<(), String> {
    let bare = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
        Some(inner) => inner,
        None if ip.contains(':') => {
            return Err(format!("Invalid ip address {ip}: too many colons"))
        }
        None => ip,
    };
    if bare.is_empty() || bare.parse::<std::net::IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!("Invalid ip address: {bare}"))
    }
}

/// `port` or `start-end` (Go's `ParseUint`: digits only; a part after a second `-` is ignored, as Docker ignores it).
fn parse_range(ports: &str) -> Result<(u16, u16), ()> {
    let number = |text: &str| {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        text.parse::<u16>().map_err(|_| ())
    };
    let mut parts = ports.split('-');
    let start = number(parts.next().unwrap_or(""))?;
    let end = match parts.next() {
        Some(end) => number(end)?,
        None => start,
    };
    if end < start {
        return Err(());
    }
    Ok((start, end))
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
        // Docker's forms: a host mapping is dropped, an empty protocol is tcp, case is ignored, a third `-` part
        // is ignored.
        for (spec, key) in [
            ("8080:80", "80/tcp"),
            ("127.0.0.1:9090:90/udp", "90/udp"),
            ("[::1]:1:91", "91/tcp"),
            ("92/", "92/tcp"),
            ("93/TCP", "93/tcp"),
            ("080", "80/tcp"),
            ("1-2-3", "1/tcp"),
            ("8000-8001:80", "80/tcp"),
        ] {
            assert_eq!(
                parse_port_spec(spec).unwrap().config_keys()[0],
                key,
                "{spec}"
            );
        }
        for (bad, message) in [
            ("http", "Invalid containerPort: http"),
            ("80/xtp", "Invalid proto: xtp"),
            ("90-80", "Invalid containerPort: 90-80"),
            ("70000", "Invalid containerPort: 70000"),
            ("+80", "Invalid containerPort: +80"),
            ("", "No port specified: <empty>"),
            ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
            ("x:80", "Invalid hostPort: x"),
            (
                "1-2:80-82",
                "Invalid ranges specified for container and host Ports: 80-82 and 1-2",
            ),
        ] {
            assert_eq!(parse_port_spec(bad).unwrap_err(), message, "{bad}");
        }
    }
}
