//! After sending: watching the server until the import is confirmed —
//! by its own word, or by the data arriving where it says nothing — and
//! recording how it ended; and the later look that confirms an upload the
//! server had not yet imported when its sender stopped watching.

use owi_store::{Outcome, UploadRecord};
use serde::Serialize;

use super::{Ending, ImportReport, Importer, Step};
use crate::error::Error;
use crate::follow::{RunTarget, SyncEvent, WatchSink, Watched};
use crate::readback::{Expected, OnServer};

/// Forwards the watch to the flow's steps.
struct Steps<'a> {
    on_step: &'a (dyn Fn(&Step) + Send + Sync),
}

impl WatchSink for Steps<'_> {
    fn event(&self, index: usize, event: &SyncEvent) {
        (self.on_step)(&Step::Server {
            piece: index as u32 + 1,
            event: event.clone(),
        });
    }

    fn data(&self, on_server: &OnServer, expected: &Expected) {
        (self.on_step)(&Step::Arriving {
            on_server: *on_server,
            workouts: expected.workouts.len() as u64,
            samples: expected.samples,
        });
    }
}

/// What a later look found of an upload nobody saw imported.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Rechecked {
    pub upload: UploadRecord,
    /// `Imported` when the server reported it or its data is all there,
    /// `Failed` when the server reported a failure, else still `Sent`.
    pub outcome: Outcome,
    pub on_server: Option<OnServer>,
    pub error: Option<String>,
}

impl Importer {
    /// Watches the server until the pieces of `report` are confirmed
    /// imported, or one failed (an error with the server's reason), or the
    /// server stays silent and stores nothing new for the follow options'
    /// `silence` (`Ending::Awaiting`).
    ///
    /// What it means for the ledger: `Some(true)` the import is confirmed
    /// (reported and read back, or all its data found), `Some(false)` it
    /// cannot be (the read-back fell short or failed), `None` not yet.
    pub(super) async fn confirm(
        &self,
        user_id: &str,
        report: &mut ImportReport,
        expected: &Expected,
        on_step: &(dyn Fn(&Step) + Send + Sync),
    ) -> Result<Option<bool>, Error> {
        let sent: Vec<_> = report
            .pieces
            .iter()
            .filter_map(|p| p.uploaded.as_ref().map(|u| (p.history_id, u)))
            .collect();
        let targets: Vec<RunTarget> = sent
            .iter()
            .map(|(_, u)| RunTarget {
                run_id: None,
                task_id: u.task_id.clone(),
                name: Some(u.name.clone()),
            })
            .collect();
        on_step(&Step::Waiting {
            names: sent.iter().map(|(_, u)| u.name.clone()).collect(),
            silence_secs: self.follow.silence.as_secs(),
        });
        let sink = Steps { on_step };
        let watched = self
            .client
            .watch(user_id, &targets, Some(expected), self.follow, &sink)
            .await?;
        let ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
        match watched {
            Watched::Reported(events) => {
                for (&id, event) in ids.iter().zip(&events) {
                    let items = event.items_processed;
                    self.store(move |s| s.upload_ended(id, Outcome::Imported, items, None))
                        .await?;
                }
                for (piece, event) in report.pieces.iter_mut().zip(events) {
                    piece.import = Some(event);
                }
                report.ending = Ending::Reported;
            }
            Watched::Failed { index, event, last } => {
                // Pieces the server reported imported went through.
                self.record_imported(&ids, &last).await?;
                let reason = event
                    .error
                    .clone()
                    .or(event.message.clone())
                    .unwrap_or_else(|| "it gave no reason".into());
                if let Some(&id) = ids.get(index) {
                    let kept = reason.clone();
                    self.store(move |s| s.upload_ended(id, Outcome::Failed, None, Some(&kept)))
                        .await?;
                }
                return Err(Error::ImportFailed {
                    server: self.server(),
                    reason,
                });
            }
            Watched::Found(_) => {
                for &id in &ids {
                    self.store(move |s| s.upload_ended(id, Outcome::Imported, None, None))
                        .await?;
                }
                report.ending = Ending::Found;
                // The watch saw it all arrive: that is the read-back.
                self.read_back(user_id, report, expected, on_step).await;
                return Ok(Some(true));
            }
            Watched::Silent {
                waited_secs,
                last,
                on_server,
            } => {
                // Pieces the server did report imported are; the rest stay
                // `sent`, for a later look (`recheck`).
                self.record_imported(&ids, &last).await?;
                let keys = sent
                    .iter()
                    .map(|(_, u)| u.key.clone().unwrap_or_else(|| u.name.clone()))
                    .collect();
                on_step(&Step::Awaiting { keys, waited_secs });
                report.ending = Ending::Awaiting;
                report.on_server = on_server;
                return Ok(None);
            }
        }
        // The server's word, and its data there; nothing countable (sleep
        // alone) has only the word.
        let found = self.read_back(user_id, report, expected, on_step).await;
        Ok(Some(
            expected.span.is_none() || found.is_some_and(|on| on.has_all(expected)),
        ))
    }

    /// What the server holds of `expected`, into the report. The import is
    /// recorded already: a failed read-back only loses figures.
    async fn read_back(
        &self,
        user_id: &str,
        report: &mut ImportReport,
        expected: &Expected,
        on_step: &(dyn Fn(&Step) + Send + Sync),
    ) -> Option<OnServer> {
        let on_server = match self.client.on_server(user_id, expected).await {
            Ok(on_server) => on_server,
            Err(e) => {
                tracing::warn!(error = %e, "could not read back what the server holds");
                return None;
            }
        };
        let (found, wanted) = (on_server.workouts, expected.workouts.len() as u64);
        if wanted > 0 {
            on_step(&Step::Compared {
                found,
                expected: wanted,
            });
            report.compared = Some((found, wanted));
        }
        report.on_server = Some(on_server);
        Some(on_server)
    }

    /// Looks again at uploads to `user_id` on this server whose import was
    /// not seen to end: the server's events name their files, and where
    /// it reported nothing, their data may all be there by now. Each is
    /// marked imported (or failed) in the history when it is found so.
    pub async fn recheck(&self, user_id: &str) -> Result<Vec<Rechecked>, Error> {
        let user_id = &super::user_id_of(user_id)?;
        let server = self.server();
        let asked = user_id.clone();
        let waiting = self.store(move |s| s.awaiting(&server, &asked)).await?;
        if waiting.is_empty() {
            return Ok(Vec::new());
        }
        let recent = self.client.recent_events(user_id, 200).await?;
        let mut found = Vec::new();
        for upload in waiting {
            let reported = recent.iter().find(|e| {
                e.is_final()
                    && (upload
                        .name
                        .as_deref()
                        .is_some_and(|n| e.filename() == Some(n))
                        || upload.task_id.as_deref() == Some(e.run_id.as_str()))
            });
            let mut checked = Rechecked {
                outcome: Outcome::Sent,
                on_server: None,
                error: None,
                upload,
            };
            if let Some(event) = reported {
                let (outcome, error) = if event.succeeded() {
                    (Outcome::Imported, None)
                } else {
                    (
                        Outcome::Failed,
                        event.error.clone().or(event.message.clone()),
                    )
                };
                checked.outcome = outcome;
                checked.error = error;
            } else if let Some(expected) = self.expected_of(&checked.upload).await? {
                let on_server = self.client.on_server(user_id, &expected).await?;
                if on_server.has_arrived(&expected) {
                    checked.outcome = Outcome::Imported;
                }
                checked.on_server = Some(on_server);
            }
            if checked.outcome != Outcome::Sent {
                let (id, outcome) = (checked.upload.id, checked.outcome);
                let items = reported.and_then(|e| e.items_processed);
                let error = checked.error.clone();
                self.store(move |s| s.upload_ended(id, outcome, items, error.as_deref()))
                    .await?;
                self.settle_ledger(user_id, &checked.upload, reported.is_some())
                    .await?;
            }
            found.push(checked);
        }
        Ok(found)
    }

    /// Once every piece of an upload's attempt has ended, what it carried
    /// joins the ledger if its data is on the server (reported: there;
    /// found by data alone: arrived since the upload), and is dropped if
    /// any piece failed.
    async fn settle_ledger(
        &self,
        user_id: &str,
        upload: &UploadRecord,
        reported: bool,
    ) -> Result<(), Error> {
        let Some(batch) = &upload.batch else {
            return Ok(());
        };
        let asked = batch.clone();
        let pieces = self.store(move |s| s.batch(&asked)).await?;
        if pieces.iter().any(|p| p.outcome == Outcome::Failed) {
            let batch = batch.clone();
            warned(self.store(move |s| s.ledger_discard(&batch)).await);
            return Ok(());
        }
        if !pieces.iter().all(|p| p.outcome == Outcome::Imported) {
            return Ok(());
        }
        let confirmed = match self.expected_of(upload).await? {
            Some(expected) if reported && expected.span.is_none() => true,
            Some(expected) => {
                let on_server = self.client.on_server(user_id, &expected).await?;
                if reported {
                    on_server.has_all(&expected)
                } else {
                    on_server.has_arrived(&expected)
                }
            }
            None => reported,
        };
        if confirmed {
            let batch = batch.clone();
            warned(
                self.store(move |s| s.ledger_confirm(&batch).map(drop))
                    .await,
            );
        }
        Ok(())
    }

    /// Marks imported each piece whose run the server reported completed.
    async fn record_imported(&self, ids: &[i64], last: &[Option<SyncEvent>]) -> Result<(), Error> {
        for (&id, event) in ids.iter().zip(last) {
            if let Some(event) = event.as_ref().filter(|e| e.is_final() && e.succeeded()) {
                let items = event.items_processed;
                self.store(move |s| s.upload_ended(id, Outcome::Imported, items, None))
                    .await?;
            }
        }
        Ok(())
    }

    async fn expected_of(&self, upload: &UploadRecord) -> Result<Option<Expected>, Error> {
        let Some(batch) = upload.batch.clone() else {
            return Ok(None);
        };
        let Some(kept) = self.store(move |s| s.expected(&batch)).await? else {
            return Ok(None);
        };
        serde_json::from_str(&kept)
            .map(Some)
            .map_err(|e| Error::Local(format!("what upload {} should leave: {e}", upload.id)))
    }
}

/// A ledger that cannot settle an upload is not the upload's failure: what
/// it missed, the next upload sends again.
pub(super) fn warned(settled: Result<(), Error>) {
    if let Err(e) = settled {
        tracing::warn!(error = %e, "the ledger could not settle an upload: the next one sends its items again");
    }
}
