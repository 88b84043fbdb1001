//! When and how long to wait before retrying a request: exponential backoff, or the server's `Retry-After`.

use std::time::Duration;

/// How many times a request is tried in all.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// The wait before try number `attempt + 1` (`attempt` counts from 1): 0.5 s doubling, at most 8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.saturating_sub(1).min(4))
}

/// The wait a response asks for with `Retry-After` in seconds (HTTP dates are treated as "soon"), capped at 60 s.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let seconds = value.trim().parse::<u64>().unwrap_or(1);
    Some(Duration::from_secs(seconds.min(60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(5), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(8));
    }
}
