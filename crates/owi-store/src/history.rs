//! The upload history: which export went to which server and user, how,
//! and how the server's import ended.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::{Error, Result, Store};

/// An upload about to start.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    pub export_key: &'a str,
    pub source_path: &'a str,
    pub server: &'a str,
    pub user_id: &'a str,
}

/// How an upload went so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Sending,
    /// Sent; the server's import not (yet) seen to end.
    Sent,
    Imported,
    Failed,
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Sending => "sending",
            Outcome::Sent => "sent",
            Outcome::Imported => "imported",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "sent" => Outcome::Sent,
            "imported" => Outcome::Imported,
            "failed" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            _ => Outcome::Sending,
        }
    }
}

/// What the transfer itself produced.
#[derive(Debug, Clone, Default)]
pub struct Transfer<'a> {
    pub method: &'a str,
    pub name: &'a str,
    pub file_key: Option<&'a str>,
    pub task_id: Option<&'a str>,
    pub parts: Option<u32>,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadRecord {
    pub id: i64,
    pub export_key: String,
    pub source_path: String,
    pub server: String,
    pub user_id: String,
    pub method: Option<String>,
    pub name: Option<String>,
    pub file_key: Option<String>,
    pub task_id: Option<String>,
    pub parts: Option<u32>,
    pub bytes: Option<u64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Outcome,
    pub items: Option<u64>,
    pub error: Option<String>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const COLUMNS: &str = "id, export_key, source_path, server, user_id, method, name, file_key, task_id, parts, \
                       bytes, started_at, finished_at, outcome, items, error";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadRecord> {
    Ok(UploadRecord {
        id: r.get(0)?,
        export_key: r.get(1)?,
        source_path: r.get(2)?,
        server: r.get(3)?,
        user_id: r.get(4)?,
        method: r.get(5)?,
        name: r.get(6)?,
        file_key: r.get(7)?,
        task_id: r.get(8)?,
        parts: r.get(9)?,
        bytes: r.get::<_, Option<i64>>(10)?.map(|b| b.max(0) as u64),
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        outcome: Outcome::parse(&r.get::<_, String>(13)?),
        items: r.get::<_, Option<i64>>(14)?.map(|n| n.max(0) as u64),
        error: r.get(15)?,
    })
}

impl Store {
    /// Records an upload starting; its id for the later steps.
    pub fn upload_started(&self, new: &NewUpload<'_>) -> Result<i64> {
        self.conn()
            .execute(
                "INSERT INTO uploads (export_key, source_path, server, user_id, started_at, outcome)
                 VALUES (?, ?, ?, ?, ?, 'sending')",
                params![new.export_key, new.source_path, new.server, new.user_id, now()],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Records what the transfer produced; the outcome becomes `sent`.
    pub fn upload_sent(&self, id: i64, t: &Transfer<'_>) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE uploads SET method = ?, name = ?, file_key = ?, task_id = ?, parts = ?, bytes = ?,
                    outcome = 'sent' WHERE id = ?",
                params![t.method, t.name, t.file_key, t.task_id, t.parts, t.bytes as i64, id],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Records how it ended.
    pub fn upload_ended(
        &self,
        id: i64,
        outcome: Outcome,
        items: Option<u64>,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE uploads SET outcome = ?, items = ?, error = ?, finished_at = ? WHERE id = ?",
                params![outcome.as_str(), items.map(|n| n as i64), error, now(), id],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Uploads, newest first.
    pub fn uploads(&self, limit: u32) -> Result<Vec<UploadRecord>> {
        let mut q = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM uploads ORDER BY id DESC LIMIT ?"
            ))
            .map_err(|e| Error::db(self.path(), e))?;
        let rows = q
            .query_map([limit], record)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(rows)
    }

    /// The last upload of this export to this server and user that reached
    /// the server (sent or imported), if any.
    pub fn previous_upload(
        &self,
        export_key: &str,
        server: &str,
        user_id: &str,
    ) -> Result<Option<UploadRecord>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM uploads
                     WHERE export_key = ? AND server = ? AND user_id = ? AND outcome IN ('sent', 'imported')
                     ORDER BY id DESC LIMIT 1"
                ),
                params![export_key, server, user_id],
                record,
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_recorded_from_start_to_end_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let new = NewUpload {
            export_key: "k1",
            source_path: "/exports/export.zip",
            server: "http://127.0.0.1:8000",
            user_id: "u1",
        };
        let id = store.upload_started(&new).unwrap();
        assert_eq!(
            store.previous_upload("k1", new.server, "u1").unwrap(),
            None,
            "not sent yet"
        );
        store
            .upload_sent(
                id,
                &Transfer {
                    method: "multipart",
                    name: "owi-1-abc.xml",
                    file_key: Some("u1/raw/owi-1-abc.xml"),
                    task_id: Some("t1"),
                    parts: Some(3),
                    bytes: 12_000_000,
                },
            )
            .unwrap();
        store
            .upload_ended(id, Outcome::Imported, Some(4200), None)
            .unwrap();
        let found = store
            .previous_upload("k1", new.server, "u1")
            .unwrap()
            .unwrap();
        assert_eq!(found.outcome, Outcome::Imported);
        assert_eq!(
            (found.parts, found.bytes, found.items),
            (Some(3), Some(12_000_000), Some(4200))
        );
        assert!(found.finished_at.is_some());
        assert_eq!(
            store.previous_upload("k1", new.server, "u2").unwrap(),
            None,
            "another user"
        );
        assert_eq!(
            store.previous_upload("k2", new.server, "u1").unwrap(),
            None,
            "another export"
        );

        let failed = store.upload_started(&new).unwrap();
        store
            .upload_ended(failed, Outcome::Failed, None, Some("cannot reach"))
            .unwrap();
        let all = store.uploads(10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].outcome, Outcome::Failed, "newest first");
        assert_eq!(
            store
                .previous_upload("k1", new.server, "u1")
                .unwrap()
                .unwrap()
                .id,
            id
        );
    }
}
