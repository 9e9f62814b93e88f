//! Inflating a zipped export on a thread of its own, a few chunks ahead of
//! the parser: inflate and CRC took a fifth of the parser's thread, and the
//! two pipeline on separate cores.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per chunk handed over.
const CHUNK: usize = 256 * 1024;
/// Chunks inflated ahead of the parser: 1 MiB at most in flight.
const AHEAD: usize = 4;

/// `inner`, read on another thread. The thread ends at the stream's end or
/// error, or as soon as the returned reader is dropped (a finished,
/// failed or cancelled read). Where no thread can be started, `inner` is
/// read in place.
pub(super) fn read_ahead(inner: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    let (full_tx, full_rx) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(inner)));
    let taken = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("export-inflate".into())
        .spawn(move || {
            let inner = taken.lock().ok().and_then(|mut s| s.take());
            if let Some(inner) = inner {
                fill(inner, &full_tx, &empty_rx);
            }
        });
    match spawned {
        Ok(_) => Box::new(Ahead {
            full: full_rx,
            empty: empty_tx,
            chunk: Vec::new(),
            at: 0,
            done: false,
        }),
        // The closure never ran: the stream is still in the slot.
        Err(_) => match slot.lock().ok().and_then(|mut s| s.take()) {
            Some(inner) => inner,
            None => Box::new(io::empty()),
        },
    }
}

fn fill(
    mut inner: Box<dyn Read + Send>,
    full: &SyncSender<io::Result<Vec<u8>>>,
    empty: &Receiver<Vec<u8>>,
) {
    loop {
        let mut chunk = empty.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let mut filled = 0;
        let outcome = loop {
            match inner.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        let (last, sent) = match outcome {
            Ok(end) => (end, full.send(Ok(chunk))),
            Err(e) => {
                // What was read before the error is handed over first (an
                // empty chunk would read as the end).
                if !chunk.is_empty() {
                    let _ = full.send(Ok(chunk));
                }
                (true, full.send(Err(e)))
            }
        };
        if last || sent.is_err() {
            return;
        }
    }
}

struct Ahead {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.full.recv() {
                Ok(next) => next?,
                // The thread ended after the last chunk.
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            };
            let used = std::mem::replace(&mut self.chunk, next);
            let _ = self.empty.try_send(used);
            self.at = 0;
            if self.chunk.is_empty() {
                self.done = true;
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
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

    #[test]
    fn every_byte_arrives_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        read_ahead(Box::new(io::Cursor::new(data.clone())))
            .read_to_end(&mut out)
            .ok();
        assert_eq!(out, data);
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let data: Vec<u8> = vec![7; CHUNK + 10];
        let mut ahead = read_ahead(Box::new(Failing {
            data: io::Cursor::new(data.clone()),
        }));
        let mut out = Vec::new();
        let err = ahead.read_to_end(&mut out).err();
        assert_eq!(out, data);
        assert_eq!(err.map(|e| e.to_string()), Some("cut".to_string()));
    }
}
