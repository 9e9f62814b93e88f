//! Cleaned streams of the export's XML positioned at any offset, and the
//! pool that keeps streams for the next reader further on: any distance
//! for a zip (going back means inflating again), within a chunk for a
//! plain file (a delta's thousands of short runs then cost one read per
//! chunk, not one file opened and a chunk read per run).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Cleaning;
use super::clean::{LOOK_BEHIND, blank_illegal, blank_range};
use crate::error::{Error, Result};
use crate::source::ExportSource;

/// Bytes pulled from the source at a time.
const CHUNK: usize = 128 * 1024;
/// The least a reader asks for that is read from the source straight into
/// its buffer: worth a system call of its own, and under an upload body's
/// chunk (64 KiB, 256 KiB out of a zip).
const DIRECT_MIN: usize = 16 * 1024;
/// Idle streams kept (a zip's holds an inflater and its buffers, ~0.5 MiB).
const POOL_CAP: usize = 8;

/// What the bodies of one export share: the source, how to clean it, and
/// the idle streams.
pub(super) struct Shared {
    pub source: Arc<ExportSource>,
    pub cleaning: Cleaning,
    /// The `<!DOCTYPE …>` range cleaning blanks, if it is on and there is
    /// one.
    doctype: Option<(u64, u64)>,
    idle: Mutex<Vec<Stream>>,
    inflated: AtomicU64,
}

impl Shared {
    pub fn new(source: Arc<ExportSource>, cleaning: Cleaning, doctype: Option<(u64, u64)>) -> Self {
        Shared {
            source,
            cleaning,
            doctype: doctype.filter(|_| cleaning.is_on()),
            idle: Mutex::new(Vec::new()),
            inflated: AtomicU64::new(0),
        }
    }

    pub fn inflated(&self) -> u64 {
        self.inflated.load(Ordering::Relaxed)
    }

    /// A stream at `at`: the idle one closest before it (for a plain file,
    /// no more than a chunk before), moved forward, or a new one.
    pub fn acquire(&self, at: u64) -> Result<Stream> {
        let reach = if self.source.is_zip() {
            u64::MAX
        } else {
            CHUNK as u64
        };
        let pooled = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let best = idle
                .iter()
                .enumerate()
                .filter(|(_, s)| s.pos <= at && at - s.pos <= reach)
                .max_by_key(|(_, s)| s.pos)
                .map(|(i, _)| i);
            best.map(|i| idle.swap_remove(i))
        };
        let mut stream = match pooled {
            Some(stream) => stream,
            None => self.open(at)?,
        };
        stream
            .skip_to(at, self)
            .map_err(|e| Error::io(self.source.path(), e))?;
        Ok(stream)
    }

    /// Keeps a stream for a later reader.
    pub fn release(&self, stream: Stream) {
        if stream.at_end() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push(stream);
        if idle.len() > POOL_CAP {
            // The furthest back is the least likely to be wanted again.
            if let Some(i) = idle
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.pos)
                .map(|(i, _)| i)
            {
                idle.swap_remove(i);
            }
        }
    }

    /// A new stream at or before `at`.
    fn open(&self, at: u64) -> Result<Stream> {
        let path = self.source.path();
        if self.source.is_zip() {
            return Ok(Stream::new(self.source.open_xml()?, 0));
        }
        let from = if self.cleaning.scans() {
            at.saturating_sub(LOOK_BEHIND)
        } else {
            at
        };
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(from))
            .map_err(|e| Error::io(path, e))?;
        Ok(Stream::new(Box::new(file), from))
    }
}

/// The cleaned XML from a source offset on.
pub(super) struct Stream {
    inner: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    /// `buf[start..ready]` is final and not yet handed out; `buf[ready..end]`
    /// is raw, a pattern that may go on past `end`.
    start: usize,
    ready: usize,
    end: usize,
    /// The source offset of `buf[start]`.
    pos: u64,
    eof: bool,
}

impl Stream {
    fn new(inner: Box<dyn Read + Send>, pos: u64) -> Self {
        Stream {
            inner,
            buf: vec![0; CHUNK].into_boxed_slice(),
            start: 0,
            ready: 0,
            end: 0,
            pos,
            eof: false,
        }
    }

    fn at_end(&self) -> bool {
        self.eof && self.start == self.end
    }

    pub fn read(&mut self, out: &mut [u8], shared: &Shared) -> io::Result<usize> {
        // Nothing held back and a large read: into `out`, cleaned there,
        // sparing a copy of every byte.
        if self.start == self.end && !self.eof && out.len() >= DIRECT_MIN {
            let n = self.read_direct(out, shared)?;
            if n > 0 || self.eof {
                return Ok(n);
            }
        }
        let n = self.available(shared)?.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        Ok(n)
    }

    /// Reads from the source straight into `out`, cleans it there and
    /// keeps the raw tail (a pattern that may go on) for the next read.
    /// Only when nothing is held back, so `out[0]` is at `pos`.
    fn read_direct(&mut self, out: &mut [u8], shared: &Shared) -> io::Result<usize> {
        let n = loop {
            match self.inner.read(out) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if shared.source.is_zip() {
            shared.inflated.fetch_add(n as u64, Ordering::Relaxed);
        }
        if n == 0 {
            self.eof = true;
            return Ok(0);
        }
        if let Some(range) = shared.doctype {
            blank_range(&mut out[..n], self.pos, range);
        }
        let ready = if shared.cleaning.scans() {
            blank_illegal(&mut out[..n], 0, false)
        } else {
            n
        };
        // A pending pattern is a few bytes (`MAX_REF` at most).
        let held = n - ready;
        self.buf[..held].copy_from_slice(&out[ready..n]);
        self.start = 0;
        self.ready = 0;
        self.end = held;
        self.pos += ready as u64;
        Ok(ready)
    }

    fn skip_to(&mut self, at: u64, shared: &Shared) -> io::Result<()> {
        while self.pos < at {
            let left = at - self.pos;
            let n = self.available(shared)?.len();
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the XML ends at byte {}, before byte {at}; was the file changed since it was opened?",
                        self.pos
                    ),
                ));
            }
            self.consume(usize::try_from(left).unwrap_or(usize::MAX).min(n));
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// The final bytes at hand, pulling more when there are none; empty at
    /// the end of the XML.
    fn available(&mut self, shared: &Shared) -> io::Result<&[u8]> {
        while self.start == self.ready && !(self.eof && self.ready == self.end) {
            self.fill(shared)?;
        }
        Ok(&self.buf[self.start..self.ready])
    }

    fn fill(&mut self, shared: &Shared) -> io::Result<()> {
        // Only a pending pattern (a few bytes) is left to move.
        self.buf.copy_within(self.start..self.end, 0);
        let source_at = self.pos;
        self.end -= self.start;
        self.ready -= self.start;
        self.start = 0;
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if shared.source.is_zip() {
            shared.inflated.fetch_add(n as u64, Ordering::Relaxed);
        }
        let fresh = self.end;
        self.end += n;
        self.eof = n == 0;
        if let Some(range) = shared.doctype {
            let at = source_at + fresh as u64;
            blank_range(&mut self.buf[fresh..self.end], at, range);
        }
        self.ready = if shared.cleaning.scans() {
            blank_illegal(&mut self.buf[..self.end], self.ready, self.eof)
        } else {
            self.end
        };
        Ok(())
    }
}
