//! The app's managed state: where the store is, one connection for the
//! preview's reads, the cancel tokens of operations in flight, and the
//! server connection ([`Online`]).
//!
//! An ingest opens its own connection: it holds one write transaction for
//! its whole run, and the preview's reads must not queue behind it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use owi_client::{ImportReport, ImportRequest, Importer, Plan, SecretStore, Step};
use owi_progress::{CancelToken, Progress, ProgressSink};
use owi_store::{GlimpseSink, IngestOptions, LedgerSummary, Store};

use crate::dto::{FileCheck, ImportEvent, ImportStartRequest, OpenRequest, Opened, OperationId};
use crate::error::{CommandError, ErrorKind, export_error_kind};
use crate::online::Online;

/// Shared by every command; cheap to clone into a blocking task.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    database: PathBuf,
    /// Opened on first use, so a broken database is reported to the UI
    /// instead of stopping the app at start.
    reader: Mutex<Option<Store>>,
    operations: Mutex<HashMap<OperationId, CancelToken>>,
    startup_export: Mutex<Option<PathBuf>>,
    online: Online,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind: go on with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AppState {
    /// Secrets go to the OS keychain (process memory where there is none).
    pub fn new(database: PathBuf, startup_export: Option<PathBuf>) -> Self {
        AppState::with_secrets(database, startup_export, SecretStore::system())
    }

    /// The same with a given secret store (tests keep them in memory).
    pub fn with_secrets(
        database: PathBuf,
        startup_export: Option<PathBuf>,
        secrets: SecretStore,
    ) -> Self {
        let data_dir = database.parent().map(Path::to_path_buf).unwrap_or_default();
        AppState {
            inner: Arc::new(Inner {
                database,
                reader: Mutex::new(None),
                operations: Mutex::new(HashMap::new()),
                startup_export: Mutex::new(startup_export),
                online: Online::new(&data_dir, secrets),
            }),
        }
    }

    pub fn online(&self) -> &Online {
        &self.inner.online
    }

    pub fn database(&self) -> &Path {
        &self.inner.database
    }

    /// The export given on the command line, once.
    pub fn take_startup_export(&self) -> Option<PathBuf> {
        lock(&self.inner.startup_export).take()
    }

    /// Runs a read on the preview's connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Store) -> owi_store::Result<T>,
    ) -> Result<T, CommandError> {
        let mut reader = lock(&self.inner.reader);
        let store = match reader.as_mut() {
            Some(store) => store,
            None => reader.insert(Store::open(&self.inner.database)?),
        };
        Ok(f(store)?)
    }

    /// Whether `path` holds an export, without reading it.
    pub fn check(&self, path: &Path) -> FileCheck {
        let shown = path.display().to_string();
        match owi_export::ExportSource::open(path) {
            Ok(source) => FileCheck {
                path: shown,
                ok: true,
                reason: None,
                kind: None,
                xml_name: Some(source.xml_name()),
                file_size: Some(source.file_size()),
            },
            Err(e) => FileCheck {
                path: shown,
                ok: false,
                reason: Some(e.to_string()),
                kind: Some(export_error_kind(&e)),
                xml_name: None,
                file_size: None,
            },
        }
    }

    /// Reads an export into the store (or finds it there), reporting
    /// progress; cancellable through [`AppState::cancel`] by its operation id.
    pub fn open(
        &self,
        request: &OpenRequest,
        progress: &dyn ProgressSink,
        glimpses: &dyn GlimpseSink,
    ) -> Result<Opened, CommandError> {
        let cancel = CancelToken::new();
        let _registered = Registered::new(self, &request.operation, cancel.clone())?;
        let mut store = Store::open(&self.inner.database)?;
        let outcome = store.ingest(
            Path::new(&request.path),
            IngestOptions {
                force: request.force.unwrap_or(false),
                progress,
                cancel: Some(&cancel),
                glimpses: Some(glimpses),
            },
        )?;
        tracing::info!(
            export = outcome.export_id,
            reused = outcome.reused,
            seconds = outcome.seconds,
            "opened an export"
        );
        let opened = Opened {
            export: store.export(outcome.export_id)?,
            reused: outcome.reused,
            seconds: outcome.seconds,
        };
        // The window's own connection stays open, so SQLite would not fold
        // the new pages in on closing this one: the preview first, then
        // that (at once when the logs are empty, as for a known export).
        store.fold_wal_in_background();
        Ok(opened)
    }

    /// Sends an export to a user of the connected server and follows the
    /// import to its end, reporting every step; cancellable by its
    /// operation id. An interrupted attempt at the same export goes on
    /// where it stopped.
    pub async fn import(
        &self,
        request: &ImportStartRequest,
        send: impl Fn(ImportEvent) + Clone + Send + Sync + 'static,
    ) -> Result<ImportReport, CommandError> {
        let cancel = CancelToken::new();
        let _registered = Registered::new(self, &request.operation, cancel.clone())?;
        let (importer, import) = self.importer(request).await?;
        let progress = {
            let send = send.clone();
            move |event: Progress| send(ImportEvent::Progress(event))
        };
        let on_step = move |step: &Step| send(ImportEvent::Step(step.clone()));
        let report = importer.run(&import, &progress, &on_step, &cancel).await?;
        tracing::info!(
            pieces = report.pieces.len(),
            compared = ?report.compared,
            "an import ended"
        );
        Ok(report)
    }

    /// What an import would send: the same check, nothing uploaded, and a
    /// tally of every item by group and day for the app's choices.
    pub async fn plan(
        &self,
        request: &ImportStartRequest,
        progress: &dyn ProgressSink,
    ) -> Result<Plan, CommandError> {
        let cancel = CancelToken::new();
        let _registered = Registered::new(self, &request.operation, cancel.clone())?;
        let (importer, import) = self.importer(request).await?;
        Ok(importer.plan(&import, progress, &cancel).await?)
    }

    /// What the connected server's user has from this computer.
    pub async fn ledger(&self, user_id: &str) -> Result<Option<LedgerSummary>, CommandError> {
        let importer = self.connected_importer().await?;
        Ok(importer.ledger(user_id).await?)
    }

    /// An importer for the connected server, on a connection of its own to
    /// the store (opened off the async threads).
    async fn connected_importer(&self) -> Result<Importer, CommandError> {
        let client = self.inner.online.client().await?;
        let database = self.inner.database.clone();
        let store = crate::commands::blocking(move || Ok(Store::open(&database)?)).await?;
        Ok(Importer::new(client, Arc::new(Mutex::new(store))))
    }

    /// An importer for the connected server, and the request as the core
    /// takes it.
    async fn importer(
        &self,
        request: &ImportStartRequest,
    ) -> Result<(Importer, ImportRequest), CommandError> {
        let importer = self.connected_importer().await?;
        let path = match (&request.path, request.export_id) {
            (Some(path), _) => PathBuf::from(path),
            (None, Some(id)) => {
                let state = self.clone();
                let export =
                    crate::commands::blocking(move || state.read(|store| store.export(id))).await?;
                PathBuf::from(export.source_path)
            }
            (None, None) => {
                return Err(CommandError::new(
                    ErrorKind::Internal,
                    "an import needs a path or an export_id",
                ));
            }
        };
        let import = ImportRequest {
            method: request.method,
            clean: request.clean,
            delta: request.delta,
            share: request.share.clone(),
            ..ImportRequest::new(path, &request.user_id)
        };
        Ok((importer, import))
    }

    /// Asks the operation to stop; false when it is not running (any more).
    pub fn cancel(&self, operation: &str) -> bool {
        match lock(&self.inner.operations).get(operation) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

/// An operation's cancel token, registered for as long as it runs.
struct Registered<'a> {
    state: &'a AppState,
    operation: &'a str,
}

impl<'a> Registered<'a> {
    fn new(
        state: &'a AppState,
        operation: &'a str,
        token: CancelToken,
    ) -> Result<Self, CommandError> {
        let mut operations = lock(&state.inner.operations);
        if operations.contains_key(operation) {
            return Err(CommandError::new(
                ErrorKind::Internal,
                format!("operation {operation} is already running"),
            ));
        }
        operations.insert(operation.to_string(), token);
        Ok(Registered { state, operation })
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.state.inner.operations).remove(self.operation);
    }
}
