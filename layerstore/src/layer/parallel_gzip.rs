//! Gzip on every core, the way pigz does it: the stream is cut into 1 MiB blocks, each block is deflated on its own
//! worker thread (primed with the previous block's last 32 KiB as dictionary, and ended with a sync flush so blocks
//! concatenate), and the writer emits the gzip header, the blocks in order, and a trailer with the CRC-32 combined from
//! the blocks' CRCs. The result is one ordinary gzip member that any decoder reads.
//!
//! Blocks that sampling shows to be incompressible (already compressed files, random data) are written as stored
//! deflate blocks instead of being searched for matches that are not there: on such data that is the difference between
//! ~30 MB/s and memory speed, at a cost of at most a few percent of size when the sample misjudges a block.
//!
//! Layers smaller than one block never start a thread. At most two blocks per worker are in flight, so memory stays
//! bounded whatever the layer's size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;

use flate2::{Compress, Compression, FlushCompress, Status};

/// Uncompressed bytes per block.
const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: how much of the previous block primes the next one.
const DICTIONARY_SIZE: usize = 32 << 10;
/// The largest stored deflate block.
const MAX_STORED: usize = 65_535;
/// Bytes compressed from each sampled spot of a block to judge whether it compresses.
const SAMPLE_SIZE: usize = 16 << 10;
/// A sample that deflates to more than this fraction of its size counts as incompressible.
const INCOMPRESSIBLE_RATIO: f64 = 0.97;

/// A writer of one gzip member, compressed by a pool of worker threads.
pub struct ParallelGzipWriter<W: Write> {
    inner: W,
    level: Compression,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    pool: Option<Pool>,
    in_flight: VecDeque<Receiver<io::Result<Compressed>>>,
    header_written: bool,
}

/// A block's deflate output and the CRC-32 of its input.
struct Compressed {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// A block to compress, with where to send the result.
struct Job {
    data: Vec<u8>,
    dictionary: Vec<u8>,
    level: Compression,
    last: bool,
    reply: SyncSender<io::Result<Compressed>>,
}

struct Pool {
    jobs: SyncSender<Job>,
    workers: usize,
}

impl<W: Write> ParallelGzipWriter<W> {
    /// Wraps `inner`, compressing at `level` in 1 MiB blocks spread over a pool of worker threads; the output is a single gzip member any reader accepts.
    pub fn new(inner: W, level: Compression) -> Self {
        ParallelGzipWriter {
            inner,
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            pool: None,
            in_flight: VecDeque::new(),
            header_written: false,
        }
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let last = std::mem::take(&mut self.block);
        if self.pool.is_none() {
            let compressed = compress_block(&last, &self.dictionary, self.level, true)?;
            self.emit(compressed)?;
        } else {
            self.submit(last, true)?;
            while !self.in_flight.is_empty() {
                self.collect_oldest()?;
            }
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        Ok(self.inner)
    }

    /// Hands a full block to the pool, keeping at most two blocks per worker in flight.
    fn submit(&mut self, data: Vec<u8>, last: bool) -> io::Result<()> {
        let dictionary = std::mem::replace(
            &mut self.dictionary,
            data[data.len().saturating_sub(DICTIONARY_SIZE)..].to_vec(),
        );
        let pool = self.pool.get_or_insert_with(Pool::start);
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job {
            data,
            dictionary,
            level: self.level,
            last,
            reply,
        };
        pool.jobs
            .send(job)
            .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
        let most_in_flight = 2 * pool.workers;
        self.in_flight.push_back(result);
        while self.in_flight.len() > most_in_flight {
            self.collect_oldest()?;
        }
        Ok(())
    }

    fn collect_oldest(&mut self) -> io::Result<()> {
        let Some(result) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let compressed = result
            .recv()
            .map_err(|_| io::Error::other("a gzip worker thread died"))??;
        self.emit(compressed)
    }

    fn emit(&mut self, compressed: Compressed) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&gzip_header(self.level))?;
            self.header_written = true;
        }
        self.crc.combine(&compressed.crc);
        self.inner.write_all(&compressed.deflated)
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.total_in += n as u64;
        if self.block.len() == BLOCK_SIZE {
            let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
            self.submit(full, false)?;
        }
        Ok(n)
    }

    /// Writes out the blocks already compressed; the block being filled stays until it is full or the stream ends.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Pool {
    fn start() -> Pool {
        let workers = thread::available_parallelism().map_or(1, |n| n.get());
        let (jobs, queue) = mpsc::sync_channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..workers {
            let queue = Arc::clone(&queue);
            thread::spawn(move || loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let result = compress_block(&job.data, &job.dictionary, job.level, job.last);
                let _ = job.reply.send(result);
            });
        }
        Pool { jobs, workers }
    }
}

/// The ten-byte gzip header: deflate, no name, no mtime (so output is reproducible), OS unknown.
fn gzip_header(level: Compression) -> [u8; 10] {
    let xfl = match level.level() {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Deflates one block as raw deflate, ending byte-aligned (sync flush) or, for the last block, with the final block.
fn compress_block(
    data: &[u8],
    dictionary: &[u8],
    level: Compression,
    last: bool,
) -> io::Result<Compressed> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let deflated = if looks_incompressible(data, level) {
        stored_blocks(data, last)
    } else {
        deflate(data, dictionary, level, last)?
    };
    Ok(Compressed { deflated, crc })
}

fn deflate(data: &[u8], dictionary: &[u8], level: Compression, last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(level, false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 << 10));
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        let done = match status {
            Status::StreamEnd => true,
            _ if last => false,
            // A sync flush is complete when the input is consumed and the output was not filled.
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
    }
}

/// Whether deflate would gain nothing on this block, judged by compressing a few spots of it.
fn looks_incompressible(data: &[u8], level: Compression) -> bool {
    if data.len() < 4 * SAMPLE_SIZE || level.level() == 0 {
        return level.level() == 0;
    }
    let spots = [0, data.len() / 2, data.len() - SAMPLE_SIZE];
    spots.iter().all(|&start| {
        let sample = &data[start..start + SAMPLE_SIZE];
        let mut compress = Compress::new(level, false);
        let mut out = Vec::with_capacity(SAMPLE_SIZE + 1024);
        match compress.compress_vec(sample, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => out.len() as f64 > sample.len() as f64 * INCOMPRESSIBLE_RATIO,
            _ => false,
        }
    })
}

/// The block as stored (uncompressed) deflate blocks; the final one marked last when this is the stream's end.
fn stored_blocks(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / MAX_STORED + 1));
    let mut chunks = data.chunks(MAX_STORED).peekable();
    if chunks.peek().is_none() && last {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let is_final = last && chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(is_final));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn pseudo_random(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // A single-member decoder: the output must be one gzip member, not a concatenation.
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut w = ParallelGzipWriter::new(Vec::new(), Compression::default());
        for chunk in data.chunks(write_size.max(1)) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_through_a_standard_decoder() {
        let text = b"a line of text that repeats\n".repeat(200_000);
        let mut mixed = pseudo_random(3 * BLOCK_SIZE + 12_345, 7);
        mixed.extend_from_slice(&text);
        mixed.extend(pseudo_random(100, 9));
        for data in [Vec::new(), b"x".to_vec(), text.clone(), mixed] {
            for write_size in [1 << 16, 777_777] {
                let gz = gzip(&data, write_size);
                assert_eq!(gunzip(&gz), data, "{} bytes", data.len());
            }
        }
    }

    #[test]
    fn compresses_text_and_stores_random_data() {
        let text = b"a line of text that repeats\n".repeat(200_000);
        assert!(gzip(&text, 1 << 16).len() < text.len() / 50);
        let random = pseudo_random(4 * BLOCK_SIZE, 3);
        let gz = gzip(&random, 1 << 16);
        assert!(gz.len() > random.len() && gz.len() < random.len() + random.len() / 100);
    }

    #[test]
    fn output_is_deterministic() {
        let mut data = pseudo_random(2 * BLOCK_SIZE, 5);
        data.extend(b"some text ".repeat(300_000));
        assert_eq!(gzip(&data, 1 << 16), gzip(&data, 999));
    }
}
