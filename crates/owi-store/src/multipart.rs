//! Multipart uploads in flight: each stored part's ETag is kept as it
//! lands, so an upload interrupted by a dropped network, a killed process
//! or a reboot goes on with the parts the server's store already holds;
//! and whether a server offers multipart uploads at all.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::history::now;
use crate::{Error, Result, Store};

/// A multipart upload the store holds parts of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MultipartState {
    pub name: String,
    pub file_key: String,
    pub upload_id: String,
    pub part_size: u64,
    pub bytes: u64,
    /// Parts already stored, by number, with their ETags.
    pub parts: Vec<(u32, String)>,
}

impl Store {
    /// Keeps a multipart upload's identity as soon as the server gives it.
    pub fn multipart_begun(&self, upload: i64, state: &MultipartState) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO multipart_state (upload, name, file_key, upload_id, part_size, bytes)
                 VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    upload,
                    state.name,
                    state.file_key,
                    state.upload_id,
                    state.part_size as i64,
                    state.bytes as i64
                ],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Keeps one stored part's ETag.
    pub fn multipart_part(&self, upload: i64, number: u32, etag: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO multipart_parts (upload, number, etag) VALUES (?, ?, ?)",
                params![upload, number, etag],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }

    /// Forgets a multipart upload that completed or was aborted.
    pub fn multipart_ended(&self, upload: i64) -> Result<()> {
        self.conn()
            .execute_batch(&format!(
                "BEGIN;
                 DELETE FROM multipart_parts WHERE upload = {upload};
                 DELETE FROM multipart_state WHERE upload = {upload};
                 COMMIT;"
            ))
            .map_err(|e| {
                let _ = self.conn().execute_batch("ROLLBACK");
                Error::db(self.path(), e)
            })
    }

    /// The multipart state kept for a piece.
    pub fn multipart_state(&self, upload: i64) -> Result<Option<MultipartState>> {
        let db = |e| Error::db(self.path(), e);
        let state = self
            .conn()
            .query_row(
                "SELECT name, file_key, upload_id, part_size, bytes FROM multipart_state WHERE upload = ?",
                [upload],
                |r| {
                    Ok(MultipartState {
                        name: r.get(0)?,
                        file_key: r.get(1)?,
                        upload_id: r.get(2)?,
                        part_size: r.get::<_, i64>(3)?.max(0) as u64,
                        bytes: r.get::<_, i64>(4)?.max(0) as u64,
                        parts: Vec::new(),
                    })
                },
            )
            .optional()
            .map_err(db)?;
        let Some(mut state) = state else {
            return Ok(None);
        };
        let mut q = self
            .conn()
            .prepare("SELECT number, etag FROM multipart_parts WHERE upload = ? ORDER BY number")
            .map_err(db)?;
        state.parts = q
            .query_map([upload], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db)?;
        Ok(Some(state))
    }

    /// Whether `origin` was found to offer multipart uploads.
    pub fn offers_multipart(&self, origin: &str) -> Result<Option<bool>> {
        self.conn()
            .query_row(
                "SELECT multipart FROM servers WHERE origin = ?",
                [origin],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))
    }

    pub fn remember_multipart(&self, origin: &str, offered: bool) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO servers (origin, multipart, checked_at) VALUES (?, ?, ?)",
                params![origin, offered, now()],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(())
    }
}
