//! One workout in full, and a type's daily series: the queries behind the
//! detail pane and the charts.

use owi_export::Timestamp;
use owi_export::time::format_day;
use rusqlite::{OptionalExtension, params};

use super::{
    ActivityRow, DailySeries, DayPoint, EventRow, PointRow, SampleRow, StatisticRow,
    WORKOUT_COLUMNS, WorkoutDetail, workout_row,
};
use crate::Store;
use crate::catalog::{Aggregation, aggregation_of};
use crate::error::{Error, Result};
use crate::names::display_name;
use crate::route_blob;

impl Store {
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
