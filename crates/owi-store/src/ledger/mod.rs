//! The ledger: per server and user, the identity of every item the server
//! confirmed importing from us, so a newer export sends only the rest.
//!
//! An import's items are *pending* (kept with its batch) until the server
//! confirms the import; then they are merged into the user's ledger, one
//! sorted set. A failed or cancelled import is discarded, and one nobody saw
//! end stays pending until a later look confirms it. Identities are 8 bytes
//! each: 3 million items take 23 MB, written to a file of their own
//! (`pending_file.rs`) while the upload is still on its way
//! ([`Store::ledger_pend_ahead`]), never confirmed before it is sent. An
//! upload of everything a kept check chose names that check instead
//! ([`Carried::KeptLog`]): its log holds them, and is read when the server
//! confirms.

mod sets;

use std::collections::HashSet;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::history::now;
use crate::kept_check::{KeptRow, drop_if_unserved};
use crate::pending_file::{self, PendingItems};
use crate::{Error, Result, Store};
use sets::{
    decode_items, decode_workouts, encode_items, encode_workouts, into_sorted, merged, sorted,
};

/// The items an upload carries, as the ledger keeps them pending.
#[derive(Debug, Clone, Copy)]
pub enum Carried<'a> {
    /// Their identities, kept in a file of their own.
    Listed(&'a [u64]),
    /// Every item the log of this kept check says went: it stays until
    /// the upload is settled.
    KeptLog(KeptRow),
}

/// How long an upload's items may be kept ahead of it before a store
/// opened takes its process for gone.
const STALE_SENDING_SECS: i64 = 24 * 60 * 60;

/// What reached one user of one server from us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Distinct item identities, sorted.
    pub items: Vec<u64>,
    /// Distinct workouts' (start, end), UTC seconds, sorted: what a
    /// server that still has our data must hold.
    pub workouts: Vec<(i64, i64)>,
    pub imports: u32,
    /// When the last confirmed import was merged in, Unix seconds.
    pub updated_at: i64,
}

/// A ledger's size and age, without its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LedgerSummary {
    pub items: u64,
    pub workouts: u64,
    pub imports: u32,
    pub updated_at: i64,
}

/// Column `i`, or `None` when it holds something else than `T` (a hand on
/// the database): housekeeping goes on without it.
fn lenient<T: rusqlite::types::FromSql>(r: &rusqlite::Row<'_>, i: usize) -> Option<T> {
    r.get::<_, Option<T>>(i).ok().flatten()
}

/// Where a pending row's items are: the log of a kept check, a file of
/// their own (and the xxh3 of its bytes), or, written before migration 13,
/// the row itself.
#[derive(Debug, PartialEq, Eq)]
struct Holder {
    kept: Option<i64>,
    file: Option<String>,
    hash: Option<i64>,
}

/// A holder's columns, in the order [`Holder::read`] takes them.
const HOLDER: &str = "kept_check, items_file, items_hash";

impl Holder {
    /// The [`HOLDER`] columns of `r`, from column `first` on.
    fn read(r: &rusqlite::Row<'_>, first: usize) -> Holder {
        Holder {
            kept: lenient(r, first),
            file: lenient(r, first + 1),
            hash: lenient(r, first + 2),
        }
    }

    /// Anything to read apart from the row.
    fn apart(&self) -> bool {
        self.kept.is_some() || self.file.is_some()
    }
}

/// A pending row, taken by the server's word.
struct Taken {
    server: String,
    user_id: String,
    /// Its items, when written before migration 13.
    listed: Vec<u8>,
    workouts: Vec<(i64, i64)>,
    holder: Holder,
}

/// The pending row of batch `?1` once its upload is sent: the only one
/// the server's word may confirm.
const SENT_ROW: &str = "batch = ?1 AND NOT EXISTS (SELECT 1 FROM ledger_sending WHERE batch = ?1)";

/// Where the items pending for `batch` are once its upload is sent.
fn held_by(conn: &rusqlite::Connection, batch: &str) -> rusqlite::Result<Option<Holder>> {
    let sent = format!("SELECT {HOLDER} FROM ledger_pending WHERE {SENT_ROW}");
    conn.query_row(&sent, [batch], |r| Ok(Holder::read(r, 0)))
        .optional()
}

/// Drops what is pending for `batch`, giving the kept check and the file
/// of items it named.
fn take_pending(
    conn: &rusqlite::Connection,
    batch: &str,
) -> rusqlite::Result<(Option<i64>, Option<String>)> {
    let take = "DELETE FROM ledger_pending WHERE batch = ? RETURNING kept_check, items_file";
    conn.query_row(take, [batch], |r| Ok((lenient(r, 0), lenient(r, 1))))
        .optional()
        .map(Option::unwrap_or_default)
}

impl Store {
    /// What this server's user has from us, if anything was confirmed.
    pub fn ledger(&self, server: &str, user_id: &str) -> Result<Option<Ledger>> {
        self.conn()
            .query_row(
                "SELECT items, workouts, imports, updated_at FROM ledgers
                 WHERE server = ? AND user_id = ?",
                params![server, user_id],
                |r| {
                    Ok(Ledger {
                        items: decode_items(&r.get::<_, Vec<u8>>(0)?),
                        workouts: decode_workouts(&r.get::<_, Vec<u8>>(1)?),
                        imports: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))
    }

    /// [`Store::ledger`]'s size and age, read without the items.
    pub fn ledger_summary(&self, server: &str, user_id: &str) -> Result<Option<LedgerSummary>> {
        self.conn()
            .query_row(
                "SELECT length(items) / 8, length(workouts) / 16, imports, updated_at FROM ledgers
                 WHERE server = ? AND user_id = ?",
                params![server, user_id],
                |r| {
                    Ok(LedgerSummary {
                        items: r.get::<_, i64>(0)?.max(0) as u64,
                        workouts: r.get::<_, i64>(1)?.max(0) as u64,
                        imports: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))
    }

    /// Keeps what an import carries until the server confirms it. Listed
    /// items are kept as they come (sorting millions of them would hold up
    /// the end of every upload) and sorted when the server confirms them;
    /// they are streamed into a file the row names, never copied whole in
    /// memory. `false`, nothing kept, when the kept check named is gone.
    pub fn ledger_pend(
        &self,
        batch: &str,
        server: &str,
        user_id: &str,
        items: Carried<'_>,
        workouts: &[(i64, i64)],
    ) -> Result<bool> {
        self.write_pending(batch, server, user_id, items, workouts, false)
    }

    /// Keeps what an import will carry while its upload is still being
    /// sent; [`ledger_sent`](Store::ledger_sent) says when it is. Rows an
    /// earlier upload to this user left still sending (its process stopped
    /// mid-upload) are dropped: if that upload lives on, it keeps its
    /// items again when it is sent.
    pub fn ledger_pend_ahead(
        &self,
        batch: &str,
        server: &str,
        user_id: &str,
        items: Carried<'_>,
        workouts: &[(i64, i64)],
    ) -> Result<bool> {
        self.drop_sending(
            "server = ? AND user_id = ? AND batch != ?",
            params![server, user_id, batch],
        )?;
        self.write_pending(batch, server, user_id, items, workouts, true)
    }

    /// Drops items kept ahead of an upload that has been on its way for
    /// over a day: its process stopped, and no upload to that user came
    /// since to drop them. Were it still going, it keeps them again when
    /// sent.
    pub(crate) fn drop_stale_sending(&self) -> Result<()> {
        self.drop_sending("created_at < ?", [now() - STALE_SENDING_SECS])?;
        self.drop_unsettled()?;
        let named: rusqlite::Result<HashSet<String>> = self
            .conn()
            .prepare("SELECT items_file FROM ledger_pending WHERE items_file IS NOT NULL")
            .and_then(|mut named| named.query_map([], |r| Ok(lenient(r, 0)))?.collect())
            .map(|named: Vec<Option<String>>| named.into_iter().flatten().collect());
        match named {
            Ok(named) => {
                let age = Duration::from_secs(STALE_SENDING_SECS.unsigned_abs());
                pending_file::sweep(&self.pending_dir(), &named, age);
            }
            // Housekeeping: never a reason not to open the store.
            Err(e) => tracing::warn!(error = %e, "could not list the pending items' files"),
        }
        Ok(())
    }

    /// Where the identities of pending uploads wait (`pending_file.rs`).
    fn pending_dir(&self) -> std::path::PathBuf {
        pending_file::dir_of(self.path())
    }

    /// Drops items left pending a day after every piece of their upload
    /// ended (the ledger failed to take or drop them then: a full disk):
    /// nothing will settle them now, and a kept check they name would stay
    /// for good. The next upload sends them again. An upload still waiting
    /// for the server's word keeps them.
    fn drop_unsettled(&self) -> Result<()> {
        self.drop_pending(
            "created_at < ? AND batch NOT IN (SELECT batch FROM ledger_sending)
             AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.batch = ledger_pending.batch
                             AND u.outcome IN ('sending', 'sent'))",
            [now() - STALE_SENDING_SECS],
        )
    }

    /// Drops the pending rows still marked sending that `which` (a
    /// condition on `ledger_pending`) picks.
    fn drop_sending(&self, which: &str, params: impl rusqlite::Params) -> Result<()> {
        self.drop_pending(
            &format!("batch IN (SELECT batch FROM ledger_sending) AND {which}"),
            params,
        )
    }

    /// Drops the pending rows `which` picks, the kept checks and files
    /// only they named, and marks left without a row.
    fn drop_pending(&self, which: &str, params: impl rusqlite::Params) -> Result<()> {
        let db = |e| Error::db(self.path(), e);
        let tx = self.conn().unchecked_transaction().map_err(db)?;
        let named: Vec<(Option<i64>, Option<String>)> = tx
            .prepare(&format!(
                "DELETE FROM ledger_pending WHERE {which} RETURNING kept_check, items_file"
            ))
            .and_then(|mut dropped| {
                dropped
                    .query_map(params, |r| Ok((lenient(r, 0), lenient(r, 1))))?
                    .collect()
            })
            .map_err(db)?;
        let mut files = Vec::new();
        for (kept, file) in named {
            drop_if_unserved(&tx, kept).map_err(db)?;
            files.extend(file);
        }
        tx.execute(
            "DELETE FROM ledger_sending WHERE batch NOT IN (SELECT batch FROM ledger_pending)",
            [],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        pending_file::remove(&self.pending_dir(), files);
        Ok(())
    }

    /// The upload of `batch` was sent: what was kept ahead of it is pending
    /// like any other import's. `false` when nothing is kept for it (never
    /// written, or dropped meanwhile): the caller keeps its items now.
    pub fn ledger_sent(&self, batch: &str) -> Result<bool> {
        let changed = self
            .conn()
            .execute(
                "DELETE FROM ledger_sending
                 WHERE batch = ?1 AND EXISTS (SELECT 1 FROM ledger_pending WHERE batch = ?1)",
                [batch],
            )
            .map_err(|e| Error::db(self.path(), e))?;
        Ok(changed == 1)
    }

    fn write_pending(
        &self,
        batch: &str,
        server: &str,
        user_id: &str,
        items: Carried<'_>,
        workouts: &[(i64, i64)],
        sending: bool,
    ) -> Result<bool> {
        let db = |e| Error::db(self.path(), e);
        let (file, kept) = match items {
            Carried::Listed([]) => (None, None),
            // Before SQLite's write lock: another process's history and
            // multipart journal need not wait for it (this one's wait on
            // the store's lock, 0.01 s).
            Carried::Listed(listed) => (
                Some(PendingItems::write(&self.pending_dir(), listed)?),
                None,
            ),
            Carried::KeptLog(KeptRow(row)) => (None, Some(row)),
        };
        let tx = self.conn().unchecked_transaction().map_err(db)?;
        // A write first: a transaction that read first could not write
        // once another process (the app, the CLI) had. The row it drops
        // is written again below; refused, the transaction rolls back as
        // it is dropped, and the row is as it was.
        let (replaced, replaced_file) = take_pending(&tx, batch).map_err(db)?;
        if let Some(file) = &file {
            // Swept by another process while this one slept a day, an
            // error: the caller keeps the items again.
            file.claim()?;
        }
        // A kept check named must still be there: the row is written only
        // if it is.
        let written = tx
            .execute(
                "INSERT OR REPLACE INTO ledger_pending
                     (batch, server, user_id, items, workouts, created_at, kept_check,
                      items_file, items_hash)
                 SELECT ?1, ?2, ?3, x'', ?4, ?5, ?6, ?7, ?8
                 WHERE ?6 IS NULL OR EXISTS (SELECT 1 FROM kept_checks WHERE id = ?6)",
                params![
                    batch,
                    server,
                    user_id,
                    encode_workouts(&sorted(workouts)),
                    now(),
                    kept,
                    file.as_ref().map(|f| &f.name),
                    file.as_ref().map(|f| f.hash),
                ],
            )
            .map_err(db)?;
        if written == 0 {
            return Ok(false);
        }
        // Named again by the new row, it stays.
        drop_if_unserved(&tx, replaced).map_err(db)?;
        let mark = match sending {
            true => "INSERT OR REPLACE INTO ledger_sending (batch) VALUES (?)",
            false => "DELETE FROM ledger_sending WHERE batch = ?",
        };
        tx.execute(mark, [batch]).map_err(db)?;
        tx.commit().map_err(db)?;
        // A name given again once its file was gone is the new row's.
        let replaced_file = replaced_file.filter(|old| file.as_ref().map(|f| &f.name) != Some(old));
        if let Some(file) = file {
            file.kept();
        }
        pending_file::remove(&self.pending_dir(), replaced_file);
        Ok(true)
    }

    /// The items the log of the kept check in `row` says went, sorted,
    /// whichever logic kept it. A log found damaged, or its check gone
    /// (only a hand on the file can do either), gives none: the next
    /// upload to this user sends them again.
    fn went_in(&self, row: i64) -> Result<Vec<u64>> {
        let len: Option<i64> = self
            .conn()
            .query_row(
                "SELECT length(outcome) FROM kept_checks WHERE id = ?",
                [row],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(self.path(), e))?;
        let went = match len {
            Some(len) => owi_export::KeptCheck::went_of_kept(self.kept_outcome(row, len)?),
            None => None,
        };
        if went.is_none() {
            tracing::warn!(
                kept_check = row,
                "the kept check naming an upload's items is damaged or gone: they stay out of the ledger"
            );
        }
        Ok(into_sorted(went.unwrap_or_default()))
    }

    /// The items `holder` says a pending row holds (those in `listed`, the
    /// row's own, when it names nothing else), sorted; `None` when a file
    /// of them is gone or damaged.
    fn held_items(&self, holder: &Holder, listed: &[u8]) -> Result<Option<Vec<u64>>> {
        match (holder.kept, &holder.file) {
            (Some(row), _) => self.went_in(row).map(Some),
            (None, Some(name)) => self.pending_items(name, holder.hash),
            (None, None) => Ok(Some(into_sorted(decode_items(listed)))),
        }
    }

    /// The items in the file `name` of a pending row, sorted; `None` when
    /// it is gone or damaged, or the row has no hash for it (a hand on the
    /// database); an error when it cannot be read, which fails the
    /// confirmation with the reason (its row is dropped a day later,
    /// `drop_unsettled`, and the next upload sends the items again).
    fn pending_items(&self, name: &str, hash: Option<i64>) -> Result<Option<Vec<u64>>> {
        let Some(hash) = hash else {
            tracing::warn!(
                file = name,
                "a pending row names a file of items without its hash"
            );
            return Ok(None);
        };
        let dir = self.pending_dir();
        let read = pending_file::read(&dir, name, hash).map_err(|source| Error::Io {
            path: dir.join(name),
            source,
        })?;
        Ok(read.map(into_sorted))
    }

    /// The server confirmed the import of `batch`: its items join the
    /// ledger. `false` when nothing was pending for it.
    pub fn ledger_confirm(&self, batch: &str) -> Result<bool> {
        let db = |e| Error::db(self.path(), e);
        // The items are taken out (tens of megabytes read, a pass and a
        // sort) before the write lock: the check cannot go while the row
        // names it, and a file found whole by its name and hash is what the
        // row wrote. Anything else is decided under the lock.
        let early = match held_by(self.conn(), batch)
            .map_err(db)?
            .filter(Holder::apart)
        {
            // A failure here is met again, and reported, under the lock.
            Some(holder) => match self.held_items(&holder, &[]) {
                Ok(Some(items)) => Some((items, holder)),
                _ => None,
            },
            None => None,
        };
        // Taken out of the table first, a write: see `write_pending`.
        let tx = self.conn().unchecked_transaction().map_err(db)?;
        let pending = tx
            .query_row(
                &format!(
                    "DELETE FROM ledger_pending WHERE {SENT_ROW}
                     RETURNING server, user_id, items, workouts, {HOLDER}"
                ),
                [batch],
                |r| {
                    Ok(Taken {
                        server: r.get(0)?,
                        user_id: r.get(1)?,
                        listed: r.get(2)?,
                        workouts: decode_workouts(&r.get::<_, Vec<u8>>(3)?),
                        holder: Holder::read(r, 4),
                    })
                },
            )
            .optional()
            .map_err(db)?;
        let Some(Taken {
            server,
            user_id,
            listed,
            workouts,
            holder,
        }) = pending
        else {
            return Ok(false);
        };
        // Else written again meanwhile, naming another check or file; what
        // was read early goes before the new read.
        let items = match early.filter(|(_, from)| *from == holder) {
            Some((items, _)) => items,
            None => self.held_items(&holder, &listed)?.unwrap_or_default(),
        };
        drop(listed);
        let before = self.ledger(&server, &user_id)?.unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO ledgers (server, user_id, items, workouts, imports, updated_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            params![
                server,
                user_id,
                encode_items(&merged(&before.items, &items)),
                encode_workouts(&merged(&before.workouts, &workouts)),
                before.imports + 1,
                now()
            ],
        )
        .map_err(db)?;
        drop_if_unserved(&tx, holder.kept).map_err(db)?;
        tx.commit().map_err(db)?;
        pending_file::remove(&self.pending_dir(), holder.file);
        Ok(true)
    }

    /// The import of `batch` failed or was given up: what it carried is
    /// not the server's.
    pub fn ledger_discard(&self, batch: &str) -> Result<()> {
        self.drop_pending("batch = ?", [batch])
    }
}
