//! The export's bytes, read (and for a zip, inflated) on a thread of its
//! own a few chunks ahead of the parser, and counted, hashed, held to
//! [`MAX_MARKUP_RUN`](super::MAX_MARKUP_RUN) and watched for what an
//! upload's cleaning would blank there too. The parser's thread
//! sets the pace of an ingest: the file's copies out of the kernel, the
//! hashing and the inflating took a tenth of it (a third for a zip), and the
//! two pipeline on separate cores. The chunks reach the parser as they are,
//! through [`BufRead`], without another copy.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use xxhash_rust::xxh3::Xxh3;

use super::bounds::markup_run;
use crate::outgoing::PatternWatch;

/// Bytes per chunk handed over.
const CHUNK: usize = 256 * 1024;
/// Chunks queued ahead of the parser: with the one being filled and the
/// one being parsed, about 1.5 MiB in flight.
const AHEAD: usize = 4;

/// Every byte of a stream that reached its end: how many, their hash,
/// and whether none could be a character XML forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) bytes: u64,
    pub(super) hash: u128,
    pub(super) no_forbidden_chars: bool,
}

/// What the reading side hands over.
enum Piece {
    Bytes(Vec<u8>),
    End(Tally),
    Failed(io::Error),
}

/// Reads a stream chunk by chunk, counting, hashing and bounding it.
struct Filler {
    inner: Box<dyn Read + Send>,
    hasher: Xxh3,
    bytes: u64,
    /// Bytes since the last `<` or `>`.
    run: u64,
    patterns: PatternWatch,
}

impl Filler {
    fn new(inner: Box<dyn Read + Send>) -> Filler {
        Filler {
            inner,
            hasher: Xxh3::new(),
            bytes: 0,
            run: 0,
            patterns: PatternWatch::default(),
        }
    }

    /// Fills `chunk` (up to [`CHUNK`] bytes) from the stream. `Ok(true)`
    /// once the stream has ended. On a read error `chunk` holds what came
    /// before it; on a markup run too long, the bytes that made it so.
    fn fill(&mut self, chunk: &mut Vec<u8>) -> io::Result<bool> {
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        let ended = loop {
            match self.inner.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == CHUNK {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        self.hasher.update(chunk);
        self.patterns.feed(chunk);
        self.bytes += filled as u64;
        self.run = markup_run(self.run, chunk)?;
        ended
    }

    fn tally(&self) -> Tally {
        Tally {
            bytes: self.bytes,
            hash: self.hasher.digest128(),
            no_forbidden_chars: self.patterns.nothing_seen(),
        }
    }

    /// The reading thread: chunks until the end, an error, or the parser
    /// gone.
    fn run(mut self, full: &SyncSender<Piece>, empty: &Receiver<Vec<u8>>) {
        loop {
            let mut chunk = empty.try_recv().unwrap_or_default();
            let filled = self.fill(&mut chunk);
            // What was read before an error is handed over first (an empty
            // chunk is never sent).
            if !chunk.is_empty() && full.send(Piece::Bytes(chunk)).is_err() {
                return;
            }
            let last = match filled {
                Ok(false) => continue,
                Ok(true) => Piece::End(self.tally()),
                Err(e) => Piece::Failed(e),
            };
            let _ = full.send(last);
            return;
        }
    }
}

/// Where the chunks come from.
enum Chunks {
    Thread {
        full: Receiver<Piece>,
        empty: SyncSender<Vec<u8>>,
    },
    /// No thread could be started: read in place. An error waits until
    /// the bytes before it are taken.
    Here {
        filler: Box<Filler>,
        failed: Option<io::Error>,
    },
}

/// A stream read ahead, as [`BufRead`].
pub(super) struct Ahead {
    chunks: Chunks,
    chunk: Vec<u8>,
    at: usize,
    consumed: u64,
    tally: Option<Tally>,
    done: bool,
}

/// `inner`, read on another thread. The thread ends at the stream's end or
/// error, or at its next chunk once the returned reader is dropped (a
/// finished, failed or cancelled read).
pub(super) fn read_ahead(inner: Box<dyn Read + Send>) -> Ahead {
    let filler = Filler::new(inner);
    let (full_tx, full_rx) = sync_channel::<Piece>(AHEAD);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(filler)));
    let taken = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("export-read".into())
        .spawn(move || {
            let filler = taken.lock().ok().and_then(|mut s| s.take());
            if let Some(filler) = filler {
                filler.run(&full_tx, &empty_rx);
            }
        });
    let chunks = match spawned {
        Ok(_) => Chunks::Thread {
            full: full_rx,
            empty: empty_tx,
        },
        // The closure never ran: the stream is still in the slot.
        Err(_) => Chunks::Here {
            filler: Box::new(
                slot.lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .unwrap_or_else(|| Filler::new(Box::new(io::empty()))),
            ),
            failed: None,
        },
    };
    Ahead::new(chunks)
}

impl Ahead {
    fn new(chunks: Chunks) -> Ahead {
        Ahead {
            chunks,
            chunk: Vec::new(),
            at: 0,
            consumed: 0,
            tally: None,
            done: false,
        }
    }

    /// Bytes the parser has taken so far.
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Every byte's count and hash, once the parser has read to the end.
    pub(super) fn tally(&self) -> Option<Tally> {
        self.tally
    }

    fn next_piece(&mut self) -> Piece {
        match &mut self.chunks {
            Chunks::Thread { full, .. } => full.recv().unwrap_or_else(|_| {
                Piece::Failed(io::Error::other("the export's reading thread stopped"))
            }),
            Chunks::Here { filler, failed } => {
                if let Some(e) = failed.take() {
                    return Piece::Failed(e);
                }
                let mut chunk = std::mem::take(&mut self.chunk);
                self.at = 0;
                match filler.fill(&mut chunk) {
                    Ok(true) if chunk.is_empty() => Piece::End(filler.tally()),
                    Ok(_) => Piece::Bytes(chunk),
                    Err(e) if chunk.is_empty() => Piece::Failed(e),
                    Err(e) => {
                        *failed = Some(e);
                        Piece::Bytes(chunk)
                    }
                }
            }
        }
    }
}

impl BufRead for Ahead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.chunk.len() && !self.done {
            match self.next_piece() {
                Piece::Bytes(next) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    if let Chunks::Thread { empty, .. } = &self.chunks {
                        let _ = empty.try_send(used);
                    }
                    self.at = 0;
                }
                Piece::End(tally) => {
                    self.tally = Some(tally);
                    self.done = true;
                }
                Piece::Failed(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        Ok(&self.chunk[self.at..])
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.chunk.len() - self.at);
        self.at += amount;
        self.consumed += amount as u64;
    }
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data`, then fails.
    struct Failing {
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 => Err(io::Error::other("cut")),
                n => Ok(n),
            }
        }
    }

    /// The same stream read ahead on a thread, and read in place.
    fn both(data: impl Fn() -> Box<dyn Read + Send>) -> [Ahead; 2] {
        let here = Chunks::Here {
            filler: Box::new(Filler::new(data())),
            failed: None,
        };
        [read_ahead(data()), Ahead::new(here)]
    }

    fn hash(data: &[u8]) -> u128 {
        let mut hasher = Xxh3::new();
        hasher.update(data);
        hasher.digest128()
    }

    #[test]
    fn every_byte_arrives_in_order_and_is_counted_and_hashed() {
        let data: Vec<u8> = (0..3 * CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let want = Tally {
            bytes: data.len() as u64,
            hash: hash(&data),
            no_forbidden_chars: false,
        };
        for mut ahead in both(|| Box::new(io::Cursor::new(data.clone()))) {
            let mut out = Vec::new();
            ahead.read_to_end(&mut out).ok();
            assert_eq!(out, data);
            assert_eq!(ahead.consumed(), data.len() as u64);
            assert_eq!(ahead.tally(), Some(want));
        }
    }

    #[test]
    fn a_stream_is_tallied_free_of_forbidden_characters_only_when_it_is() {
        let plain = b"<a b=\"&lt;x&gt;\">\t text\r\n</a>".repeat(20_000);
        assert!(plain.len() > 2 * CHUNK);
        let mut dirty = plain.clone();
        let near_the_end = dirty.len() - 3;
        dirty[near_the_end] = 0x0B;
        for (data, free) in [(plain, true), (dirty, false)] {
            for mut ahead in both(|| Box::new(io::Cursor::new(data.clone()))) {
                io::copy(&mut ahead, &mut io::sink()).ok();
                let tally = ahead.tally().map(|t| t.no_forbidden_chars);
                assert_eq!(tally, Some(free));
            }
        }
    }

    #[test]
    fn no_tally_before_the_end() {
        let data = vec![b'<'; 2 * CHUNK];
        for mut ahead in both(|| Box::new(io::Cursor::new(data.clone()))) {
            let mut head = [0u8; 10];
            ahead.read_exact(&mut head).ok();
            assert_eq!(ahead.consumed(), 10);
            assert_eq!(ahead.tally(), None, "a partial read has no fingerprint");
        }
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let data: Vec<u8> = vec![7; CHUNK + 10];
        let failing = || -> Box<dyn Read + Send> {
            Box::new(Failing {
                data: io::Cursor::new(data.clone()),
            })
        };
        for mut ahead in both(failing) {
            let mut out = Vec::new();
            let err = ahead.read_to_end(&mut out).err();
            assert_eq!(out, data);
            assert_eq!(err.map(|e| e.to_string()), Some("cut".to_string()));
            assert_eq!(ahead.tally(), None);
        }
    }

    #[test]
    fn a_markup_run_too_long_is_refused_on_the_reading_side() {
        let data = vec![b'x'; 3 * CHUNK];
        let mut filler = Filler::new(Box::new(io::Cursor::new(data)));
        filler.run = super::super::MAX_MARKUP_RUN - CHUNK as u64;
        let mut chunk = Vec::new();
        assert!(filler.fill(&mut chunk).is_ok(), "up to the bound");
        let err = filler.fill(&mut chunk).err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
    }
}
