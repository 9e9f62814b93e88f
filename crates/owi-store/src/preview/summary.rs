//! The summary of one export, from the small tables the ingest wrote. The
//! ingest's live glimpses run the same query inside its own transaction,
//! so the final numbers replace the live ones without a jump.

use std::collections::BTreeMap;

use owi_export::{Stats, Timestamp};
use rusqlite::Connection;

use super::{DeviceSummary, ExportInfo, KindCount, SkipSummary, Summary, TypeAcc, TypeSummary};
use crate::Store;
use crate::catalog::aggregation_of;
use crate::error::Result;
use crate::names::{category_of, device_name, display_name, group_by_category};

impl Store {
    /// The summary of one export.
    pub fn summary(&self, export_id: i64) -> Result<Summary> {
        let export = self.export(export_id)?;
        let stats = self.export_stats(export_id)?;
        self.db(summary_of(self.conn(), export, &stats))
    }
}

fn all<T, P, F>(conn: &Connection, sql: &str, params: P, f: F) -> rusqlite::Result<Vec<T>>
where
    P: rusqlite::Params,
    F: FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
{
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, f)?;
    rows.collect()
}

/// The summary of `export`, from its summary tables and workouts as `conn`
/// sees them (inside the ingest's transaction, what is written so far).
pub(crate) fn summary_of(
    conn: &Connection,
    export: ExportInfo,
    stats: &Stats,
) -> rusqlite::Result<Summary> {
    let export_id = export.id;

    let rows = all(conn, "SELECT t.text, s.text, u.text, ts.count, ts.first_start, ts.first_tz, ts.last_start, ts.last_tz
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
    let skipped_types: BTreeMap<String, u64> = all(
            conn,
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

    let workout_types: BTreeMap<String, u64> = all(
        conn,
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

    let devices = all(
        conn,
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

    let skipped = all(
        conn,
        "SELECT reason, element, count, first_offset, example FROM skips WHERE export_id = ? ORDER BY count DESC, reason, element",
        [export_id],
        |r| {
            Ok(SkipSummary {
                reason: r.get(0)?,
                element: r.get(1)?,
                count: r.get::<_, i64>(2)? as u64,
                first_offset: r.get::<_, i64>(3)? as u64,
                example: r.get(4)?,
            })
        },
    )?;

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
