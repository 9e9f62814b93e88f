//! What an upload carries, kept pending in the ledger while its bytes are
//! on their way rather than after: 3 million items are 23 MB, a file's
//! write (`owi-store/src/pending_file.rs`) that would otherwise follow
//! every upload. An
//! export previewed and sent whole names the kept check whose log holds
//! them (`Carried::KeptLog`) instead: one pass over that log, off the
//! store's lock, to know it whole, and a row of a few bytes. After the
//! bytes only when that write failed. The store never confirms a row still
//! marked sending (`Store::ledger_sent`).

use std::sync::Arc;

use owi_export::{ExportSource, Selection};
use owi_progress::{CancelToken, Silent};
use owi_store::{Carried, KeptRow, Store};
use tokio::task::JoinHandle;

use super::prepare::check;
use super::{ImportRequest, Importer, SharedStore, blocking, on_store, poisoned};
use crate::error::Error;

/// The ledger's write for one upload, started beside its bytes.
pub(super) struct Ahead {
    batch: String,
    /// `false`: the kept log the identities were in is damaged.
    task: JoinHandle<Result<bool, Error>>,
}

impl Ahead {
    /// Keeps `selection`'s items (in the log of the `kept` check, maybe)
    /// and `workouts` pending for `batch`, an upload to `user_id` on
    /// `server`, on a blocking thread.
    pub(super) fn start(
        store: &SharedStore,
        batch: &str,
        (server, user_id): (String, String),
        (selection, kept): (Arc<Selection>, Option<KeptRow>),
        workouts: Arc<Vec<(i64, i64)>>,
    ) -> Ahead {
        let (under, store) = (batch.to_string(), Arc::clone(store));
        let task = tokio::spawn(blocking(move || {
            pend(&store, &selection, kept, |s, items| {
                s.ledger_pend_ahead(&under, &server, &user_id, items, &workouts)
            })
        }));
        Ahead {
            batch: batch.to_string(),
            task,
        }
    }

    /// The batch the items are kept under.
    pub(super) fn batch(&self) -> &str {
        &self.batch
    }

    /// Whether the items are kept, the upload sent: `false` (the caller
    /// keeps them itself) when the write failed or the kept log they were
    /// in is damaged.
    pub(super) async fn written(self) -> bool {
        let failed = match self.task.await {
            Ok(Ok(written)) => return written,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %failed, "keeping the upload's items beside it failed; keeping them now");
        false
    }

    /// The upload did not go: what was kept ahead of it is dropped, once
    /// the write is over.
    pub(super) async fn abandon(self, store: &SharedStore) {
        let _ = self.task.await;
        let batch = self.batch;
        let dropped = on_store(Arc::clone(store), move |s| s.ledger_discard(&batch)).await;
        if let Err(e) = dropped {
            // The next upload to this user drops it (`ledger_pend_ahead`).
            tracing::warn!(error = %e, "could not drop the items kept for an upload that did not go");
        }
    }
}

/// Hands `selection`'s items to `write` with the store locked: as the
/// `kept` check whose log holds them, that log found whole off the lock;
/// else their identities, taken out of a kept log first, off the lock too
/// (the history and the multipart journal write meanwhile). `false`,
/// nothing written, when that log is damaged.
fn pend(
    store: &SharedStore,
    selection: &Selection,
    kept: Option<KeptRow>,
    write: impl Fn(&Store, Carried<'_>) -> owi_store::Result<bool>,
) -> Result<bool, Error> {
    let local = |e: owi_store::Error| Error::Local(e.to_string());
    if let Some(row) = kept.filter(|_| selection.in_kept_log()) {
        if !selection.identities_whole() {
            return Ok(false);
        }
        let store = store.lock().map_err(|_| poisoned())?;
        if write(&store, Carried::KeptLog(row)).map_err(local)? {
            return Ok(true);
        }
        // A newer read of the file replaced that check meanwhile.
    }
    let Some(identities) = selection.identities() else {
        return Ok(false);
    };
    let store = store.lock().map_err(|_| poisoned())?;
    write(&store, Carried::Listed(&identities)).map_err(local)
}

/// What one upload carries into the ledger after its bytes went.
pub(super) struct Went<'a> {
    pub batch: &'a str,
    pub selection: Arc<Selection>,
    pub kept: Option<KeptRow>,
    pub workouts: Arc<Vec<(i64, i64)>>,
    pub source: &'a Arc<ExportSource>,
}

impl Importer {
    /// Keeps what went pending in the ledger once the bytes are sent, when
    /// the write beside them did not; a kept log found damaged, what went
    /// is found by a read of the export. Should either fail (a full disk),
    /// the upload stands without them, as the server's word will: the next
    /// upload to this user sends them again.
    pub(super) async fn pend_after(
        &self,
        went: Went<'_>,
        request: &ImportRequest,
        cancel: &CancelToken,
    ) {
        let unkept = |e: &Error| {
            tracing::warn!(error = %e, "what went is not in the ledger: the next upload sends it again");
        };
        match self.pend_now(&went, request).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => return unkept(&e),
        }
        tracing::warn!("the earlier read's log is damaged: reading the export for the ledger");
        // Without a bar: the check's would come back after the upload's.
        match check(went.source, None, request, None, false, &Silent, cancel).await {
            Ok(read) => {
                let selection = Arc::new(read.selection.unwrap_or_default());
                let read = Went {
                    selection,
                    kept: None,
                    ..went
                };
                if let Err(e) = self.pend_now(&read, request).await {
                    unkept(&e);
                }
            }
            Err(e) => unkept(&e),
        }
    }

    /// [`pend`] of what went into `ledger_pending`.
    async fn pend_now(&self, went: &Went<'_>, request: &ImportRequest) -> Result<bool, Error> {
        let (store, server) = (Arc::clone(&self.store), self.server());
        let (batch, user_id) = (went.batch.to_string(), request.user_id.clone());
        let (selection, workouts) = (Arc::clone(&went.selection), Arc::clone(&went.workouts));
        let kept = went.kept;
        blocking(move || {
            pend(&store, &selection, kept, |s, items| {
                s.ledger_pend(&batch, &server, &user_id, items, &workouts)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use owi_export::{Choice, ExportSource, Share};
    use owi_store::Store;

    use super::pend;

    /// The kept check an upload's items are in, gone before the ledger
    /// could name it (a newer read of the file replaced it): the
    /// identities are written out instead, and the ledger ends the same.
    #[test]
    fn a_kept_check_gone_before_the_write_leaves_the_identities_listed()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let spec = owi_sample::SampleSpec {
            records: 3_000,
            workouts: 4,
            ..Default::default()
        };
        let xml = owi_sample::generate(&spec, dir.path())?.xml_path;
        let db = dir.path().join("owi.sqlite");
        let mut store = Store::open(&db)?;
        store.ingest(&xml, owi_store::IngestOptions::default())?;
        let (row, kept) = store.kept_check_row(&xml)?.ok_or("nothing kept")?;
        let choice = Choice {
            share: &Share::default(),
            sent: None,
            tally: false,
        };
        let source = Arc::new(ExportSource::open(&xml)?);
        let selection = kept
            .choose(source, choice, Default::default())?
            .and_then(|p| p.selection)
            .ok_or("everything, as kept")?;
        assert!(selection.in_kept_log());
        let mut went = selection.identities().ok_or("a whole log")?.to_vec();
        went.sort_unstable();

        rusqlite::Connection::open(owi_store::journal_path(&db))?
            .execute("DELETE FROM kept_checks", [])?;
        let store = Arc::new(Mutex::new(store));
        let written = pend(&store, &selection, Some(row), |s, items| {
            s.ledger_pend("b", "http://127.0.0.1:8000", "u", items, &[])
        })?;
        assert!(written);
        let store = store.lock().map_err(|_| "poisoned")?;
        assert!(store.ledger_confirm("b")?);
        let ledger = store.ledger("http://127.0.0.1:8000", "u")?;
        assert_eq!(ledger.map(|l| l.items), Some(went));
        Ok(())
    }
}
