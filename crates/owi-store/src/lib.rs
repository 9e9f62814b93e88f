//! The local store: one SQLite file holding every export a person opened.
//!
//! [`Store::ingest`] streams an export into it on two threads (the reader
//! parses, interns and aggregates; a writer thread inserts), in one
//! transaction, so a failed or cancelled ingest leaves what was stored
//! before untouched. Preview queries ([`Store::summary`],
//! [`Store::workouts`], [`Store::workout_detail`], [`Store::daily_series`])
//! read aggregates computed during that pass and never scan all records.
//!
//! The schema lives in `schema.sql`; migrations are numbered by SQLite's
//! `user_version`.

mod catalog;
mod error;
mod history;
mod ingest;
mod kept_check;
mod ledger;
mod multipart;
mod pending_file;
pub use owi_export::names;
mod preview;
mod record_block;
mod route_blob;
mod server_view;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use catalog::{Aggregation, aggregation_of};
pub use error::{Error, Result};
pub use history::{Interrupted, NewUpload, Outcome, Transfer, UploadRecord};
pub use ingest::{GLIMPSE_INTERVAL, Glimpse, GlimpseSink, IngestOptions, IngestOutcome, quick_key};
pub use kept_check::KeptRow;
pub use ledger::{Carried, Ledger, LedgerSummary};
pub use multipart::MultipartState;
pub use names::{
    Category, CategoryGroup, category_of, device_name, display_name, group_by_category,
    skip_reason_text,
};
pub use preview::*;
pub use server_view::{ImportedType, PassedOver, ServerPreview};

/// Migrations in order; index + 1 is the `user_version` each one reaches.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migrations/002_event_metadata.sql"),
    include_str!("migrations/003_uploads.sql"),
    include_str!("migrations/004_resume.sql"),
    include_str!("migrations/005_expected.sql"),
    include_str!("migrations/006_ledger.sql"),
    include_str!("migrations/007_journal.sql"),
    include_str!("migrations/008_record_blocks.sql"),
    include_str!("migrations/009_kept_checks.sql"),
    include_str!("migrations/010_pending_while_sending.sql"),
    include_str!("migrations/011_kept_checks_in_journal.sql"),
    include_str!("migrations/012_pending_in_kept_logs.sql"),
    include_str!("migrations/013_pending_items_in_files.sql"),
];

/// The migration whose script is followed, in its transaction, by
/// [`record_block::pack_legacy_rows`].
const PACK_RECORDS: usize = 8;
type JournalMigration = fn(&Connection) -> rusqlite::Result<()>;

/// The migrations made in Rust, in the journal file alone, each change
/// only if missing: committed on their own before the version, since a
/// crash can leave the journal's commit done and the main file's not.
const IN_JOURNAL: &[(usize, JournalMigration)] =
    &[(12, kept_check::give_ids), (13, pending_file::name_files)];

/// Where a migration commits before going on (see `migrate`).
const STEP: &str = "\n-- commit, then:\n";

/// The file beside the store that holds what was sent where:
/// `owi.sqlite` → `owi.journal.sqlite`.
pub fn journal_path(path: &Path) -> PathBuf {
    path.with_extension("journal.sqlite")
}

/// A connection to the store's main file alone, as an ingest writes it:
/// WAL (readers never wait for a writer), normal syncing (safe in WAL),
/// and patience with the other writer.
pub(crate) fn open_main(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| Error::db(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
        .map_err(|e| Error::db(path, e))?;
    Ok(conn)
}

/// Whether the journal's `table` has `column` (a migration made in Rust
/// looks before it changes).
pub(crate) fn journal_has(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1, 'journal') WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )
}

/// A handle on the local database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let conn = open_main(path)?;
        let journal = journal_path(path);
        conn.execute("ATTACH DATABASE ?1 AS journal", [journal.to_string_lossy()])
            .and_then(|_| conn.pragma_update(Some("journal"), "journal_mode", "WAL"))
            .map_err(|e| Error::db(&journal, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        store.drop_stale_sending()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folds what the write-ahead logs hold into the database files and
    /// empties them: an ingest leaves its pages there (a GB's export is
    /// 130 MB of them, 0.4 s to fold) so its preview need not wait, and
    /// its caller calls this once the preview is shown. SQLite folds them
    /// too when the store's last connection closes, but no later commit
    /// does: only ingests write the main file, and theirs leave them.
    /// `false` when a reader or writer was in the way and some is left for
    /// the next fold.
    pub fn fold_wal(&self) -> Result<bool> {
        let mut whole = true;
        // Passive first: the copying, which blocks nobody. Truncating then
        // waits for readers to leave the log, and holds writers back
        // meanwhile: only for that wait, not for the copy.
        for mode in ["PASSIVE", "TRUNCATE"] {
            for schema in ["main", "journal"] {
                let busy: i64 = self
                    .conn
                    .query_row(
                        &format!("PRAGMA {schema}.wal_checkpoint({mode})"),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| Error::db(&self.path, e))?;
                whole &= busy == 0;
            }
        }
        Ok(whole)
    }

    /// [`fold_wal`](Store::fold_wal), saying in the log what it left.
    pub fn fold_wal_logged(&self) {
        match self.fold_wal() {
            Ok(true) => {}
            Ok(false) => tracing::info!("the store's log was in use: the next fold takes the rest"),
            Err(e) => tracing::warn!(error = %e, "could not fold the store's log into it"),
        }
    }

    /// [`fold_wal`](Store::fold_wal) on a thread of its own, this handle
    /// closed after it: for a caller that goes on meanwhile.
    pub fn fold_wal_in_background(self) {
        let spawned = std::thread::Builder::new()
            .name("store-fold".into())
            .spawn(move || self.fold_wal_logged());
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start folding the store's log");
        }
    }

    fn migrate(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Error::db(&self.path, e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::TooNew {
                path: self.path.clone(),
                version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let to = i + 1;
            // A migration that spans the two files commits each step on
            // its own (WAL commits per file, not both at once): copies
            // first, then drops and the version, so a crash in between only
            // repeats the copy. Each step takes the write lock as it
            // begins, and stops there when another process (the app, the
            // CLI) finished the migration meanwhile.
            let mut steps: Vec<&str> = sql.split(STEP).collect();
            let last = steps.pop().unwrap_or_default();
            let begin = || -> rusqlite::Result<bool> {
                self.conn.execute_batch("BEGIN IMMEDIATE;")?;
                let now: i64 = self
                    .conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if now >= to as i64 {
                    self.conn.execute_batch("COMMIT;")?;
                }
                Ok(now < to as i64)
            };
            let outcome = (|| {
                if !begin()? {
                    return Ok(false);
                }
                for step in steps {
                    self.conn.execute_batch(&format!("{step}\nCOMMIT;"))?;
                    if !begin()? {
                        return Ok(false);
                    }
                }
                if let Some((_, in_journal)) = IN_JOURNAL.iter().find(|(at, _)| *at == to) {
                    in_journal(&self.conn)?;
                    self.conn.execute_batch("COMMIT;")?;
                    if !begin()? {
                        return Ok(false);
                    }
                }
                self.conn.execute_batch(last)?;
                if to == PACK_RECORDS {
                    record_block::pack_legacy_rows(&self.conn)?;
                }
                self.conn
                    .execute_batch(&format!("PRAGMA user_version = {to};\nCOMMIT;"))
                    .map(|()| true)
            })();
            match outcome {
                Ok(true) => {
                    tracing::info!(path = %self.path.display(), version = to, "migrated the local store");
                }
                Ok(false) => {}
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(Error::db(&self.path, e));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}
