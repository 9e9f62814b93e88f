//! One attempt at sending an export, piece by piece: resuming what an
//! interrupted attempt left, cutting again to a server's smaller limit,
//! and keeping each multipart part's ETag in the local store as it lands.

use std::sync::{Arc, Mutex};

use owi_export::{Cleaning, ExportSource, Selection};
use owi_progress::{CancelToken, ProgressSink};
use owi_store::{
    Interrupted, KeptRow, MultipartState, NewUpload, Outcome, Store, Transfer, UploadRecord,
};

use super::ahead::Ahead;
use super::{ImportRequest, Importer, PieceReport, SharedStore, Step};
use crate::error::Error;
use crate::upload::{
    Job, Journal, MULTIPART_LIMIT, Method, POST_LIMIT, Resume, UploadSource, Uploaded, upload_name,
};

/// One attempt at sending an export, piece by piece.
pub(super) struct Sending<'a> {
    pub(super) importer: &'a Importer,
    pub(super) request: &'a ImportRequest,
    /// What goes of the export, and its workouts' start and end.
    pub(super) selection: Arc<Selection>,
    /// What the export's check saw decides how much cleaning scans.
    pub(super) cleaning: Cleaning,
    /// The kept check whose log holds what goes (`Prepared::kept`).
    pub(super) kept: Option<KeptRow>,
    pub(super) workouts: Arc<Vec<(i64, i64)>>,
    /// The ledger's pending write, once the first piece is on its way.
    pub(super) ahead: Mutex<Option<Ahead>>,
    pub(super) export_key: String,
    pub(super) fingerprint: String,
    /// Only what was new goes, and the filters in words, for the history.
    pub(super) delta: bool,
    pub(super) filters: String,
    /// The interrupted attempt this one goes on with.
    pub(super) resumed: Option<Interrupted>,
    pub(super) batch: String,
    pub(super) progress: &'a dyn ProgressSink,
    pub(super) on_step: &'a (dyn Fn(&Step) + Send + Sync),
    pub(super) cancel: &'a CancelToken,
}

impl Sending<'_> {
    /// Decides how, cuts the export to fit, and sends every piece the
    /// server does not have yet. A server that takes less in one upload
    /// than assumed says so on the first piece: the export is cut again to
    /// its word.
    pub(super) async fn send_all(
        &mut self,
        source: &Arc<ExportSource>,
    ) -> Result<Vec<PieceReport>, Error> {
        let importer = self.importer;
        let ImportRequest { user_id, clean, .. } = self.request;
        let server = importer.server();
        let asked = (self.export_key.clone(), user_id.clone());
        if self.request.resume
            && let Some(found) = importer
                .store(move |s| s.interrupted(&asked.0, &server, &asked.1))
                .await?
        {
            if found.fingerprint() == Some(self.fingerprint.as_str()) && found.cleaned() == *clean {
                self.batch = found.batch.clone();
                self.resumed = Some(found);
            } else {
                tracing::info!("the export changed since the interrupted upload; starting afresh");
                importer.abandon(&found, user_id).await;
            }
        }
        let (method, why) = importer
            .choose(
                self.request.method,
                self.selection.len(),
                user_id,
                self.resumed.is_some(),
            )
            .await?;
        let mut limit = limit_of(method);
        loop {
            let pieces = {
                let (source, cleaning, selection) =
                    (source.clone(), self.cleaning, Arc::clone(&self.selection));
                super::blocking(move || UploadSource::selected(source, cleaning, &selection, limit))
                    .await?
            };
            let count = pieces.len() as u32;
            if let Some(found) = &self.resumed
                && found.pieces.first().and_then(|p| p.pieces) != Some(count)
            {
                tracing::info!("the interrupted upload was cut differently; starting afresh");
                importer.abandon(found, user_id).await;
                self.resumed = None;
                self.batch = upload_name().replace(".xml", "");
            }
            (self.on_step)(&Step::Plan {
                method,
                pieces: count,
                why: why.clone(),
            });
            if let Some(found) = &self.resumed {
                (self.on_step)(&Step::Resuming {
                    pieces_sent: found.sent().count() as u32,
                    parts_stored: found
                        .multipart
                        .as_ref()
                        .map_or(0, |(_, s)| s.parts.len() as u32),
                });
            }
            let mut sent = Vec::new();
            for (index, body) in pieces.into_iter().enumerate() {
                let piece = (index as u32 + 1, count);
                match self.send_piece(body, piece, method).await {
                    Ok(report) => sent.push(report),
                    Err((Error::TooLarge { limit: smaller, .. }, history_id))
                        if smaller < limit && sent.is_empty() && self.resumed.is_none() =>
                    {
                        tracing::info!(
                            smaller,
                            "the server takes less in one upload; cutting again"
                        );
                        importer.store(move |s| s.upload_forget(history_id)).await?;
                        limit = smaller;
                        break;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            if sent.len() == count as usize {
                return Ok(sent);
            }
        }
    }

    /// Starts keeping what this attempt carries pending in the ledger, once
    /// (`ahead.rs`). After a piece's history row: the two share a file, and
    /// the history must not wait for the ledger before the bytes go.
    fn pend_ahead(&self) {
        let Ok(mut ahead) = self.ahead.lock() else {
            return;
        };
        if ahead.is_none() {
            let who = (self.importer.server(), self.request.user_id.clone());
            *ahead = Some(Ahead::start(
                &self.importer.store,
                &self.batch,
                who,
                (Arc::clone(&self.selection), self.kept),
                Arc::clone(&self.workouts),
            ));
        }
    }

    /// After the attempt: whether the ledger holds what it carried already
    /// (it was `sent`), else what was kept ahead of its bytes is dropped.
    pub(super) async fn settle_ahead(&mut self, sent: bool) -> bool {
        let Some(ahead) = self.ahead.get_mut().ok().and_then(Option::take) else {
            return false;
        };
        if sent && ahead.batch() == self.batch {
            return ahead.written().await;
        }
        ahead.abandon(&self.importer.store).await;
        false
    }

    /// Sends one piece, or finds it already sent by the interrupted
    /// attempt. An error comes with the piece's history row.
    async fn send_piece(
        &self,
        body: UploadSource,
        (piece, pieces): (u32, u32),
        method: Method,
    ) -> Result<PieceReport, (Error, i64)> {
        let importer = self.importer;
        let user_id = self.request.user_id.as_str();
        let earlier = self
            .resumed
            .as_ref()
            .and_then(|r| r.pieces.iter().find(|p| p.piece == Some(piece)));
        if let Some(done) =
            earlier.filter(|p| matches!(p.outcome, Outcome::Sent | Outcome::Imported))
        {
            return Ok(PieceReport {
                history_id: done.id,
                uploaded: Some(uploaded_of(done)),
                import: None,
            });
        }
        let history_id = match earlier {
            Some(row) => {
                let id = row.id;
                importer
                    .store(move |s| s.upload_resumed(id))
                    .await
                    .map_err(|e| (e, id))?;
                id
            }
            None => {
                let source_path = self.request.path.display().to_string();
                let server = importer.server();
                let (key, user, batch) = (
                    self.export_key.clone(),
                    user_id.to_string(),
                    self.batch.clone(),
                );
                let (fingerprint, filters) = (self.fingerprint.clone(), self.filters.clone());
                let (cleaned, delta) = (self.request.clean, self.delta);
                importer
                    .store(move |s| {
                        s.upload_started(&NewUpload {
                            export_key: &key,
                            source_path: &source_path,
                            server: &server,
                            user_id: &user,
                            batch: &batch,
                            piece: (piece, pieces),
                            fingerprint: &fingerprint,
                            cleaned,
                            delta: Some(delta),
                            filters: &filters,
                        })
                    })
                    .await
                    .map_err(|e| (e, 0))?
            }
        };
        self.pend_ahead();
        let fail = |e: Error| (e, history_id);
        let kept = self
            .resumed
            .as_ref()
            .and_then(|r| r.multipart.as_ref())
            .filter(|(id, _)| *id == history_id)
            .map(|(_, state)| state);
        let resume = kept.map(|state| Resume {
            key: state.file_key.clone(),
            upload_id: state.upload_id.clone(),
            part_size: state.part_size,
            parts: state.parts.clone(),
        });
        let name = kept.map_or_else(upload_name, |state| state.name.clone());
        (self.on_step)(&Step::Sending {
            piece,
            pieces,
            bytes: body.len(),
        });
        let journal = StoreJournal::start(importer.store.clone(), history_id);
        let job = Job {
            source: Arc::new(body),
            user_id,
            method: if resume.is_some() {
                Method::Multipart
            } else {
                method
            },
            name,
            resume,
            journal: Some(&journal),
        };
        let sent = importer
            .client
            .send_job(job, self.progress, self.cancel)
            .await;
        // What the journal holds is read back below, when the upload failed.
        journal.finish().await;
        let uploaded = match sent {
            Ok(uploaded) => uploaded,
            Err(e) => {
                let outcome = if matches!(e, Error::Cancelled) {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                };
                let reason = e.to_string();
                importer
                    .store(move |s| s.upload_ended(history_id, outcome, None, Some(&reason)))
                    .await
                    .map_err(fail)?;
                let stored = importer
                    .store(move |s| s.multipart_state(history_id))
                    .await
                    .map_err(fail)?;
                return Err(fail(match stored {
                    Some(state) if outcome == Outcome::Failed => Error::Resumable {
                        error: Box::new(e),
                        parts_stored: state.parts.len() as u32,
                        parts: state.bytes.div_ceil(state.part_size.max(1)) as u32,
                    },
                    _ => e,
                }));
            }
        };
        let kept = uploaded.clone();
        importer
            .store(move |s| {
                s.upload_sent(
                    history_id,
                    &Transfer {
                        method: method_name(kept.method),
                        name: &kept.name,
                        file_key: kept.key.as_deref(),
                        task_id: kept.task_id.as_deref(),
                        parts: kept.parts,
                        bytes: kept.bytes,
                    },
                )
            })
            .await
            .map_err(fail)?;
        (self.on_step)(&Step::Sent {
            piece,
            pieces,
            uploaded: uploaded.clone(),
        });
        Ok(PieceReport {
            history_id,
            uploaded: Some(uploaded),
            import: None,
        })
    }
}

/// A write to the journal, run in order on the journal's own thread.
type Entry = Box<dyn FnOnce(&Store) -> owi_store::Result<()> + Send>;

/// Keeps a multipart upload's progress in the local store. The upload
/// engine calls it from async code, so its writes go, in order, to a
/// blocking task of their own; [`StoreJournal::finish`] waits for them.
struct StoreJournal {
    entries: std::sync::mpsc::Sender<(&'static str, Entry)>,
    writer: tokio::task::JoinHandle<()>,
    upload: i64,
}

impl StoreJournal {
    fn start(store: SharedStore, upload: i64) -> StoreJournal {
        let (entries, arriving) = std::sync::mpsc::channel::<(&'static str, Entry)>();
        let writer = tokio::task::spawn_blocking(move || {
            for (what, entry) in arriving {
                let kept = match store.lock() {
                    Ok(store) => entry(&store).map_err(|e| e.to_string()),
                    Err(_) => Err("the store's lock is poisoned".into()),
                };
                if let Err(e) = kept {
                    // The upload goes on; only a resume would miss this.
                    tracing::warn!(error = %e, "could not keep {what}");
                }
            }
        });
        StoreJournal {
            entries,
            writer,
            upload,
        }
    }

    fn keep(&self, what: &'static str, entry: Entry) {
        if self.entries.send((what, entry)).is_err() {
            tracing::warn!("could not keep {what}: the journal's writer is gone");
        }
    }

    /// Waits until every entry kept so far is written.
    async fn finish(self) {
        drop(self.entries);
        if let Err(e) = self.writer.await {
            tracing::warn!(error = %e, "the journal's writer stopped");
        }
    }
}

impl Journal for StoreJournal {
    fn begun(&self, name: &str, key: &str, upload_id: &str, part_size: u64, bytes: u64) {
        let state = MultipartState {
            name: name.to_string(),
            file_key: key.to_string(),
            upload_id: upload_id.to_string(),
            part_size,
            bytes,
            parts: Vec::new(),
        };
        let upload = self.upload;
        self.keep(
            "the multipart upload",
            Box::new(move |s| s.multipart_begun(upload, &state)),
        );
    }

    fn part_stored(&self, number: u32, etag: &str) {
        let (upload, etag) = (self.upload, etag.to_string());
        self.keep(
            "a stored part",
            Box::new(move |s| s.multipart_part(upload, number, &etag)),
        );
    }

    fn ended(&self) {
        let upload = self.upload;
        self.keep(
            "the end of a multipart upload",
            Box::new(move |s| s.multipart_ended(upload)),
        );
    }
}

/// The most one upload by `method` takes.
pub(super) fn limit_of(method: Method) -> u64 {
    match method {
        Method::S3 => POST_LIMIT,
        Method::Multipart => MULTIPART_LIMIT,
        Method::Direct | Method::Auto => u64::MAX,
    }
}

pub(crate) fn method_name(method: Method) -> &'static str {
    match method {
        Method::Auto => "auto",
        Method::Direct => "direct",
        Method::S3 => "s3",
        Method::Multipart => "multipart",
    }
}

pub(super) fn uploaded_of(row: &UploadRecord) -> Uploaded {
    let method = match row.method.as_deref() {
        Some("direct") => Method::Direct,
        Some("s3") => Method::S3,
        _ => Method::Multipart,
    };
    Uploaded {
        method,
        bytes: row.bytes.unwrap_or(0),
        name: row.name.clone().unwrap_or_default(),
        task_id: row.task_id.clone(),
        key: row.file_key.clone(),
        parts: row.parts,
        resumed_parts: 0,
    }
}
