//! Image references parsed as Docker parses them: `ParseNormalizedNamed` of the `reference` package Docker 20.10
//! vendors (docker/distribution v2.7): `[domain/]path[:tag][@digest]`, with Docker Hub's defaults (`docker.io`,
//! `library/`) filled in, its grammar and its error texts.
//!
//! The first component is a domain only when it contains `.` or `:` or is `localhost`, so `UPPER/case` is a
//! Docker Hub path and refused (`repository name must be lowercase`), as Docker 20.10 refuses it. One addition:
//! a bracketed IPv6 address is a domain (`[::1]:5000/app`), as the current distribution/reference grammar has it.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The tag Docker assumes when none is given.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not a valid reference (the texts are distribution's).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The grammar does not match (`ErrReferenceInvalidFormat`).
    #[error("invalid reference format")]
    InvalidFormat,
    /// A reference refused for the reason given.
    #[error("invalid reference format: {0:?}")]
    Format(String),
    /// The repository path has upper-case letters (`ParseNormalizedNamed`'s check).
    #[error("invalid reference format: repository name must be lowercase")]
    NameNotLowercase,
    /// The reference matches the grammar once lower-cased (`ErrNameContainsUppercase`).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The name is 64 hexadecimal characters, which Docker reserves for image IDs; holds the name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// `ErrNameTooLong`.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// go-digest's `ErrDigestUnsupported`.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// go-digest's `ErrDigestInvalidLength`.
    #[error("invalid checksum digest length")]
    DigestLength,
}

/// A fully qualified image reference: domain, path, and optionally a tag and a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker pull`/`docker tag` do (normalizing Docker Hub names).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if is_64_hex(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::NameNotLowercase);
        }
        let full = format!("{domain}/{remainder}");
        let Some(parts) = match_reference(&full) else {
            if match_reference(&full.to_ascii_lowercase()).is_some() {
                return Err(ReferenceError::NameContainsUppercase);
            }
            return Err(ReferenceError::InvalidFormat);
        };
        if parts.name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = parts.digest.map(parse_digest).transpose()?;
        Ok(Reference {
            path: parts.name[domain.len() + 1..].to_string(),
            domain,
            tag: parts.tag.map(str::to_string),
            digest,
        })
    }

    /// Like [`Reference::parse`], adding the `latest` tag when neither a tag nor a digest is given
    /// (Docker's `TagNameOnly`).
    pub fn parse_tagged(s: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse(s)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// The registry host, with its port if any, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, e.g. `latest`, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest pinning the content (`@sha256:...`), if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, the fully qualified repository name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it (`busybox`, `user/app`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The familiar form with tag and digest, as `docker images` prints it.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
        s
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The same repository with a digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

fn is_64_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Splits off the registry domain as Docker 20.10 does: the first component is a domain when it contains `.` or `:`
/// or is `localhost`. Docker Hub names get `library/` when they have one component.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder
    };
    (domain, remainder)
}

/// The parts of a string that matches distribution's `ReferenceRegexp` with a domain: `domain/path[:tag][@digest]`.
struct ReferenceParts<'a> {
    /// `domain/path`.
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches `s` against the reference grammar (the domain is required: normalized names always have one).
fn match_reference(s: &str) -> Option<ReferenceParts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest).filter(|d| is_digest_syntax(d))?.into()),
        None => (s, None),
    };
    // A tag follows the last ':' after the last '/'.
    let last_slash = rest.rfind('/')?;
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if tag.is_some_and(|t| !is_valid_tag(t)) {
        return None;
    }
    let (domain, path) = name.split_once('/')?;
    (is_valid_domain(domain) && is_valid_path(path)).then_some(ReferenceParts { name, tag, digest })
}

/// The grammar's digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Parse` of a digest that has the grammar's syntax.
fn parse_digest(text: &str) -> Result<Digest, ReferenceError> {
    let (algorithm, hex) = text.split_once(':').unwrap_or((text, ""));
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != length {
        return Err(ReferenceError::DigestLength);
    }
    // go-digest takes only lower-case hex ("invalid checksum digest format"); so does lade's digest type.
    text.parse::<Digest>()
        .map_err(|_| ReferenceError::Format(format!("{text}: invalid checksum digest format")))
}

/// A tag: `[\w][\w.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| word(b) || b == b'.' || b == b'-')
}

/// A path: components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` separated by `/`.
pub fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or one or more "-", always followed by an alphanumeric.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// A domain: dot-separated host labels (`[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`) or a bracketed IPv6 address, with
/// an optional `:port`.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                return after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    };
    host.split('.').all(label_ok) && port.is_none_or(is_port)
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox");
        assert_eq!(full("busybox:local"), "docker.io/library/busybox:local");
        assert_eq!(full("user/app:1"), "docker.io/user/app:1");
        assert_eq!(full("index.docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(full("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(full("localhost/app"), "localhost/app");
        assert_eq!(full("127.0.0.1:5000/x"), "127.0.0.1:5000/x");
        assert_eq!(full("[::1]:5000/x:y"), "[::1]:5000/x:y");
        assert_eq!(full("a.b-c.io/x__y.z-w---v/q"), "a.b-c.io/x__y.z-w---v/q");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.familiar(), format!("busybox:1@{d}"));
        assert_eq!(
            Reference::parse_tagged("busybox").unwrap().familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/library/a/b")
                .unwrap()
                .familiar_name(),
            "library/a/b"
        );
        assert_eq!(
            Reference::parse("localhost:5000/a")
                .unwrap()
                .familiar_name(),
            "localhost:5000/a"
        );
    }

    /// The normalization cases of distribution's `normalize_test.go` (the v2.7 line Docker 20.10 vendors).
    #[test]
    fn accepts_what_distribution_accepts() {
        for name in [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
            "lowercase:Uppercase",
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
            "b.gcr.io/test.example.com/my-app:test.example.com",
            "xn--n3h.com/myimage:xn--n3h.com",
            "foo_bar.com:8080",
            "foo/foo_bar.com:8080",
        ] {
            assert!(Reference::parse(name).is_ok(), "{name:?} refused");
        }
        // (input, domain, path, tag, familiar name)
        for (input, domain, path, tag, familiar) in [
            ("fooo/bar", "docker.io", "fooo/bar", None, "fooo/bar"),
            (
                "index.docker.io/fooo/bar",
                "docker.io",
                "fooo/bar",
                None,
                "fooo/bar",
            ),
            (
                "library/ubuntu",
                "docker.io",
                "library/ubuntu",
                None,
                "ubuntu",
            ),
            ("docker.io/foo", "docker.io", "library/foo", None, "foo"),
            (
                "library/foo/bar",
                "docker.io",
                "library/foo/bar",
                None,
                "library/foo/bar",
            ),
            (
                "store/foo/bar",
                "docker.io",
                "store/foo/bar",
                None,
                "store/foo/bar",
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000",
                "privatebase",
                None,
                "127.0.0.1:8000/privatebase",
            ),
            (
                "example.com:8000/private/moonbase",
                "example.com:8000",
                "private/moonbase",
                None,
                "example.com:8000/private/moonbase",
            ),
            (
                "test_com/foo",
                "docker.io",
                "test_com/foo",
                None,
                "test_com/foo",
            ),
            (
                "test-com:8080/foo",
                "test-com:8080",
                "foo",
                None,
                "test-com:8080/foo",
            ),
            (
                "xn--n3h.com:18080/foo",
                "xn--n3h.com:18080",
                "foo",
                None,
                "xn--n3h.com:18080/foo",
            ),
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
                "test.com",
            ),
            (
                "test:5000/repo:tag",
                "test:5000",
                "repo",
                Some("tag"),
                "test:5000/repo",
            ),
            ("localhost/app", "localhost", "app", None, "localhost/app"),
            (
                "[::1]:5000/x:y",
                "[::1]:5000",
                "x",
                Some("y"),
                "[::1]:5000/x",
            ),
        ] {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(
                (r.domain(), r.path(), r.tag(), r.familiar_name().as_str()),
                (domain, path, tag, familiar),
                "{input:?}"
            );
        }
        let short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
        let r = Reference::parse(short).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
        assert_eq!(r.familiar(), short);
        let long_tag = format!("{}a:tag-puts-this-over-max", "a/".repeat(117));
        assert!(Reference::parse(&long_tag).is_ok());
    }

    /// The refusals of distribution's `reference_test.go` and `normalize_test.go`, with its error texts (as
    /// `docker tag` prints them).
    #[test]
    fn rejects_what_docker_rejects() {
        use ReferenceError::*;
        let ffff = "f".repeat(64);
        for (input, expected) in [
            ("UPPER/case:tag", NameNotLowercase),
            ("Uppercase:tag", NameNotLowercase),
            ("docker/Docker", NameNotLowercase),
            ("Docker/docker", NameNotLowercase),
            ("docker.io/docker/Docker", NameNotLowercase),
            ("test:5000/Uppercase/lowercase:tag", NameNotLowercase),
            ("localhost:5000/Foo", NameNotLowercase),
            ("", InvalidFormat),
            (":justtag", InvalidFormat),
            (&format!("@sha256:{ffff}"), InvalidFormat),
            ("aa/asdf$$^/aa", InvalidFormat),
            ("https://github.com/docker/docker", InvalidFormat),
            ("-docker", InvalidFormat),
            ("-docker/docker", InvalidFormat),
            ("-docker.io/docker/docker", InvalidFormat),
            ("docker///docker", InvalidFormat),
            ("docker.io/docker///docker", InvalidFormat),
            ("docker-/docker", InvalidFormat),
            ("-docker-/docker", InvalidFormat),
            ("____/____", InvalidFormat),
            ("_docker/_docker", InvalidFormat),
            ("dock..er/docker", InvalidFormat),
            ("dock_.er/docker", InvalidFormat),
            ("dock-.er/docker", InvalidFormat),
            ("docker/", InvalidFormat),
            ("a//b", InvalidFormat),
            ("a:-x", InvalidFormat),
            ("a:b:c", InvalidFormat),
            ("foo:tag@sha256:fff", InvalidFormat),
            ("a b", InvalidFormat),
            (&format!("a:{}", "t".repeat(129)), InvalidFormat),
            (
                "repo@sha256:ffffffffffffffffffffffffffffffffff",
                DigestLength,
            ),
            (
                &format!("validname@invaliddigest:{ffff}"),
                DigestUnsupported,
            ),
            (&format!("{}a:tag", "a/".repeat(128)), NameTooLong),
            (
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                HexName("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a".into()),
            ),
        ] {
            assert_eq!(Reference::parse(input), Err(expected), "{input:?}");
        }
        assert_eq!(
            NameNotLowercase.to_string(),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(InvalidFormat.to_string(), "invalid reference format");
        assert_eq!(
            NameTooLong.to_string(),
            "repository name must not be more than 255 characters"
        );
        assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
    }
}
