//! Size limits for what is read whole into memory: metadata, never layers.
//!
//! Manifests, indexes, configs, `manifest.json` and `repositories` are read whole to be parsed, so each read refuses
//! a file or response over its limit before reading it, naming what was too big. Layers are always streamed.

use std::io::{self, Read};

/// The largest manifest, index, config, `manifest.json` or `repositories` read: registry:2's manifest limit.
pub const MAX_METADATA_SIZE: u64 = 4 << 20;

/// The largest `index.json` of a store or OCI layout (one entry per tag: room for about 200,000 tags).
pub const MAX_INDEX_SIZE: u64 = 64 << 20;

/// The error for `what` being `size` bytes (or more) where `limit` is allowed.
fn too_large(what: &str, size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} is {size} bytes, larger than the {limit}-byte limit"),
    )
}

/// Reads `reader` whole, refusing more than `limit` bytes (without reading past them).
pub fn read_limited(reader: impl Read, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(&format!("{what} (at least)"), limit + 1, limit));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        assert_eq!(read_limited(&b"abcd"[..], 4, "x").unwrap(), b"abcd");
        let err = read_limited(&b"abcde"[..], 4, "manifest.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest.json (at least) is 5 bytes, larger than the 4-byte limit"
        );
    }
}
