//! What the writer learns while it inserts, for the preview: per series
//! counts and time spans, per day totals, and what was left out. Folded
//! into the summary tables once, at the end of the load.

use std::collections::HashMap;

use owi_export::{Skip, SkipReason};
use rusqlite::{Connection, params};
use rustc_hash::FxHashMap;

use super::writer::{RecordRow, SeriesKey, SeriesRow};
use crate::catalog::Aggregation;

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
pub(super) struct Aggregates {
    /// Indexed by series id − `series_base`: ids are handed out in order.
    series: Vec<SeriesAgg>,
    series_base: i64,
    daily: FxHashMap<(i64, i64), DayAgg>,
    skips: HashMap<(SkipReason, &'static str), SkipAgg>,
    skipped_types: FxHashMap<i64, u64>,
    pub(super) route_files: u64,
    pub(super) route_points: u64,
    pub(super) route_skips: HashMap<SkipReason, u64>,
}

impl Aggregates {
    pub(super) fn add_series(&mut self, row: &SeriesRow) {
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

    pub(super) fn add_record(&mut self, row: &RecordRow) {
        let r = &row.core;
        let Some(s) = usize::try_from(row.series_id - self.series_base)
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
            (Aggregation::Duration, _) if row.counted => {
                (local(r.start + r.duration), r.duration as f64)
            }
            (Aggregation::Duration, _) => return,
            (_, Some(v)) => (local(r.start), v),
            (_, None) => return,
        };
        self.daily
            .entry((row.series_id, day))
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

    pub(super) fn add_skip(&mut self, s: &Skip, type_id: Option<i64>) {
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

impl Aggregates {
    /// Writes every summary table of `export_id` from what was gathered.
    pub(super) fn save(&self, tx: &Connection, export_id: i64) -> rusqlite::Result<()> {
        self.save_summary(tx, export_id)?;
        self.save_daily(tx, export_id)
    }

    /// The tables the summary reads, replacing what an earlier call (a live
    /// glimpse) wrote: cheap, a row per type and source, device, skip.
    pub(super) fn save_summary(&self, tx: &Connection, export_id: i64) -> rusqlite::Result<()> {
        for table in ["type_sources", "devices", "skipped_types", "skips"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE export_id = ?"))?
                .execute([export_id])?;
        }
        // Fold per-series aggregates into per-(type, source) rows.
        struct TypeSource {
            unit_id: Option<i64>,
            count: u64,
            first: (i64, i16),
            last: (i64, i16),
        }
        let mut by_type_source: FxHashMap<(i64, i64), TypeSource> = FxHashMap::default();
        let mut devices: FxHashMap<i64, u64> = FxHashMap::default();
        for s in self.series.iter().filter(|s| s.count > 0) {
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
        let mut stmt = tx.prepare_cached(
        "INSERT INTO type_sources (export_id, type_id, source_id, unit_id, count, first_start, last_start, first_tz, last_tz)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
        for ((type_id, source_id), t) in &by_type_source {
            stmt.execute(params![
                export_id,
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
        let mut stmt = tx
            .prepare_cached("INSERT INTO devices (export_id, device_id, count) VALUES (?, ?, ?)")?;
        for (device_id, count) in &devices {
            stmt.execute(params![export_id, device_id, *count as i64])?;
        }

        let mut stmt = tx.prepare_cached(
            "INSERT INTO skipped_types (export_id, type_id, count) VALUES (?, ?, ?)",
        )?;
        for (type_id, count) in &self.skipped_types {
            stmt.execute(params![export_id, type_id, *count as i64])?;
        }
        let mut stmt = tx.prepare_cached(
        "INSERT INTO skips (export_id, reason, element, count, first_offset, example) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
        for ((reason, element), s) in &self.skips {
            stmt.execute(params![
                export_id,
                reason.as_str(),
                element,
                s.count as i64,
                s.first_offset as i64,
                s.example
            ])?;
        }
        Ok(())
    }

    /// The charts' table: a row per type, source and day, written once.
    fn save_daily(&self, tx: &Connection, export_id: i64) -> rusqlite::Result<()> {
        let mut daily: FxHashMap<(i64, i64, i64), DayAgg> = FxHashMap::default();
        for (&(series_id, day), d) in &self.daily {
            let Some(s) = usize::try_from(series_id - self.series_base)
                .ok()
                .and_then(|i| self.series.get(i))
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
        let mut stmt = tx.prepare_cached(
        "INSERT INTO daily (export_id, type_id, source_id, day, count, sum, min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
        for ((type_id, source_id, day), d) in &daily {
            stmt.execute(params![
                export_id,
                type_id,
                source_id,
                day,
                d.count as i64,
                d.sum,
                d.min,
                d.max
            ])?;
        }

        Ok(())
    }
}
