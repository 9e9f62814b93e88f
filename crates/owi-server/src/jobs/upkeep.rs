//! At start, before the worker runs: jobs the last process left in hand,
//! and files in `uploads/` that no job will read.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::params;

use super::Origin;
use crate::compat::Compat;
use crate::db::{Db, now_rfc3339, now_secs};
use crate::error::Error;
use crate::sync::{Hub, Report, Stage, Status};

/// What [`resume_interrupted`] did.
#[derive(Debug, Default)]
pub struct Resumed {
    pub queued: usize,
    pub given_up: usize,
}

/// A job found `processing` was in hand when the process died (a stop
/// puts it back in the queue): queued again, unless it has had all its
/// tries — then it is failed, so an export that crashes the server cannot
/// keep it from starting.
pub fn resume_interrupted(
    db: &Db,
    hub: &Hub,
    compat: Compat,
    attempts: u32,
) -> Result<Resumed, Error> {
    type Row = (String, String, String, String, String, u32);
    let rows: Vec<Row> = db.blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT id, run_id, user_id, filename, origin, attempts FROM jobs WHERE state = 'processing'",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        rows.collect()
    })?;
    let mut resumed = Resumed::default();
    for (id, run_id, user_id, filename, origin, tried) in rows {
        if tried < attempts {
            db.blocking(|c| {
                c.execute(
                    "UPDATE jobs SET state = 'queued', retry_at = NULL, updated_at = ? WHERE id = ?",
                    params![now_secs(), id],
                )
            })?;
            resumed.queued += 1;
            continue;
        }
        let error = format!(
            "The server stopped unexpectedly while importing this file, {tried} times; it is not tried again"
        );
        db.blocking(|c| {
            c.execute(
                "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
                params![error, now_secs(), id],
            )
        })?;
        tracing::error!(task = %id, attempts = tried, "an import kept stopping the server: failed");
        resumed.given_up += 1;
        if uuid::Uuid::parse_str(&user_id).is_ok()
            && compat.reports(Origin::parse(&origin), Stage::Failed)
        {
            hub.emit(Report {
                run_id: &run_id,
                user_id: &user_id,
                filename: &filename,
                stage: Stage::Failed,
                status: Status::Failed,
                message: Some("Import failed".into()),
                progress: None,
                items_processed: Some(0),
                items_total: Some(0),
                error: Some(error),
                started_at: None,
                ended_at: Some(now_rfc3339()),
            })?;
        }
    }
    Ok(resumed)
}

/// Removes from `dir` every upload file no queued job will read: `.part`
/// files cut off by a crash or a stop, copies fetched from the store (a
/// retry fetches again), and whole uploads whose job row was never
/// written (the process died in between) or whose job has ended.
pub fn sweep_uploads(db: &Db, dir: &Path) -> Result<usize, Error> {
    let wanted: Vec<String> = db.blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT path FROM jobs WHERE origin = 'direct' AND state IN ('queued', 'processing')",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    })?;
    let keep: HashSet<_> = wanted
        .iter()
        .filter_map(|p| Path::new(p).file_name().map(|n| n.to_os_string()))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path.extension().is_some_and(|e| e == "part" || e == "xml");
        if ours && !keep.contains(&entry.file_name()) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
