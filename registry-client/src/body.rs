//! Response bodies read whole (manifests, tokens, error documents) with a size limit, chunk by chunk.

use reqwest::Response;

/// A body over its limit: `at_least` bytes had arrived (or the `Content-Length` said so).
pub(crate) struct TooLarge {
    pub at_least: u64,
}

/// Reads `response`'s body whole, refusing (without reading further) one larger than `limit` bytes.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: u64,
) -> Result<Result<Vec<u8>, TooLarge>, reqwest::Error> {
    if let Some(length) = response.content_length().filter(|&l| l > limit) {
        return Ok(Err(TooLarge { at_least: length }));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Ok(Err(TooLarge {
                at_least: body.len() as u64,
            }));
        }
    }
    Ok(Ok(body))
}
