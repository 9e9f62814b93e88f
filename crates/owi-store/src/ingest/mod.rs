//! The bulk load: the reader's thread parses, interns and aggregates into
//! batches; a writer thread owns the connection and inserts them; a third
//! replays each stored batch to the upload's check the store keeps
//! (`replay.rs`), whose outcome is kept while the writer commits; and
//! `owi_export` reads the file ahead on a thread of its own. All run at
//! once, so none waits for another for long.
//!
//! Everything happens in one transaction: a cancelled or failed ingest rolls
//! back and leaves the database as it was. An export cut short (truncated,
//! malformed midway) keeps what was read before the damage and is stored as
//! `partial`, with the reason.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use crossbeam_channel::bounded;
use owi_export::{Checking, ExportSource, ReadOptions, Stats, read_export};
use owi_progress::{CancelToken, ProgressSink, Silent};
use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::Store;
use crate::error::{Error, Result};
use crate::preview::ExportState;

mod aggregates;
mod finish;
mod glimpse;
mod loader;
mod replay;
#[cfg(test)]
mod tests;
mod writer;

use loader::{Loader, Plan};
use replay::Replay;
use writer::{Batch, Msg, Stored, WriteError, write_all};

pub use glimpse::{GLIMPSE_INTERVAL, Glimpse, GlimpseSink};

/// Batches in flight between the threads; bounds memory.
const CHANNEL_DEPTH: usize = 4;
/// Batches written and waiting for the check's thread.
const CHECK_DEPTH: usize = 1;

/// Knobs of one ingest.
#[derive(Clone, Copy)]
pub struct IngestOptions<'a> {
    /// Read the export again even if the store already holds it.
    pub force: bool,
    pub progress: &'a dyn ProgressSink,
    pub cancel: Option<&'a CancelToken>,
    /// Where the live preview goes while the export is read, if anywhere.
    pub glimpses: Option<&'a dyn GlimpseSink>,
}

impl Default for IngestOptions<'_> {
    fn default() -> Self {
        IngestOptions {
            force: false,
            progress: &Silent,
            cancel: None,
            glimpses: None,
        }
    }
}

impl std::fmt::Debug for IngestOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestOptions")
            .field("force", &self.force)
            .field("glimpses", &self.glimpses.is_some())
            .finish_non_exhaustive()
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Serialize)]
pub struct IngestOutcome {
    pub export_id: i64,
    /// The store already held this export; nothing was read.
    pub reused: bool,
    pub state: ExportState,
    /// Why a partial export stopped.
    pub error: Option<String>,
    pub stats: Stats,
    pub seconds: f64,
}

/// Identifies a file on disk in milliseconds whatever its size: its length
/// and a hash of its first and last mebibyte.
pub fn quick_key(path: &Path) -> std::io::Result<String> {
    const SPAN: u64 = 1 << 20;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&len.to_le_bytes());
    let mut buf = Vec::with_capacity(SPAN as usize);
    (&mut file).take(SPAN).read_to_end(&mut buf)?;
    hasher.update(&buf);
    if len > SPAN {
        buf.clear();
        file.seek(SeekFrom::Start(len.saturating_sub(SPAN).max(SPAN)))?;
        file.take(SPAN).read_to_end(&mut buf)?;
        hasher.update(&buf);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

impl Store {
    /// Reads the export at `path` into the store, or finds it already there.
    pub fn ingest(&mut self, path: &Path, options: IngestOptions<'_>) -> Result<IngestOutcome> {
        // What this connection commits meanwhile (the kept check, dropping
        // the one it replaces) waits in the log with the ingest's pages,
        // for `fold_wal`, instead of folding the log in at that commit.
        let db = |e| Error::db(&self.path, e);
        let before: i64 = self
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .map_err(db)?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(db)?;
        let outcome = self.ingest_unfolded(path, options);
        let restored = self.conn.pragma_update(None, "wal_autocheckpoint", before);
        let outcome = outcome?;
        restored.map_err(|e| Error::db(&self.path, e))?;
        Ok(outcome)
    }

    fn ingest_unfolded(
        &mut self,
        path: &Path,
        options: IngestOptions<'_>,
    ) -> Result<IngestOutcome> {
        let started = Instant::now();
        let key = quick_key(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if !options.force
            && let Some(existing) = self.find_complete(&key)?
        {
            tracing::info!(export = existing, "export already in the store");
            let stats = self.export_stats(existing)?;
            return Ok(IngestOutcome {
                export_id: existing,
                reused: true,
                state: ExportState::Complete,
                error: None,
                stats,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let source = ExportSource::open(path)?;
        let db_path = self.path.clone();
        let routes = source.routes()?;
        let (tx, rx) = bounded::<Msg>(CHANNEL_DEPTH);
        // Written batches go on to the check's thread, then come back to
        // the reader emptied, their buffers grown already.
        let (written_tx, written_rx) = bounded::<Stored>(CHECK_DEPTH);
        let (spare_tx, spare_rx) = bounded::<Box<Batch>>(CHANNEL_DEPTH + CHECK_DEPTH + 2);
        // The writer takes the write lock first, then hands over the ids to
        // continue from: two ingests into one database never pick the same.
        let (plan_tx, plan_rx) = bounded::<Plan>(1);

        // A connection of its own, to the main file alone: its one long
        // write transaction must not lock the journal (history, multipart
        // parts, ledger), which uploads write meanwhile.
        let mut ingest_conn = crate::open_main(&self.path)?;
        // An upload's check rides along, so a previewed export need not be
        // read again before it is sent (`kept_check.rs`).
        let mut checking = Checking::new();
        // Its log of every item judged (about 14 bytes an item) waits in a
        // file beside the database, not in memory; without one, only the
        // identities of what goes are kept, in memory, and a later upload
        // with filters or a ledger cannot be chosen from them.
        if let Some(dir) = self.path.parent() {
            match tempfile::tempfile_in(dir) {
                Ok(file) => checking.spill_to(file, dir),
                Err(e) => tracing::debug!(error = %e, "the check keeps no log"),
            }
        }
        let (read, written, export_id) = std::thread::scope(|scope| {
            let conn = &mut ingest_conn;
            let progress = options.progress;
            let live = options.glimpses.map(|sink| {
                let opening = glimpse::Opening {
                    source_path: source.path().display().to_string(),
                    xml_name: source.xml_name(),
                    file_size: source.file_size(),
                    started_at: unix_now(),
                };
                glimpse::Live::new(sink, opening)
            });
            let writer = std::thread::Builder::new()
                .name("store-writer".into())
                .spawn_scoped(scope, move || {
                    write_all(conn, plan_tx, rx, written_tx, routes, progress, live)
                });
            let writer = match writer {
                Ok(handle) => handle,
                Err(e) => return (Err(spawn_failure(e)), Err(WriteError::Panicked), 0),
            };
            let Ok(plan) = plan_rx.recv() else {
                // The writer could not start; its error says why.
                drop(tx);
                let written = writer.join().unwrap_or(Err(WriteError::Panicked));
                let failure = spawn_failure(std::io::Error::other("the writer did not start"));
                return (Err(failure), written, 0);
            };
            let export_id = plan.export_id;
            let mut replay = Replay::new(plan.names());
            let checker = std::thread::Builder::new()
                .name("store-check".into())
                .spawn_scoped(scope, move || {
                    replay.run(written_rx, spare_tx, checking.visitor());
                    replay.intact().then_some(checking)
                });
            let mut loader = Loader::new(tx, spare_rx, plan);
            let read = read_export(
                &source,
                &mut loader,
                ReadOptions {
                    progress: options.progress,
                    cancel: options.cancel,
                    // The writer thread has time to spare: it reads routes.
                    read_routes: false,
                },
            );
            tracing::debug!(
                read_ms = started.elapsed().as_millis() as u64,
                "reader reached the end"
            );
            loader.finish(&source, &key, &read, started);
            // The check ends with the writer's last batch, before its
            // commit: it is kept (in the journal file) while that runs. A
            // check that died or lost a batch is not kept.
            let checked = checker.ok().and_then(|handle| handle.join().ok().flatten());
            if let (Ok(report), Some(checking)) = (&read, checked) {
                let kept = checking
                    .finish(report.clone())
                    .map_err(Error::Export)
                    .and_then(|kept| self.keep_check(&key, path, kept));
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "could not keep the upload's check");
                }
            }
            let written = writer.join().unwrap_or(Err(WriteError::Panicked));
            (read, written, export_id)
        });
        // The WAL holds the whole ingest (and the kept check) until it is
        // folded into the database: 0.4 s a GB here, which the preview
        // need not wait for. The caller runs `Store::fold_wal` once it is
        // shown.
        drop(ingest_conn);
        if let Err(e) = self.drop_unserved_checks() {
            tracing::warn!(error = %e, "could not drop the checks of exports gone");
        }
        let state = match (read, written) {
            (_, Err(WriteError::Db(e))) => return Err(Error::db(&db_path, e)),
            (_, Err(WriteError::Panicked)) => return Err(Error::WriterGone),
            (Ok(_), Ok(Some(state))) => state,
            (Err(failure), Ok(Some(state))) => {
                tracing::warn!(error = %failure.error, "stored a partial export");
                state
            }
            (Err(failure), Ok(None)) => return Err(Error::Export(failure.error)),
            (Ok(_), Ok(None)) => return Err(Error::WriterGone),
        };
        let stats = self.export_stats(export_id)?;
        let error: Option<String> = self
            .conn
            .query_row("SELECT error FROM exports WHERE id = ?", [export_id], |r| {
                r.get(0)
            })
            .map_err(|e| Error::db(&db_path, e))?;
        Ok(IngestOutcome {
            export_id,
            reused: false,
            state,
            error,
            stats,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn find_complete(&self, key: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM exports WHERE quick_key = ? AND state = 'complete' ORDER BY id DESC LIMIT 1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(&self.path, e))
    }

    pub(crate) fn export_stats(&self, export_id: i64) -> Result<Stats> {
        let json: String = self
            .conn
            .query_row(
                "SELECT stats_json FROM exports WHERE id = ?",
                [export_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(&self.path, e))?
            .ok_or(Error::UnknownExport(export_id))?;
        Ok(serde_json::from_str(&json).unwrap_or_default())
    }
}

/// Seconds since the Unix epoch (0 on a clock set before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn spawn_failure(e: std::io::Error) -> Box<owi_export::Failure> {
    Box::new(owi_export::Failure {
        error: owi_export::Error::Io {
            path: std::path::PathBuf::from("<writer thread>"),
            source: e,
        },
        stats: Stats::default(),
    })
}
