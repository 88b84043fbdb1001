//! `Range` request headers for blob downloads and `Content-Range` headers of chunked uploads.

use axum::http::{header, HeaderValue};

use super::hv;
use crate::error::{ApiError, Code};

/// An inclusive byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

fn unsatisfiable(size: u64) -> ApiError {
    ApiError::new(Code::RangeInvalid)
        .message("requested range not satisfiable")
        .header(header::CONTENT_RANGE, hv(format!("bytes */{size}")))
}

/// The single byte range a `Range` header asks of a blob of `size` bytes: `None` to send it whole (no header,
/// another unit, or several ranges), an error (416) when it is malformed or outside the blob.
pub fn requested(value: Option<&HeaderValue>, size: u64) -> Result<Option<ByteRange>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| unsatisfiable(size))?.trim();
    let Some(spec) = text.strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec
        .trim()
        .split_once('-')
        .ok_or_else(|| unsatisfiable(size))?;
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| unsatisfiable(size));
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Err(unsatisfiable(size)),
        (true, false) => {
            let suffix = number(last)?;
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable(size));
            }
            ByteRange {
                start: size.saturating_sub(suffix),
                end: size - 1,
            }
        }
        (false, open_end) => {
            let start = number(first)?;
            let end = if open_end { u64::MAX } else { number(last)? };
            if start > end || start >= size {
                return Err(unsatisfiable(size));
            }
            ByteRange {
                start,
                end: end.min(size - 1),
            }
        }
    };
    Ok(Some(range))
}

/// Parses an upload chunk's `Content-Range` (`<start>-<end>`, also accepting a `bytes ` or `bytes=` prefix and a
/// `/<total>` suffix).
pub fn content_range(value: &HeaderValue) -> Result<ByteRange, ApiError> {
    let invalid = || {
        ApiError::new(Code::RangeInvalid)
            .message("malformed Content-Range")
            .detail(String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or_default();
    let (start, end) = text.split_once('-').ok_or_else(invalid)?;
    let start: u64 = start.trim().parse().map_err(|_| invalid())?;
    let end: u64 = end.trim().parse().map_err(|_| invalid())?;
    if end < start {
        return Err(invalid());
    }
    Ok(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str, size: u64) -> Result<Option<(u64, u64)>, u16> {
        requested(Some(&HeaderValue::from_str(text).unwrap()), size)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.status.as_u16())
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=500-1499", 2048), Ok(Some((500, 1499))));
        assert_eq!(r("bytes=500-", 2048), Ok(Some((500, 2047))));
        assert_eq!(r("bytes=-500", 2048), Ok(Some((1548, 2047))));
        assert_eq!(r("bytes=2000-5000", 2048), Ok(Some((2000, 2047))));
        assert_eq!(r("bytes=500-0", 2048), Err(416));
        assert_eq!(r("bytes=5000-10000", 2048), Err(416));
        assert_eq!(r("bytes=abc", 2048), Err(416));
        assert_eq!(r("bytes=0-1,5-6", 2048), Ok(None));
        assert_eq!(r("items=0-1", 2048), Ok(None));
    }

    #[test]
    fn content_ranges() {
        let c = |t: &str| {
            content_range(&HeaderValue::from_str(t).unwrap())
                .map(|r| (r.start, r.end))
                .ok()
        };
        assert_eq!(c("0-99"), Some((0, 99)));
        assert_eq!(c("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(c("9-1"), None);
        assert_eq!(c("x"), None);
    }
}
