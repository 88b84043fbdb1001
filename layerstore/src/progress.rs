//! Progress reporting hooks, so library operations can drive bars or plain log lines without knowing which.

/// Receives progress of a long operation, item by item (an item is a blob, a layer, a file).
pub trait Progress: Sync {
    /// An item of `total` bytes (0 when unknown) starts.
    fn start(&self, _item: &str, _total: u64) {}
    /// `bytes` more bytes of the item are done.
    fn advance(&self, _item: &str, _bytes: u64) {}
    /// The item, started, is now in state `status` ("waiting", "pushing", ...), shown until the next state.
    fn status(&self, _item: &str, _status: &str) {}
    /// The item is done; `status` says how ("done", "exists", ...).
    fn finish(&self, _item: &str, _status: &str) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}

/// A reader that reports the bytes read through it.
pub struct ProgressReader<'a, R> {
    inner: R,
    item: &'a str,
    progress: &'a dyn Progress,
}

impl<'a, R> ProgressReader<'a, R> {
    /// Wraps `inner`, reporting each read to `progress` as `advance` of `item`.
    pub fn new(inner: R, item: &'a str, progress: &'a dyn Progress) -> Self {
        ProgressReader {
            inner,
            item,
            progress,
        }
    }
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(self.item, n as u64);
        Ok(n)
    }
}
