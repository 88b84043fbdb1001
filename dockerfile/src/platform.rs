//! Target and build platforms (`linux/arm64/v8`) and the ARGs BuildKit predefines from them.

use std::fmt;

/// An OS/architecture/variant triple.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, … when relevant.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let valid_part = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        match parts.as_slice() {
            [os, arch] if valid_part(os) && valid_part(arch) => Ok(Platform {
                os: os.to_ascii_lowercase(),
                architecture: arch.to_ascii_lowercase(),
                variant: None,
            }),
            [os, arch, variant] if valid_part(os) && valid_part(arch) && valid_part(variant) => {
                Ok(Platform {
                    os: os.to_ascii_lowercase(),
                    architecture: arch.to_ascii_lowercase(),
                    variant: Some(variant.to_ascii_lowercase()),
                })
            }
            _ => Err(format!(
                "invalid platform \"{text}\": expected os/arch[/variant]"
            )),
        }
    }

    /// The platform this program runs on, in OCI terms.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// `PREFIXPLATFORM`, `PREFIXOS`, `PREFIXARCH`, `PREFIXVARIANT` (prefix `TARGET` or `BUILD`).
    pub fn predefined_args(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (
                format!("{prefix}VARIANT"),
                self.variant.clone().unwrap_or_default(),
            ),
        ]
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Proxy variables passed to RUN when given as build args, without an ARG declaration.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `name` is an ARG BuildKit defines without declaration (proxies and platform args).
pub fn is_predefined_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
        || ["TARGET", "BUILD"].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| matches!(rest, "PLATFORM" | "OS" | "ARCH" | "VARIANT"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let platform = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(
            platform.predefined_args("TARGET")[2],
            ("TARGETARCH".to_string(), "arm64".to_string())
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
    }

    #[test]
    fn predefined_names() {
        assert!(is_predefined_arg("no_proxy"));
        assert!(is_predefined_arg("BUILDVARIANT"));
        assert!(!is_predefined_arg("TARGETFOO"));
    }
}
