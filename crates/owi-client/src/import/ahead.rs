//! What an upload carries, kept pending in the ledger while its bytes are
//! on their way rather than after: 3 million items are 23 MB, a tenth of a
//! second of SQLite's time that would otherwise follow every upload, and
//! for an export previewed they are first taken out of the kept log (half
//! a tenth more, which would otherwise come before the first byte). After
//! the bytes only when that write failed. The store never confirms a row
//! still marked sending (`Store::ledger_sent`).

use std::borrow::Cow;
use std::sync::Arc;

use owi_export::{ExportSource, Selection, Share};
use owi_progress::CancelToken;
use tokio::task::JoinHandle;

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

impl Importer {
    /// Keeps what went pending in the ledger once the bytes are sent, when
    /// the write beside them did not: the identities taken out of a kept
    /// log off the store's lock or, that log found damaged, by a read of
    /// the export. Should that fail, the upload stands without them: the
    /// next upload to this user sends them again.
    pub(super) async fn pend_after(
        &self,
        batch: &str,
        user_id: &str,
        (selection, workouts): (Arc<Selection>, Arc<Vec<(i64, i64)>>),
        source: &Arc<ExportSource>,
        request: &ImportRequest,
        cancel: &CancelToken,
    ) -> Result<(), Error> {
        let listed = blocking(move || Ok(selection.identities().map(Cow::into_owned))).await?;
        let identities = match listed {
            Some(identities) => identities,
            None => {
                tracing::warn!(
                    "the earlier read's log is damaged: reading the export for the ledger"
                );
                match went_by_reading(source, &request.share, cancel).await {
                    Ok(identities) => identities,
                    Err(e) => {
                        tracing::warn!(error = %e, "what went is not in the ledger: the next upload sends it again");
                        return Ok(());
                    }
                }
            }
        };
        let (batch, user_id, server) = (batch.to_string(), user_id.to_string(), self.server());
        self.store(move |s| s.ledger_pend(&batch, &server, &user_id, &identities, &workouts))
            .await
    }
}

/// The identities of everything in the export `share` lets go, by a read
/// of it.
async fn went_by_reading(
    source: &Arc<ExportSource>,
    share: &Share,
    cancel: &CancelToken,
) -> Result<Vec<owi_export::Identity>, Error> {
    let (source, share, cancel) = (Arc::clone(source), share.clone(), cancel.clone());
    blocking(move || {
        let choice = owi_export::Choice {
            share: &share,
            sent: None,
            tally: false,
        };
        let options = owi_export::ReadOptions {
            cancel: Some(&cancel),
            ..Default::default()
        };
        let read = owi_export::preflight_choosing(&source, options, choice)
            .map_err(|e| Error::Export(e.to_string()))?;
        Ok(read
            .selection
            .and_then(|s| s.identities().map(Cow::into_owned))
            .unwrap_or_default())
    })
    .await
}
