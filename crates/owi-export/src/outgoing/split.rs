//! One pass over the XML finding where its top-level elements end, packed
//! greedily into pieces that each fit the limit with the header and tail.

use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use owi_progress::{CancelToken, Phase, ProgressSink, Tracker};
use quick_xml::events::Event;

use crate::error::{Error, Result};
use crate::prolog;
use crate::read::{markup_run, prolog_error};
use crate::source::ExportSource;

/// What closes every piece.
pub(super) const TAIL: &[u8] = b"\n</HealthData>\n";
/// How often (in events) cancellation is checked and progress reported.
const CHECK_EVERY: u64 = 4096;

/// Where to cut, in offsets of the XML.
#[derive(Debug)]
pub(super) struct Plan {
    pub doctype: Option<(u64, u64)>,
    /// The end of the header: prolog, `<HealthData …>`, `ExportDate`, `Me`.
    pub head_end: u64,
    /// Each piece's run of whole top-level elements.
    pub runs: Vec<(u64, u64)>,
}

pub(super) fn plan(
    source: &ExportSource,
    limit: u64,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Plan> {
    let path = source.path();
    let expected = source.xml_size();
    let mut input = BufReader::with_capacity(
        1 << 20,
        Guard {
            inner: source.open_xml()?,
            run: 0,
        },
    );
    let mut tracker = Tracker::start(progress, Phase::Upload, Some(expected));
    tracker.stage("finding where the export can be split");
    let (prolog, head) = prolog::read_prolog(&mut input).map_err(|e| prolog_error(path, e))?;
    let base = prolog.root_offset;
    let mut replay = Cursor::new(head);
    replay.set_position(base);
    let mut xml = quick_xml::Reader::from_reader(replay.chain(&mut input));
    // A scan for boundaries, not a validation: the server checks the rest.
    xml.config_mut().check_end_names = false;

    let mut packer = Packer {
        path,
        limit,
        head_end: 0,
        in_data: false,
        start: 0,
        last_cut: 0,
        runs: Vec::new(),
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut name = Vec::new();
    let mut element_start = 0;
    let mut depth = 0usize;
    let mut events = 0u64;
    loop {
        buf.clear();
        let before = base + xml.buffer_position();
        let event = xml.read_event_into(&mut buf);
        let after = base + xml.buffer_position();
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let error_at = base + xml.error_position();
                return Err(crate::read::xml_error(
                    path,
                    e,
                    after,
                    error_at,
                    expected,
                    &inside(depth, &name),
                ));
            }
        };
        match event {
            Event::Start(e) => {
                if depth == 1 {
                    name.clear();
                    name.extend_from_slice(e.name().as_ref());
                    element_start = before;
                }
                if depth == 0 {
                    packer.head_end = after;
                }
                depth += 1;
                // quick-xml keeps every open name: the depth bounds its memory.
                crate::read::depth_held(path, depth, before)?;
            }
            Event::Empty(e) if depth == 1 => {
                packer.element(e.name().as_ref(), before, after)?;
            }
            Event::Empty(_) if depth == 0 => {
                // `<HealthData/>` holds nothing to split off.
                return Err(packer.too_large(before, "HealthData".into(), expected));
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    0 => break,
                    1 => packer.element(&name, element_start, after)?,
                    _ => {}
                }
            }
            Event::Eof => {
                return Err(Error::Truncated {
                    path: path.to_path_buf(),
                    offset: after,
                    expected,
                    inside: inside(depth, &name),
                });
            }
            _ => {}
        }
        events += 1;
        if events.is_multiple_of(CHECK_EVERY) {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled {
                    path: path.to_path_buf(),
                });
            }
            tracker.advance(after);
        }
    }
    tracker.advance(base + xml.buffer_position());
    tracker.finish();
    packer.finish(prolog.doctype)
}

/// The element the scan is in, for errors.
fn inside(depth: usize, top_level: &[u8]) -> String {
    match depth {
        0 | 1 => "HealthData".to_string(),
        _ => String::from_utf8_lossy(top_level).into_owned(),
    }
}

/// Packs top-level elements into runs as their ends are found.
struct Packer<'a> {
    path: &'a Path,
    limit: u64,
    /// The end of the root's start tag, then of each leading `ExportDate`/`Me`.
    head_end: u64,
    /// Set at the first data element: the header is complete.
    in_data: bool,
    /// The current run's start, and where its last whole element ends.
    start: u64,
    last_cut: u64,
    runs: Vec<(u64, u64)>,
}

impl Packer<'_> {
    fn element(&mut self, name: &[u8], start: u64, end: u64) -> Result<()> {
        if !self.in_data {
            if matches!(name, b"ExportDate" | b"Me") {
                self.head_end = end;
                return Ok(());
            }
            self.begin_data(start)?;
        }
        let frame = self.head_end + TAIL.len() as u64;
        if frame + (end - self.start) > self.limit && self.last_cut > self.start {
            self.runs.push((self.start, self.last_cut));
            self.start = self.last_cut;
        }
        let needed = frame + (end - self.start);
        if needed > self.limit {
            return Err(self.too_large(start, String::from_utf8_lossy(name).into_owned(), needed));
        }
        self.last_cut = end;
        Ok(())
    }

    /// Fixes the header, once it is known to leave room in a piece.
    fn begin_data(&mut self, offset: u64) -> Result<()> {
        let needed = self.head_end + TAIL.len() as u64;
        if needed > self.limit {
            return Err(self.too_large(offset, "HealthData".into(), needed));
        }
        self.in_data = true;
        self.start = self.head_end;
        self.last_cut = self.head_end;
        Ok(())
    }

    fn too_large(&self, offset: u64, element: String, needed: u64) -> Error {
        Error::TooLargeToSplit {
            path: self.path.to_path_buf(),
            offset,
            element,
            needed,
            limit: self.limit,
        }
    }

    /// The plan once `</HealthData>` is found.
    fn finish(mut self, doctype: Option<(u64, u64)>) -> Result<Plan> {
        if !self.in_data {
            // No data elements: one piece, the header alone.
            self.begin_data(self.head_end)?;
        }
        if self.last_cut > self.start || self.runs.is_empty() {
            self.runs.push((self.start, self.last_cut));
        }
        Ok(Plan {
            doctype,
            head_end: self.head_end,
            runs: self.runs,
        })
    }
}

/// Refuses a tag or text run too long to buffer, as the reader does.
struct Guard {
    inner: Box<dyn Read + Send>,
    run: u64,
}

impl Read for Guard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.run = markup_run(self.run, &buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packer(limit: u64) -> Packer<'static> {
        Packer {
            path: Path::new("export.xml"),
            limit,
            head_end: 100,
            in_data: false,
            start: 0,
            last_cut: 0,
            runs: Vec::new(),
        }
    }

    #[test]
    fn packs_whole_elements_greedily_after_the_header() {
        // Room for 50 bytes of elements per piece once the header ends at 150.
        let mut p = packer(150 + TAIL.len() as u64 + 50);
        p.element(b"ExportDate", 101, 130).expect("header");
        p.element(b"Me", 131, 150).expect("header");
        for (start, end) in [(151, 170), (171, 199), (200, 230), (231, 250)] {
            p.element(b"Record", start, end).expect("fits");
        }
        let plan = p.finish(None).expect("plan");
        assert_eq!(plan.head_end, 150);
        assert_eq!(plan.runs, vec![(150, 199), (199, 230), (230, 250)]);
    }

    #[test]
    fn an_element_alone_too_big_is_an_error_at_its_offset() {
        let mut p = packer(100 + TAIL.len() as u64 + 50);
        p.element(b"Record", 110, 140).expect("fits");
        match p.element(b"Workout", 141, 200) {
            Err(Error::TooLargeToSplit {
                offset,
                element,
                needed,
                ..
            }) => {
                assert_eq!((offset, element.as_str()), (141, "Workout"));
                assert_eq!(needed, 100 + TAIL.len() as u64 + 60);
            }
            other => panic!("expected TooLargeToSplit, got {other:?}"),
        }
    }

    #[test]
    fn a_header_without_room_is_an_error() {
        let mut p = packer(100 + TAIL.len() as u64 - 1);
        assert!(matches!(
            p.element(b"Record", 101, 102),
            Err(Error::TooLargeToSplit { element, .. }) if element == "HealthData"
        ));
    }

    #[test]
    fn a_document_without_data_is_one_header_piece() {
        let mut p = packer(1000);
        p.element(b"Me", 101, 120).expect("header");
        let plan = p.finish(None).expect("plan");
        assert_eq!(plan.runs, vec![(120, 120)]);
    }
}
