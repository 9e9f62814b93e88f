//! The streaming pass over an export: one read of the XML, hashed as it goes,
//! handing each element to a [`Visitor`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Cursor, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use owi_progress::{CancelToken, Phase, ProgressSink, Silent, Tracker};
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;

use crate::error::Error;
use crate::model::*;
use crate::prolog::{self, PrologError};
use crate::source::{ExportSource, RouteLoad, Routes};
use crate::text::{TextError, decode_cow, decode_into};
use crate::time::{Timestamp, parse_date, parse_time_of_day};
use crate::units::{self, NumberError, parse_number};

mod ahead;
mod attrs;
mod bounds;
mod fault;
mod lane;
mod rare;
mod record;

pub use bounds::{
    MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENT_BYTES, MAX_MARKUP_RUN,
    MAX_NAME_BYTES, MAX_RECORD_CHILDREN, MAX_UNKNOWN_NAMES,
};
pub(crate) use bounds::{depth_held, markup_run};
use fault::{number_skip_reason, self_text_error};
pub(crate) use fault::{prolog_error, xml_error};
use record::RecordChildren;

/// Receives the content of an export in document order. Returning
/// `ControlFlow::Break` stops the read with [`Error::Stopped`].
pub trait Visitor {
    fn header(&mut self, _header: &Header) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()>;
    fn correlation(&mut self, _correlation: &Correlation) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn workout(&mut self, _workout: &Workout) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn activity_summary(&mut self, _summary: &ActivitySummary) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// `ClinicalRecord`, `Audiogram`, `VisionPrescription`.
    fn element(&mut self, _element: &Element) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn skip(&mut self, _skip: &Skip) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// Where a top-level child of `HealthData` lies in the XML
    /// (`start..end`, from its `<` to past its end), after everything in
    /// it was handed over: every child, known or not, read or skipped.
    fn extent(&mut self, _name: &[u8], _start: u64, _end: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Counts of what one read saw. Element counts are of top-level children of
/// `HealthData`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Uncompressed XML bytes read.
    pub bytes: u64,
    pub records: u64,
    pub correlations: u64,
    pub workouts: u64,
    pub activity_summaries: u64,
    /// Other known top-level elements (`ClinicalRecord`, `Audiogram`, …).
    pub elements: BTreeMap<String, u64>,
    /// Elements this reader does not know, anywhere in the document.
    pub unknown: BTreeMap<String, u64>,
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Characters XML forbids (U+000B, …) dropped from values.
    pub repaired_chars: u64,
    pub route_points: u64,
    pub route_files: u64,
    /// Whether the document carried a DTD (skipped unread).
    pub had_dtd: bool,
    /// Whether every byte was read and none could be a character XML
    /// forbids (`false` when not known): an upload's cleaning then has
    /// only the DTD to blank.
    pub no_forbidden_chars: bool,
    /// Its `HealthKit Export Version` comment, when it has one (12 is iOS
    /// 16's malformed DTD).
    pub dtd_version: Option<u32>,
}

/// What a completed read gives.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub stats: Stats,
    /// xxh3-128 of the uncompressed XML, as 32 hex digits.
    pub fingerprint: String,
}

/// A read that did not reach the end: why, and what was seen up to there
/// (the visitor has already received it).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failure {
    #[source]
    pub error: Error,
    pub stats: Stats,
}

/// Knobs of one read.
#[derive(Clone, Copy)]
pub struct ReadOptions<'a> {
    pub progress: &'a dyn ProgressSink,
    pub cancel: Option<&'a CancelToken>,
    /// Read the GPX files routes refer to. A consumer that would rather do
    /// it on another thread turns this off and uses [`ExportSource::routes`].
    pub read_routes: bool,
}

impl std::fmt::Debug for ReadOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions").finish_non_exhaustive()
    }
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            progress: &Silent,
            cancel: None,
            read_routes: true,
        }
    }
}

/// Reads the whole export, handing every element to `visitor`.
pub fn read_export(
    source: &ExportSource,
    visitor: &mut dyn Visitor,
    options: ReadOptions<'_>,
) -> Result<Report, Box<Failure>> {
    let stream = source.open_xml().map_err(failed)?;
    let routes = if options.read_routes {
        Some(source.routes().map_err(failed)?)
    } else {
        None
    };
    read_stream(
        stream,
        source.path(),
        source.xml_size(),
        routes,
        visitor,
        options,
        true,
    )
}

/// A read that failed before seeing anything.
fn failed(error: Error) -> Box<Failure> {
    Box::new(Failure {
        error,
        stats: Stats::default(),
    })
}

/// Reads an export's XML from any stream (a pipe, a generator), without its
/// route files; `path` names it in errors and progress has no total.
pub fn read_xml_stream(
    stream: Box<dyn Read + Send>,
    path: &Path,
    visitor: &mut dyn Visitor,
    options: ReadOptions<'_>,
) -> Result<Report, Box<Failure>> {
    read_stream(stream, path, 0, None, visitor, options, true)
}

/// The read itself, with the fast lane for records (`lane/`) on or off:
/// off, quick-xml reads every tag, which the lane's tests compare against.
fn read_stream(
    stream: Box<dyn Read + Send>,
    path: &Path,
    expected: u64,
    routes: Option<Routes>,
    visitor: &mut dyn Visitor,
    options: ReadOptions<'_>,
    lane: bool,
) -> Result<Report, Box<Failure>> {
    let mut input = ahead::read_ahead(stream);
    let path = path.to_path_buf();
    let mut tracker = Tracker::start(
        options.progress,
        Phase::Ingest,
        (expected > 0).then_some(expected),
    );

    let (prolog, head) = match prolog::read_prolog(&mut input) {
        Ok(found) => found,
        Err(e) => return Err(failed(prolog_error(&path, e))),
    };
    let root = prolog.root_offset as usize;
    let dtd_version = prolog
        .doctype
        .and_then(|(start, end)| head.get(start as usize..end as usize))
        .and_then(crate::prolog::export_version);
    let mut replay = Cursor::new(head);
    replay.set_position(root as u64);
    let mut parser = Parser {
        xml: quick_xml::Reader::from_reader(replay.chain(&mut input)),
        base: prolog.root_offset,
        path: path.clone(),
        expected,
        visitor,
        stats: Stats {
            had_dtd: prolog.doctype.is_some(),
            dtd_version,
            ..Stats::default()
        },
        routes,
        cancel: options.cancel,
        record: RecordChildren::default(),
        header: Header::default(),
        header_sent: false,
        scratch: String::new(),
        depth: 0,
        fast_lane: lane,
    };
    parser.xml.config_mut().check_end_names = true;
    let outcome = parser.run(&mut tracker);
    let mut stats = std::mem::take(&mut parser.stats);
    drop(parser);
    if let Err(error) = outcome {
        stats.bytes = input.consumed();
        return Err(Box::new(Failure { error, stats }));
    }
    // Read whatever trails the root element, so the fingerprint covers the file.
    let tally = io::copy(&mut input, &mut io::sink()).and_then(|_| {
        input
            .tally()
            .ok_or_else(|| io::Error::other("the export ended without its last bytes"))
    });
    let tally = match tally {
        Ok(tally) => tally,
        Err(e) => {
            return Err(Box::new(Failure {
                error: Error::io(&path, e),
                stats,
            }));
        }
    };
    stats.bytes = tally.bytes;
    stats.no_forbidden_chars = tally.no_forbidden_chars;
    tracker.advance(stats.bytes);
    tracker.finish();
    let fingerprint = format!("{:032x}", tally.hash);
    Ok(Report { stats, fingerprint })
}

/// Nested nodes kept for one rare element before the rest is skipped.
pub const MAX_ELEMENT_NODES: usize = 500_000;
/// How often (in top-level events) cancellation is checked and progress
/// reported.
const CHECK_EVERY: u64 = 256;

struct Parser<'a, R: BufRead> {
    xml: quick_xml::Reader<R>,
    base: u64,
    path: PathBuf,
    expected: u64,
    visitor: &'a mut dyn Visitor,
    stats: Stats,
    routes: Option<Routes>,
    cancel: Option<&'a CancelToken>,
    record: RecordChildren,
    header: Header,
    header_sent: bool,
    scratch: String,
    /// Elements open now, the root included.
    depth: usize,
    /// Whether records take the fast lane (`lane/`).
    fast_lane: bool,
}

type Res<T> = Result<T, Error>;

impl<R: BufRead> Parser<'_, R> {
    fn offset(&self) -> u64 {
        self.base + self.xml.buffer_position()
    }

    fn run(&mut self, tracker: &mut Tracker<'_>) -> Res<()> {
        let mut buf = Vec::with_capacity(4096);
        let mut in_root = false;
        let mut seen = 0u64;
        loop {
            let (event, offset) = self.next_held(&mut buf, "HealthData")?;
            match event {
                Event::Start(e) if !in_root => {
                    // The prolog step guarantees the root is HealthData.
                    self.header.locale = self.attr(&e, b"locale", offset)?;
                    in_root = true;
                }
                Event::Empty(e) if !in_root => {
                    self.header.locale = self.attr(&e, b"locale", offset)?;
                    break;
                }
                Event::Start(e) => {
                    self.top_level(&e, false, offset)?;
                    self.extent(&e, offset)?;
                }
                Event::Empty(e) => {
                    self.top_level(&e, true, offset)?;
                    self.extent(&e, offset)?;
                }
                Event::End(_) => break,
                Event::Eof => return Err(self.truncated("HealthData")),
                Event::Text(_) if in_root && self.fast_lane => {
                    self.count_event(&mut seen, tracker)?;
                    self.record_lane(&mut seen, tracker)?;
                    continue;
                }
                _ => {}
            }
            self.count_event(&mut seen, tracker)?;
        }
        if !self.header_sent {
            self.send_header()?;
        }
        Ok(())
    }

    /// Counts one top-level event, and every so many checks for
    /// cancellation and reports progress.
    fn count_event(&mut self, seen: &mut u64, tracker: &mut Tracker<'_>) -> Res<()> {
        *seen += 1;
        match seen.is_multiple_of(CHECK_EVERY) {
            true => self.checkpoint(tracker),
            false => Ok(()),
        }
    }

    fn checkpoint(&mut self, tracker: &mut Tracker<'_>) -> Res<()> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Cancelled {
                path: self.path.clone(),
            });
        }
        tracker.advance(self.offset());
        Ok(())
    }

    fn extent(&mut self, e: &BytesStart<'_>, start: u64) -> Res<()> {
        let flow = self.visitor.extent(e.name().as_ref(), start, self.offset());
        self.flow(flow)
    }

    fn top_level(&mut self, e: &BytesStart<'_>, empty: bool, offset: u64) -> Res<()> {
        match e.name().as_ref() {
            b"Record" => {
                if !self.header_sent {
                    self.send_header()?;
                }
                self.record(e, empty, offset)?;
                self.stats.records += 1;
                Ok(())
            }
            b"ExportDate" => {
                let value = self.attr(e, b"value", offset)?;
                self.header.export_date = value.as_deref().and_then(Timestamp::parse);
                if let (Some(raw), None) = (value.as_deref(), self.header.export_date) {
                    let detail = format!("ExportDate value={raw:?}");
                    self.skip(SkipReason::InvalidDate, "ExportDate", offset, &detail)?;
                }
                self.skip_subtree(empty)
            }
            b"Me" => {
                self.header.me = self.attrs(e, offset)?;
                self.skip_subtree(empty)
            }
            _ => {
                if !self.header_sent {
                    self.send_header()?;
                }
                let mut locations = Vec::new();
                let element = self.element(e, empty, offset, &mut locations)?;
                self.dispatch(element, locations)
            }
        }
    }

    fn dispatch(&mut self, element: Element, locations: Vec<RoutePoint>) -> Res<()> {
        let flow = match element.name.as_str() {
            "Workout" => {
                self.stats.workouts += 1;
                match self.workout(element, locations)? {
                    Some(w) => self.visitor.workout(&w),
                    None => ControlFlow::Continue(()),
                }
            }
            "Correlation" => {
                self.stats.correlations += 1;
                match self.correlation(element)? {
                    Some(c) => self.visitor.correlation(&c),
                    None => ControlFlow::Continue(()),
                }
            }
            "ActivitySummary" => {
                self.stats.activity_summaries += 1;
                match self.activity_summary(&element)? {
                    Some(a) => self.visitor.activity_summary(&a),
                    None => ControlFlow::Continue(()),
                }
            }
            "ClinicalRecord" | "Audiogram" | "VisionPrescription" => {
                *self.stats.elements.entry(element.name.clone()).or_default() += 1;
                self.visitor.element(&element)
            }
            _ => {
                self.unknown(element.name.as_bytes(), element.offset)?;
                ControlFlow::Continue(())
            }
        };
        self.flow(flow)
    }

    fn flow(&self, flow: ControlFlow<()>) -> Res<()> {
        match flow {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Stopped {
                path: self.path.clone(),
            }),
        }
    }

    fn send_header(&mut self) -> Res<()> {
        self.header_sent = true;
        let flow = self.visitor.header(&self.header);
        self.flow(flow)
    }

    fn skip(
        &mut self,
        reason: SkipReason,
        element: &'static str,
        offset: u64,
        detail: &str,
    ) -> Res<()> {
        self.skip_typed(reason, element, offset, detail, None)
    }

    fn skip_typed(
        &mut self,
        reason: SkipReason,
        element: &'static str,
        offset: u64,
        detail: &str,
        record_type: Option<String>,
    ) -> Res<()> {
        *self.stats.skipped.entry(reason).or_default() += 1;
        let detail: String = detail.chars().take(120).collect();
        let flow = self.visitor.skip(&Skip {
            reason,
            element,
            offset,
            detail,
            record_type,
        });
        self.flow(flow)
    }
}

impl<R: BufRead> Parser<'_, R> {
    /// Consumes the rest of an element whose start tag was just read.
    fn skip_subtree(&mut self, empty: bool) -> Res<()> {
        if empty {
            return Ok(());
        }
        let mut depth = 0usize;
        let mut buf = Vec::new();
        loop {
            let (event, at) = self.next_held(&mut buf, "element")?;
            match event {
                Event::Start(e) => {
                    self.unknown(e.name().as_ref(), at)?;
                    depth += 1;
                }
                Event::End(_) if depth == 0 => return Ok(()),
                Event::End(_) => depth -= 1,
                Event::Empty(e) => self.unknown(e.name().as_ref(), at)?,
                Event::Eof => return Err(self.truncated("element")),
                _ => {}
            }
        }
    }

    fn truncated(&self, inside: &str) -> Error {
        Error::Truncated {
            path: self.path.clone(),
            offset: self.offset(),
            expected: self.expected,
            inside: inside.to_string(),
        }
    }

    fn xml_error(&self, e: quick_xml::Error, inside: &str) -> Error {
        xml_error(
            &self.path,
            e,
            self.offset(),
            self.base + self.xml.error_position(),
            self.expected,
            inside,
        )
    }
}

/// `<<HKDevice: 0x3012772a0>, name:Apple Watch, …>` → `name:Apple Watch, …`:
/// the pointer differs for every object and would make every device unique.
pub fn strip_device_pointer(device: &str) -> &str {
    let Some(rest) = device.strip_prefix("<<HKDevice: ") else {
        return device;
    };
    match rest.find(">, ") {
        Some(i) => rest[i + 3..].strip_suffix('>').unwrap_or(&rest[i + 3..]),
        None => device,
    }
}
