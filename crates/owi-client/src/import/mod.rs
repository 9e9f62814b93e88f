//! The whole of sending an export, shared by the CLI and the app: check it
//! with the reader, decide how to send it, send it (in pieces when it is
//! larger than the server takes), keep the history and every multipart
//! upload's stored parts in the local store so an interrupted attempt goes
//! on where it stopped, follow the server's import to its end, and read
//! back the workouts to compare with the export.
//!
//! Bytes go to a [`ProgressSink`] (phases `check` and `upload`); each
//! step goes to an [`on_step`](Importer::run) callback as a [`Step`].

mod ahead;
mod confirm;
mod prepare;
mod sending;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use owi_export::Share;
use owi_progress::{CancelToken, Progress, ProgressSink};
use owi_store::{Interrupted, Outcome, Store, UploadRecord};
use serde::Serialize;

use crate::Client;
use crate::error::Error;
use crate::follow::{FollowOptions, SyncEvent};
use crate::readback::{Expected, OnServer};
use crate::upload::{DIRECT_MAX, MULTIPART_MIN, Method, Uploaded, upload_name};

pub use confirm::Rechecked;
pub use prepare::{Checked, Plan};
use sending::Sending;

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
    /// Send only what this server's user does not have from us (by the
    /// ledger); `false` sends everything the filters let out.
    pub delta: bool,
    /// What the person lets leave the machine.
    pub share: Share,
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
            delta: true,
            share: Share::default(),
        }
    }
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
    /// Watching the server for the import of these uploads: its events,
    /// and the data arriving.
    Waiting {
        names: Vec<String>,
        silence_secs: u64,
    },
    /// What the server says about a piece's import.
    Server {
        piece: u32,
        event: SyncEvent,
    },
    /// How much of the export the server holds so far.
    Arriving {
        on_server: OnServer,
        workouts: u64,
        samples: u64,
    },
    /// The server said nothing and stored nothing new for `waited_secs`:
    /// the uploads are there (`keys`), their import not seen.
    Awaiting {
        keys: Vec<String>,
        waited_secs: u64,
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
    /// How the watch of the server ended.
    pub ending: Ending,
    /// Workouts found on the server of those in the export, once imported.
    pub compared: Option<(u64, u64)>,
    /// What the server held in the export's span at the end.
    pub on_server: Option<OnServer>,
}

/// How far the import was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Sent; the import was not followed (`wait: false`).
    Sent,
    /// The server reported every piece's import completed.
    Reported,
    /// The server said nothing, but everything expected is on it.
    Found,
    /// Uploaded, and neither word nor data from the server yet.
    Awaiting,
    /// The server has everything this export holds from us: nothing
    /// was sent.
    NothingNew,
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

    /// Runs `f` on the local store on a blocking thread: SQLite may wait
    /// on another process's write, and the runtime's threads must not.
    async fn store<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> owi_store::Result<T> + Send + 'static,
    {
        on_store(Arc::clone(&self.store), f).await
    }

    /// The last time this export reached this user on this server, so the
    /// caller can ask before sending it again.
    pub async fn already_sent(
        &self,
        path: &Path,
        user_id: &str,
    ) -> Result<Option<UploadRecord>, Error> {
        let user_id = user_id_of(user_id)?;
        let key = export_key(path)?;
        let server = self.server();
        self.store(move |s| s.previous_upload(&key, &server, &user_id))
            .await
    }

    /// What this server's user has from this computer, if anything.
    pub async fn ledger(&self, user_id: &str) -> Result<Option<owi_store::LedgerSummary>, Error> {
        let user_id = user_id_of(user_id)?;
        let server = self.server();
        self.store(move |s| s.ledger_summary(&server, &user_id))
            .await
    }

    /// An attempt at this export that stopped part-way, if any.
    pub async fn interrupted(
        &self,
        path: &Path,
        user_id: &str,
    ) -> Result<Option<Interrupted>, Error> {
        let user_id = user_id_of(user_id)?;
        let key = export_key(path)?;
        let server = self.server();
        self.store(move |s| s.interrupted(&key, &server, &user_id))
            .await
    }

    /// Checks, sends, follows and compares.
    pub async fn run(
        &self,
        request: &ImportRequest,
        progress: &dyn ProgressSink,
        on_step: &(dyn Fn(&Step) + Send + Sync),
        cancel: &CancelToken,
    ) -> Result<ImportReport, Error> {
        let request = &normalized(request)?;
        let user_id = request.user_id.clone();
        let path = &request.path;
        let prepared = self.prepare(request, false, progress, cancel).await?;
        if let Some(forgot) = prepared.forgot {
            return Err(forgot);
        }
        let (source, mut preflight, checked, kept) = (
            prepared.source,
            prepared.preflight,
            prepared.checked,
            prepared.kept,
        );
        on_step(&Step::Checked(checked.clone()));
        let selection = Arc::new(preflight.selection.take().unwrap_or_default());
        let mut report = ImportReport {
            checked,
            pieces: Vec::new(),
            ending: Ending::NothingNew,
            compared: None,
            on_server: None,
        };
        if selection.is_empty() {
            return Ok(report);
        }
        let checked = &report.checked;
        if checked.items_for_server == 0 {
            if checked.delta() {
                // New, but nothing the server keeps: sending it changes nothing there.
                return Ok(report);
            }
            return Err(Error::Export(format!(
                "{} holds nothing the server imports ({} items it passes over)",
                path.display(),
                checked.items_ignored
            )));
        }
        if request.method == Method::Multipart && selection.len() < MULTIPART_MIN {
            return Err(Error::MethodUnavailable(format!(
                "multipart needs at least 5 MiB and what goes is {} bytes: use --method direct or s3 (or auto)",
                selection.len()
            )));
        }
        // What the server holds where this export's data will land, so data
        // found later is known to have arrived rather than to have been there.
        let mut expected = Expected::from_check(&preflight);
        expected.before = match self.client.on_server(&user_id, &expected).await {
            Ok(before) => Some(before),
            Err(e) => {
                tracing::warn!(error = %e, "could not read what the server holds before sending");
                None
            }
        };
        let workouts = Arc::new(std::mem::take(&mut preflight.workout_keys));
        let mut sending = Sending {
            importer: self,
            request,
            selection: Arc::clone(&selection),
            cleaning: owi_export::Cleaning::knowing(request.clean, &preflight.stats),
            kept,
            workouts: Arc::clone(&workouts),
            ahead: Default::default(),
            export_key: export_key(path)?,
            fingerprint: format!("{}.{}", preflight.fingerprint, selection.digest()),
            delta: checked.delta(),
            filters: checked.filters.clone(),
            resumed: None,
            batch: upload_name().replace(".xml", ""),
            progress,
            on_step,
            cancel,
        };
        let sent = sending.send_all(&source).await;
        let written = sending.settle_ahead(sent.is_ok()).await;
        let batch = sending.batch.clone();
        // Its selection (a kept log, maybe) is not held while the import
        // is followed: nor is `went`'s, below.
        drop(sending);
        report.pieces = sent?;
        report.ending = Ending::Sent;
        let to_expect = serde_json::to_string(&expected)
            .map_err(|e| Error::Local(format!("cannot keep what to expect: {e}")))?;
        let expecting = batch.clone();
        // The bytes went: the store failing now (a full disk) costs a later
        // `owi status` its comparison, or the ledger its write ahead, never
        // the outcome the server gives.
        let pending = self
            .store(move |s| {
                if let Err(e) = s.expect(&expecting, &to_expect) {
                    tracing::warn!(error = %e, "could not keep what the upload should leave on the server");
                }
                Ok(written && s.ledger_sent(&expecting)?)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not mark the upload's items sent; keeping them again");
                false
            });
        let went = ahead::Went {
            batch: &batch,
            selection,
            kept,
            workouts,
            source: &source,
        };
        if pending {
            drop(went);
        } else {
            self.pend_after(went, request, cancel).await;
        }
        if request.wait {
            let confirmed = self
                .confirm(&user_id, &mut report, &expected, on_step)
                .await;
            // The ledger failing must not hide what the server did: its
            // word decides the outcome.
            let settled = match &confirmed {
                Ok(Some(true)) => {
                    self.store(move |s| s.ledger_confirm(&batch).map(drop))
                        .await
                }
                // Awaiting the server: a later look settles it.
                Ok(None) => Ok(()),
                Ok(Some(false)) | Err(_) => self.store(move |s| s.ledger_discard(&batch)).await,
            };
            confirm::warned(settled);
            confirmed?;
        }
        Ok(report)
    }

    /// Refuses, before anything is read or sent, a method asked for that
    /// cannot carry this export to this server, naming those that can.
    async fn check_method(&self, asked: Method, user_id: &str) -> Result<(), Error> {
        if asked != Method::Multipart {
            return Ok(());
        }
        if !self.multipart_offered(user_id).await? {
            return Err(Error::MethodUnavailable(format!(
                "{} has no multipart uploads (Open Wearables added them after 0.6): use --method s3, \
                 direct for small exports, or auto",
                self.server()
            )));
        }
        Ok(())
    }

    /// Whether the server offers multipart uploads: asked once, then
    /// remembered in the store.
    async fn multipart_offered(&self, user_id: &str) -> Result<bool, Error> {
        let server = self.server();
        let asked = server.clone();
        if let Some(known) = self.store(move |s| s.offers_multipart(&asked)).await? {
            return Ok(known);
        }
        let found = self.client.offers_multipart(user_id).await?;
        self.store(move |s| s.remember_multipart(&server, found))
            .await?;
        Ok(found)
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
        Ok(if self.multipart_offered(user_id).await? {
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
        let id = *id;
        let _ = self
            .store(move |s| {
                s.multipart_ended(id)?;
                s.upload_ended(
                    id,
                    Outcome::Failed,
                    None,
                    Some("abandoned: the export changed"),
                )
            })
            .await;
    }
}

fn poisoned() -> Error {
    Error::Local("the local store's lock is poisoned (an earlier panic)".into())
}

/// The request with its user id as servers write it.
fn normalized(request: &ImportRequest) -> Result<ImportRequest, Error> {
    Ok(ImportRequest {
        user_id: user_id_of(&request.user_id)?,
        ..request.clone()
    })
}

/// The user id as servers write it, or why it cannot be one.
pub(crate) fn user_id_of(raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| id.to_string())
        .map_err(|_| Error::BadUserId {
            id: raw.to_string(),
        })
}

fn export_key(path: &Path) -> Result<String, Error> {
    owi_store::quick_key(path)
        .map_err(|e| Error::Export(format!("cannot read {}: {e}", path.display())))
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
        .map_err(|e| Error::Local(format!("a background task failed: {e}")))?
}

/// [`Importer::store`] for a task that outlives the borrow of the importer.
async fn on_store<T, F>(store: SharedStore, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> owi_store::Result<T> + Send + 'static,
{
    blocking(move || {
        let store = store.lock().map_err(|_| poisoned())?;
        f(&store).map_err(|e| Error::Local(e.to_string()))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Config(format!("a background task failed: {e}")))?
}
