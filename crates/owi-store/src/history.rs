//! The upload history: which export went to which server and user, how,
//! and how the server's import ended; and the state of multipart uploads in
//! flight, so an interrupted one resumes.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::multipart::MultipartState;
use crate::{Error, Result, Store};

/// An upload about to start.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    pub export_key: &'a str,
    pub source_path: &'a str,
    pub server: &'a str,
    pub user_id: &'a str,
    /// Shared by the pieces of one attempt at sending a split export.
    pub batch: &'a str,
    /// Which piece of how many, 1-based.
    pub piece: (u32, u32),
    /// xxh3-128 of the export's XML, from the pre-flight check.
    pub fingerprint: &'a str,
    /// Whether the DTD and illegal characters were blanked.
    pub cleaned: bool,
    /// Only what the server did not have (`Some(true)`), or everything.
    pub delta: Option<bool>,
    /// The person's filters in words ("" for none).
    pub filters: &'a str,
}

/// How an upload went so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    pub batch: Option<String>,
    pub piece: Option<u32>,
    pub pieces: Option<u32>,
    pub fingerprint: Option<String>,
    pub cleaned: bool,
    /// Only what was new for the user (`Some(true)`), or everything.
    pub delta: Option<bool>,
    /// The filters in words, when there were any.
    pub filters: Option<String>,
}

/// An attempt at sending an export that stopped before every piece was
/// sent, and that can go on where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Interrupted {
    pub batch: String,
    /// Its pieces so far, in order.
    pub pieces: Vec<UploadRecord>,
    /// The piece whose multipart upload was under way, and its state.
    pub multipart: Option<(i64, MultipartState)>,
}

impl Interrupted {
    pub fn fingerprint(&self) -> Option<&str> {
        self.pieces.first().and_then(|p| p.fingerprint.as_deref())
    }

    pub fn cleaned(&self) -> bool {
        self.pieces.first().is_some_and(|p| p.cleaned)
    }

    /// Pieces the server already has.
    pub fn sent(&self) -> impl Iterator<Item = &UploadRecord> {
        self.pieces
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Sent | Outcome::Imported))
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const COLUMNS: &str = "id, export_key, source_path, server, user_id, method, name, file_key, task_id, parts, \
                       bytes, started_at, finished_at, outcome, items, error, batch, piece, pieces, \
                       fingerprint, cleaned, delta, filters";

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
        batch: r.get(16)?,
        piece: r.get(17)?,
        pieces: r.get(18)?,
        fingerprint: r.get(19)?,
        cleaned: r.get::<_, Option<bool>>(20)?.unwrap_or(false),
        delta: r.get(21)?,
        filters: r.get::<_, Option<String>>(22)?.filter(|f| !f.is_empty()),
    })
}

impl Store {
    /// Records an upload starting; its id for the later steps.
    pub fn upload_started(&self, new: &NewUpload<'_>) -> Result<i64> {
        self.conn()
            .execute(
                "INSERT INTO uploads (export_key, source_path, server, user_id, started_at, outcome,
                    batch, piece, pieces, fingerprint, cleaned, delta, filters)
                 VALUES (?, ?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?, ?, ?)",
                params![
                    new.export_key,
                    new.source_path,
                    new.server,
                    new.user_id,
                    now(),
                    new.batch,
                    new.piece.0,
                    new.piece.1,
                    new.fingerprint,
                    new.cleaned,
                    new.delta,
                    new.filters
                ],
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

    /// Forgets an upload that never reached the server (it is sent again
    /// differently, e.g. cut into pieces).
    pub fn upload_forget(&self, id: i64) -> Result<()> {
        self.multipart_ended(id)?;
        self.conn()
            .execute("DELETE FROM uploads WHERE id = ?", [id])
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Marks a piece `sending` again when an interrupted attempt goes on.
    pub fn upload_resumed(&self, id: i64) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE uploads SET outcome = 'sending', error = NULL, finished_at = NULL WHERE id = ?",
                [id],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Keeps what an attempt should leave on the server (opaque JSON).
    pub fn expect(&self, batch: &str, expected: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO upload_expectations (batch, expected) VALUES (?, ?)",
                params![batch, expected],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// What an attempt should leave on the server, if it was kept.
    pub fn expected(&self, batch: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT expected FROM upload_expectations WHERE batch = ?",
                [batch],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))
    }

    /// Uploads to this server and user that reached it but whose import
    /// nobody saw end, newest first: a later look may find their data.
    pub fn awaiting(&self, server: &str, user_id: &str) -> Result<Vec<UploadRecord>> {
        let db = |e| Error::db(self.path(), e);
        let mut q = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM uploads WHERE server = ? AND user_id = ? AND outcome = 'sent'
                 ORDER BY started_at DESC, id DESC"
            ))
            .map_err(db)?;
        q.query_map(params![server, user_id], record)
            .and_then(|rows| rows.collect())
            .map_err(db)
    }

    /// The latest attempt at sending this export to this server and user,
    /// if it stopped with something to go on from: pieces the server has,
    /// or a multipart upload with parts stored. A cancelled attempt, or
    /// one that went through, is not interrupted.
    pub fn interrupted(
        &self,
        export_key: &str,
        server: &str,
        user_id: &str,
    ) -> Result<Option<Interrupted>> {
        let batch: Option<String> = self
            .conn()
            .query_row(
                "SELECT batch FROM uploads WHERE export_key = ? AND server = ? AND user_id = ?
                 AND batch IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![export_key, server, user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))?;
        match batch {
            Some(batch) => self.interrupted_batch(&batch),
            None => Ok(None),
        }
    }

    /// Every interrupted attempt, newest first (offered on the next launch).
    pub fn interrupted_all(&self) -> Result<Vec<Interrupted>> {
        let batches = {
            let mut q = self
                .conn()
                .prepare(
                    "SELECT batch FROM uploads WHERE batch IS NOT NULL AND outcome IN ('sending', 'failed')
                     GROUP BY batch ORDER BY MAX(id) DESC",
                )
                .map_err(|e| Error::db(self.path(), e))?;
            q.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| Error::db(self.path(), e))?
        };
        let mut found = Vec::new();
        for batch in batches {
            found.extend(self.interrupted_batch(&batch)?);
        }
        Ok(found)
    }

    /// Every piece of one attempt, in order.
    pub fn batch(&self, batch: &str) -> Result<Vec<UploadRecord>> {
        let mut q = self
            .conn()
            .prepare(&format!(
                "SELECT {COLUMNS} FROM uploads WHERE batch = ? ORDER BY piece, id"
            ))
            .map_err(|e| Error::db(self.path(), e))?;
        q.query_map([batch], record)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db(self.path(), e))
    }

    fn interrupted_batch(&self, batch: &str) -> Result<Option<Interrupted>> {
        let pieces = self.batch(batch)?;
        let Some(first) = pieces.first() else {
            return Ok(None);
        };
        let count = first.pieces.unwrap_or(1) as usize;
        let done = pieces
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Sent | Outcome::Imported))
            .count();
        let cancelled = pieces.iter().any(|p| p.outcome == Outcome::Cancelled);
        if cancelled || done >= count {
            return Ok(None);
        }
        let mut multipart = None;
        for piece in pieces.iter().filter(|p| p.outcome != Outcome::Sent) {
            if let Some(state) = self.multipart_state(piece.id)? {
                multipart = Some((piece.id, state));
            }
        }
        if done == 0 && multipart.as_ref().is_none_or(|(_, s)| s.parts.is_empty()) {
            return Ok(None);
        }
        Ok(Some(Interrupted {
            batch: batch.to_string(),
            pieces,
            multipart,
        }))
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
            batch: "b1",
            piece: (1, 1),
            fingerprint: "f1",
            cleaned: true,
            delta: Some(true),
            filters: "only sleep",
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
            (found.delta, found.filters.as_deref()),
            (Some(true), Some("only sleep"))
        );
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

    #[test]
    fn an_interrupted_multipart_upload_is_found_with_its_parts_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let piece = |n| NewUpload {
            export_key: "k1",
            source_path: "/exports/export.zip",
            server: "http://127.0.0.1:8000",
            user_id: "u1",
            batch: "b1",
            piece: (n, 2),
            fingerprint: "f1",
            cleaned: true,
            delta: None,
            filters: "",
        };
        let first = store.upload_started(&piece(1)).unwrap();
        assert_eq!(
            store.interrupted("k1", piece(1).server, "u1").unwrap(),
            None,
            "nothing stored yet: nothing to go on from"
        );
        let transfer = Transfer {
            method: "multipart",
            name: "p1.xml",
            ..Transfer::default()
        };
        store.upload_sent(first, &transfer).unwrap();
        let second = store.upload_started(&piece(2)).unwrap();
        let state = MultipartState {
            name: "p2.xml".into(),
            file_key: "u1/raw/p2.xml".into(),
            upload_id: "up-2".into(),
            part_size: 5 << 20,
            bytes: 12 << 20,
            parts: vec![],
        };
        store.multipart_begun(second, &state).unwrap();
        store.multipart_part(second, 2, "\"e2\"").unwrap();
        store.multipart_part(second, 1, "\"e1\"").unwrap();
        // The process dies here.
        let reopened = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let found = reopened
            .interrupted("k1", piece(1).server, "u1")
            .unwrap()
            .unwrap();
        assert_eq!(found.batch, "b1");
        assert_eq!(found.fingerprint(), Some("f1"));
        assert!(found.cleaned());
        assert_eq!(found.sent().map(|p| p.id).collect::<Vec<_>>(), [first]);
        let (id, kept) = found.multipart.clone().unwrap();
        assert_eq!(id, second);
        assert_eq!(
            kept.parts,
            [(1, "\"e1\"".to_string()), (2, "\"e2\"".to_string())]
        );
        assert_eq!(kept.upload_id, "up-2");
        assert_eq!(reopened.interrupted_all().unwrap(), [found]);

        reopened.multipart_ended(second).unwrap();
        reopened.upload_sent(second, &transfer).unwrap();
        assert_eq!(reopened.multipart_state(second).unwrap(), None);
        assert_eq!(
            reopened.interrupted("k1", piece(1).server, "u1").unwrap(),
            None,
            "every piece sent"
        );
        assert!(reopened.interrupted_all().unwrap().is_empty());
    }
}
