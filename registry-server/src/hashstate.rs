//! A sha256 whose running state can be saved and resumed, so that an upload continued on another replica (or after
//! a restart) need not re-read what it already received.
//!
//! The saved form is Go's `crypto/sha256` `MarshalBinary` encoding (magic `sha\x03`, the eight state words, the
//! pending block padded to 64 bytes, the message length; all big-endian), which is what CNCF Distribution stores as
//! `_uploads/<uuid>/hashstates/sha256/<offset>`.

use layerstore::{Algorithm, Digest};
use sha2::digest::generic_array::GenericArray;

const MAGIC: &[u8; 4] = b"sha\x03";
const MARSHALED_SIZE: usize = 4 + 32 + 64 + 8;
const INIT: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// A resumable sha256.
#[derive(Clone)]
pub struct Sha256State {
    state: [u32; 8],
    block: [u8; 64],
    pending: usize,
    length: u64,
}

impl Default for Sha256State {
    fn default() -> Sha256State {
        Sha256State {
            state: INIT,
            block: [0; 64],
            pending: 0,
            length: 0,
        }
    }
}

impl Sha256State {
    /// The number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Has nothing been hashed yet?
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Hashes more data.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if self.pending > 0 {
            let take = (64 - self.pending).min(data.len());
            self.block[self.pending..self.pending + take].copy_from_slice(&data[..take]);
            self.pending += take;
            data = &data[take..];
            if self.pending < 64 {
                return;
            }
            sha2::compress256(
                &mut self.state,
                &[GenericArray::clone_from_slice(&self.block)],
            );
            self.pending = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            let blocks: Vec<_> = data[..whole]
                .chunks_exact(64)
                .map(GenericArray::clone_from_slice)
                .collect();
            sha2::compress256(&mut self.state, &blocks);
        }
        let rest = &data[whole..];
        self.block[..rest.len()].copy_from_slice(rest);
        self.pending = rest.len();
    }

    /// The digest of everything hashed.
    pub fn finish(&self) -> Digest {
        let mut copy = self.clone();
        let bits = self.length.wrapping_mul(8);
        let mut padding = vec![0x80u8];
        let used = (self.pending + 1) % 64;
        let zeros = if used <= 56 { 56 - used } else { 120 - used };
        padding.resize(1 + zeros, 0);
        padding.extend_from_slice(&bits.to_be_bytes());
        copy.update(&padding);
        debug_assert_eq!(copy.pending, 0);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(copy.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Digest::from_bytes(Algorithm::Sha256, &out)
    }

    /// The saved form.
    pub fn marshal(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MARSHALED_SIZE);
        out.extend_from_slice(MAGIC);
        for word in self.state {
            out.extend_from_slice(&word.to_be_bytes());
        }
        let mut block = [0u8; 64];
        block[..self.pending].copy_from_slice(&self.block[..self.pending]);
        out.extend_from_slice(&block);
        out.extend_from_slice(&self.length.to_be_bytes());
        out
    }

    /// Reads a saved form; `None` when it is not one.
    pub fn unmarshal(bytes: &[u8]) -> Option<Sha256State> {
        if bytes.len() != MARSHALED_SIZE || &bytes[..4] != MAGIC {
            return None;
        }
        let mut state = [0u32; 8];
        for (i, word) in state.iter_mut().enumerate() {
            *word = u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().ok()?);
        }
        let mut block = [0u8; 64];
        block.copy_from_slice(&bytes[36..100]);
        let length = u64::from_be_bytes(bytes[100..108].try_into().ok()?);
        Some(Sha256State {
            state,
            block,
            pending: (length % 64) as usize,
            length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256_across_a_save_and_resume() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 55, 56, 63, 64, 65, 119, 128, 4097, 9999, 10_000] {
            let mut h = Sha256State::default();
            h.update(&data[..split]);
            let saved = h.marshal();
            let mut resumed = Sha256State::unmarshal(&saved).unwrap();
            assert_eq!(resumed.len(), split as u64);
            for piece in data[split..].chunks(37) {
                resumed.update(piece);
            }
            assert_eq!(
                resumed.finish(),
                Digest::sha256_of(&data),
                "split at {split}"
            );
            assert_eq!(Sha256State::default().finish(), Digest::sha256_of(b""),);
        }
        assert!(Sha256State::unmarshal(b"sha\x03short").is_none());
    }
}
