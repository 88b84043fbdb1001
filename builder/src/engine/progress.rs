//! A step's byte counts ([`Transfer`]s), passed to the reporter as they grow — at most every [`INTERVAL`], so that
//! a context of many small files does not redraw the display per file — and once more when the transfer is over.

use std::time::{Duration, Instant};

use super::{Reporter, Transfer, TransferProgress};

/// How often a growing count is reported.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// The running count of one transfer of one step.
pub(super) struct ByteCounter<'r> {
    reporter: &'r dyn Reporter,
    id: usize,
    transfer: Transfer,
    bytes: u64,
    started: Instant,
    reported: Option<Instant>,
}

impl<'r> ByteCounter<'r> {
    pub(super) fn new(reporter: &'r dyn Reporter, id: usize, transfer: Transfer) -> Self {
        ByteCounter {
            reporter,
            id,
            transfer,
            bytes: 0,
            started: Instant::now(),
            reported: None,
        }
    }

    /// Counts `bytes` more; reports the total unless nothing was added or it was reported less than [`INTERVAL`]
    /// ago.
    pub(super) fn add(&mut self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.bytes += bytes;
        if self.reported.is_none_or(|at| at.elapsed() >= INTERVAL) {
            self.reported = Some(Instant::now());
            self.report(false);
        }
    }

    /// The transfer is over: reports the total, done.
    pub(super) fn finish(self) {
        self.report(true);
    }

    fn report(&self, done: bool) {
        let progress = TransferProgress {
            transfer: self.transfer,
            bytes: self.bytes,
            elapsed: self.started.elapsed(),
            done,
        };
        self.reporter.bytes(self.id, &progress);
    }
}
