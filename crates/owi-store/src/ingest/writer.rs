//! The writer's side of the bulk load: owns the connection, inserts every
//! batch in one transaction, reads route files, and keeps the aggregates the
//! preview needs, so the reader's thread (which sets the pace) does not.

use std::collections::HashMap;
use std::time::Instant;

use crossbeam_channel::Receiver;
use owi_export::{
    ActivitySummary, Correlation, Element, Header, RouteLoad, Routes, Skip, SkipReason, Stats,
    Workout,
};
use owi_progress::{Phase, ProgressSink, Tracker};
use rusqlite::{Connection, Statement, params};
use rustc_hash::FxHashMap;

use super::loader::Plan;
use crate::catalog::Aggregation;
use crate::preview::ExportState;
use crate::route_blob;

/// Indexes over the bulk tables, built after the load (much faster than
/// maintaining them row by row).
const BULK_INDEXES: &[(&str, &str)] = &[
    ("records_by_series", "records (series_id, start)"),
    ("record_beats_by_record", "record_beats (record_id)"),
    ("correlations_by_export", "correlations (export_id, start)"),
    ("summaries_by_export", "activity_summaries (export_id, day)"),
];

/// Rows per multi-row INSERT: one statement step per 64 records.
const RECORDS_PER_INSERT: usize = 64;
const RECORD_COLUMNS: usize = 9;

/// Type, source, version, device, unit.
pub(crate) type SeriesKey = (i64, i64, Option<i64>, Option<i64>, Option<i64>);

pub(crate) struct SeriesRow {
    pub(crate) id: i64,
    pub(crate) key: SeriesKey,
    pub(crate) aggregation: Aggregation,
}

pub(crate) struct RecordRow {
    pub(crate) id: i64,
    pub(crate) series_id: i64,
    pub(crate) start: i64,
    pub(crate) duration: i64,
    pub(crate) created_delay: Option<i64>,
    pub(crate) tz: i16,
    pub(crate) value: Option<f64>,
    pub(crate) value_id: Option<i64>,
    pub(crate) metadata: Option<String>,
    /// Whether a category value counts toward its day (sleep: only asleep).
    pub(crate) counted: bool,
}

#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) strings: Vec<(i64, Box<str>)>,
    pub(crate) series: Vec<SeriesRow>,
    pub(crate) records: Vec<RecordRow>,
    pub(crate) beats: Vec<(i64, i64, f64)>,
    pub(crate) workouts: Vec<(i64, Workout)>,
    pub(crate) correlations: Vec<(i64, i64, Correlation)>,
    pub(crate) summaries: Vec<ActivitySummary>,
    pub(crate) elements: Vec<Element>,
    /// With the interned type of a skipped record.
    pub(crate) skips: Vec<(Skip, Option<i64>)>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.strings.is_empty()
            && self.series.is_empty()
            && self.records.is_empty()
            && self.workouts.is_empty()
            && self.correlations.is_empty()
            && self.summaries.is_empty()
            && self.elements.is_empty()
            && self.skips.is_empty()
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
    routes: Routes,
    progress: &dyn ProgressSink,
) -> Result<Option<ExportState>, WriteError> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -32_768)?;
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
                Msg::Batch(batch) => {
                    let t = Instant::now();
                    inserts.batch(*batch, &mut aggregates)?;
                    busy += t.elapsed();
                }
                Msg::Finish(f) => {
                    finish = Some(f);
                    break;
                }
            }
        }
        if finish.is_some() {
            // Route files no workout referred to are part of the export too.
            while inserts.load_next_route(&mut aggregates)? {}
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
    let state = finish.state;
    let t0 = Instant::now();
    let tracker = Tracker::start(progress, Phase::Index, None);
    tracker.stage("saving summaries");
    write_finish(&tx, &finish, &aggregates)?;
    tracker.stage("replacing earlier copies of this export");
    replace_earlier(&tx, &finish)?;
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

// ---- Aggregates -------------------------------------------------------------

struct SeriesAgg {
    key: SeriesKey,
    aggregation: Aggregation,
    count: u64,
    first: (i64, i16),
    last: (i64, i16),
}

#[derive(Clone, Copy)]
struct DayAgg {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

struct SkipAgg {
    count: u64,
    first_offset: u64,
    example: String,
}

#[derive(Default)]
struct Aggregates {
    /// Indexed by series id − `series_base`: ids are handed out in order.
    series: Vec<SeriesAgg>,
    series_base: i64,
    daily: FxHashMap<(i64, i64), DayAgg>,
    skips: HashMap<(SkipReason, &'static str), SkipAgg>,
    skipped_types: FxHashMap<i64, u64>,
    route_files: u64,
    route_points: u64,
    route_skips: HashMap<SkipReason, u64>,
}

impl Aggregates {
    fn add_series(&mut self, row: &SeriesRow) {
        if self.series.is_empty() {
            self.series_base = row.id;
        }
        self.series.push(SeriesAgg {
            key: row.key,
            aggregation: row.aggregation,
            count: 0,
            first: (i64::MAX, 0),
            last: (i64::MIN, 0),
        });
    }

    fn add_record(&mut self, r: &RecordRow) {
        let Some(s) = usize::try_from(r.series_id - self.series_base)
            .ok()
            .and_then(|i| self.series.get_mut(i))
        else {
            return;
        };
        s.count += 1;
        if r.start < s.first.0 {
            s.first = (r.start, r.tz);
        }
        if r.start > s.last.0 {
            s.last = (r.start, r.tz);
        }
        let local = |t: i64| (t + i64::from(r.tz) * 60).div_euclid(86_400);
        let (day, amount) = match (s.aggregation, r.value) {
            // A night's sleep belongs to the morning it ends.
            (Aggregation::Duration, _) if r.counted => {
                (local(r.start + r.duration), r.duration as f64)
            }
            (Aggregation::Duration, _) => return,
            (_, Some(v)) => (local(r.start), v),
            (_, None) => return,
        };
        self.daily
            .entry((r.series_id, day))
            .and_modify(|d| {
                d.count += 1;
                d.sum += amount;
                d.min = d.min.min(amount);
                d.max = d.max.max(amount);
            })
            .or_insert(DayAgg {
                count: 1,
                sum: amount,
                min: amount,
                max: amount,
            });
    }

    fn add_skip(&mut self, s: &Skip, type_id: Option<i64>) {
        if let Some(t) = type_id {
            *self.skipped_types.entry(t).or_default() += 1;
        }
        self.skips
            .entry((s.reason, s.element))
            .and_modify(|k| k.count += 1)
            .or_insert_with(|| SkipAgg {
                count: 1,
                first_offset: s.offset,
                example: s.detail.clone(),
            });
    }
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
    records: Statement<'c>,
    records_many: Statement<'c>,
    beats: Statement<'c>,
    workouts: Statement<'c>,
    activities: Statement<'c>,
    statistics: Statement<'c>,
    events: Statement<'c>,
    workout_metadata: Statement<'c>,
    correlations: Statement<'c>,
    summaries: Statement<'c>,
    elements: Statement<'c>,
}

fn records_insert(rows: usize) -> String {
    let row = format!("({})", ["?"; RECORD_COLUMNS].join(", "));
    format!(
        "INSERT INTO records (id, series_id, start, duration, created_delay, tz, value, value_id, metadata) VALUES {}",
        vec![row; rows].join(", ")
    )
}

fn bind_records(stmt: &mut Statement<'_>, rows: &[RecordRow]) -> rusqlite::Result<()> {
    for (i, r) in rows.iter().enumerate() {
        let at = i * RECORD_COLUMNS;
        stmt.raw_bind_parameter(at + 1, r.id)?;
        stmt.raw_bind_parameter(at + 2, r.series_id)?;
        stmt.raw_bind_parameter(at + 3, r.start)?;
        stmt.raw_bind_parameter(at + 4, r.duration)?;
        stmt.raw_bind_parameter(at + 5, r.created_delay)?;
        stmt.raw_bind_parameter(at + 6, r.tz)?;
        stmt.raw_bind_parameter(at + 7, r.value)?;
        stmt.raw_bind_parameter(at + 8, r.value_id)?;
        stmt.raw_bind_parameter(at + 9, r.metadata.as_deref())?;
    }
    Ok(())
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
            records: tx.prepare(&records_insert(1))?,
            records_many: tx.prepare(&records_insert(RECORDS_PER_INSERT))?,
            beats: tx.prepare("INSERT INTO record_beats (record_id, at_ms, bpm) VALUES (?, ?, ?)")?,
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

    fn batch(&mut self, b: Batch, aggregates: &mut Aggregates) -> rusqlite::Result<()> {
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
        let mut chunks = b.records.chunks_exact(RECORDS_PER_INSERT);
        for chunk in &mut chunks {
            bind_records(&mut self.records_many, chunk)?;
            self.records_many.raw_execute()?;
        }
        for r in chunks.remainder() {
            bind_records(&mut self.records, std::slice::from_ref(r))?;
            self.records.raw_execute()?;
        }
        for r in &b.records {
            aggregates.add_record(r);
        }
        for (record_id, at_ms, bpm) in &b.beats {
            self.beats.execute(params![record_id, at_ms, bpm])?;
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

// ---- The end of the load ------------------------------------------------------

fn write_finish(tx: &Connection, f: &Finish, a: &Aggregates) -> rusqlite::Result<()> {
    let me = serde_json::to_string(&f.header.me).unwrap_or_default();
    let stats = serde_json::to_string(&f.stats).unwrap_or_default();
    tx.execute(
        "INSERT INTO exports (id, fingerprint, quick_key, source_path, xml_name, file_size, xml_bytes, locale,
            export_date, export_tz, me_json, state, error, stats_json, started_at, seconds)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            f.export_id,
            f.fingerprint,
            f.quick_key,
            f.source_path,
            f.xml_name,
            f.file_size as i64,
            f.stats.bytes as i64,
            f.header.locale,
            f.header.export_date.map(|t| t.utc),
            f.header.export_date.map(|t| t.offset_min),
            me,
            f.state.as_str(),
            f.error,
            stats,
            f.started_at,
            f.read_seconds
        ],
    )?;

    // Fold per-series aggregates into per-(type, source) rows.
    struct TypeSource {
        unit_id: Option<i64>,
        count: u64,
        first: (i64, i16),
        last: (i64, i16),
    }
    let mut by_type_source: FxHashMap<(i64, i64), TypeSource> = FxHashMap::default();
    let mut devices: FxHashMap<i64, u64> = FxHashMap::default();
    for s in a.series.iter().filter(|s| s.count > 0) {
        let (type_id, source_id, _, device_id, unit_id) = s.key;
        let t = by_type_source
            .entry((type_id, source_id))
            .or_insert(TypeSource {
                unit_id,
                count: 0,
                first: s.first,
                last: s.last,
            });
        t.count += s.count;
        t.unit_id = t.unit_id.or(unit_id);
        if s.first.0 < t.first.0 {
            t.first = s.first;
        }
        if s.last.0 > t.last.0 {
            t.last = s.last;
        }
        if let Some(d) = device_id {
            *devices.entry(d).or_default() += s.count;
        }
    }
    let mut stmt = tx.prepare(
        "INSERT INTO type_sources (export_id, type_id, source_id, unit_id, count, first_start, last_start, first_tz, last_tz)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for ((type_id, source_id), t) in &by_type_source {
        stmt.execute(params![
            f.export_id,
            type_id,
            source_id,
            t.unit_id,
            t.count as i64,
            t.first.0,
            t.last.0,
            t.first.1,
            t.last.1
        ])?;
    }
    let mut stmt =
        tx.prepare("INSERT INTO devices (export_id, device_id, count) VALUES (?, ?, ?)")?;
    for (device_id, count) in &devices {
        stmt.execute(params![f.export_id, device_id, *count as i64])?;
    }

    let mut daily: FxHashMap<(i64, i64, i64), DayAgg> = FxHashMap::default();
    for (&(series_id, day), d) in &a.daily {
        let Some(s) = usize::try_from(series_id - a.series_base)
            .ok()
            .and_then(|i| a.series.get(i))
        else {
            continue;
        };
        let (type_id, source_id, ..) = s.key;
        daily
            .entry((type_id, source_id, day))
            .and_modify(|t| {
                t.count += d.count;
                t.sum += d.sum;
                t.min = t.min.min(d.min);
                t.max = t.max.max(d.max);
            })
            .or_insert(*d);
    }
    let mut stmt = tx.prepare(
        "INSERT INTO daily (export_id, type_id, source_id, day, count, sum, min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for ((type_id, source_id, day), d) in &daily {
        stmt.execute(params![
            f.export_id,
            type_id,
            source_id,
            day,
            d.count as i64,
            d.sum,
            d.min,
            d.max
        ])?;
    }

    let mut stmt =
        tx.prepare("INSERT INTO skipped_types (export_id, type_id, count) VALUES (?, ?, ?)")?;
    for (type_id, count) in &a.skipped_types {
        stmt.execute(params![f.export_id, type_id, *count as i64])?;
    }
    let mut stmt = tx.prepare(
        "INSERT INTO skips (export_id, reason, element, count, first_offset, example) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for ((reason, element), s) in &a.skips {
        stmt.execute(params![
            f.export_id,
            reason.as_str(),
            element,
            s.count as i64,
            s.first_offset as i64,
            s.example
        ])?;
    }
    Ok(())
}

/// A store keeps one copy of an export: the same file read again (forced,
/// or after a partial read) or the same XML from another file replaces the
/// earlier copy, atomically with the new one's arrival.
fn replace_earlier(tx: &Connection, f: &Finish) -> rusqlite::Result<()> {
    // A partial read replaces only partial copies: it must never cost a
    // complete one.
    let mut stmt = tx.prepare(
        "SELECT id FROM exports WHERE id != ?1
           AND (quick_key = ?2 OR (fingerprint IS NOT NULL AND fingerprint = ?3))
           AND (?4 = 'complete' OR state = 'partial')",
    )?;
    let old: Vec<i64> = stmt
        .query_map(
            params![f.export_id, f.quick_key, f.fingerprint, f.state.as_str()],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for id in old {
        delete_export(tx, id)?;
    }
    Ok(())
}

pub(crate) fn delete_export(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DELETE FROM record_beats WHERE record_id IN
             (SELECT r.id FROM records r JOIN series s ON s.id = r.series_id WHERE s.export_id = {id});
         DELETE FROM records WHERE series_id IN (SELECT id FROM series WHERE export_id = {id});
         DELETE FROM series WHERE export_id = {id};
         DELETE FROM workout_activities WHERE workout_id IN (SELECT id FROM workouts WHERE export_id = {id});
         DELETE FROM workout_statistics WHERE workout_id IN (SELECT id FROM workouts WHERE export_id = {id});
         DELETE FROM workout_events WHERE workout_id IN (SELECT id FROM workouts WHERE export_id = {id});
         DELETE FROM workout_metadata WHERE workout_id IN (SELECT id FROM workouts WHERE export_id = {id});
         DELETE FROM routes WHERE export_id = {id};
         DELETE FROM workouts WHERE export_id = {id};
         DELETE FROM correlations WHERE export_id = {id};
         DELETE FROM activity_summaries WHERE export_id = {id};
         DELETE FROM elements WHERE export_id = {id};
         DELETE FROM type_sources WHERE export_id = {id};
         DELETE FROM devices WHERE export_id = {id};
         DELETE FROM skipped_types WHERE export_id = {id};
         DELETE FROM daily WHERE export_id = {id};
         DELETE FROM skips WHERE export_id = {id};
         DELETE FROM exports WHERE id = {id};"
    ))
}
