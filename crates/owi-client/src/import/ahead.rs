//! What an upload carries, kept pending in the ledger while its bytes are
//! on their way rather than after: 3 million items are 23 MB, a tenth of a
//! second of SQLite's time that would otherwise follow every upload, and
//! for an export previewed they are first taken out of the kept log (half
//! a tenth more, which would otherwise come before the first byte). After
//! the bytes only when that write failed. The store never confirms a row
//! still marked sending (`Store::ledger_sent`).

use std::sync::Arc;

use owi_export::{ExportSource, Identity, Selection};
use owi_progress::{CancelToken, Silent};
use owi_store::Store;
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
    /// Keeps `selection`'s items and `workouts` pending for `batch`, an
    /// upload to `user_id` on `server`, on a blocking thread.
    pub(super) fn start(
        store: &SharedStore,
        batch: &str,
        (server, user_id): (String, String),
        selection: Arc<Selection>,
        workouts: Arc<Vec<(i64, i64)>>,
    ) -> Ahead {
        let (under, store) = (batch.to_string(), Arc::clone(store));
        let task = tokio::spawn(blocking(move || {
            pend(&store, &selection, |s, identities| {
                s.ledger_pend_ahead(&under, &server, &user_id, identities, &workouts)
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

/// Hands `selection`'s identities to `write` with the store locked; taken
/// out of a kept log first, off the lock (the history and the multipart
/// journal write meanwhile). `false`, nothing written, when that log is
/// damaged.
fn pend(
    store: &SharedStore,
    selection: &Selection,
    write: impl FnOnce(&Store, &[Identity]) -> owi_store::Result<()>,
) -> Result<bool, Error> {
    let Some(identities) = selection.identities() else {
        return Ok(false);
    };
    let store = store.lock().map_err(|_| poisoned())?;
    write(&store, &identities).map_err(|e| Error::Local(e.to_string()))?;
    Ok(true)
}

/// What one upload carries into the ledger after its bytes went.
pub(super) struct Went<'a> {
    pub batch: &'a str,
    pub selection: Arc<Selection>,
    pub workouts: Arc<Vec<(i64, i64)>>,
    pub source: &'a Arc<ExportSource>,
}

impl Importer {
    /// Keeps what went pending in the ledger once the bytes are sent, when
    /// the write beside them did not; a kept log found damaged, what went
    /// is found by a read of the export. Should that fail, the upload
    /// stands without them: the next upload to this user sends them again.
    pub(super) async fn pend_after(
        &self,
        went: Went<'_>,
        request: &ImportRequest,
        cancel: &CancelToken,
    ) -> Result<(), Error> {
        if self.pend_now(&went, request).await? {
            return Ok(());
        }
        tracing::warn!("the earlier read's log is damaged: reading the export for the ledger");
        // Without a bar: the check's would come back after the upload's.
        match check(went.source, None, request, None, false, &Silent, cancel).await {
            Ok(read) => {
                let selection = Arc::new(read.selection.unwrap_or_default());
                self.pend_now(&Went { selection, ..went }, request).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "what went is not in the ledger: the next upload sends it again");
            }
        }
        Ok(())
    }

    /// [`pend`] of what went into `ledger_pending`.
    async fn pend_now(&self, went: &Went<'_>, request: &ImportRequest) -> Result<bool, Error> {
        let (store, server) = (Arc::clone(&self.store), self.server());
        let (batch, user_id) = (went.batch.to_string(), request.user_id.clone());
        let (selection, workouts) = (Arc::clone(&went.selection), Arc::clone(&went.workouts));
        blocking(move || {
            pend(&store, &selection, |s, identities| {
                s.ledger_pend(&batch, &server, &user_id, identities, &workouts)
            })
        })
        .await
    }
}
