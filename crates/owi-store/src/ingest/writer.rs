//! The writer's side of the bulk load: owns the connection, inserts every
//! batch in one transaction, reads route files, and keeps the aggregates the
//! preview needs, so the reader's thread (which sets the pace) does not.

use std::time::Instant;

use crossbeam_channel::Receiver;
use owi_export::{
    ActivitySummary, Correlation, Element, Header, RouteLoad, Routes, Skip, SkipReason, Stats,
    Workout,
};
use owi_progress::{Phase, ProgressSink, Tracker};
use rusqlite::{Connection, Statement, params};
use rustc_hash::FxHashMap;

use super::aggregates::Aggregates;
use super::finish;
use super::glimpse::{Live, Seen};
use super::loader::Plan;
use super::replay::Handover;

mod blocks;
use crate::catalog::Aggregation;
use crate::preview::ExportState;
use crate::record_block::{BlockWriter, RecordCore};
use crate::route_blob;

/// Indexes over the bulk tables, built after the load (much faster than
/// maintaining them row by row).
const BULK_INDEXES: &[(&str, &str)] = &[
    ("correlations_by_export", "correlations (export_id, start)"),
    ("summaries_by_export", "activity_summaries (export_id, day)"),
];

/// Type, source, version, device, unit.
pub(crate) type SeriesKey = (i64, i64, Option<i64>, Option<i64>, Option<i64>);

pub(crate) struct SeriesRow {
    pub(crate) id: i64,
    pub(crate) key: SeriesKey,
    pub(crate) aggregation: Aggregation,
}

pub(crate) struct RecordRow {
    pub(crate) core: RecordCore,
    pub(crate) series_id: i64,
    /// Where its packed metadata (`key_id U+001F value U+001E …`) lies in
    /// the batch's `text`; empty when it has none.
    pub(crate) metadata: std::ops::Range<usize>,
    /// How many of the batch's `beats`, in order, are its own.
    pub(crate) beats: u32,
    /// Whether a category value counts toward its day (sleep: only asleep).
    pub(crate) counted: bool,
}

#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) strings: Vec<(i64, Box<str>)>,
    pub(crate) series: Vec<SeriesRow>,
    pub(crate) records: Vec<RecordRow>,
    /// The records' metadata, packed end to end (one allocation a batch).
    pub(crate) text: String,
    /// The records' beats `(at_ms, bpm)`, in record order.
    pub(crate) beats: Vec<(i64, f64)>,
    pub(crate) workouts: Vec<(i64, Workout)>,
    pub(crate) correlations: Vec<(i64, i64, Correlation)>,
    pub(crate) summaries: Vec<ActivitySummary>,
    pub(crate) elements: Vec<Element>,
    /// With the interned type of a skipped record.
    pub(crate) skips: Vec<(Skip, Option<i64>)>,
    /// The order the items above came in, for the check (`replay.rs`).
    pub(crate) steps: Vec<Handover>,
    /// Where each top-level element lies in the XML, in order.
    pub(crate) extents: Vec<(u64, u64)>,
    /// What the reader had seen when it sent this batch (for the live preview).
    pub(crate) seen: Seen,
    /// The document's header, in the first batch after it was read.
    pub(crate) header: Option<Header>,
}

impl Batch {
    /// Empties it, keeping its buffers for the next batch.
    pub(crate) fn clear(&mut self) {
        self.strings.clear();
        self.series.clear();
        self.records.clear();
        self.text.clear();
        self.beats.clear();
        self.workouts.clear();
        self.correlations.clear();
        self.summaries.clear();
        self.elements.clear();
        self.skips.clear();
        self.steps.clear();
        self.extents.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.strings.is_empty()
            && self.series.is_empty()
            && self.records.is_empty()
            && self.workouts.is_empty()
            && self.correlations.is_empty()
            && self.summaries.is_empty()
            && self.elements.is_empty()
            && self.skips.is_empty()
            && self.steps.is_empty()
    }
}

/// The end of the pass: what the export row needs.
pub(crate) struct Finish {
    pub(crate) export_id: i64,
    pub(crate) header: Header,
    pub(crate) source_path: String,
    pub(crate) xml_name: String,
    pub(crate) file_size: u64,
    pub(crate) quick_key: String,
    pub(crate) fingerprint: Option<String>,
    pub(crate) state: ExportState,
    pub(crate) error: Option<String>,
    pub(crate) stats: Stats,
    pub(crate) started_at: i64,
    pub(crate) read_seconds: f64,
}

pub(crate) enum Msg {
    Batch(Box<Batch>),
    Finish(Box<Finish>),
}

/// What the writer hands on to the check's thread: each batch once stored,
/// then, only if it stored every one, the end. A check that never sees the
/// end covers part of the export and is not kept.
pub(crate) enum Stored {
    Batch(Box<Batch>),
    End,
}

pub(crate) enum WriteError {
    Db(rusqlite::Error),
    Panicked,
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Db(e)
    }
}

/// Applies every batch in one transaction. Returns the stored state, or
/// `None` when the reader gave up and everything was rolled back.
pub(crate) fn write_all(
    conn: &mut Connection,
    plan_tx: crossbeam_channel::Sender<Plan>,
    rx: Receiver<Msg>,
    written: crossbeam_channel::Sender<Stored>,
    routes: Routes,
    progress: &dyn ProgressSink,
    mut live: Option<Live<'_>>,
) -> Result<Option<ExportState>, WriteError> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Blocks are appended, so few pages are read back: 16 MiB keeps the
    // peak resident set well under 100 MB without slowing the load.
    conn.pragma_update(None, "cache_size", -16_384)?;
    // Not folded into the database at the commit: that waits for
    // `Store::fold_wal`, after the preview is shown.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let plan = Plan::load(&tx)?;
    let export_id = plan.export_id;
    if plan_tx.send(plan).is_err() {
        return Ok(None);
    }
    for (name, _) in BULK_INDEXES {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    let mut aggregates = Aggregates::default();
    let mut finish = None;
    {
        let mut inserts = Inserts::prepare(&tx, export_id, routes)?;
        let mut busy = std::time::Duration::ZERO;
        let began = Instant::now();
        loop {
            // Route files are read while the reader has nothing for us yet:
            // this thread has time to spare, and the workouts that refer to
            // them come last in the document.
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    if inserts.load_next_route(&mut aggregates)? {
                        continue;
                    }
                    match rx.recv() {
                        Ok(msg) => msg,
                        Err(_) => break,
                    }
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            };
            match msg {
                Msg::Batch(mut batch) => {
                    let t = Instant::now();
                    let seen = std::mem::take(&mut batch.seen);
                    let header = batch.header.take();
                    inserts.batch(&batch, &mut aggregates)?;
                    if let Some(live) = live.as_mut() {
                        live.update(seen, header);
                        live.tick(&tx, export_id, &aggregates);
                    }
                    busy += t.elapsed();
                    // On to the check, which hands it back to the reader.
                    // Gone only if its thread died: its outcome is not kept.
                    let _ = written.send(Stored::Batch(batch));
                }
                Msg::Finish(f) => {
                    finish = Some(f);
                    break;
                }
            }
        }
        // The check has every batch: it ends now, and is kept while the
        // rest of the load and its commit go on.
        if finish.is_some() {
            let _ = written.send(Stored::End);
        }
        drop(written);
        if finish.is_some() {
            // Route files no workout referred to are part of the export too.
            while inserts.load_next_route(&mut aggregates)? {}
            inserts.flush_blocks()?;
        }
        tracing::debug!(
            busy_ms = busy.as_millis() as u64,
            total_ms = began.elapsed().as_millis() as u64,
            "writer inserted every batch"
        );
    }
    let Some(mut finish) = finish else {
        // Dropping the transaction rolls it back.
        return Ok(None);
    };
    // Route files are read here, not by the reader: complete its counts.
    finish.stats.route_files += aggregates.route_files;
    finish.stats.route_points += aggregates.route_points;
    for (reason, count) in &aggregates.route_skips {
        *finish.stats.skipped.entry(*reason).or_default() += count;
    }
    if let Some(live) = live.as_mut() {
        live.last(&tx, export_id, &aggregates, &finish.header, &finish.stats);
    }
    let state = finish.state;
    let t0 = Instant::now();
    let tracker = Tracker::start(progress, Phase::Index, None);
    tracker.stage("saving summaries");
    finish::write_finish(&tx, &finish, &aggregates)?;
    tracker.stage("replacing earlier copies of this export");
    finish::replace_earlier(&tx, &finish)?;
    tracker.stage("building indexes");
    for (name, on) in BULK_INDEXES {
        tx.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))?;
    }
    let indexed = t0.elapsed();
    tx.commit()?;
    tracing::info!(
        finish_ms = indexed.as_millis() as u64,
        commit_ms = (t0.elapsed() - indexed).as_millis() as u64,
        "bulk load committed"
    );
    tracker.finish();
    Ok(Some(state))
}

// ---- Inserts ----------------------------------------------------------------

struct Inserts<'c> {
    export_id: i64,
    routes: Routes,
    /// Route files not read yet, in reverse order (popped from the end).
    pending_routes: Vec<String>,
    /// Route files read, with their number of points (`None`: missing or unreadable).
    loaded_routes: FxHashMap<String, Option<usize>>,
    route_points: Vec<owi_export::RoutePoint>,
    route_insert: Statement<'c>,
    strings: Statement<'c>,
    series: Statement<'c>,
    blocks: Statement<'c>,
    /// The block being filled for each series.
    open: FxHashMap<i64, BlockWriter>,
    open_bytes: usize,
    workouts: Statement<'c>,
    activities: Statement<'c>,
    statistics: Statement<'c>,
    events: Statement<'c>,
    workout_metadata: Statement<'c>,
    correlations: Statement<'c>,
    summaries: Statement<'c>,
    elements: Statement<'c>,
}

impl<'c> Inserts<'c> {
    fn prepare(tx: &'c Connection, export_id: i64, routes: Routes) -> rusqlite::Result<Self> {
        let mut pending_routes = routes.files();
        pending_routes.reverse();
        Ok(Inserts {
            export_id,
            routes,
            pending_routes,
            loaded_routes: FxHashMap::default(),
            route_points: Vec::new(),
            route_insert: tx.prepare("INSERT INTO routes (export_id, file, points, data) VALUES (?, ?, ?, ?)")?,
            strings: tx.prepare("INSERT INTO strings (id, text) VALUES (?, ?)")?,
            series: tx.prepare(
                "INSERT INTO series (id, export_id, type_id, source_id, source_version_id, device_id, unit_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?,
            blocks: tx.prepare(
                "INSERT INTO record_blocks (series_id, count, min_start, max_start, max_id, data)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?,
            open: FxHashMap::default(),
            open_bytes: 0,
            workouts: tx.prepare(
                "INSERT INTO workouts (id, export_id, activity_type, source, source_version, device, created, start, end, tz,
                    duration_s, distance_m, energy_kcal, hr_min, hr_avg, hr_max, time_zone, route_points, route_file, extra_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            activities: tx.prepare(
                "INSERT INTO workout_activities (workout_id, idx, uuid, activity_type, start, end, duration_s)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?,
            statistics: tx.prepare(
                "INSERT INTO workout_statistics (workout_id, activity, type, start, end, sum, minimum, average, maximum, unit)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            events: tx.prepare(
                "INSERT INTO workout_events (workout_id, activity, type, at, tz, duration_s, metadata_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?,
            workout_metadata: tx.prepare(
                "INSERT INTO workout_metadata (workout_id, activity, key, value) VALUES (?, ?, ?, ?)",
            )?,
            correlations: tx.prepare(
                "INSERT INTO correlations (export_id, type_id, source_id, start, end, tz, json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?,
            summaries: tx.prepare(
                "INSERT INTO activity_summaries (export_id, day, active_energy, active_energy_goal, active_energy_unit,
                    move_minutes, move_minutes_goal, exercise_minutes, exercise_minutes_goal, stand_hours, stand_hours_goal)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            elements: tx.prepare("INSERT INTO elements (export_id, name, date, json) VALUES (?, ?, ?, ?)")?,
        })
    }

    fn batch(&mut self, b: &Batch, aggregates: &mut Aggregates) -> rusqlite::Result<()> {
        let export_id = self.export_id;
        for (id, text) in &b.strings {
            self.strings.execute(params![id, text.as_ref()])?;
        }
        for s in &b.series {
            let (type_id, source_id, version_id, device_id, unit_id) = s.key;
            self.series.execute(params![
                s.id, export_id, type_id, source_id, version_id, device_id, unit_id
            ])?;
            aggregates.add_series(s);
        }
        let mut beats = b.beats.as_slice();
        for r in &b.records {
            let (own, rest) = beats.split_at(beats.len().min(r.beats as usize));
            beats = rest;
            let metadata = (!r.metadata.is_empty())
                .then(|| b.text.get(r.metadata.clone()))
                .flatten();
            self.add_record(r, metadata, own)?;
            aggregates.add_record(r);
        }
        for (id, w) in &b.workouts {
            self.workout(*id, w, aggregates)?;
        }
        for (type_id, source_id, c) in &b.correlations {
            let json = serde_json::json!({
                "type": c.kind,
                "source_version": c.source_version,
                "device": c.device,
                "created": c.created.map(|t| t.utc),
                "metadata": c.metadata,
                "records": c.records,
            });
            self.correlations.execute(params![
                export_id,
                type_id,
                source_id,
                c.start.utc,
                c.end.utc,
                c.start.offset_min,
                json.to_string()
            ])?;
        }
        for a in &b.summaries {
            self.summaries.execute(params![
                export_id,
                a.day,
                a.active_energy,
                a.active_energy_goal,
                a.active_energy_unit,
                a.move_minutes,
                a.move_minutes_goal,
                a.exercise_minutes,
                a.exercise_minutes_goal,
                a.stand_hours,
                a.stand_hours_goal
            ])?;
        }
        for e in &b.elements {
            let json = serde_json::to_string(e).unwrap_or_default();
            self.elements
                .execute(params![export_id, e.name, e.date().map(|t| t.utc), json])?;
        }
        for (skip, type_id) in &b.skips {
            aggregates.add_skip(skip, *type_id);
        }
        Ok(())
    }

    /// Reads and stores the next route file not read yet. Returns false
    /// when none is left.
    fn load_next_route(&mut self, aggregates: &mut Aggregates) -> rusqlite::Result<bool> {
        let Some(file) = self.pending_routes.pop() else {
            return Ok(false);
        };
        if !self.loaded_routes.contains_key(&file) {
            self.load_route(&file, None, aggregates)?;
        }
        Ok(true)
    }

    /// Reads one route file into `routes`. Problems are counted as skips,
    /// located at the referring workout when there is one.
    fn load_route(
        &mut self,
        file: &str,
        workout_offset: Option<u64>,
        aggregates: &mut Aggregates,
    ) -> rusqlite::Result<Option<usize>> {
        let mut skip = |reason: SkipReason, detail: String| {
            *aggregates.route_skips.entry(reason).or_default() += 1;
            let skip = Skip {
                reason,
                element: "WorkoutRoute",
                offset: workout_offset.unwrap_or(0),
                detail,
                record_type: None,
            };
            aggregates.add_skip(&skip, None);
        };
        self.route_points.clear();
        let loaded = match self.routes.load(file, &mut self.route_points) {
            RouteLoad::Loaded { points, invalid } => {
                for _ in 0..invalid {
                    skip(SkipReason::InvalidRoutePoint, file.to_string());
                }
                Some(points)
            }
            // Only a referenced file can be missing; listed ones exist.
            RouteLoad::Missing => {
                skip(SkipReason::RouteFileMissing, file.to_string());
                None
            }
            RouteLoad::Invalid(message) => {
                skip(SkipReason::InvalidRouteFile, format!("{file}: {message}"));
                None
            }
        };
        if let Some(points) = loaded {
            aggregates.route_files += 1;
            aggregates.route_points += points as u64;
            let blob = route_blob::encode(&self.route_points);
            self.route_insert
                .execute(params![self.export_id, file, points as i64, blob])?;
        }
        self.loaded_routes.insert(file.to_string(), loaded);
        Ok(loaded)
    }

    fn workout(
        &mut self,
        id: i64,
        w: &Workout,
        aggregates: &mut Aggregates,
    ) -> rusqlite::Result<()> {
        // The route: GPX files referred to (usually one), or old inline points.
        let mut route_file = None;
        let mut route_points = 0usize;
        for route in w.routes.iter().filter(|r| !r.file_loaded) {
            let Some(reference) = route.file.as_deref() else {
                continue;
            };
            let key = Routes::key(reference);
            let loaded = match self.loaded_routes.get(&key) {
                Some(loaded) => *loaded,
                None => self.load_route(&key, Some(w.offset), aggregates)?,
            };
            if let Some(points) = loaded {
                route_points += points;
                route_file.get_or_insert(key);
            }
        }
        if !w.route_points.is_empty() {
            let key = format!("#workout-{id}");
            let blob = route_blob::encode(&w.route_points);
            self.route_insert.execute(params![
                self.export_id,
                key,
                w.route_points.len() as i64,
                blob
            ])?;
            route_points += w.route_points.len();
            route_file.get_or_insert(key);
        }
        let hr = w.heart_rate();
        let extra =
            (!w.extra.is_empty() || !w.records.is_empty() || !w.routes.is_empty()).then(|| {
                serde_json::json!({
                    "routes": w.routes,
                    "records": w.records,
                    "elements": w.extra,
                })
                .to_string()
            });
        self.workouts.execute(params![
            id,
            self.export_id,
            w.activity_type,
            w.source_name,
            w.source_version,
            w.device,
            w.created.map(|t| t.utc),
            w.start.utc,
            w.end.utc,
            w.start.offset_min,
            w.duration_secs(),
            w.distance_m(),
            w.energy_kcal(),
            hr.min,
            hr.avg,
            hr.max,
            w.time_zone(),
            route_points as i64,
            route_file,
            extra
        ])?;
        for (idx, a) in w.activities.iter().enumerate() {
            self.activities.execute(params![
                id,
                idx as i64,
                a.uuid,
                a.activity_type,
                a.start.map(|t| t.utc),
                a.end.map(|t| t.utc),
                a.duration_s
            ])?;
            for m in &a.metadata {
                self.workout_metadata
                    .execute(params![id, idx as i64, m.key, m.value])?;
            }
        }
        for s in &w.statistics {
            self.statistics.execute(params![
                id,
                s.activity.map(|a| a as i64),
                s.kind,
                s.start.map(|t| t.utc),
                s.end.map(|t| t.utc),
                s.sum,
                s.minimum,
                s.average,
                s.maximum,
                s.unit
            ])?;
        }
        for e in &w.events {
            self.events.execute(params![
                id,
                e.activity.map(|a| a as i64),
                e.kind,
                e.date.utc,
                e.date.offset_min,
                e.duration_s,
                (!e.metadata.is_empty())
                    .then(|| serde_json::to_string(&e.metadata).unwrap_or_default())
            ])?;
        }
        for m in &w.metadata {
            self.workout_metadata
                .execute(params![id, Option::<i64>::None, m.key, m.value])?;
        }
        Ok(())
    }
}
