//! What an upload carries, kept pending in the ledger while its bytes are
//! on their way rather than after: 3 million items are 23 MB, a tenth of a
//! second of SQLite's time that would otherwise follow every upload, and
//! for an export previewed they are first taken out of the kept log (half
//! a tenth more, which would otherwise come before the first byte). The
//! store never confirms a row still marked sending (`Store::ledger_sent`).

use std::sync::Arc;

use owi_export::Selection;
use tokio::task::JoinHandle;

use super::{SharedStore, blocking, on_store, poisoned};
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
            // Out of a kept log before the store is locked: the history
            // and the multipart journal write to it meanwhile.
            let Some(identities) = selection.identities() else {
                return Ok(false);
            };
            let store = store.lock().map_err(|_| poisoned())?;
            store
                .ledger_pend_ahead(&under, &server, &user_id, &identities, &workouts)
                .map_err(|e| Error::Local(e.to_string()))?;
            Ok(true)
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
    /// keeps them itself) when the write failed.
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
