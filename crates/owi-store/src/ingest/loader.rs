//! The reader's side of the bulk load: turns borrowed records into compact
//! rows with interned ids, and batches them for the writer. Kept as light
//! as possible: this thread also parses the XML, and it sets the pace.

use std::ops::ControlFlow;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use owi_export::{
    ActivitySummary, Correlation, Element, ExportSource, Failure, Header, Record, Report, Skip,
    Value, Visitor, Workout,
};
use rusqlite::Connection;
use rustc_hash::FxHashMap;

use super::glimpse::Seen;
use super::replay::{Handover, TopLevel};
use super::writer::{Batch, Finish, Msg, RecordRow, SeriesKey, SeriesRow};
use crate::catalog::{aggregation_of, counts_toward_duration};
use crate::preview::ExportState;
use crate::record_block::RecordCore;

/// Records per batch handed to the writer.
const BATCH_RECORDS: usize = 16 * 1024;
/// Bytes of packed metadata per batch: a batch of metadata-heavy records is
/// sent early, so batches in flight stay small.
const BATCH_TEXT: usize = 4 << 20;

/// Ids to continue from, and the interned strings already in the store.
pub(crate) struct Plan {
    pub(crate) export_id: i64,
    next_record: i64,
    next_workout: i64,
    next_series: i64,
    next_string: i64,
    strings: FxHashMap<Box<str>, i64>,
}

impl Plan {
    /// The strings already stored, by id.
    pub(crate) fn names(&self) -> FxHashMap<i64, Box<str>> {
        self.strings
            .iter()
            .map(|(text, &id)| (id, text.clone()))
            .collect()
    }

    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Plan> {
        let max = |table: &str| -> rusqlite::Result<i64> {
            conn.query_row(
                &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
        };
        let mut strings = FxHashMap::default();
        let mut stmt = conn.prepare("SELECT id, text FROM strings")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, text) = row?;
            strings.insert(text.into_boxed_str(), id);
        }
        Ok(Plan {
            export_id: max("exports")? + 1,
            next_record: conn.query_row(
                "SELECT COALESCE(MAX(max_id), 0) FROM record_blocks",
                [],
                |r| r.get::<_, i64>(0),
            )? + 1,
            next_workout: max("workouts")? + 1,
            next_series: max("series")? + 1,
            next_string: max("strings")? + 1,
            strings,
        })
    }
}

pub(crate) struct Loader {
    tx: Option<Sender<Msg>>,
    /// Batches the writer and the check are done with, to be filled again.
    spare: Receiver<Box<Batch>>,
    batch: Box<Batch>,
    plan: Plan,
    header: Header,
    /// One-entry caches per attribute: consecutive records nearly always
    /// share their type, source, version, device and unit.
    last: [Option<(Box<str>, i64)>; 5],
    series: FxHashMap<SeriesKey, i64>,
    last_series: Option<(SeriesKey, i64)>,
    seen: Seen,
    header_sent: bool,
}

impl Loader {
    pub(crate) fn new(tx: Sender<Msg>, spare: Receiver<Box<Batch>>, plan: Plan) -> Self {
        Loader {
            tx: Some(tx),
            spare,
            batch: Box::default(),
            plan,
            header: Header::default(),
            last: Default::default(),
            series: FxHashMap::default(),
            last_series: None,
            seen: Seen::default(),
            header_sent: false,
        }
    }

    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.plan.strings.get(s) {
            return id;
        }
        let id = self.plan.next_string;
        self.plan.next_string += 1;
        let text: Box<str> = s.into();
        self.plan.strings.insert(text.clone(), id);
        self.batch.strings.push((id, text));
        id
    }

    fn intern_cached(&mut self, slot: usize, s: &str) -> i64 {
        if let Some((last, id)) = &self.last[slot]
            && last.as_ref() == s
        {
            return *id;
        }
        let id = self.intern(s);
        self.last[slot] = Some((s.into(), id));
        id
    }

    fn series(&mut self, key: SeriesKey, kind: &str) -> i64 {
        if let Some((last, id)) = self.last_series
            && last == key
        {
            return id;
        }
        let id = match self.series.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.plan.next_series;
                self.plan.next_series += 1;
                self.series.insert(key, id);
                self.batch.series.push(SeriesRow {
                    id,
                    key,
                    aggregation: aggregation_of(kind),
                });
                id
            }
        };
        self.last_series = Some((key, id));
        id
    }

    fn send(&mut self) -> ControlFlow<()> {
        if self.batch.is_empty() {
            return ControlFlow::Continue(());
        }
        let next = self.spare.try_recv().unwrap_or_default();
        let mut batch = std::mem::replace(&mut self.batch, next);
        batch.seen = self.seen.clone();
        if !self.header_sent {
            self.header_sent = true;
            batch.header = Some(self.header.clone());
        }
        match self.tx.as_ref().map(|tx| tx.send(Msg::Batch(batch))) {
            Some(Ok(())) => ControlFlow::Continue(()),
            // The writer is gone (a database error): stop reading.
            _ => ControlFlow::Break(()),
        }
    }

    /// Sends what remains and the closing message, unless the read failed in
    /// a way that must leave no trace (then the writer rolls back).
    pub(crate) fn finish(
        mut self,
        source: &ExportSource,
        quick_key: &str,
        read: &Result<Report, Box<Failure>>,
        started: Instant,
    ) {
        let (stats, fingerprint, state, error) = match read {
            Ok(report) => (
                report.stats.clone(),
                Some(report.fingerprint.clone()),
                ExportState::Complete,
                None,
            ),
            Err(failure) if keeps_partial(failure) => (
                failure.stats.clone(),
                None,
                ExportState::Partial,
                Some(failure.error.to_string()),
            ),
            Err(_) => {
                self.tx = None;
                return;
            }
        };
        if self.send().is_break() {
            return;
        }
        let started_at = super::unix_now();
        let finish = Finish {
            export_id: self.plan.export_id,
            header: std::mem::take(&mut self.header),
            source_path: source.path().display().to_string(),
            xml_name: source.xml_name(),
            file_size: source.file_size(),
            quick_key: quick_key.to_string(),
            fingerprint,
            state,
            error,
            stats,
            started_at,
            read_seconds: started.elapsed().as_secs_f64(),
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Finish(Box::new(finish)));
        }
    }
}

/// A record's fixed fields as stored: times relative to its start.
pub(super) fn core_of(
    r: &Record<'_>,
    id: i64,
    value: Option<f64>,
    value_id: Option<i64>,
) -> RecordCore {
    RecordCore {
        id,
        start: r.start.utc,
        duration: r.end.utc - r.start.utc,
        created_delay: r.created.map(|c| c.utc - r.end.utc),
        tz: r.start.offset_min,
        value,
        value_id,
    }
}

/// An export cut short keeps what came before the damage, if anything did.
fn keeps_partial(failure: &Failure) -> bool {
    matches!(
        failure.error,
        owi_export::Error::Truncated { .. } | owi_export::Error::Malformed { .. }
    ) && failure.stats.records + failure.stats.workouts > 0
}

impl Visitor for Loader {
    fn header(&mut self, header: &Header) -> ControlFlow<()> {
        self.header = header.clone();
        ControlFlow::Continue(())
    }

    fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
        let id = self.plan.next_record;
        self.plan.next_record += 1;
        let type_id = self.intern_cached(0, r.kind);
        let source_id = self.intern_cached(1, r.source_name);
        let version_id = r.source_version.map(|s| self.intern_cached(2, s));
        let device_id = r.device.map(|s| self.intern_cached(3, s));
        let unit_id = r.unit.map(|s| self.intern_cached(4, s));
        let series_id = self.series((type_id, source_id, version_id, device_id, unit_id), r.kind);
        let (value, value_id, counted) = match r.value {
            Value::Number(v) => (Some(v), None, true),
            Value::Text(t) => (
                None,
                Some(self.intern(t)),
                counts_toward_duration(r.kind, t),
            ),
            Value::None => (None, None, true),
        };
        let from = self.batch.text.len();
        for m in r.metadata {
            let key = self.intern(&m.key);
            let text = &mut self.batch.text;
            text.push_str(itoa::Buffer::new().format(key));
            text.push('\u{1F}');
            text.push_str(&m.value);
            text.push('\u{1E}');
        }
        let metadata = from..self.batch.text.len();
        for b in r.beats {
            self.batch.beats.push((b.at_ms, b.bpm));
        }
        self.batch.steps.push(Handover::Record);
        self.batch.records.push(RecordRow {
            core: core_of(r, id, value, value_id),
            series_id,
            metadata,
            beats: r.beats.len() as u32,
            counted,
        });
        // The batch goes once this record's element is counted (`extent`),
        // so a glimpse's counts and its rows agree.
        ControlFlow::Continue(())
    }

    fn correlation(&mut self, c: &Correlation) -> ControlFlow<()> {
        let type_id = self.intern(&c.kind);
        let source_id = self.intern(&c.source_name);
        self.batch.steps.push(Handover::Correlation);
        self.batch
            .correlations
            .push((type_id, source_id, c.clone()));
        ControlFlow::Continue(())
    }

    fn workout(&mut self, w: &Workout) -> ControlFlow<()> {
        let id = self.plan.next_workout;
        self.plan.next_workout += 1;
        self.batch.steps.push(Handover::Workout);
        self.batch.workouts.push((id, w.clone()));
        if self.batch.workouts.len() >= 256 {
            return self.send();
        }
        ControlFlow::Continue(())
    }

    fn activity_summary(&mut self, a: &ActivitySummary) -> ControlFlow<()> {
        self.batch.steps.push(Handover::Summary);
        self.batch.summaries.push(a.clone());
        ControlFlow::Continue(())
    }

    fn element(&mut self, e: &Element) -> ControlFlow<()> {
        self.batch.steps.push(Handover::Element);
        self.batch.elements.push(e.clone());
        ControlFlow::Continue(())
    }

    fn extent(&mut self, name: &[u8], start: u64, end: u64) -> ControlFlow<()> {
        self.seen.count(name, end);
        self.batch.steps.push(Handover::Extent(TopLevel::of(name)));
        self.batch.extents.push((start, end));
        if self.batch.records.len() >= BATCH_RECORDS || self.batch.text.len() >= BATCH_TEXT {
            self.send()
        } else {
            ControlFlow::Continue(())
        }
    }

    fn skip(&mut self, s: &Skip) -> ControlFlow<()> {
        let type_id = s.record_type.as_deref().map(|k| self.intern(k));
        self.batch.skips.push((s.clone(), type_id));
        ControlFlow::Continue(())
    }
}
