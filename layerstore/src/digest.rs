//! Content digests (`algorithm:hex`) as the OCI image spec defines them, and a hashing writer that computes one.
//!
//! `sha256` is the canonical algorithm; `sha512` is accepted everywhere a digest is read. Validation is strict: the
//! encoded part must be lower-case hex of exactly the algorithm's length.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// The hash functions a digest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters; the canonical algorithm.
    Sha256,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The name used in the `algorithm:` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex-encoded hash.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Why a string is not a valid digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// There is no `:` separating an algorithm from the hash, or the algorithm part is empty or has invalid characters. Holds the text given.
    #[error("invalid digest {0:?}: expected algorithm:hex")]
    Format(String),
    /// The algorithm is well-formed but neither `sha256` nor `sha512`. Holds the text given.
    #[error("invalid digest {0:?}: unsupported algorithm (sha256 and sha512 are supported)")]
    Algorithm(String),
    /// The hash is not lower-case hex of the algorithm's length. Holds the text given and the expected length.
    #[error("invalid digest {0:?}: the hash must be {1} lower-case hex characters")]
    Encoding(String, usize),
}

/// A validated content digest such as `sha256:e3b0…`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Builds a digest from an algorithm and raw hash bytes.
    pub fn from_bytes(algorithm: Algorithm, hash: &[u8]) -> Digest {
        Digest {
            algorithm,
            hex: hex::encode(hash),
        }
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::from_bytes(Algorithm::Sha256, &Sha256::digest(data))
    }

    /// The digest of `data` with `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }

    /// The hash function the digest names.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part after the colon.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Docker's short image ID: the first 12 hex characters.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let (algorithm, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(DigestError::Format(s.to_string())),
            other
                if other.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                }) =>
            {
                return Err(DigestError::Algorithm(s.to_string()))
            }
            _ => return Err(DigestError::Format(s.to_string())),
        };
        let valid = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(DigestError::Encoding(s.to_string(), algorithm.hex_len()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hash for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// A SHA-256 hash in progress.
    Sha256(Sha256),
    /// A SHA-512 hash in progress.
    Sha512(Sha512),
}

impl Hasher {
    /// A hash of no data yet.
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feeds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of all the data fed so far.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_bytes(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_bytes(Algorithm::Sha512, &h.finalize()),
        }
    }
}

/// A writer that hashes and counts everything passing through it to an inner writer.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `algorithm`; nothing written yet.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(algorithm),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
}

impl<R: io::Read> HashingReader<R> {
    /// Wraps `inner`, hashing with `algorithm`; nothing read yet.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            read: 0,
        }
    }

    /// Returns the digest and byte count of what was read.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.read)
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::sha256_of(b""));
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn sha512_is_accepted() {
        let d = Digest::of(Algorithm::Sha512, b"abc");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.hex().len(), 128);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855a",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:zzb0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hashing_writer_matches_one_shot() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, digest, n) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(digest, Digest::sha256_of(&buf));
    }
}
