//! What an upload's check would find, kept from the ingest that read the
//! same file (migration 9, in the journal file since 11), so an export
//! previewed before starts sending without another read. The ingest replays
//! what it stored to an [`owi_export::Checking`] on a thread of its own
//! (`ingest/replay.rs`); an upload asks [`Store::kept_check_row`]. A check
//! whose log holds the items of an upload still pending in the ledger
//! ([`crate::Carried::KeptLog`]) stays until that upload is settled, even
//! when a newer read of the file keeps another (migration 12).

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use owi_export::{KeptCheck, KeptOutcome, check_logic};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Store;
use crate::error::{Error, Result};
use crate::ingest::quick_key;

/// A file's size and modification time (ns since the epoch).
fn stamp(path: &Path) -> Result<(i64, i64)> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let modified = meta.modified().map_err(io)?;
    let ns = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Ok((i64::try_from(meta.len()).unwrap_or(i64::MAX), ns))
}

/// A kept check's row, which a pending upload's items may name: they are
/// those its log says went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptRow(pub(crate) i64);

/// Migration 12 (its script says why): checks get an id of their own, and
/// a pending upload's items may name one. Each change is made only if it
/// is not there yet: a crash may have left the journal file migrated and
/// the main file, with the version, not.
pub(crate) fn give_ids(conn: &Connection) -> rusqlite::Result<()> {
    let has = |table: &str, column: &str| crate::journal_has(conn, table, column);
    if !has("kept_checks", "id")? {
        conn.execute_batch(
            "CREATE TABLE journal.kept_checks_by_id (
                 id            INTEGER PRIMARY KEY AUTOINCREMENT,
                 quick_key     TEXT NOT NULL,
                 fingerprint   TEXT NOT NULL,
                 file_size     INTEGER NOT NULL,
                 file_mtime_ns INTEGER NOT NULL,
                 logic         TEXT NOT NULL,
                 outcome       BLOB NOT NULL
             );
             INSERT INTO journal.kept_checks_by_id
                 (quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome)
                 SELECT quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome
                 FROM journal.kept_checks;
             DROP TABLE journal.kept_checks;
             ALTER TABLE journal.kept_checks_by_id RENAME TO kept_checks;",
        )?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS journal.kept_checks_of_file ON kept_checks (quick_key, id);",
    )?;
    if !has("ledger_pending", "kept_check")? {
        conn.execute_batch("ALTER TABLE journal.ledger_pending ADD COLUMN kept_check INTEGER;")?;
    }
    Ok(())
}

/// A check no upload will be served (its export is gone, or a newer read
/// of the same file kept another) that no pending upload's items are in.
const UNSERVED: &str = "id NOT IN (SELECT kept_check FROM journal.ledger_pending
                                   WHERE kept_check IS NOT NULL)
    AND (NOT EXISTS (SELECT 1 FROM exports e WHERE e.quick_key = kept_checks.quick_key)
         OR EXISTS (SELECT 1 FROM journal.kept_checks newer
                    WHERE newer.quick_key = kept_checks.quick_key AND newer.id > kept_checks.id))";

/// Drops the check in `row` if it is [`UNSERVED`]: the upload that named
/// it is settled. Only that one: a check just kept by an ingest still
/// loading has no export yet.
pub(crate) fn drop_if_unserved(conn: &Connection, row: Option<i64>) -> rusqlite::Result<()> {
    let Some(row) = row else {
        return Ok(());
    };
    conn.execute(
        &format!("DELETE FROM journal.kept_checks WHERE id = ? AND {UNSERVED}"),
        [row],
    )
    .map(drop)
}

impl Store {
    /// Keeps what the check of the file at `path` (quick key `key`) found,
    /// streamed into the row's blob: its log never sits in memory.
    pub(crate) fn keep_check(&self, key: &str, path: &Path, kept: KeptOutcome) -> Result<()> {
        let (size, mtime) = stamp(path)?;
        let db = |e| Error::db(self.path(), e);
        let len = i64::try_from(kept.byte_len()).unwrap_or(i64::MAX);
        // One transaction: a failure half-way leaves no row of zeros. The
        // check it replaces is dropped after the ingest
        // (`drop_unserved_checks`), or later if a pending upload names it.
        let tx = self.conn().unchecked_transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO journal.kept_checks
                 (quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome)
             VALUES (?, ?, ?, ?, ?, zeroblob(?))",
            params![key, kept.fingerprint(), size, mtime, check_logic(), len],
        )
        .map_err(db)?;
        let row = tx.last_insert_rowid();
        let blob = tx
            .blob_open(c"journal", c"kept_checks", c"outcome", row, false)
            .map_err(db)?;
        let mut out = BufWriter::with_capacity(1 << 20, blob);
        kept.write_to(&mut out)
            .and_then(|()| out.flush())
            .map_err(|source| Error::Io {
                path: self.path().to_path_buf(),
                source,
            })?;
        drop(out);
        tx.commit().map_err(db)
    }

    /// Drops the checks of files whose exports are gone (replaced by the
    /// same XML read from another file, or deleted): they would never be
    /// served again, and each is some 44 MB per GB of export.
    pub(crate) fn drop_unserved_checks(&self) -> Result<()> {
        self.conn()
            .execute(
                &format!("DELETE FROM journal.kept_checks WHERE {UNSERVED}"),
                [],
            )
            .map(drop)
            .map_err(|e| Error::db(self.path(), e))
    }

    /// What the check of everything in the file at `path` would find (no
    /// filters, nothing sent before, with its tally), as an ingest of this
    /// very file kept it: same quick key, size and modification time, an
    /// export of that fingerprint read completely, and this build's check
    /// logic. `None` means the export must be read. With it, the log of
    /// every item judged, to choose for other filters or for a user who
    /// has some of it already;
    /// a log damaged in the file is found when it is used.
    pub fn kept_check(&self, path: &Path) -> Result<Option<KeptCheck>> {
        Ok(self.kept_check_row(path)?.map(|(_, kept)| kept))
    }

    /// [`Store::kept_check`], with the row it was read from.
    pub fn kept_check_row(&self, path: &Path) -> Result<Option<(KeptRow, KeptCheck)>> {
        let key = quick_key(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (size, mtime) = stamp(path)?;
        let db = |e| Error::db(self.path(), e);
        let found: Option<(String, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT k.fingerprint, k.id, length(k.outcome) FROM journal.kept_checks k
                 WHERE k.quick_key = ? AND k.file_size = ? AND k.file_mtime_ns = ? AND k.logic = ?
                   AND EXISTS (SELECT 1 FROM exports e WHERE e.quick_key = k.quick_key
                               AND e.fingerprint = k.fingerprint AND e.state = 'complete')
                 ORDER BY k.id DESC LIMIT 1",
                params![key, size, mtime, check_logic()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((fingerprint, row, len)) = found else {
            return Ok(None);
        };
        Ok(KeptCheck::from_kept(self.kept_outcome(row, len)?)
            .filter(|k| k.fingerprint() == fingerprint)
            .map(|k| (KeptRow(row), k)))
    }

    /// The `len` bytes of the kept check in `row`, read straight into one
    /// buffer: a column read would copy its tens of megabytes twice.
    pub(crate) fn kept_outcome(&self, row: i64, len: i64) -> Result<Vec<u8>> {
        let mut outcome = vec![0; usize::try_from(len).unwrap_or(0)];
        self.conn()
            .blob_open(c"journal", c"kept_checks", c"outcome", row, true)
            .map_err(|e| Error::db(self.path(), e))?
            .read_exact(&mut outcome)
            .map_err(|source| Error::Io {
                path: self.path().to_path_buf(),
                source,
            })?;
        Ok(outcome)
    }
}
