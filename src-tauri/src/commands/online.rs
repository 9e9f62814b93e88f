//! The online half: connect (the bundled server or a remote one), pick or
//! create a user, send an export and follow its import, the upload history
//! and the interrupted uploads to offer for resuming.

use owi_client::{ImportReport, Plan, User};
use owi_progress::Progress;
use owi_store::{Interrupted, LedgerSummary, UploadRecord};
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use super::blocking;
use crate::desktop;
use crate::dto::{
    ConnectRequest, Connection, ConnectionStatus, HistoryRequest, ImportEvent, ImportStartRequest,
    LedgerRequest, NewUserRequest, UserPage, UsersRequest,
};
use crate::error::CommandError;
use crate::state::AppState;

/// The history's length when the UI does not say.
const HISTORY_LIMIT: u32 = 50;

#[tauri::command]
pub async fn connection_status(
    state: State<'_, AppState>,
) -> Result<ConnectionStatus, CommandError> {
    Ok(ConnectionStatus {
        connection: state.online().connection().await,
        saved: state.online().saved()?,
    })
}

#[tauri::command]
pub async fn connect_local(state: State<'_, AppState>) -> Result<Connection, CommandError> {
    state.online().connect_local().await
}

#[tauri::command]
pub async fn connect_remote(
    state: State<'_, AppState>,
    request: ConnectRequest,
) -> Result<Connection, CommandError> {
    state.online().connect_remote(request).await
}

#[tauri::command]
pub async fn disconnect(state: State<'_, AppState>) -> Result<(), CommandError> {
    state.online().disconnect().await;
    Ok(())
}

#[tauri::command]
pub async fn list_users(
    state: State<'_, AppState>,
    request: UsersRequest,
) -> Result<UserPage, CommandError> {
    let page = request.page.unwrap_or(1);
    state.online().users(request.search, page).await
}

#[tauri::command]
pub async fn create_user(
    state: State<'_, AppState>,
    request: NewUserRequest,
) -> Result<User, CommandError> {
    state.online().create_user(request).await
}

#[tauri::command]
pub async fn start_import<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: ImportStartRequest,
    on_event: Channel<ImportEvent>,
) -> Result<ImportReport, CommandError> {
    // A closed window drops the messages; the import goes on.
    let send = move |event: ImportEvent| {
        let _ = on_event.send(event);
    };
    let started = std::time::Instant::now();
    let report = state.import(&request, send).await;
    let (title, body) = match &report {
        Ok(_) => ("Import finished", "The server has the export.".to_string()),
        Err(e) if e.kind == crate::ErrorKind::Cancelled => return report,
        Err(e) => ("Import failed", e.message.clone()),
    };
    let took = started.elapsed();
    // Asking the window whether it has the focus waits on the main thread.
    let _ = blocking(move || {
        desktop::notify_if_away(&app, took, title, &body);
        Ok(())
    })
    .await;
    report
}

/// What `start_import` with the same request would send, and a tally of
/// every item by group and day: nothing is uploaded.
#[tauri::command]
pub async fn plan_import(
    state: State<'_, AppState>,
    request: ImportStartRequest,
    on_progress: Channel<Progress>,
) -> Result<Plan, CommandError> {
    let progress = move |event: Progress| {
        let _ = on_progress.send(event);
    };
    state.plan(&request, &progress).await
}

#[tauri::command]
pub async fn ledger_summary(
    state: State<'_, AppState>,
    request: LedgerRequest,
) -> Result<Option<LedgerSummary>, CommandError> {
    state.ledger(&request.user_id).await
}

#[tauri::command]
pub async fn upload_history(
    state: State<'_, AppState>,
    request: HistoryRequest,
) -> Result<Vec<UploadRecord>, CommandError> {
    let state = state.inner().clone();
    let limit = request.limit.unwrap_or(HISTORY_LIMIT);
    blocking(move || state.read(|store| store.uploads(limit))).await
}

#[tauri::command]
pub async fn interrupted_uploads(
    state: State<'_, AppState>,
) -> Result<Vec<Interrupted>, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.interrupted_all())).await
}
