//! The streaming pass over an export: one read of the XML, hashed as it goes,
//! handing each element to a [`Visitor`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use owi_progress::{CancelToken, Phase, ProgressSink, Silent, Tracker};
use quick_xml::events::{BytesStart, Event};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::Error;
use crate::model::*;
use crate::prolog::{self, PrologError};
use crate::source::{ExportSource, RouteLoad, Routes};
use crate::text::{TextError, decode_cow, decode_into};
use crate::time::{Timestamp, parse_date, parse_time_of_day};
use crate::units::{self, NumberError, parse_number};

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
    /// Its `HealthKit Export Version` comment, when it has one (12 is iOS
    /// 16's malformed DTD).
    pub dtd_version: Option<u32>,
}

/// What a completed read gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    let fail = |error| {
        Box::new(Failure {
            error,
            stats: Stats::default(),
        })
    };
    let stream = source.open_xml().map_err(fail)?;
    let routes = if options.read_routes {
        Some(source.routes().map_err(fail)?)
    } else {
        None
    };
    let mut tap = BufReader::with_capacity(
        1 << 20,
        Tap {
            inner: stream,
            hasher: Xxh3::new(),
            bytes: 0,
            run: 0,
        },
    );
    let path = source.path().to_path_buf();
    let expected = source.xml_size();
    let mut tracker = Tracker::start(options.progress, Phase::Ingest, Some(expected));

    let (prolog, head) = match prolog::read_prolog(&mut tap) {
        Ok(found) => found,
        Err(e) => return Err(fail(prolog_error(&path, e))),
    };
    let root = prolog.root_offset as usize;
    let dtd_version = prolog
        .doctype
        .and_then(|(start, end)| head.get(start as usize..end as usize))
        .and_then(crate::prolog::export_version);
    let mut replay = Cursor::new(head);
    replay.set_position(root as u64);
    let mut parser = Parser {
        xml: quick_xml::Reader::from_reader(replay.chain(&mut tap)),
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
    };
    parser.xml.config_mut().check_end_names = true;
    let outcome = parser.run(&mut tracker);
    let mut stats = std::mem::take(&mut parser.stats);
    drop(parser);
    if let Err(error) = outcome {
        stats.bytes = tap.get_ref().bytes;
        return Err(Box::new(Failure { error, stats }));
    }
    // Hash whatever trails the root element, so the fingerprint covers the file.
    if let Err(e) = io::copy(&mut tap, &mut io::sink()) {
        return Err(Box::new(Failure {
            error: Error::io(&path, e),
            stats,
        }));
    }
    stats.bytes = tap.get_ref().bytes;
    tracker.advance(stats.bytes);
    tracker.finish();
    let fingerprint = format!("{:032x}", tap.get_ref().hasher.digest128());
    Ok(Report { stats, fingerprint })
}

pub(crate) fn prolog_error(path: &Path, e: PrologError) -> Error {
    let path = path.to_path_buf();
    match e {
        PrologError::Io(message) => Error::Malformed {
            path,
            offset: 0,
            message,
        },
        PrologError::Entity { offset } => Error::EntityDeclared { path, offset },
        PrologError::Unterminated { what, offset } => Error::Malformed {
            path,
            offset,
            message: format!("the {what} never ends"),
        },
        PrologError::NotHealthData(prolog::Sniff::OtherXml(root)) => Error::NotHealthExport {
            path,
            reason: format!("its root element is <{root}>, not <HealthData>"),
        },
        PrologError::NotHealthData(_) => Error::NotHealthExport {
            path,
            reason: "it does not start like an XML document".into(),
        },
        PrologError::TooLong => Error::NotHealthExport {
            path,
            reason: format!("no root element in its first {} bytes", prolog::MAX_PROLOG),
        },
    }
}

/// The longest run of bytes without `<` or `>` accepted: the parser buffers
/// a whole tag or text run, so this bounds its memory on hostile input.
/// Apple's longest tags are a few kilobytes.
pub const MAX_MARKUP_RUN: u64 = 64 << 20;

/// Counts and hashes every byte on its way to the parser, and refuses a
/// tag or text run longer than [`MAX_MARKUP_RUN`].
struct Tap {
    inner: Box<dyn Read + Send>,
    hasher: Xxh3,
    bytes: u64,
    /// Bytes since the last `<` or `>`.
    run: u64,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        self.hasher.update(chunk);
        self.bytes += n as u64;
        self.run = markup_run(self.run, chunk)?;
        Ok(n)
    }
}

/// The bytes since the last `<` or `>` once `chunk` follows a run of `run`;
/// an error past [`MAX_MARKUP_RUN`].
pub(crate) fn markup_run(run: u64, chunk: &[u8]) -> io::Result<u64> {
    let run = match memchr::memrchr2(b'<', b'>', chunk) {
        Some(last) => (chunk.len() - last - 1) as u64,
        None => run + chunk.len() as u64,
    };
    if run > MAX_MARKUP_RUN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a single tag or text run longer than {} MiB: not an Apple Health export",
                MAX_MARKUP_RUN >> 20
            ),
        ));
    }
    Ok(run)
}

/// Children of the record being read, in buffers reused across records.
#[derive(Default)]
struct RecordChildren {
    metadata: Vec<Meta>,
    metadata_len: usize,
    beats: Vec<Beat>,
}

/// A minimal tokenizer for the attributes of a start tag: `name = "value"`
/// pairs, either quote. Malformed input ends the iteration early; the
/// document's well-formedness is quick-xml's to judge elsewhere, and a record
/// missing attributes is reported as such.
struct RawAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> RawAttributes<'a> {
    fn new(raw: &'a [u8]) -> Self {
        RawAttributes { rest: raw }
    }
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest;
        let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
        let eq = start + memchr::memchr(b'=', &s[start..])?;
        let key = s[start..eq].trim_ascii_end();
        let open = eq + 1 + s[eq + 1..].iter().position(|b| !b.is_ascii_whitespace())?;
        let quote = *s.get(open).filter(|&&q| q == b'"' || q == b'\'')?;
        let close = open + 1 + memchr::memchr(quote, &s[open + 1..])?;
        self.rest = &s[close + 1..];
        Some((key, &s[open + 1..close]))
    }
}

// Slots of a record's attributes.
const KIND: usize = 0;
const SOURCE: usize = 1;
const SOURCE_VERSION: usize = 2;
const DEVICE: usize = 3;
const UNIT: usize = 4;
const CREATED: usize = 5;
const START: usize = 6;
const END: usize = 7;
const VALUE: usize = 8;

/// Nested nodes kept for one rare element before the rest is skipped.
const MAX_ELEMENT_NODES: usize = 500_000;
/// How often (in records) cancellation is checked and progress reported.
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
            buf.clear();
            let offset = self.offset();
            let event = match self.xml.read_event_into(&mut buf) {
                Ok(event) => event,
                Err(e) => return Err(self.xml_error(e, "HealthData")),
            };
            match event {
                Event::Start(e) if !in_root => {
                    // The prolog step guarantees the root is HealthData.
                    self.header.locale = self.attr(&e, b"locale")?;
                    in_root = true;
                }
                Event::Empty(e) if !in_root => {
                    self.header.locale = self.attr(&e, b"locale")?;
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
                _ => {}
            }
            seen += 1;
            if seen.is_multiple_of(CHECK_EVERY) {
                self.checkpoint(tracker)?;
            }
        }
        if !self.header_sent {
            self.send_header()?;
        }
        Ok(())
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
                let value = self.attr(e, b"value")?;
                self.header.export_date = value.as_deref().and_then(Timestamp::parse);
                if let (Some(raw), None) = (value.as_deref(), self.header.export_date) {
                    let detail = format!("ExportDate value={raw:?}");
                    self.skip(SkipReason::InvalidDate, "ExportDate", offset, &detail)?;
                }
                self.skip_subtree(empty)
            }
            b"Me" => {
                self.header.me = self.attrs(e)?;
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
                *self.stats.unknown.entry(element.name.clone()).or_default() += 1;
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

    // ---- Record: the hot path ------------------------------------------

    fn record(&mut self, e: &BytesStart<'_>, empty: bool, offset: u64) -> Res<()> {
        // Attribute values are borrowed from the event's buffer, which stays
        // untouched while children are read into another one.
        let mut raw: [Option<&[u8]>; 9] = [None; 9];
        for (key, value) in RawAttributes::new(e.attributes_raw()) {
            let slot = match key {
                b"type" => KIND,
                b"sourceName" => SOURCE,
                b"sourceVersion" => SOURCE_VERSION,
                b"device" => DEVICE,
                b"unit" => UNIT,
                b"creationDate" => CREATED,
                b"startDate" => START,
                b"endDate" => END,
                b"value" => VALUE,
                _ => continue,
            };
            raw[slot] = Some(value);
        }
        let mut text: [Option<Cow<'_, str>>; 5] = Default::default();
        let mut repaired = 0;
        for slot in [KIND, SOURCE, SOURCE_VERSION, DEVICE, UNIT] {
            if let Some(bytes) = raw[slot] {
                let (t, n) = decode_cow(bytes)
                    .map_err(|err| self_text_error(&self.path, offset, "Record", err))?;
                repaired += n;
                text[slot] = Some(t);
            }
        }
        self.stats.repaired_chars += u64::from(repaired);
        // Dates are ASCII by format: parsed from the bytes, no decoding.
        let start = raw[START].and_then(Timestamp::parse_bytes);
        self.record.metadata_len = 0;
        self.record.beats.clear();
        if !empty {
            self.record_children(offset, start)?;
        }
        let Some(kind) = text[KIND].as_deref() else {
            return self.skip(SkipReason::MissingAttribute, "Record", offset, "type");
        };
        let end = raw[END].and_then(Timestamp::parse_bytes);
        let (Some(start), Some(end)) = (start, end) else {
            fn lossy(b: Option<&[u8]>) -> Option<Cow<'_, str>> {
                b.map(String::from_utf8_lossy)
            }
            let detail = format!(
                "{kind} startDate={:?} endDate={:?}",
                lossy(raw[START]),
                lossy(raw[END])
            );
            let kind = Some(kind.to_string());
            return self.skip_typed(SkipReason::InvalidDate, "Record", offset, &detail, kind);
        };
        let value_text = match raw[VALUE] {
            None => None,
            Some(bytes) => {
                let (text, repaired) = decode_cow(bytes)
                    .map_err(|err| self_text_error(&self.path, offset, "Record", err))?;
                self.stats.repaired_chars += u64::from(repaired);
                Some(text)
            }
        };
        let value = match value_text.as_deref() {
            None => Value::None,
            Some(v) => match parse_number(v) {
                Ok(n) => Value::Number(n),
                Err(err) if kind.starts_with("HKQuantityTypeIdentifier") => {
                    let detail = format!("{kind} value={v:?}");
                    let kind = Some(kind.to_string());
                    return self.skip_typed(
                        number_skip_reason(err),
                        "Record",
                        offset,
                        &detail,
                        kind,
                    );
                }
                Err(_) => Value::Text(v),
            },
        };
        let created = raw[CREATED].and_then(Timestamp::parse_bytes);
        if created.is_none()
            && let Some(bytes) = raw[CREATED]
        {
            let detail = format!("{kind} creationDate={:?}", String::from_utf8_lossy(bytes));
            self.skip(SkipReason::InvalidDate, "attribute", offset, &detail)?;
        }
        let r = &self.record;
        let record = Record {
            kind,
            source_name: text[SOURCE].as_deref().unwrap_or_default(),
            source_version: text[SOURCE_VERSION].as_deref(),
            device: text[DEVICE].as_deref().map(strip_device_pointer),
            unit: text[UNIT].as_deref(),
            created,
            start,
            end,
            value,
            metadata: &r.metadata[..r.metadata_len],
            beats: &r.beats,
            offset,
        };
        let flow = self.visitor.record(&record);
        self.flow(flow)
    }

    fn record_children(&mut self, offset: u64, start: Option<Timestamp>) -> Res<()> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let event = self
                .xml
                .read_event_into(&mut buf)
                .map_err(|e| self.xml_error(e, "Record"))?;
            match event {
                Event::Empty(e) => self.record_child(&e, true, offset, start)?,
                Event::Start(e) => self.record_child(&e, false, offset, start)?,
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.truncated("Record")),
                _ => {}
            }
        }
    }

    fn record_child(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        offset: u64,
        start: Option<Timestamp>,
    ) -> Res<()> {
        match e.name().as_ref() {
            b"MetadataEntry" => {
                let r = &mut self.record;
                if r.metadata_len == r.metadata.len() {
                    r.metadata.push(Meta {
                        key: String::new(),
                        value: String::new(),
                    });
                }
                let slot = r.metadata_len;
                r.metadata_len += 1;
                let (mut key, mut value) = (
                    std::mem::take(&mut r.metadata[slot].key),
                    std::mem::take(&mut r.metadata[slot].value),
                );
                key.clear();
                value.clear();
                for attr in e.attributes().with_checks(false).flatten() {
                    let target = match attr.key.as_ref() {
                        b"key" => &mut key,
                        b"value" => &mut value,
                        _ => continue,
                    };
                    let repaired = decode_into(&attr.value, target)
                        .map_err(|err| self_text_error(&self.path, offset, "MetadataEntry", err))?;
                    self.stats.repaired_chars += u64::from(repaired);
                }
                self.record.metadata[slot] = Meta { key, value };
                self.skip_subtree(empty)
            }
            b"HeartRateVariabilityMetadataList" if !empty => self.beats(offset, start),
            b"HeartRateVariabilityMetadataList" => Ok(()),
            other => {
                let name = String::from_utf8_lossy(other).into_owned();
                *self.stats.unknown.entry(name).or_default() += 1;
                self.skip_subtree(empty)
            }
        }
    }

    /// `InstantaneousBeatsPerMinute` times are local times of day; they are
    /// placed on the record's local date, moving to the next day when the
    /// clock wraps past midnight.
    fn beats(&mut self, offset: u64, start: Option<Timestamp>) -> Res<()> {
        let mut buf = Vec::new();
        let mut reference_ms = start.map(|s| s.local_secs() * 1000);
        let mut day_shift_ms = 0i64;
        let mut hour_shift_ms: Option<i64> = None;
        loop {
            buf.clear();
            let event = self
                .xml
                .read_event_into(&mut buf)
                .map_err(|e| self.xml_error(e, "HeartRateVariabilityMetadataList"))?;
            let (e, empty) = match event {
                Event::Empty(e) => (e, true),
                Event::Start(e) => (e, false),
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.truncated("HeartRateVariabilityMetadataList")),
                _ => continue,
            };
            if e.name().as_ref() != b"InstantaneousBeatsPerMinute" {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                *self.stats.unknown.entry(name).or_default() += 1;
                self.skip_subtree(empty)?;
                continue;
            }
            let bpm = self.attr(&e, b"bpm")?;
            let time = self.attr(&e, b"time")?;
            self.skip_subtree(empty)?;
            let bpm = bpm.as_deref().and_then(|b| parse_number(b).ok());
            let tod = time.as_deref().and_then(parse_time_of_day);
            let (Some(bpm), Some(tod), Some(start), Some(reference)) =
                (bpm, tod, start, reference_ms)
            else {
                let detail = format!("bpm={bpm:?} time={time:?}");
                self.skip(
                    SkipReason::InvalidBeat,
                    "InstantaneousBeatsPerMinute",
                    offset,
                    &detail,
                )?;
                continue;
            };
            let midnight_ms = start.local_day() * 86_400_000;
            let mut local_ms = midnight_ms + day_shift_ms + hour_shift_ms.unwrap_or(0) + tod;
            if local_ms + 12 * 3_600_000 < reference {
                day_shift_ms += 86_400_000;
                local_ms += 86_400_000;
            }
            // Some exports write the beats' clock an hour off the record's
            // (a DST quirk); the beats belong just after startDate, so the
            // first one decides whether the whole list is shifted.
            if hour_shift_ms.is_none() {
                let delta = local_ms - start.local_secs() * 1000;
                let shift = [-3_600_000, 3_600_000]
                    .into_iter()
                    .find(|h| (delta + h).abs() <= 10 * 60_000)
                    .filter(|_| delta.abs() > 10 * 60_000)
                    .unwrap_or(0);
                hour_shift_ms = Some(shift);
                local_ms += shift;
            }
            reference_ms = Some(local_ms);
            self.record.beats.push(Beat {
                bpm,
                at_ms: local_ms - i64::from(start.offset_min) * 60_000,
            });
        }
    }

    // ---- Rare elements: read whole, then typed --------------------------

    /// Reads an element and its subtree. `Location` points (old inline
    /// routes) go straight to `locations` as compact points.
    fn element(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        offset: u64,
        locations: &mut Vec<RoutePoint>,
    ) -> Res<Element> {
        let root = Element {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attributes: self.attrs(e)?,
            offset,
            ..Element::default()
        };
        if empty {
            return Ok(root);
        }
        let mut stack = vec![root];
        let mut nodes = 1usize;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let at = self.offset();
            let event = match self.xml.read_event_into(&mut buf) {
                Ok(event) => event,
                Err(err) => {
                    let inside = stack.last().map(|el| el.name.clone()).unwrap_or_default();
                    return Err(self.xml_error(err, &inside));
                }
            };
            let (c, child_empty) = match event {
                Event::Start(c) => (c, false),
                Event::Empty(c) => (c, true),
                Event::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        push_text(&mut top.text, &t, &mut self.scratch);
                    }
                    continue;
                }
                Event::GeneralRef(r) => {
                    let raw = [b"&".as_slice(), &r, b";"].concat();
                    if let Some(top) = stack.last_mut() {
                        push_text(&mut top.text, &raw, &mut self.scratch);
                    }
                    continue;
                }
                Event::End(_) => {
                    let Some(done) = stack.pop() else {
                        return Err(self.truncated("element"));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                    continue;
                }
                Event::Eof => {
                    let inside = stack.last().map(|el| el.name.clone()).unwrap_or_default();
                    return Err(self.truncated(&inside));
                }
                _ => continue,
            };
            nodes += 1;
            if c.name().as_ref() == b"Location" && nodes <= MAX_ELEMENT_NODES {
                let attrs = self.attrs(&c)?;
                match location_point(&attrs) {
                    Some(p) => locations.push(p),
                    None => self.skip(SkipReason::InvalidRoutePoint, "Location", at, "")?,
                }
                if !child_empty {
                    self.skip_subtree(false)?;
                }
                continue;
            }
            if nodes > MAX_ELEMENT_NODES {
                let name = stack.first().map(|el| el.name.clone()).unwrap_or_default();
                self.skip(SkipReason::ElementTooLarge, "element", offset, &name)?;
                // Drop the rest of the element, keeping the document in step.
                if !child_empty {
                    self.skip_subtree(false)?;
                }
                // Close every element still open, up to and including the root.
                for _ in 0..stack.len() {
                    self.skip_subtree(false)?;
                }
                let mut root = stack.swap_remove(0);
                root.children.clear();
                return Ok(root);
            }
            let child = Element {
                name: String::from_utf8_lossy(c.name().as_ref()).into_owned(),
                attributes: self.attrs(&c)?,
                offset: at,
                ..Element::default()
            };
            if child_empty {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(child);
                }
            } else {
                stack.push(child);
            }
        }
    }

    fn workout(&mut self, el: Element, locations: Vec<RoutePoint>) -> Res<Option<Workout>> {
        let offset = el.offset;
        let Some(activity_type) = el.attr("workoutActivityType").map(str::to_string) else {
            self.skip(
                SkipReason::MissingAttribute,
                "Workout",
                offset,
                "workoutActivityType",
            )?;
            return Ok(None);
        };
        let (Some(start), Some(end)) = (
            required_date(&el, "startDate"),
            required_date(&el, "endDate"),
        ) else {
            let detail = format!(
                "{activity_type} startDate={:?} endDate={:?}",
                el.attr("startDate"),
                el.attr("endDate")
            );
            self.skip(SkipReason::InvalidDate, "Workout", offset, &detail)?;
            return Ok(None);
        };
        let duration_s = self.measure(&el, "duration", "durationUnit", units::seconds_per)?;
        let total_distance_m =
            self.measure(&el, "totalDistance", "totalDistanceUnit", units::metres_per)?;
        let total_energy_kcal = self.measure(
            &el,
            "totalEnergyBurned",
            "totalEnergyBurnedUnit",
            units::kcal_per,
        )?;
        let mut workout = Workout {
            activity_type,
            source_name: el.attr("sourceName").unwrap_or_default().to_string(),
            source_version: el.attr("sourceVersion").map(str::to_string),
            device: el
                .attr("device")
                .map(|d| strip_device_pointer(d).to_string()),
            created: self.date(&el, "creationDate"),
            start,
            end,
            duration_s,
            total_distance_m,
            total_energy_kcal,
            metadata: Vec::new(),
            events: Vec::new(),
            statistics: Vec::new(),
            activities: Vec::new(),
            routes: Vec::new(),
            route_points: locations,
            records: Vec::new(),
            extra: Vec::new(),
            offset,
        };
        self.stats.route_points += workout.route_points.len() as u64;
        for child in el.children {
            self.workout_child(&mut workout, child, None)?;
        }
        Ok(Some(workout))
    }

    fn workout_child(
        &mut self,
        w: &mut Workout,
        child: Element,
        activity: Option<usize>,
    ) -> Res<()> {
        match child.name.as_str() {
            "MetadataEntry" => {
                let meta = meta_of(&child);
                match activity.and_then(|i| w.activities.get_mut(i)) {
                    Some(a) => a.metadata.push(meta),
                    None => w.metadata.push(meta),
                }
            }
            "WorkoutEvent" => {
                let Some(date) = required_date(&child, "date") else {
                    let detail = format!("WorkoutEvent date={:?}", child.attr("date"));
                    return self.skip(
                        SkipReason::InvalidDate,
                        "WorkoutEvent",
                        child.offset,
                        &detail,
                    );
                };
                w.events.push(WorkoutEvent {
                    activity,
                    kind: child.attr("type").unwrap_or_default().to_string(),
                    date,
                    duration_s: self.measure(
                        &child,
                        "duration",
                        "durationUnit",
                        units::seconds_per,
                    )?,
                    metadata: child
                        .children
                        .iter()
                        .filter(|c| c.name == "MetadataEntry")
                        .map(meta_of)
                        .collect(),
                });
            }
            "WorkoutStatistics" => {
                let stat = WorkoutStatistic {
                    activity,
                    kind: child.attr("type").unwrap_or_default().to_string(),
                    start: self.date(&child, "startDate"),
                    end: self.date(&child, "endDate"),
                    sum: self.number(&child, "sum")?,
                    minimum: self.number(&child, "minimum")?,
                    average: self.number(&child, "average")?,
                    maximum: self.number(&child, "maximum")?,
                    unit: child.attr("unit").map(str::to_string),
                };
                w.statistics.push(stat);
            }
            "WorkoutRoute" => self.route(w, child)?,
            "WorkoutActivity" if activity.is_none() => {
                let index = w.activities.len();
                w.activities.push(WorkoutActivity {
                    uuid: child.attr("uuid").map(str::to_string),
                    activity_type: child.attr("workoutActivityType").map(str::to_string),
                    start: self.date(&child, "startDate"),
                    end: self.date(&child, "endDate"),
                    duration_s: self.measure(
                        &child,
                        "duration",
                        "durationUnit",
                        units::seconds_per,
                    )?,
                    metadata: Vec::new(),
                });
                for grandchild in child.children {
                    self.workout_child(w, grandchild, Some(index))?;
                }
            }
            "Record" => w.records.push(nested_record(&child)),
            _ => w.extra.push(child),
        }
        Ok(())
    }

    fn route(&mut self, w: &mut Workout, el: Element) -> Res<()> {
        let mut info = RouteInfo {
            source_name: el.attr("sourceName").map(str::to_string),
            start: self.date(&el, "startDate"),
            end: self.date(&el, "endDate"),
            file: None,
            file_loaded: false,
            metadata: Vec::new(),
        };
        for child in &el.children {
            match child.name.as_str() {
                "MetadataEntry" => info.metadata.push(meta_of(child)),
                "FileReference" => info.file = child.attr("path").map(str::to_string),
                _ => {}
            }
        }
        if let (Some(file), Some(routes)) = (info.file.clone(), self.routes.as_mut()) {
            match routes.load(&file, &mut w.route_points) {
                RouteLoad::Loaded { points, invalid } => {
                    info.file_loaded = true;
                    self.stats.route_files += 1;
                    self.stats.route_points += points as u64;
                    for _ in 0..invalid {
                        self.skip(SkipReason::InvalidRoutePoint, "trkpt", el.offset, &file)?;
                    }
                }
                RouteLoad::Missing => {
                    self.skip(
                        SkipReason::RouteFileMissing,
                        "WorkoutRoute",
                        el.offset,
                        &file,
                    )?;
                }
                RouteLoad::Invalid(message) => {
                    let detail = format!("{file}: {message}");
                    self.skip(
                        SkipReason::InvalidRouteFile,
                        "WorkoutRoute",
                        el.offset,
                        &detail,
                    )?;
                }
            }
        }
        w.routes.push(info);
        Ok(())
    }

    fn correlation(&mut self, el: Element) -> Res<Option<Correlation>> {
        let offset = el.offset;
        let Some(kind) = el.attr("type").map(str::to_string) else {
            self.skip(SkipReason::MissingAttribute, "Correlation", offset, "type")?;
            return Ok(None);
        };
        let (Some(start), Some(end)) = (
            required_date(&el, "startDate"),
            required_date(&el, "endDate"),
        ) else {
            let detail = format!("{kind} startDate={:?}", el.attr("startDate"));
            self.skip(SkipReason::InvalidDate, "Correlation", offset, &detail)?;
            return Ok(None);
        };
        Ok(Some(Correlation {
            kind,
            source_name: el.attr("sourceName").unwrap_or_default().to_string(),
            source_version: el.attr("sourceVersion").map(str::to_string),
            device: el
                .attr("device")
                .map(|d| strip_device_pointer(d).to_string()),
            created: self.date(&el, "creationDate"),
            start,
            end,
            metadata: el
                .children
                .iter()
                .filter(|c| c.name == "MetadataEntry")
                .map(meta_of)
                .collect(),
            records: el
                .children
                .iter()
                .filter(|c| c.name == "Record")
                .map(nested_record)
                .collect(),
            offset,
        }))
    }

    fn activity_summary(&mut self, el: &Element) -> Res<Option<ActivitySummary>> {
        let Some(day) = el.attr("dateComponents").and_then(parse_date) else {
            let detail = format!("dateComponents={:?}", el.attr("dateComponents"));
            self.skip(
                SkipReason::InvalidDate,
                "ActivitySummary",
                el.offset,
                &detail,
            )?;
            return Ok(None);
        };
        let move_minutes = match self.number(el, "appleMoveTime")? {
            Some(v) => Some(v),
            None => self.number(el, "appleMoveMinutes")?,
        };
        let move_minutes_goal = match self.number(el, "appleMoveTimeGoal")? {
            Some(v) => Some(v),
            None => self.number(el, "appleMoveMinutesGoal")?,
        };
        Ok(Some(ActivitySummary {
            day,
            active_energy: self.number(el, "activeEnergyBurned")?,
            active_energy_goal: self.number(el, "activeEnergyBurnedGoal")?,
            active_energy_unit: el.attr("activeEnergyBurnedUnit").map(str::to_string),
            move_minutes,
            move_minutes_goal,
            exercise_minutes: self.number(el, "appleExerciseTime")?,
            exercise_minutes_goal: self.number(el, "appleExerciseTimeGoal")?,
            stand_hours: self.number(el, "appleStandHours")?,
            stand_hours_goal: self.number(el, "appleStandHoursGoal")?,
            offset: el.offset,
        }))
    }

    // ---- Small helpers ---------------------------------------------------

    /// A date attribute; present but unparseable counts as a skip (the
    /// element is kept without it).
    fn date(&mut self, el: &Element, name: &str) -> Option<Timestamp> {
        let raw = el.attr(name)?;
        let parsed = Timestamp::parse(raw);
        if parsed.is_none() {
            let detail = format!("{}@{name}={raw:?}", el.name);
            // Counting cannot fail the read; a visitor's stop shows at the next element.
            let _ = self.skip(SkipReason::InvalidDate, "attribute", el.offset, &detail);
        }
        parsed
    }

    /// A numeric attribute; present but unparseable counts as a skip.
    fn number(&mut self, el: &Element, name: &str) -> Res<Option<f64>> {
        let Some(raw) = el.attr(name) else {
            return Ok(None);
        };
        match parse_number(raw) {
            Ok(v) => Ok(Some(v)),
            Err(err) => {
                let detail = format!("{}@{name}={raw:?}", el.name);
                self.skip(number_skip_reason(err), "attribute", el.offset, &detail)?;
                Ok(None)
            }
        }
    }

    /// A numeric attribute converted to a base unit by its unit attribute.
    /// An unknown unit leaves the value unconverted only when it is already
    /// the base (no unit attribute at all).
    fn measure(
        &mut self,
        el: &Element,
        name: &str,
        unit_attr: &str,
        factor: fn(&str) -> Option<f64>,
    ) -> Res<Option<f64>> {
        let Some(v) = self.number(el, name)? else {
            return Ok(None);
        };
        match el.attr(unit_attr) {
            None => Ok(Some(v)),
            Some(unit) => match factor(unit) {
                Some(f) => Ok(Some(v * f)),
                None => {
                    let detail = format!("{}@{unit_attr}={unit:?}", el.name);
                    self.skip(SkipReason::InvalidValue, "attribute", el.offset, &detail)?;
                    Ok(None)
                }
            },
        }
    }

    fn attr(&mut self, e: &BytesStart<'_>, name: &[u8]) -> Res<Option<String>> {
        for attr in e.attributes().with_checks(false) {
            let attr = attr.map_err(|err| self.attribute_error(e, err))?;
            if attr.key.as_ref() == name {
                let mut out = String::new();
                let repaired = decode_into(&attr.value, &mut out).map_err(|err| {
                    self_text_error(
                        &self.path,
                        self.offset(),
                        &String::from_utf8_lossy(e.name().as_ref()),
                        err,
                    )
                })?;
                self.stats.repaired_chars += u64::from(repaired);
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    fn attrs(&mut self, e: &BytesStart<'_>) -> Res<Vec<(String, String)>> {
        let mut out = Vec::new();
        for attr in e.attributes().with_checks(false) {
            let attr = attr.map_err(|err| self.attribute_error(e, err))?;
            let mut value = String::new();
            let repaired = decode_into(&attr.value, &mut value).map_err(|err| {
                self_text_error(
                    &self.path,
                    self.offset(),
                    &String::from_utf8_lossy(e.name().as_ref()),
                    err,
                )
            })?;
            self.stats.repaired_chars += u64::from(repaired);
            out.push((
                String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                value,
            ));
        }
        Ok(out)
    }

    fn attribute_error(
        &self,
        e: &BytesStart<'_>,
        err: quick_xml::events::attributes::AttrError,
    ) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            offset: self.offset(),
            message: format!(
                "bad attribute in <{}>: {err}",
                String::from_utf8_lossy(e.name().as_ref())
            ),
        }
    }

    /// Consumes the rest of an element whose start tag was just read.
    fn skip_subtree(&mut self, empty: bool) -> Res<()> {
        if empty {
            return Ok(());
        }
        let mut depth = 0usize;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match self.xml.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    *self.stats.unknown.entry(name).or_default() += 1;
                    depth += 1;
                }
                Ok(Event::End(_)) if depth == 0 => return Ok(()),
                Ok(Event::End(_)) => depth -= 1,
                Ok(Event::Empty(e)) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    *self.stats.unknown.entry(name).or_default() += 1;
                }
                Ok(Event::Eof) => return Err(self.truncated("element")),
                Ok(_) => {}
                Err(e) => return Err(self.xml_error(e, "element")),
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

/// A parser error as ours: running out of input inside markup is a
/// cut-short file (at `offset`), anything else is malformed (at `error_at`).
pub(crate) fn xml_error(
    path: &Path,
    e: quick_xml::Error,
    offset: u64,
    error_at: u64,
    expected: u64,
    inside: &str,
) -> Error {
    use quick_xml::errors::SyntaxError;
    let truncated = || Error::Truncated {
        path: path.to_path_buf(),
        offset,
        expected,
        inside: inside.to_string(),
    };
    match e {
        quick_xml::Error::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedPI
            | SyntaxError::UnclosedXmlDecl
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue,
        ) => truncated(),
        quick_xml::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => truncated(),
        quick_xml::Error::Io(io) => Error::Malformed {
            path: path.to_path_buf(),
            offset,
            message: io.to_string(),
        },
        other => Error::Malformed {
            path: path.to_path_buf(),
            offset: error_at,
            message: format!("{other} (inside <{inside}>)"),
        },
    }
}

fn self_text_error(path: &Path, offset: u64, element: &str, err: TextError) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        offset,
        message: format!("in <{element}>: {err}"),
    }
}

fn number_skip_reason(err: NumberError) -> SkipReason {
    match err {
        NumberError::Empty => SkipReason::EmptyValue,
        NumberError::NotFinite => SkipReason::NanValue,
        NumberError::Invalid => SkipReason::InvalidValue,
    }
}

fn push_text(text: &mut String, raw: &[u8], scratch: &mut String) {
    const MAX_TEXT: usize = 64 * 1024;
    if text.len() >= MAX_TEXT {
        return;
    }
    let piece = match decode_into(raw, scratch) {
        Ok(_) => scratch.trim(),
        Err(_) => return,
    };
    if !piece.is_empty() {
        text.push_str(piece);
    }
}

fn meta_of(el: &Element) -> Meta {
    Meta {
        key: el.attr("key").unwrap_or_default().to_string(),
        value: el.attr("value").unwrap_or_default().to_string(),
    }
}

fn nested_record(el: &Element) -> NestedRecord {
    NestedRecord {
        kind: el.attr("type").unwrap_or_default().to_string(),
        unit: el.attr("unit").map(str::to_string),
        value: el.attr("value").map(str::to_string),
        start: el.attr("startDate").and_then(Timestamp::parse),
        end: el.attr("endDate").and_then(Timestamp::parse),
        metadata: el
            .children
            .iter()
            .filter(|c| c.name == "MetadataEntry")
            .map(meta_of)
            .collect(),
    }
}

/// An old-style inline `<Location date latitude longitude altitude …/>`.
fn location_point(attrs: &[(String, String)]) -> Option<RoutePoint> {
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num = |k: &str| get(k).and_then(|v| parse_number(v).ok());
    let at = Timestamp::parse(get("date")?)?;
    let (lat, lon) = (num("latitude")?, num("longitude")?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    Some(RoutePoint {
        at_ms: at.utc * 1000,
        lat,
        lon,
        elevation_m: num("altitude"),
        speed_mps: num("speed"),
        course_deg: num("course"),
        h_acc_m: num("horizontalAccuracy"),
        v_acc_m: num("verticalAccuracy"),
    })
}

/// A date without which the element is skipped (the skip says why).
fn required_date(el: &Element, name: &str) -> Option<Timestamp> {
    el.attr(name).and_then(Timestamp::parse)
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
