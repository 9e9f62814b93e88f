//! The exact bytes an uploader sends: the export's XML as one body, or cut
//! into pieces that are each a valid export on their own, readable from any
//! offset with the length known up front.
//!
//! **Cleaning is length-preserving.** A strict XML parser rejects what real
//! exports contain: the malformed DTD of iOS 16 and characters XML 1.0
//! forbids (U+000B, `&#11;`, …). A cleaned body has the `<!DOCTYPE …>`
//! overwritten with spaces, and every forbidden character (C0 controls but
//! TAB, LF and CR; U+FFFE and U+FFFF; character references to code points
//! outside XML's `Char`) overwritten with one space per byte. Nothing else
//! changes. So the size is known without a pass over the file, and byte N of
//! a cleaned body is byte N of the export: parts and resumes map 1:1.
//! References longer than 32 bytes (padding zeros) are left as they are.
//!
//! **Splitting** ([`Outgoing::split`]) scans the XML once for the ends of
//! the top-level children of `<HealthData>` and packs whole elements into
//! pieces: each is the export's header as written (prolog, `<HealthData …>`,
//! the leading `ExportDate` and `Me`), a run of elements, and
//! `</HealthData>`. An element is never cut.
//!
//! **Readers** ([`Outgoing::reader_at`]) seek in a plain file. Inside a zip
//! they cannot, so a body keeps the inflating streams its readers leave
//! behind, and the next reader starts from the closest one before its offset
//! instead of inflating from the start: reading a body part by part in order
//! inflates it a few times over at most, not once per part.

mod clean;
mod selected;
mod split;
mod stream;

use std::io::{self, Read};
use std::sync::Arc;

use owi_progress::{CancelToken, Part, ProgressSink};

use crate::error::{Error, Result};
use crate::prolog;
use crate::read::prolog_error;
use crate::source::ExportSource;
pub(crate) use clean::PatternWatch;
pub use selected::SelectedPiece;
use split::TAIL;
use stream::{Shared, Stream};

/// Headers up to this size are kept in memory rather than read again for
/// every piece (Apple's prolog and `Me` are a few KB).
const HEAD_CACHE_MAX: u64 = 1 << 20;

/// How a body is cleaned for strict parsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleaning {
    /// The XML as it is.
    Off,
    /// The DTD and every character XML forbids blanked.
    Full,
    /// The DTD blanked: a complete read of this very XML found no character
    /// to blank ([`Stats::no_forbidden_chars`](crate::Stats)), so these are
    /// `Full`'s bytes without a scan of each (a tenth of a zip's sending).
    DoctypeOnly,
}

impl Cleaning {
    /// Cleaning asked for or not, of an export whose complete read saw
    /// `stats`. A kept check is trusted as the read of the file it names
    /// (size, modification time, its first and last MiB): a file changed
    /// in its middle behind all three would send a forbidden character
    /// it brought as it is, and the server would refuse the XML.
    pub fn knowing(clean: bool, stats: &crate::Stats) -> Cleaning {
        match (clean, stats.no_forbidden_chars) {
            (false, _) => Cleaning::Off,
            (true, false) => Cleaning::Full,
            (true, true) => Cleaning::DoctypeOnly,
        }
    }

    pub(super) fn is_on(self) -> bool {
        self != Cleaning::Off
    }

    /// Whether each byte is scanned for characters XML forbids.
    pub(super) fn scans(self) -> bool {
        self == Cleaning::Full
    }
}

impl From<bool> for Cleaning {
    /// Cleaning asked for or not, knowing nothing of the export.
    fn from(clean: bool) -> Cleaning {
        if clean { Cleaning::Full } else { Cleaning::Off }
    }
}

/// One upload body: the export's XML, whole or a piece of it, optionally
/// cleaned. Clones are cheap and share the pool of zip streams.
#[derive(Clone)]
pub struct Outgoing {
    shared: Arc<Shared>,
    segments: Arc<[Segment]>,
    len: u64,
    piece: Option<Part>,
}

/// A stretch of a body.
enum Segment {
    /// Bytes of the XML, `start..end`.
    Source { start: u64, end: u64 },
    /// Bytes held in memory: the cached header, the closing tag.
    Bytes(Arc<[u8]>),
}

impl Segment {
    /// Another handle on the same stretch.
    fn share(&self) -> Segment {
        match self {
            Segment::Source { start, end } => Segment::Source {
                start: *start,
                end: *end,
            },
            Segment::Bytes(bytes) => Segment::Bytes(bytes.clone()),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Segment::Source { start, end } => end - start,
            Segment::Bytes(bytes) => bytes.len() as u64,
        }
    }
}

impl Outgoing {
    /// The whole XML; `len()` is `source.xml_size()`. Cleaning reads the
    /// prolog to find the DOCTYPE.
    pub fn whole(source: Arc<ExportSource>, cleaning: Cleaning) -> Result<Outgoing> {
        let doctype = doctype(&source, cleaning)?;
        let len = source.xml_size();
        Ok(Outgoing {
            shared: Arc::new(Shared::new(source, cleaning, doctype)),
            segments: Arc::new([Segment::Source { start: 0, end: len }]),
            len,
            piece: None,
        })
    }

    /// Bodies of at most `limit` bytes each: `[whole]` if the XML fits
    /// (nothing is read), else pieces that are each a valid export, with
    /// every top-level element in exactly one of them, in order.
    ///
    /// The scan reports [`Phase::Upload`](owi_progress::Phase::Upload)
    /// progress in XML bytes, after a stage message, as the first step of an
    /// upload. Fails on an element too large for a piece with the header,
    /// and on a document that ends before `</HealthData>`.
    pub fn split(
        source: Arc<ExportSource>,
        cleaning: Cleaning,
        limit: u64,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<Outgoing>> {
        if source.xml_size() <= limit {
            return Ok(vec![Outgoing::whole(source, cleaning)?]);
        }
        let plan = split::plan(&source, limit, progress, cancel)?;
        let shared = Arc::new(Shared::new(source, cleaning, plan.doctype));
        let head = if plan.head_end <= HEAD_CACHE_MAX {
            let header = Outgoing {
                shared: shared.clone(),
                segments: Arc::new([Segment::Source {
                    start: 0,
                    end: plan.head_end,
                }]),
                len: plan.head_end,
                piece: None,
            };
            let mut bytes = Vec::new();
            header
                .reader_at(0)?
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(shared.source.path(), e))?;
            Segment::Bytes(bytes.into())
        } else {
            Segment::Source {
                start: 0,
                end: plan.head_end,
            }
        };
        let tail: Arc<[u8]> = TAIL.into();
        let count = u32::try_from(plan.runs.len()).unwrap_or(u32::MAX);
        let pieces = plan
            .runs
            .iter()
            .zip(1..)
            .map(|(&(start, end), index)| {
                let segments: Arc<[Segment]> = Arc::new([
                    head.share(),
                    Segment::Source { start, end },
                    Segment::Bytes(tail.clone()),
                ]);
                Outgoing {
                    shared: shared.clone(),
                    len: segments.iter().map(Segment::len).sum(),
                    segments,
                    piece: Some(Part { index, count }),
                }
            })
            .collect();
        Ok(pieces)
    }

    /// The exact number of bytes the body holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Which piece of a split export this is (1-based), for "part i of n";
    /// `None` for the whole XML.
    pub fn piece(&self) -> Option<Part> {
        self.piece
    }

    pub fn is_clean(&self) -> bool {
        self.shared.cleaning.is_on()
    }

    pub fn source(&self) -> &ExportSource {
        &self.shared.source
    }

    /// The body's bytes from `offset` to its end; `offset == len()` gives an
    /// empty reader. The reader is positioned here (a seek, or inflating
    /// forward inside a zip), so this may take a while and its errors show
    /// here. Inside a zip, dropping the reader returns its stream to the pool.
    pub fn reader_at(&self, offset: u64) -> Result<Box<dyn Read + Send>> {
        if offset > self.len {
            return Err(Error::OffsetPastEnd {
                path: self.shared.source.path().to_path_buf(),
                offset,
                len: self.len,
            });
        }
        let mut reader = BodyReader {
            shared: self.shared.clone(),
            segments: self.segments.clone(),
            segment: 0,
            at: offset,
            stream: None,
        };
        while let Some(segment) = reader.segments.get(reader.segment) {
            if reader.at < segment.len() {
                if let Segment::Source { start, .. } = segment {
                    reader.stream = Some(self.shared.acquire(start + reader.at)?);
                }
                break;
            }
            reader.at -= segment.len();
            reader.segment += 1;
        }
        Ok(Box::new(reader))
    }

    /// Bytes inflated so far by the readers of this body and its clones (and
    /// of the other pieces of the same split): a zip body read in order
    /// costs a few times its length, never once per part. 0 for plain files.
    pub fn inflated_bytes(&self) -> u64 {
        self.shared.inflated()
    }
}

/// Where the `<!DOCTYPE …>` lies, read from the prolog: what cleaning
/// blanks. Not read when cleaning is off.
fn doctype(source: &ExportSource, cleaning: Cleaning) -> Result<Option<(u64, u64)>> {
    if !cleaning.is_on() {
        return Ok(None);
    }
    let stream = source.open_xml()?;
    let mut input = io::BufReader::with_capacity(64 * 1024, stream);
    let (prolog, _) =
        prolog::read_prolog(&mut input).map_err(|e| prolog_error(source.path(), e))?;
    Ok(prolog.doctype)
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("path", &self.shared.source.path())
            .field("len", &self.len)
            .field("piece", &self.piece)
            .field("clean", &self.is_clean())
            .finish_non_exhaustive()
    }
}

/// Reads a body's segments in turn, holding a stream while inside the XML.
struct BodyReader {
    shared: Arc<Shared>,
    segments: Arc<[Segment]>,
    segment: usize,
    /// Offset within the current segment.
    at: u64,
    stream: Option<Stream>,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while let Some(segment) = self.segments.get(self.segment) {
            let left = segment.len() - self.at;
            if left == 0 {
                if let Some(stream) = self.stream.take() {
                    self.shared.release(stream);
                }
                self.segment += 1;
                self.at = 0;
                continue;
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
            let n = match segment {
                Segment::Bytes(bytes) => {
                    // `at < len` of an in-memory slice.
                    let from = self.at as usize;
                    out[..want].copy_from_slice(&bytes[from..from + want]);
                    want
                }
                Segment::Source { start, .. } => {
                    let stream = match &mut self.stream {
                        Some(stream) => stream,
                        None => self.stream.insert(
                            self.shared
                                .acquire(start + self.at)
                                .map_err(io::Error::other)?,
                        ),
                    };
                    match stream.read(&mut out[..want], &self.shared) {
                        Ok(0) => {
                            self.stream = None;
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "{} ends at byte {} of its XML, short of the {} bytes it had when opened",
                                    self.shared.source.path().display(),
                                    start + self.at,
                                    self.shared.source.xml_size()
                                ),
                            ));
                        }
                        Ok(n) => n,
                        Err(e) => {
                            self.stream = None;
                            return Err(e);
                        }
                    }
                }
            };
            self.at += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            self.shared.release(stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_their_readers_cross_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        fn sendable<T: Send>() {}
        shareable::<Outgoing>();
        sendable::<BodyReader>();
    }
}
