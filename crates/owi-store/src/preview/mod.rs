//! The queries behind the offline preview. Each reads small tables or an
//! index range: aggregates were computed during the ingest pass.

use std::collections::BTreeMap;

use owi_export::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::Store;
use crate::catalog::Aggregation;
use crate::error::{Error, Result};
use crate::names::{Category, CategoryGroup, device_name, display_name};

mod detail;
mod summary;

pub(crate) use summary::summary_of;

/// Whether an export was read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Complete,
    /// Cut short (truncated or malformed midway): what came before is kept.
    Partial,
    /// Still being read: only a live glimpse says so, never the store.
    Reading,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Complete => "complete",
            ExportState::Partial => "partial",
            ExportState::Reading => "reading",
        }
    }

    fn parse(s: &str) -> ExportState {
        if s == "complete" {
            ExportState::Complete
        } else {
            ExportState::Partial
        }
    }
}

/// One export in the store.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExportInfo {
    pub id: i64,
    pub fingerprint: Option<String>,
    pub source_path: String,
    pub xml_name: String,
    pub file_size: u64,
    pub xml_bytes: u64,
    pub locale: Option<String>,
    /// RFC 3339 with the export's own offset.
    pub export_date: Option<String>,
    pub state: ExportState,
    pub error: Option<String>,
    pub started_at: i64,
    pub seconds: f64,
}

/// A record type as the summary shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TypeSummary {
    pub kind: String,
    /// What people call it ("Heart rate").
    pub name: String,
    pub category: Category,
    /// Records stored.
    pub count: u64,
    /// Records of this type left out (see the summary's `skipped`).
    pub skipped: u64,
    pub first_start: Option<String>,
    pub last_start: Option<String>,
    pub units: Vec<String>,
    pub sources: Vec<String>,
    pub aggregation: Aggregation,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeviceSummary {
    pub device: String,
    /// "Apple Watch (Watch6,1, software 10.1)".
    pub name: String,
    pub records: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SkipSummary {
    pub reason: String,
    pub element: String,
    pub count: u64,
    pub first_offset: u64,
    pub example: String,
}

/// A workout type and how many workouts have it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindCount {
    pub kind: String,
    pub name: String,
    pub count: u64,
}

/// Everything the summary screen shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Summary {
    pub export: ExportInfo,
    pub records: u64,
    pub records_stored: u64,
    pub workouts: u64,
    pub correlations: u64,
    pub activity_summaries: u64,
    pub first_record_start: Option<String>,
    pub last_record_start: Option<String>,
    pub record_types: Vec<TypeSummary>,
    /// The record types grouped as the Health app groups them.
    pub categories: Vec<CategoryGroup>,
    pub workout_types: BTreeMap<String, u64>,
    /// The same with names, busiest first.
    pub workout_kinds: Vec<KindCount>,
    pub devices: Vec<DeviceSummary>,
    pub sources: Vec<String>,
    pub skipped: Vec<SkipSummary>,
    pub elements: BTreeMap<String, u64>,
    pub unknown_elements: BTreeMap<String, u64>,
    pub repaired_chars: u64,
    pub route_points: u64,
}

/// Columns the workouts list sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum WorkoutSort {
    #[default]
    Start,
    End,
    ActivityType,
    Duration,
    Distance,
    Energy,
    HeartRateAvg,
    HeartRateMax,
    Source,
    RoutePoints,
}

impl WorkoutSort {
    fn column(self) -> &'static str {
        match self {
            WorkoutSort::Start => "start",
            WorkoutSort::End => "end",
            WorkoutSort::ActivityType => "activity_type",
            WorkoutSort::Duration => "duration_s",
            WorkoutSort::Distance => "distance_m",
            WorkoutSort::Energy => "energy_kcal",
            WorkoutSort::HeartRateAvg => "hr_avg",
            WorkoutSort::HeartRateMax => "hr_max",
            WorkoutSort::Source => "source",
            WorkoutSort::RoutePoints => "route_points",
        }
    }
}

/// Which workouts to list, and in what order.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WorkoutFilter {
    /// `HKWorkoutActivityTypeRunning` or just `Running`.
    pub activity_type: Option<String>,
    /// Days since the epoch, inclusive, of the workout's local start date.
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
    pub sort: WorkoutSort,
    pub descending: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WorkoutRow {
    pub id: i64,
    pub activity_type: String,
    /// What people call it ("Running").
    pub activity_name: String,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub distance_m: Option<f64>,
    pub energy_kcal: Option<f64>,
    pub hr_min: Option<f64>,
    pub hr_avg: Option<f64>,
    pub hr_max: Option<f64>,
    pub source: String,
    pub device: Option<String>,
    /// The device as people know it ("Apple Watch (Watch6,2, software 10.2)").
    pub device_name: Option<String>,
    pub route_points: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StatisticRow {
    pub activity: Option<i64>,
    pub kind: String,
    pub name: String,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub average: Option<f64>,
    pub maximum: Option<f64>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EventRow {
    pub activity: Option<i64>,
    pub kind: String,
    pub name: String,
    pub at: String,
    pub duration_s: Option<f64>,
    /// The event's MetadataEntry pairs (lap length, stroke style, …).
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PointRow {
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub elevation_m: Option<f64>,
    pub speed_mps: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SampleRow {
    /// Unix seconds.
    pub at: i64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ActivityRow {
    pub index: i64,
    pub activity_type: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub duration_s: Option<f64>,
}

/// Everything the workout detail pane shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WorkoutDetail {
    pub workout: WorkoutRow,
    pub metadata: Vec<(String, String)>,
    pub activities: Vec<ActivityRow>,
    pub statistics: Vec<StatisticRow>,
    pub events: Vec<EventRow>,
    pub route: Vec<PointRow>,
    /// Heart-rate records between the workout's start and end.
    pub heart_rate: Vec<SampleRow>,
}

/// One day of a type's daily series.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DayPoint {
    /// `yyyy-MM-dd`, the local date.
    pub date: String,
    pub count: u64,
    /// Sum for summed types (the busiest source's, so an iPhone and a watch
    /// counting the same steps are not added up); seconds for durations.
    pub total: Option<f64>,
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DailySeries {
    pub kind: String,
    pub name: String,
    pub unit: Option<String>,
    pub aggregation: Aggregation,
    pub days: Vec<DayPoint>,
}

/// Count, first and last start, units, sources of one type.
type TypeAcc = (u64, Timestamp, Timestamp, Vec<String>, Vec<String>);

const WORKOUT_COLUMNS: &str = "id, activity_type, start, end, tz, duration_s, distance_m, energy_kcal, hr_min, hr_avg, hr_max, source, device, route_points";

fn workout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkoutRow> {
    let tz: i16 = r.get(4)?;
    let at = |utc: i64| {
        Timestamp {
            utc,
            offset_min: tz,
        }
        .to_rfc3339()
    };
    let activity_type: String = r.get(1)?;
    let device: Option<String> = r.get(12)?;
    Ok(WorkoutRow {
        id: r.get(0)?,
        activity_name: display_name(&activity_type),
        activity_type,
        start: at(r.get(2)?),
        end: at(r.get(3)?),
        duration_s: r.get(5)?,
        distance_m: r.get(6)?,
        energy_kcal: r.get(7)?,
        hr_min: r.get(8)?,
        hr_avg: r.get(9)?,
        hr_max: r.get(10)?,
        source: r.get(11)?,
        device_name: device.as_deref().map(device_name),
        device,
        route_points: r.get::<_, i64>(13)? as u64,
    })
}

impl Store {
    pub(crate) fn db<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|e| Error::db(&self.path, e))
    }

    pub(crate) fn all<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<Vec<T>>
    where
        P: rusqlite::Params,
        F: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut stmt = self.conn().prepare_cached(sql)?;
            let rows = stmt.query_map(params, f)?;
            rows.collect()
        };
        self.db(run())
    }

    /// Every export in the store, newest first.
    pub fn exports(&self) -> Result<Vec<ExportInfo>> {
        let mut stmt = self.db(self.conn().prepare(
            "SELECT id, fingerprint, source_path, xml_name, file_size, xml_bytes, locale, export_date, export_tz,
                    state, error, started_at, seconds FROM exports ORDER BY id DESC",
        ))?;
        let rows = self.db(stmt.query_map([], |r| {
            let export_date: Option<i64> = r.get(7)?;
            let tz: Option<i16> = r.get(8)?;
            Ok(ExportInfo {
                id: r.get(0)?,
                fingerprint: r.get(1)?,
                source_path: r.get(2)?,
                xml_name: r.get(3)?,
                file_size: r.get::<_, i64>(4)? as u64,
                xml_bytes: r.get::<_, i64>(5)? as u64,
                locale: r.get(6)?,
                export_date: export_date.map(|utc| {
                    Timestamp {
                        utc,
                        offset_min: tz.unwrap_or(0),
                    }
                    .to_rfc3339()
                }),
                state: ExportState::parse(&r.get::<_, String>(9)?),
                error: r.get(10)?,
                started_at: r.get(11)?,
                seconds: r.get(12)?,
            })
        }))?;
        self.db(rows.collect())
    }

    pub fn export(&self, id: i64) -> Result<ExportInfo> {
        self.exports()?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(Error::UnknownExport(id))
    }

    /// Workouts of an export, filtered and sorted.
    pub fn workouts(&self, export_id: i64, filter: &WorkoutFilter) -> Result<Vec<WorkoutRow>> {
        let activity = filter.activity_type.as_ref().map(|t| {
            if t.starts_with("HKWorkoutActivityType") {
                t.clone()
            } else {
                format!("HKWorkoutActivityType{t}")
            }
        });
        let order = if filter.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {WORKOUT_COLUMNS} FROM workouts
             WHERE export_id = ?1
               AND (?2 IS NULL OR activity_type = ?2)
               AND (?3 IS NULL OR (start + tz * 60) >= ?3 * 86400)
               AND (?4 IS NULL OR (start + tz * 60) < (?4 + 1) * 86400)
             ORDER BY {} {order} NULLS LAST, start {order}, id",
            filter.sort.column()
        );
        let mut stmt = self.db(self.conn().prepare(&sql))?;
        let rows = self.db(stmt.query_map(
            params![export_id, activity, filter.from_day, filter.to_day],
            workout_row,
        ))?;
        self.db(rows.collect())
    }
}

/// The workouts of an export stored after the one with id `after`, in the
/// order they were read: what a live glimpse adds to its table.
pub(crate) fn workouts_after(
    conn: &rusqlite::Connection,
    export_id: i64,
    after: i64,
) -> rusqlite::Result<Vec<WorkoutRow>> {
    let sql = format!(
        "SELECT {WORKOUT_COLUMNS} FROM workouts WHERE export_id = ?1 AND id > ?2 ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![export_id, after], workout_row)?;
    rows.collect()
}
