//! The end of the load: the export's own row, its summary tables, and the
//! earlier copies of the same export it replaces.

use rusqlite::{Connection, params};

use super::aggregates::Aggregates;
use super::writer::Finish;

pub(super) fn write_finish(tx: &Connection, f: &Finish, a: &Aggregates) -> rusqlite::Result<()> {
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
    a.save(tx, f.export_id)
}

/// A store keeps one copy of an export: the same file read again (forced,
/// or after a partial read) or the same XML from another file replaces the
/// earlier copy, atomically with the new one's arrival.
pub(super) fn replace_earlier(tx: &Connection, f: &Finish) -> rusqlite::Result<()> {
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

fn delete_export(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DELETE FROM record_blocks WHERE series_id IN (SELECT id FROM series WHERE export_id = {id});
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
