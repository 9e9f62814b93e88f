//! The queries behind the offline preview. Each reads small tables or an
//! index range: aggregates were computed during the ingest pass.

use std::collections::BTreeMap;

use owi_export::Timestamp;
use owi_export::time::format_day;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::Store;
use crate::catalog::{Aggregation, aggregation_of};
use crate::error::{Error, Result};
use crate::names::{
    Category, CategoryGroup, category_of, device_name, display_name, group_by_category,
};
use crate::route_blob;

/// Whether an export was read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Complete,
    /// Cut short (truncated or malformed midway): what came before is kept.
    Partial,
}

impl ExportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportState::Complete => "complete",
            ExportState::Partial => "partial",
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

    /// The summary of one export.
    pub fn summary(&self, export_id: i64) -> Result<Summary> {
        let export = self.export(export_id)?;
        let stats = self.export_stats(export_id)?;

        let rows = self.all("SELECT t.text, s.text, u.text, ts.count, ts.first_start, ts.first_tz, ts.last_start, ts.last_tz
             FROM type_sources ts
             JOIN strings t ON t.id = ts.type_id
             JOIN strings s ON s.id = ts.source_id
             LEFT JOIN strings u ON u.id = ts.unit_id
             WHERE ts.export_id = ?", [export_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)? as u64,
                Timestamp { utc: r.get(4)?, offset_min: r.get(5)? },
                Timestamp { utc: r.get(6)?, offset_min: r.get(7)? },
            ))
        })?;
        let mut types: BTreeMap<String, TypeAcc> = BTreeMap::new();
        let mut all_sources = std::collections::BTreeSet::new();
        for row in rows {
            let (kind, source, unit, count, first, last) = row;
            all_sources.insert(source.clone());
            let entry = types
                .entry(kind)
                .or_insert_with(|| (0, first, last, Vec::new(), Vec::new()));
            entry.0 += count;
            if first.utc < entry.1.utc {
                entry.1 = first;
            }
            if last.utc > entry.2.utc {
                entry.2 = last;
            }
            if let Some(unit) = unit.filter(|u| !entry.3.contains(u)) {
                entry.3.push(unit);
            }
            if !entry.4.contains(&source) {
                entry.4.push(source);
            }
        }
        let skipped_types: BTreeMap<String, u64> = self
            .all(
                "SELECT s.text, k.count FROM skipped_types k JOIN strings s ON s.id = k.type_id WHERE k.export_id = ?",
                [export_id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )?
            .into_iter()
            .collect();
        let first_record = types.values().map(|t| t.1).min_by_key(|t| t.utc);
        let last_record = types.values().map(|t| t.2).max_by_key(|t| t.utc);
        let records_stored = types.values().map(|t| t.0).sum();
        let mut record_types: Vec<TypeSummary> = types
            .into_iter()
            .map(|(kind, (count, first, last, mut units, mut sources))| {
                units.sort();
                sources.sort();
                TypeSummary {
                    aggregation: aggregation_of(&kind),
                    skipped: skipped_types.get(&kind).copied().unwrap_or(0),
                    name: display_name(&kind),
                    category: category_of(&kind),
                    kind,
                    count,
                    first_start: Some(first.to_rfc3339()),
                    last_start: Some(last.to_rfc3339()),
                    units,
                    sources,
                }
            })
            .collect();
        // Types whose every record was left out still belong in the list.
        for (kind, skipped) in &skipped_types {
            if !record_types.iter().any(|t| &t.kind == kind) {
                record_types.push(TypeSummary {
                    aggregation: aggregation_of(kind),
                    name: display_name(kind),
                    category: category_of(kind),
                    kind: kind.clone(),
                    count: 0,
                    skipped: *skipped,
                    first_start: None,
                    last_start: None,
                    units: Vec::new(),
                    sources: Vec::new(),
                });
            }
        }
        record_types.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));

        let categories = group_by_category(record_types.iter().map(|t| (t.kind.as_str(), t.count)));

        let workout_types: BTreeMap<String, u64> = self
            .all(
                "SELECT activity_type, COUNT(*) FROM workouts WHERE export_id = ? GROUP BY activity_type",
                [export_id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )?
            .into_iter()
            .collect();
        let mut workout_kinds: Vec<KindCount> = workout_types
            .iter()
            .map(|(kind, count)| KindCount {
                kind: kind.clone(),
                name: display_name(kind),
                count: *count,
            })
            .collect();
        workout_kinds.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));

        let devices = self.all(
            "SELECT s.text, d.count FROM devices d JOIN strings s ON s.id = d.device_id
             WHERE d.export_id = ? ORDER BY d.count DESC, s.text",
            [export_id],
            |r| {
                let device: String = r.get(0)?;
                Ok(DeviceSummary {
                    name: device_name(&device),
                    device,
                    records: r.get::<_, i64>(1)? as u64,
                })
            },
        )?;

        let skipped = self.all("SELECT reason, element, count, first_offset, example FROM skips WHERE export_id = ? ORDER BY count DESC, reason, element", [export_id], |r| {
                Ok(SkipSummary {
                    reason: r.get(0)?,
                    element: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                    first_offset: r.get::<_, i64>(3)? as u64,
                    example: r.get(4)?,
                })
            })?;

        Ok(Summary {
            export,
            records: stats.records,
            records_stored,
            workouts: stats.workouts,
            correlations: stats.correlations,
            activity_summaries: stats.activity_summaries,
            first_record_start: first_record.map(Timestamp::to_rfc3339),
            last_record_start: last_record.map(Timestamp::to_rfc3339),
            record_types,
            categories,
            workout_types,
            workout_kinds,
            devices,
            sources: all_sources.into_iter().collect(),
            skipped,
            elements: stats.elements.clone(),
            unknown_elements: stats.unknown.clone(),
            repaired_chars: stats.repaired_chars,
            route_points: stats.route_points,
        })
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

    /// One workout with its statistics, events, route and heart rate.
    pub fn workout_detail(&self, workout_id: i64) -> Result<WorkoutDetail> {
        let conn = self.conn();
        let sql =
            format!("SELECT {WORKOUT_COLUMNS}, export_id, start, end FROM workouts WHERE id = ?");
        let (workout, export_id, start, end) = self
            .db(conn
                .query_row(&sql, [workout_id], |r| {
                    Ok((
                        workout_row(r)?,
                        r.get::<_, i64>(14)?,
                        r.get::<_, i64>(15)?,
                        r.get::<_, i64>(16)?,
                    ))
                })
                .optional())?
            .ok_or(Error::UnknownWorkout(workout_id))?;

        let metadata = self.all(
            "SELECT key, value FROM workout_metadata WHERE workout_id = ? AND activity IS NULL",
            [workout_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;

        let activities = self.all("SELECT idx, activity_type, start, end, duration_s FROM workout_activities WHERE workout_id = ? ORDER BY idx", [workout_id], |r| {
                Ok(ActivityRow {
                    index: r.get(0)?,
                    activity_type: r.get(1)?,
                    start: r.get(2)?,
                    end: r.get(3)?,
                    duration_s: r.get(4)?,
                })
            })?;

        let statistics = self.all("SELECT activity, type, sum, minimum, average, maximum, unit FROM workout_statistics WHERE workout_id = ?", [workout_id], |r| {
                let kind: String = r.get(1)?;
                Ok(StatisticRow {
                    activity: r.get(0)?,
                    name: display_name(&kind),
                    kind,
                    sum: r.get(2)?,
                    minimum: r.get(3)?,
                    average: r.get(4)?,
                    maximum: r.get(5)?,
                    unit: r.get(6)?,
                })
            })?;

        let events = self.all(
            "SELECT activity, type, at, tz, duration_s, metadata_json FROM workout_events WHERE workout_id = ? ORDER BY at",
            [workout_id],
            |r| {
                let metadata: Option<String> = r.get(5)?;
                let pairs: Vec<owi_export::Meta> = metadata
                    .and_then(|m| serde_json::from_str(&m).ok())
                    .unwrap_or_default();
                let kind: String = r.get(1)?;
                Ok(EventRow {
                    activity: r.get(0)?,
                    name: display_name(&kind),
                    kind,
                    at: Timestamp { utc: r.get(2)?, offset_min: r.get(3)? }.to_rfc3339(),
                    duration_s: r.get(4)?,
                    metadata: pairs.into_iter().map(|m| (m.key, m.value)).collect(),
                })
            },
        )?;

        let route_file: Option<String> = self.db(self.conn().query_row(
            "SELECT route_file FROM workouts WHERE id = ?",
            [workout_id],
            |r| r.get(0),
        ))?;
        let blob: Option<Vec<u8>> = match &route_file {
            None => None,
            Some(file) => self.db(self
                .conn()
                .query_row(
                    "SELECT data FROM routes WHERE export_id = ? AND file = ?",
                    params![export_id, file],
                    |r| r.get(0),
                )
                .optional())?,
        };
        let route = blob
            .as_deref()
            .and_then(route_blob::decode)
            .unwrap_or_default()
            .into_iter()
            .map(|p| PointRow {
                at_ms: p.at_ms,
                lat: p.lat,
                lon: p.lon,
                elevation_m: p.elevation_m,
                speed_mps: p.speed_mps,
            })
            .collect();

        let heart_rate = match self.type_id("HKQuantityTypeIdentifierHeartRate")? {
            None => Vec::new(),
            Some(type_id) => {
                // Only the blocks whose span meets the workout's are read.
                let blocks: Vec<Vec<u8>> = self.all(
                    "SELECT b.data FROM series s JOIN record_blocks b ON b.series_id = s.id
                     WHERE s.export_id = ? AND s.type_id = ? AND b.min_start <= ? AND b.max_start >= ?",
                    params![export_id, type_id, end, start],
                    |r| r.get(0),
                )?;
                let mut samples = Vec::new();
                for blob in &blocks {
                    crate::record_block::for_each(blob, |r| {
                        let r = r.core;
                        if let Some(value) = r.value.filter(|_| (start..=end).contains(&r.start)) {
                            samples.push((r.start, r.id, value));
                        }
                    });
                }
                samples.sort_unstable_by_key(|&(at, id, _)| (at, id));
                samples
                    .into_iter()
                    .map(|(at, _, value)| SampleRow { at, value })
                    .collect()
            }
        };

        Ok(WorkoutDetail {
            workout,
            metadata,
            activities,
            statistics,
            events,
            route,
            heart_rate,
        })
    }

    fn type_id(&self, kind: &str) -> Result<Option<i64>> {
        self.db(self
            .conn()
            .query_row("SELECT id FROM strings WHERE text = ?", [kind], |r| {
                r.get(0)
            })
            .optional())
    }

    /// A type's values per local day, between two days (inclusive).
    pub fn daily_series(
        &self,
        export_id: i64,
        kind: &str,
        from_day: Option<i64>,
        to_day: Option<i64>,
    ) -> Result<DailySeries> {
        let type_id = self
            .type_id(kind)?
            .ok_or_else(|| Error::UnknownType(kind.to_string()))?;
        let aggregation = aggregation_of(kind);
        let unit: Option<String> = self.db(self
            .conn()
            .query_row(
                "SELECT u.text FROM type_sources ts JOIN strings u ON u.id = ts.unit_id
                     WHERE ts.export_id = ? AND ts.type_id = ? ORDER BY ts.count DESC, u.text LIMIT 1",
                params![export_id, type_id],
                |r| r.get(0),
            )
            .optional())?;
        let mut stmt = self.db(self.conn().prepare(
            "SELECT day, source_id, count, sum, min, max FROM daily
             WHERE export_id = ?1 AND type_id = ?2 AND day >= COALESCE(?3, -1000000) AND day <= COALESCE(?4, 1000000)
             ORDER BY day",
        ))?;
        let rows = self.db(
            stmt.query_map(params![export_id, type_id, from_day, to_day], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, f64>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, Option<f64>>(5)?,
                ))
            }),
        )?;
        let mut days: Vec<DayPoint> = Vec::new();
        let mut current: Option<(i64, DayAcc)> = None;
        for row in rows {
            let (day, count, sum, min, max) = self.db(row)?;
            match current.as_mut() {
                Some((d, acc)) if *d == day => acc.add(count, sum, min, max),
                _ => {
                    if let Some((d, acc)) = current.take() {
                        days.push(acc.point(d, aggregation));
                    }
                    let mut acc = DayAcc::default();
                    acc.add(count, sum, min, max);
                    current = Some((day, acc));
                }
            }
        }
        if let Some((d, acc)) = current {
            days.push(acc.point(d, aggregation));
        }
        Ok(DailySeries {
            kind: kind.to_string(),
            name: display_name(kind),
            unit,
            aggregation,
            days,
        })
    }
}

#[derive(Default)]
struct DayAcc {
    count: u64,
    sum: f64,
    best_source_sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl DayAcc {
    fn add(&mut self, count: u64, sum: f64, min: Option<f64>, max: Option<f64>) {
        self.count += count;
        self.sum += sum;
        self.best_source_sum = self.best_source_sum.max(sum);
        self.min = match (self.min, min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn point(self, day: i64, aggregation: Aggregation) -> DayPoint {
        let discrete = aggregation == Aggregation::Discrete;
        DayPoint {
            date: format_day(day),
            count: self.count,
            total: (!discrete).then_some(self.best_source_sum),
            min: self.min.filter(|_| discrete),
            avg: (discrete && self.count > 0).then(|| self.sum / self.count as f64),
            max: self.max.filter(|_| discrete),
        }
    }
}
