//! The whole of sending an export, shared by the CLI and the app: check it
//! with the reader, decide how to send it, send it (in pieces when it is
//! larger than the server takes), keep the history and every multipart
//! upload's stored parts in the local store so an interrupted attempt goes
//! on where it stopped, follow the server's import to its end, and read
//! back the workouts to compare with the export.
//!
//! Bytes go to a [`ProgressSink`] (phases `check` and `upload`); each
//! step goes to an [`on_step`](Importer::run) callback as a [`Step`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use owi_export::{ExportSource, Preflight, ReadOptions};
use owi_progress::{CancelToken, Progress, ProgressSink};
use owi_store::{Interrupted, MultipartState, NewUpload, Outcome, Store, Transfer, UploadRecord};
use serde::Serialize;

use crate::Client;
use crate::error::Error;
use crate::follow::{FollowOptions, SyncEvent};
use crate::upload::{
    DIRECT_MAX, Job, Journal, MULTIPART_LIMIT, Method, POST_LIMIT, Resume, UploadSource, Uploaded,
    upload_name,
};

/// The local store, shared between the flow and its caller. Every call is
/// a short transaction, so a plain mutex does.
pub type SharedStore = Arc<Mutex<Store>>;

/// What to send where.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub path: PathBuf,
    pub user_id: String,
    pub method: Method,
    /// Send the XML with its DTD and XML-illegal characters blanked, so a
    /// strict parser accepts it (byte for byte the same length).
    pub clean: bool,
    /// Follow the server's import to its end and read the workouts back.
    pub wait: bool,
    /// Go on with an interrupted attempt at the same export, if any.
    pub resume: bool,
}

impl ImportRequest {
    pub fn new(path: impl Into<PathBuf>, user_id: impl Into<String>) -> Self {
        ImportRequest {
            path: path.into(),
            user_id: user_id.into(),
            method: Method::Auto,
            clean: true,
            wait: true,
            resume: true,
        }
    }
}

/// What the check found, in short.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Checked {
    pub xml_bytes: u64,
    pub records_imported: u64,
    pub items_ignored: u64,
    pub workouts: u64,
    /// What the server passes over, by what it is.
    pub ignored: Vec<(String, u64)>,
    /// The DTD or characters a strict parser refuses are there.
    pub needs_cleaning: bool,
}

/// One step of the flow, for a person to read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Checked(Checked),
    /// Going on from an interrupted attempt.
    Resuming {
        pieces_sent: u32,
        parts_stored: u32,
    },
    /// How it goes, and why.
    Plan {
        method: Method,
        pieces: u32,
        why: String,
    },
    Sending {
        piece: u32,
        pieces: u32,
        bytes: u64,
    },
    Sent {
        piece: u32,
        pieces: u32,
        uploaded: Uploaded,
    },
    /// What the server says about a piece's import.
    Server {
        piece: u32,
        event: SyncEvent,
    },
    /// The workouts found on the server, of those the export holds.
    Compared {
        found: u64,
        expected: u64,
    },
}

/// How the whole import ended.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ImportReport {
    pub checked: Checked,
    pub pieces: Vec<PieceReport>,
    /// Workouts found on the server of those in the export, once imported.
    pub compared: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PieceReport {
    pub history_id: i64,
    pub uploaded: Option<Uploaded>,
    /// The server's last word about its import, when followed.
    pub import: Option<SyncEvent>,
}

impl ImportReport {
    /// Items the server says it imported, over every piece.
    pub fn items(&self) -> Option<u64> {
        self.pieces
            .iter()
            .map(|p| p.import.as_ref().and_then(|e| e.items_processed))
            .sum()
    }
}

/// Runs imports against one server, keeping their record in one store.
#[derive(Debug, Clone)]
pub struct Importer {
    client: Client,
    store: SharedStore,
    follow: FollowOptions,
}

impl Importer {
    pub fn new(client: Client, store: SharedStore) -> Self {
        Importer {
            client,
            store,
            follow: FollowOptions::default(),
        }
    }

    pub fn with_follow(mut self, follow: FollowOptions) -> Self {
        self.follow = follow;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn server(&self) -> String {
        self.client.server().origin().to_string()
    }

    fn store<T>(&self, f: impl FnOnce(&Store) -> owi_store::Result<T>) -> Result<T, Error> {
        let store = self.store.lock().map_err(|_| poisoned())?;
        f(&store).map_err(|e| Error::Local(e.to_string()))
    }

    /// The last time this export reached this user on this server, so the
    /// caller can ask before sending it again.
    pub fn already_sent(&self, path: &Path, user_id: &str) -> Result<Option<UploadRecord>, Error> {
        let key = export_key(path)?;
        let server = self.server();
        self.store(|s| s.previous_upload(&key, &server, user_id))
    }

    /// An attempt at this export that stopped part-way, if any.
    pub fn interrupted(&self, path: &Path, user_id: &str) -> Result<Option<Interrupted>, Error> {
        let key = export_key(path)?;
        let server = self.server();
        self.store(|s| s.interrupted(&key, &server, user_id))
    }

    /// Checks, sends, follows and compares.
    pub async fn run(
        &self,
        request: &ImportRequest,
        progress: &dyn ProgressSink,
        on_step: &(dyn Fn(&Step) + Send + Sync),
        cancel: &CancelToken,
    ) -> Result<ImportReport, Error> {
        let path = &request.path;
        let source = {
            let path = path.clone();
            blocking(move || ExportSource::open(&path).map_err(|e| Error::Export(e.to_string())))
                .await?
        };
        let source = Arc::new(source);
        let preflight = check(&source, progress, cancel).await?;
        let checked = summary(&preflight);
        on_step(&Step::Checked(checked.clone()));
        if checked.records_imported == 0 && checked.workouts == 0 {
            return Err(Error::Export(format!(
                "{} holds nothing the server imports ({} items it passes over)",
                path.display(),
                checked.items_ignored
            )));
        }
        let mut sending = Sending {
            importer: self,
            request,
            export_key: export_key(path)?,
            fingerprint: preflight.fingerprint.clone(),
            resumed: None,
            batch: upload_name().replace(".xml", ""),
            progress,
            on_step,
            cancel,
        };
        let pieces = sending.send_all(&source).await?;
        let mut report = ImportReport {
            checked,
            pieces,
            compared: None,
        };
        if !request.wait {
            return Ok(report);
        }
        self.follow_all(&request.user_id, &mut report.pieces, on_step)
            .await?;
        if let Some((first, last)) = preflight.workout_span {
            let on_server = self
                .client
                .workout_keys(&request.user_id, first, last)
                .await?;
            let found = matching(&preflight.workout_keys, &on_server);
            let expected = preflight.workouts;
            on_step(&Step::Compared { found, expected });
            report.compared = Some((found, expected));
        }
        Ok(report)
    }

    /// Follows each piece's import to its end, recording how it ended.
    async fn follow_all(
        &self,
        user_id: &str,
        pieces: &mut [PieceReport],
        on_step: &(dyn Fn(&Step) + Send + Sync),
    ) -> Result<(), Error> {
        for (index, piece) in pieces.iter_mut().enumerate() {
            let Some(uploaded) = &piece.uploaded else {
                continue;
            };
            let number = index as u32 + 1;
            let run = self
                .client
                .run_of(user_id, uploaded, Duration::from_secs(60))
                .await?;
            let last = self
                .client
                .follow_run(user_id, &run, self.follow, |event| {
                    on_step(&Step::Server {
                        piece: number,
                        event: event.clone(),
                    })
                })
                .await?;
            let reason = last.error.clone().or(last.message.clone());
            let (outcome, error) = if last.succeeded() {
                (Outcome::Imported, None)
            } else {
                (Outcome::Failed, reason.clone())
            };
            self.store(|s| {
                s.upload_ended(
                    piece.history_id,
                    outcome,
                    last.items_processed,
                    error.as_deref(),
                )
            })?;
            let succeeded = last.succeeded();
            piece.import = Some(last);
            if !succeeded {
                return Err(Error::ImportFailed {
                    server: self.server(),
                    reason: reason.unwrap_or_else(|| "no reason given".into()),
                });
            }
        }
        Ok(())
    }

    /// The method to send by, and why, in words.
    async fn choose(
        &self,
        asked: Method,
        len: u64,
        user_id: &str,
        resuming: bool,
    ) -> Result<(Method, String), Error> {
        if resuming {
            return Ok((
                Method::Multipart,
                "going on with the interrupted upload".into(),
            ));
        }
        if asked != Method::Auto {
            return Ok((asked, "as asked".into()));
        }
        if len <= DIRECT_MAX {
            return Ok((
                Method::Direct,
                "small enough to send directly (10 MB or less)".into(),
            ));
        }
        let server = self.server();
        let offered = match self.store(|s| s.offers_multipart(&server))? {
            Some(known) => known,
            None => {
                let found = self.client.offers_multipart(user_id).await?;
                self.store(|s| s.remember_multipart(&server, found))?;
                found
            }
        };
        Ok(if offered {
            (
                Method::Multipart,
                "the server takes multipart uploads: parts in parallel, resumable".into(),
            )
        } else {
            (
                Method::S3,
                "the server has no multipart path: one presigned POST to its store".into(),
            )
        })
    }

    /// Gives up an interrupted attempt that cannot go on: its multipart
    /// upload is aborted on the server and forgotten here.
    async fn abandon(&self, found: &Interrupted, user_id: &str) {
        let Some((id, state)) = &found.multipart else {
            return;
        };
        self.client
            .abort_multipart(user_id, &state.file_key, &state.upload_id)
            .await;
        let _ = self.store(|s| {
            s.multipart_ended(*id)?;
            s.upload_ended(
                *id,
                Outcome::Failed,
                None,
                Some("abandoned: the export changed"),
            )
        });
    }
}

impl Client {
    /// The start and end (UTC seconds) of every workout the server holds
    /// for `user_id` starting between `from` and `to`, both included.
    pub async fn workout_keys(
        &self,
        user_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>, Error> {
        let at = |secs: i64| {
            jiff::Timestamp::from_second(secs)
                .map(|t| t.to_string())
                .map_err(|e| Error::Config(format!("a workout time out of range: {e}")))
        };
        // A second either side: servers differ on whether the ends count.
        let (start_date, end_date) = (at(from - 1)?, at(to + 1)?);
        let path = format!("users/{user_id}/events/workouts");
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: crate::api::WorkoutPage = self
                .get(
                    &path,
                    &[
                        ("start_date", Some(start_date.as_str())),
                        ("end_date", Some(end_date.as_str())),
                        ("limit", Some("100")),
                        ("cursor", cursor.as_deref()),
                    ],
                )
                .await?;
            for workout in &page.data {
                let secs = |s: &str| {
                    s.parse::<jiff::Timestamp>()
                        .map(|t| t.as_second())
                        .map_err(|e| Error::Protocol {
                            server: self.server().origin().to_string(),
                            reason: format!("a workout time {s:?}: {e}"),
                        })
                };
                keys.push((secs(&workout.start_time)?, secs(&workout.end_time)?));
            }
            match page.pagination.next_cursor {
                Some(next) if page.pagination.has_more && !page.data.is_empty() => {
                    cursor = Some(next)
                }
                _ => return Ok(keys),
            }
        }
    }
}

/// One attempt at sending an export, piece by piece.
struct Sending<'a> {
    importer: &'a Importer,
    request: &'a ImportRequest,
    export_key: String,
    fingerprint: String,
    /// The interrupted attempt this one goes on with.
    resumed: Option<Interrupted>,
    batch: String,
    progress: &'a dyn ProgressSink,
    on_step: &'a (dyn Fn(&Step) + Send + Sync),
    cancel: &'a CancelToken,
}

impl Sending<'_> {
    /// Decides how, cuts the export to fit, and sends every piece the
    /// server does not have yet. A server that takes less in one upload
    /// than assumed says so on the first piece: the export is cut again to
    /// its word.
    async fn send_all(&mut self, source: &Arc<ExportSource>) -> Result<Vec<PieceReport>, Error> {
        let importer = self.importer;
        let ImportRequest { user_id, clean, .. } = self.request;
        let server = importer.server();
        if self.request.resume
            && let Some(found) =
                importer.store(|s| s.interrupted(&self.export_key, &server, user_id))?
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
                source.xml_size(),
                user_id,
                self.resumed.is_some(),
            )
            .await?;
        let mut limit = match method {
            Method::S3 => POST_LIMIT,
            Method::Multipart => MULTIPART_LIMIT,
            Method::Direct | Method::Auto => u64::MAX,
        };
        loop {
            let pieces = {
                let (source, clean) = (source.clone(), *clean);
                forwarding(self.progress, self.cancel, move |progress, cancel| {
                    UploadSource::pieces(source, clean, limit, progress, cancel)
                })
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
                        importer.store(|s| s.upload_forget(history_id))?;
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
                importer
                    .store(|s| s.upload_resumed(row.id))
                    .map_err(|e| (e, row.id))?;
                row.id
            }
            None => {
                let source_path = self.request.path.display().to_string();
                let server = importer.server();
                importer
                    .store(|s| {
                        s.upload_started(&NewUpload {
                            export_key: &self.export_key,
                            source_path: &source_path,
                            server: &server,
                            user_id,
                            batch: &self.batch,
                            piece: (piece, pieces),
                            fingerprint: &self.fingerprint,
                            cleaned: self.request.clean,
                        })
                    })
                    .map_err(|e| (e, 0))?
            }
        };
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
        let journal = StoreJournal {
            store: importer.store.clone(),
            upload: history_id,
        };
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
        let uploaded = match importer
            .client
            .send_job(job, self.progress, self.cancel)
            .await
        {
            Ok(uploaded) => uploaded,
            Err(e) => {
                let outcome = if matches!(e, Error::Cancelled) {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                };
                importer
                    .store(|s| s.upload_ended(history_id, outcome, None, Some(&e.to_string())))
                    .map_err(fail)?;
                let stored = importer
                    .store(|s| s.multipart_state(history_id))
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
        importer
            .store(|s| {
                s.upload_sent(
                    history_id,
                    &Transfer {
                        method: method_name(uploaded.method),
                        name: &uploaded.name,
                        file_key: uploaded.key.as_deref(),
                        task_id: uploaded.task_id.as_deref(),
                        parts: uploaded.parts,
                        bytes: uploaded.bytes,
                    },
                )
            })
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

/// Keeps a multipart upload's progress in the local store.
struct StoreJournal {
    store: SharedStore,
    upload: i64,
}

impl StoreJournal {
    fn keep(&self, what: &str, f: impl FnOnce(&Store) -> owi_store::Result<()>) {
        let kept = match self.store.lock() {
            Ok(store) => f(&store).map_err(|e| e.to_string()),
            Err(_) => Err("the store's lock is poisoned".into()),
        };
        if let Err(e) = kept {
            // The upload goes on; only a resume would miss this.
            tracing::warn!(error = %e, "could not keep {what}");
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
        self.keep("the multipart upload", |s| {
            s.multipart_begun(self.upload, &state)
        });
    }

    fn part_stored(&self, number: u32, etag: &str) {
        self.keep("a stored part", |s| {
            s.multipart_part(self.upload, number, etag)
        });
    }

    fn ended(&self) {
        self.keep("the end of a multipart upload", |s| {
            s.multipart_ended(self.upload)
        });
    }
}

fn poisoned() -> Error {
    Error::Local("the local store's lock is poisoned (an earlier panic)".into())
}

fn export_key(path: &Path) -> Result<String, Error> {
    owi_store::quick_key(path)
        .map_err(|e| Error::Export(format!("cannot read {}: {e}", path.display())))
}

pub(crate) fn method_name(method: Method) -> &'static str {
    match method {
        Method::Auto => "auto",
        Method::Direct => "direct",
        Method::S3 => "s3",
        Method::Multipart => "multipart",
    }
}

fn uploaded_of(row: &UploadRecord) -> Uploaded {
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

fn summary(preflight: &Preflight) -> Checked {
    let mut ignored: Vec<(String, u64)> = preflight
        .ignored
        .iter()
        .map(|(what, n)| (what.clone(), *n))
        .collect();
    ignored.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Checked {
        xml_bytes: preflight.stats.bytes,
        records_imported: preflight.records_imported(),
        items_ignored: preflight.items_ignored(),
        workouts: preflight.workouts,
        ignored,
        needs_cleaning: preflight.needs_cleaning(),
    }
}

/// How many of `expected` (sorted) are in `found`, each found one counted
/// once.
fn matching(expected: &[(i64, i64)], found: &[(i64, i64)]) -> u64 {
    let mut found = found.to_vec();
    found.sort_unstable();
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < expected.len() && j < found.len() {
        match expected[i].cmp(&found[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Reads the export once on a blocking thread, forwarding its progress.
async fn check(
    source: &Arc<ExportSource>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Preflight, Error> {
    let source = source.clone();
    forwarding(progress, cancel, move |progress, cancel| {
        let options = ReadOptions {
            progress,
            cancel: Some(cancel),
            ..ReadOptions::default()
        };
        owi_export::preflight(&source, options).map_err(|e| match e {
            owi_export::Error::Cancelled { .. } => Error::Cancelled,
            e => Error::Export(e.to_string()),
        })
    })
    .await
}

/// Runs `work` on a blocking thread, handing its progress events to
/// `progress` on this one.
async fn forwarding<T: Send + 'static>(
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
    work: impl FnOnce(&dyn ProgressSink, &CancelToken) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let cancel = cancel.clone();
    let done = tokio::task::spawn_blocking(move || {
        let forward = move |event: Progress| {
            let _ = tx.send(event);
        };
        work(&forward, &cancel)
    });
    // The channel closes when the work ends and drops its sender.
    while let Some(event) = rx.recv().await {
        progress.report(event);
    }
    done.await
        .map_err(|e| Error::Config(format!("a background task failed: {e}")))?
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Config(format!("a background task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_counts_each_found_workout_once() {
        let expected = [(1, 2), (3, 4), (3, 4), (5, 6)];
        assert_eq!(matching(&expected, &[(3, 4), (1, 2), (9, 9)]), 2);
        assert_eq!(matching(&expected, &[(3, 4), (3, 4), (5, 6), (1, 2)]), 4);
        assert_eq!(matching(&expected, &[]), 0);
    }
}
