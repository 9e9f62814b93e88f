//! The offline preview: summary, what the server would import, workouts,
//! one workout, daily series. Each is one query of the store.

use owi_store::{DailySeries, ServerPreview, Summary, WorkoutDetail, WorkoutRow};
use tauri::State;

use super::blocking;
use crate::dto::{ExportRequest, SeriesRequest, WorkoutRequest, WorkoutsRequest};
use crate::error::CommandError;
use crate::state::AppState;

#[tauri::command]
pub async fn export_summary(
    state: State<'_, AppState>,
    request: ExportRequest,
) -> Result<Summary, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.summary(request.export_id))).await
}

#[tauri::command]
pub async fn server_preview(
    state: State<'_, AppState>,
    request: ExportRequest,
) -> Result<ServerPreview, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.server_preview(request.export_id))).await
}

#[tauri::command]
pub async fn list_workouts(
    state: State<'_, AppState>,
    request: WorkoutsRequest,
) -> Result<Vec<WorkoutRow>, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.workouts(request.export_id, &request.filter))).await
}

#[tauri::command]
pub async fn workout_detail(
    state: State<'_, AppState>,
    request: WorkoutRequest,
) -> Result<WorkoutDetail, CommandError> {
    let state = state.inner().clone();
    blocking(move || state.read(|store| store.workout_detail(request.workout_id))).await
}

#[tauri::command]
pub async fn daily_series(
    state: State<'_, AppState>,
    request: SeriesRequest,
) -> Result<DailySeries, CommandError> {
    let state = state.inner().clone();
    blocking(move || {
        state.read(|store| {
            store.daily_series(
                request.export_id,
                &request.kind,
                request.from_day,
                request.to_day,
            )
        })
    })
    .await
}
