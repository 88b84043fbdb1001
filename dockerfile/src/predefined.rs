//! The ARGs BuildKit defines without a declaration: the proxy variables and the platform ARGs
//! (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` and their `BUILD…` twins). The platforms
//! themselves are the builder's: it parses and normalizes them and hands their values in
//! [`BuildOptions::platform_args`](crate::BuildOptions::platform_args).

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
    fn predefined_names() {
        assert!(is_predefined_arg("no_proxy"));
        assert!(is_predefined_arg("BUILDVARIANT"));
        assert!(!is_predefined_arg("TARGETFOO"));
    }
}
