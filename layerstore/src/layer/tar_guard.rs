//! A guard in front of every tar reader: refuses over-long extension headers before the `tar` crate reads them.
//!
//! The `tar` crate reads a PAX extended header (`x`, `g`) or a GNU long name or long link (`L`, `K`) whole into
//! memory, whatever size its header claims, so a layer claiming a 1 GiB name costs 1 GiB of memory. [`TarGuard`]
//! follows the archive's structure as the bytes pass through it (headers, extension blocks of GNU sparse files, data
//! padded to 512-byte blocks, PAX `size` overrides) and fails the read that would deliver such a header, so the
//! reader behind it never sees it. The limit is Go's `archive/tar` limit for these headers (1 MiB), which is what
//! Docker and BuildKit read layers with.
//!
//! Use [`archive`] instead of `tar::Archive::new` for any tar that did not come from this process.

use std::io::{self, Read};

/// The largest PAX header or GNU long name/link accepted, as in Go's `archive/tar` (`maxSpecialFileSize`).
pub const MAX_EXTENSION_HEADER: u64 = 1 << 20;

const BLOCK: usize = 512;

/// A `tar::Archive` reading through a [`TarGuard`].
pub fn archive<R: Read>(reader: R) -> tar::Archive<TarGuard<R>> {
    tar::Archive::new(TarGuard::new(reader))
}

/// Passes a tar stream through unchanged, failing with `InvalidData` where an extension header is too long.
pub struct TarGuard<R> {
    inner: R,
    state: State,
    /// The bytes of the header (or sparse extension block) being collected.
    block: Box<[u8; BLOCK]>,
    filled: usize,
    /// The `size` a PAX header set for the next entry, once its data has passed.
    pax_size: Option<u64>,
    /// The data of the PAX header passing through, kept to read its `size` record.
    pax_data: Option<Vec<u8>>,
}

#[derive(Clone, Copy)]
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Collecting a GNU sparse extension block, after which `data` bytes (unpadded) follow.
    SparseExtension { data: u64 },
    /// Passing `left` bytes of entry data and padding.
    Data { left: u64 },
    /// A violation was found: every further read fails.
    Failed,
}

impl<R: Read> TarGuard<R> {
    /// Guards the tar stream `inner`.
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header,
            block: Box::new([0; BLOCK]),
            filled: 0,
            pax_size: None,
            pax_data: None,
        }
    }

    /// Follows the archive structure over `bytes`, which are about to be handed on.
    fn inspect(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.state {
                State::Failed => return Err(refused("an earlier header was refused")),
                State::Data { left } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    if let Some(pax) = self.pax_data.as_mut() {
                        pax.extend_from_slice(&bytes[..take]);
                    }
                    bytes = &bytes[take..];
                    let left = left - take as u64;
                    self.state = State::Data { left };
                    if left == 0 {
                        self.finish_data();
                        self.state = State::Header;
                    }
                }
                State::Header | State::SparseExtension { .. } => {
                    let take = (BLOCK - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.state = match self.state {
                            State::Header => self.after_header()?,
                            State::SparseExtension { data } => self.after_sparse_extension(data),
                            _ => unreachable!("only block states collect blocks"),
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// The state after a complete header block.
    fn after_header(&mut self) -> io::Result<State> {
        let header = &self.block[..];
        if header.iter().all(|&b| b == 0) {
            return Ok(State::Header);
        }
        let kind = header[156];
        let mut size = parse_number(&header[124..136])
            .ok_or_else(|| refused("a header's size field is not a number"))?;
        if matches!(kind, b'x' | b'g' | b'L' | b'K') && size > MAX_EXTENSION_HEADER {
            let what = match kind {
                b'x' | b'g' => "PAX extended header",
                b'L' => "GNU long name",
                _ => "GNU long link name",
            };
            return Err(refused(&format!(
                "a {what} of {size} bytes is larger than the {MAX_EXTENSION_HEADER}-byte limit"
            )));
        }
        // The `tar` crate reads `x`, `L` and `K` of recognized headers as extensions of the next member; anything
        // else is a member, which takes a pending PAX `size` unless it is itself of an extension type.
        let recognized = is_recognized(header);
        let extends_next = recognized && matches!(kind, b'x' | b'L' | b'K');
        if !extends_next {
            let pending = self.pax_size.take();
            if !matches!(kind, b'x' | b'g' | b'L' | b'K') {
                size = pending.unwrap_or(size);
            }
        }
        if recognized && kind == b'x' {
            self.pax_data = Some(Vec::with_capacity(size as usize));
        }
        // A GNU sparse header continues in extension blocks before its data.
        let sparse_extended = kind == b'S' && header[482] != 0;
        if sparse_extended {
            return Ok(State::SparseExtension { data: size });
        }
        Ok(self.data_state(size))
    }

    /// The state after a GNU sparse extension block.
    fn after_sparse_extension(&mut self, data: u64) -> State {
        if self.block[504] != 0 {
            State::SparseExtension { data }
        } else {
            self.data_state(data)
        }
    }

    /// Passing `size` bytes of data and the padding to the next block.
    fn data_state(&mut self, size: u64) -> State {
        let padded = size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64);
        if padded == 0 {
            self.finish_data();
            State::Header
        } else {
            State::Data { left: padded }
        }
    }

    /// At the end of an entry's data: a PAX header's `size` record applies to the next entry.
    fn finish_data(&mut self) {
        if let Some(records) = self.pax_data.take() {
            self.pax_size = pax_size(&records);
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if matches!(self.state, State::Failed) {
            return Err(refused("an earlier header was refused"));
        }
        let n = self.inner.read(buf)?;
        if let Err(e) = self.inspect(&buf[..n]) {
            self.state = State::Failed;
            return Err(e);
        }
        Ok(n)
    }
}

fn refused(reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("refusing tar archive: {reason}"),
    )
}

/// A tar numeric field, read exactly as the `tar` crate reads it: octal text up to the first NUL, trimmed, or (with
/// the high bit of the first byte set) the last 8 bytes as a big-endian number.
fn parse_number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let last: [u8; 8] = field[field.len() - 8..].try_into().ok()?;
        return Some(u64::from_be_bytes(last));
    }
    let text = field.split(|&b| b == 0).next().unwrap_or(&[]);
    u64::from_str_radix(std::str::from_utf8(text).ok()?.trim(), 8).ok()
}

/// The `size` record of PAX extended header data, read exactly as the `tar` crate reads it: lines of
/// `LEN key=value`, the first `size` record wins, and a malformed line before it means none.
fn pax_size(records: &[u8]) -> Option<u64> {
    for line in records.split(|&b| b == b'\n') {
        if line.is_empty() {
            return None;
        }
        let space = line.iter().position(|&b| b == b' ')?;
        let reported: usize = std::str::from_utf8(&line[..space]).ok()?.parse().ok()?;
        if line.len() + 1 != reported {
            return None;
        }
        let record = &line[space + 1..];
        let equals = record.iter().position(|&b| b == b'=')?;
        if &record[..equals] == b"size" {
            return std::str::from_utf8(&record[equals + 1..])
                .ok()?
                .parse()
                .ok();
        }
    }
    None
}

/// Whether a header is one the `tar` crate treats as ustar or GNU (only those carry extension headers for it).
fn is_recognized(header: &[u8]) -> bool {
    let (magic, version) = (&header[257..263], &header[263..265]);
    (magic == b"ustar\0" && version == b"00") || (magic == b"ustar " && version == b" \0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    /// A tar whose first header claims a `size`-byte extension of kind `kind`, with only a little data after it.
    fn bomb(kind: u8, size: u64) -> Vec<u8> {
        let mut out = header("././@LongLink", tar::EntryType::new(kind), size)
            .as_bytes()
            .to_vec();
        out.extend(std::iter::repeat_n(b'a', 4096));
        out
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    fn read_all_entries(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in archive(bytes).entries()? {
            let mut entry = entry?;
            names.push(entry.path()?.to_string_lossy().into_owned());
            io::copy(&mut entry, &mut io::sink())?;
        }
        Ok(names)
    }

    #[test]
    fn over_long_extension_headers_are_refused_before_they_are_read() {
        for kind in [b'x', b'g', b'L', b'K'] {
            let err = read_all_entries(&bomb(kind, 1 << 30)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{}", kind as char);
            assert!(err.to_string().contains("1073741824 bytes"), "{err}");
        }
    }

    #[test]
    fn ordinary_archives_pass_unchanged() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = "d/".repeat(200) + "file";
        let mut h = header("x", tar::EntryType::Regular, 5);
        builder.append_data(&mut h, &long, &b"hello"[..]).unwrap();
        let mut h = header("link", tar::EntryType::Symlink, 0);
        builder
            .append_link(&mut h, "link", "t/".repeat(100) + "target")
            .unwrap();
        let mut h = header("big", tar::EntryType::Regular, 70_000);
        builder
            .append_data(&mut h, "big", &vec![7u8; 70_000][..])
            .unwrap();
        let mut h = header("empty", tar::EntryType::Regular, 0);
        builder.append_data(&mut h, "empty", &b""[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        let names = read_all_entries(&bytes).unwrap();
        assert_eq!(
            names,
            vec![long, "link".into(), "big".into(), "empty".into()]
        );
        let mut passed = Vec::new();
        TarGuard::new(&bytes[..]).read_to_end(&mut passed).unwrap();
        assert_eq!(passed, bytes);
    }

    #[test]
    fn pax_size_overrides_are_followed() {
        // A PAX header whose `size` record says the next entry is bigger than its ustar header claims.
        let records = b"15 size=100000\n";
        let mut bytes = header("pax", tar::EntryType::XHeader, records.len() as u64)
            .as_bytes()
            .to_vec();
        bytes.extend(padded(records));
        bytes.extend(header("big", tar::EntryType::Regular, 0).as_bytes());
        bytes.extend(padded(&[1u8; 100_000]));
        // A bomb after the big entry must still be found where it is.
        bytes.extend(bomb(b'L', 1 << 30));
        let err = read_all_entries(&bytes).unwrap_err();
        assert!(err.to_string().contains("GNU long name"), "{err}");
    }

    #[test]
    fn numbers_are_read_as_tar_writes_them() {
        assert_eq!(parse_number(b"00000001750\0"), Some(1000));
        assert_eq!(parse_number(b"     17 \0\0\0\0"), Some(15));
        assert_eq!(parse_number(b"0\0\0\0"), Some(0));
        assert_eq!(
            parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(parse_number(b"12x"), None);
    }
}
