//! Opening exports: the command-line one, a quick check for the drop
//! target, the ingest with progress, cancelling, the list of those opened
//! before.

use std::path::PathBuf;

use owi_progress::Progress;
use owi_store::{ExportInfo, Glimpse};
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use super::blocking;
use crate::desktop;
use crate::dto::{CancelRequest, FileCheck, OpenRequest, Opened, PathRequest};
use crate::error::CommandError;
use crate::state::AppState;

/// The export passed on the command line, then each one handed over by a
/// second launch, oldest first (each answered once).
#[tauri::command]
pub fn startup_export(
    state: State<'_, AppState>,
    handovers: State<'_, desktop::Handovers>,
) -> Option<String> {
    state
        .take_startup_export()
        .or_else(|| handovers.pop())
        .map(|p| p.display().to_string())
}

#[tauri::command]
pub async fn check_export(
    state: State<'_, AppState>,
    request: PathRequest,
) -> Result<FileCheck, CommandError> {
    let state = state.inner().clone();
    blocking(move || Ok(state.check(&PathBuf::from(request.path)))).await
}

#[tauri::command]
pub async fn open_export<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: OpenRequest,
    on_progress: Channel<Progress>,
    on_glimpse: Channel<Glimpse>,
) -> Result<Opened, CommandError> {
    let state = state.inner().clone();
    blocking(move || {
        // A closed window drops the messages; the ingest goes on.
        let sink = move |event: Progress| {
            let _ = on_progress.send(event);
        };
        let glimpses = move |glimpse: Glimpse| {
            let _ = on_glimpse.send(glimpse);
        };
        let opened = state.open(&request, &sink, &glimpses);
        if let Ok(opened) = &opened
            && !opened.reused
        {
            desktop::refresh_menu(&app);
            let name = desktop::file_name(&opened.export.source_path);
            desktop::notify_if_away(
                &app,
                std::time::Duration::from_secs_f64(opened.seconds),
                "Export read",
                &format!("{name} is ready to preview."),
            );
        }
        opened
    })
    .await
}

#[tauri::command]
pub fn cancel_operation(state: State<'_, AppState>, request: CancelRequest) -> bool {
    state.cancel(&request.operation)
}

#[tauri::command]
pub async fn list_exports(state: State<'_, AppState>) -> Result<Vec<ExportInfo>, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.exports())).await
}
