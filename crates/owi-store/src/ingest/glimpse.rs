//! The live preview: while an export is read, the writer shows a few times a
//! second what it has stored so far, as the same [`Summary`] the finished
//! preview shows and the workouts read since the last glimpse.
//!
//! A glimpse is computed inside the ingest's own transaction, by the same
//! query as the final summary, from summary tables refreshed from the
//! writer's running aggregates: the final numbers replace the live ones
//! without a jump, and nothing reads the file twice. Glimpses are a
//! courtesy: one that fails is logged and the next ones are not tried,
//! while the ingest goes on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use owi_export::{Header, Stats};
use rusqlite::Connection;
use serde::Serialize;

use super::aggregates::Aggregates;
use crate::preview::{ExportInfo, ExportState, Summary, WorkoutRow, summary_of, workouts_after};

/// The shortest time between two glimpses.
pub const GLIMPSE_INTERVAL: Duration = Duration::from_millis(250);

/// What is known of an export while it is still being read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Glimpse {
    /// The summary of what was read so far: its `export.state` is
    /// `reading`, and `export.xml_bytes` the XML read so far.
    pub summary: Summary,
    /// Workouts read since the previous glimpse, in the document's order.
    pub workouts: Vec<WorkoutRow>,
}

/// Where glimpses go. Called from the writer thread: keep it cheap.
pub trait GlimpseSink: Send + Sync {
    fn glimpse(&self, glimpse: Glimpse);
}

impl<F> GlimpseSink for F
where
    F: Fn(Glimpse) + Send + Sync,
{
    fn glimpse(&self, glimpse: Glimpse) {
        self(glimpse)
    }
}

/// Running counts of the document's top-level elements, kept by the reader's
/// side and handed over with each batch: what the reader's own statistics
/// will say at the end, up to where it is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    pub(crate) correlations: u64,
    pub(crate) workouts: u64,
    pub(crate) activity_summaries: u64,
    pub(crate) elements: BTreeMap<String, u64>,
    pub(crate) unknown: BTreeMap<String, u64>,
}

impl Seen {
    pub(crate) fn count(&mut self, name: &[u8], end: u64) {
        self.bytes = end;
        match name {
            b"Record" => self.records += 1,
            b"Workout" => self.workouts += 1,
            b"Correlation" => self.correlations += 1,
            b"ActivitySummary" => self.activity_summaries += 1,
            b"ExportDate" | b"Me" => {}
            b"ClinicalRecord" | b"Audiogram" | b"VisionPrescription" => {
                *self.elements.entry(text(name)).or_default() += 1
            }
            other => *self.unknown.entry(text(other)).or_default() += 1,
        }
    }
}

impl Seen {
    /// The reader's statistics as they stand, with the routes the writer read.
    fn stats(&self, aggregates: &Aggregates) -> Stats {
        Stats {
            bytes: self.bytes,
            records: self.records,
            correlations: self.correlations,
            workouts: self.workouts,
            activity_summaries: self.activity_summaries,
            elements: self.elements.clone(),
            unknown: self.unknown.clone(),
            route_points: aggregates.route_points,
            route_files: aggregates.route_files,
            ..Stats::default()
        }
    }
}

fn text(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// What the writer knows of the file from the start.
pub(crate) struct Opening {
    pub(crate) source_path: String,
    pub(crate) xml_name: String,
    pub(crate) file_size: u64,
    pub(crate) started_at: i64,
}

/// The writer's side: when the next glimpse is due, and what it has shown.
pub(crate) struct Live<'a> {
    sink: &'a dyn GlimpseSink,
    opening: Opening,
    began: Instant,
    /// `None` until the first glimpse, which is shown at the first batch.
    shown_at: Option<Instant>,
    last_workout: i64,
    seen: Seen,
    header: Option<Header>,
    failed: bool,
}

impl<'a> Live<'a> {
    pub(crate) fn new(sink: &'a dyn GlimpseSink, opening: Opening) -> Self {
        Live {
            sink,
            opening,
            began: Instant::now(),
            shown_at: None,
            last_workout: 0,
            seen: Seen::default(),
            header: None,
            failed: false,
        }
    }

    /// Takes in what the reader's side saw up to its latest batch.
    pub(crate) fn update(&mut self, seen: Seen, header: Option<Header>) {
        self.seen = seen;
        if header.is_some() {
            self.header = header;
        }
    }

    /// Shows a glimpse if one is due.
    pub(crate) fn tick(&mut self, tx: &Connection, export_id: i64, aggregates: &Aggregates) {
        let due = self
            .shown_at
            .is_none_or(|at| at.elapsed() >= GLIMPSE_INTERVAL);
        if !due {
            return;
        }
        let stats = self.seen.stats(aggregates);
        self.show(tx, export_id, aggregates, &stats);
    }

    /// The last glimpse, once everything is read, with the reader's own
    /// counts: what the finished summary will say.
    pub(crate) fn last(
        &mut self,
        tx: &Connection,
        export_id: i64,
        aggregates: &Aggregates,
        header: &Header,
        stats: &Stats,
    ) {
        self.header = Some(header.clone());
        self.show(tx, export_id, aggregates, stats);
    }

    fn show(&mut self, tx: &Connection, export_id: i64, aggregates: &Aggregates, stats: &Stats) {
        if self.failed {
            return;
        }
        self.shown_at = Some(Instant::now());
        match self.glimpse(tx, export_id, aggregates, stats) {
            Ok(glimpse) => self.sink.glimpse(glimpse),
            Err(e) => {
                tracing::warn!(error = %e, "live preview stopped; the ingest goes on");
                self.failed = true;
            }
        }
    }

    fn glimpse(
        &mut self,
        tx: &Connection,
        export_id: i64,
        aggregates: &Aggregates,
        stats: &Stats,
    ) -> rusqlite::Result<Glimpse> {
        aggregates.save_summary(tx, export_id)?;
        let header = self.header.as_ref();
        let export = ExportInfo {
            id: export_id,
            fingerprint: None,
            source_path: self.opening.source_path.clone(),
            xml_name: self.opening.xml_name.clone(),
            file_size: self.opening.file_size,
            xml_bytes: stats.bytes,
            locale: header.and_then(|h| h.locale.clone()),
            export_date: header.and_then(|h| h.export_date).map(|t| t.to_rfc3339()),
            state: ExportState::Reading,
            error: None,
            started_at: self.opening.started_at,
            seconds: self.began.elapsed().as_secs_f64(),
        };
        let summary = summary_of(tx, export, stats)?;
        let workouts = workouts_after(tx, export_id, self.last_workout)?;
        if let Some(last) = workouts.last() {
            self.last_workout = last.id;
        }
        Ok(Glimpse { summary, workouts })
    }
}
