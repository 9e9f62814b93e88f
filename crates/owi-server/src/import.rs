//! `POST /users/{id}/import/apple/xml/direct`: the upload streams to disk
//! (never held in memory, so multi-gigabyte files are fine) and is queued.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::{NewJob, Origin};
use crate::users::upload_user;

#[derive(Debug, Serialize, Deserialize)]
pub struct DirectResponse {
    pub status: String,
    pub task_id: String,
    pub user_id: String,
}

/// How much of a body without a length is admitted per free-space check.
const ROOM_STEP: u64 = 8 << 20;

pub async fn direct(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<DirectResponse>, ApiError> {
    let user_id = upload_user(&state, &user_id).await?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    if announced > state.config.max_upload_bytes.saturating_add(64 << 10) {
        return Err(too_large(state.config.max_upload_bytes));
    }
    state.ensure_room(announced)?;
    let mut multipart = multipart
        .map_err(|e| ApiError::BadRequest(format!("Invalid multipart body - {}", e.body_text())))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("Invalid multipart body - {}", e.body_text()))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("upload.xml").to_string();
        let task_id = uuid::Uuid::new_v4().to_string();
        let part = state.uploads_dir().join(format!("{task_id}.part"));
        let done = state.uploads_dir().join(format!("{task_id}.xml"));
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| disk_error(&e))?;
        let mut written: u64 = 0;
        // What the free-space check has covered so far: the announced
        // length, or nothing for a body without one (chunked), which is
        // then checked a step at a time as it arrives.
        let mut room_for = announced;
        let outcome: Result<(), ApiError> = async {
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                written += chunk.len() as u64;
                if written > state.config.max_upload_bytes {
                    return Err(too_large(state.config.max_upload_bytes));
                }
                if written > room_for {
                    state.ensure_room(ROOM_STEP)?;
                    room_for = written + ROOM_STEP;
                }
                file.write_all(&chunk).await.map_err(|e| disk_error(&e))?;
            }
            file.flush().await.map_err(|e| disk_error(&e))?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = outcome {
            // A client that went away, or a refusal: no job, no file.
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        if written == 0 {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::BadRequest(
                "The uploaded file is empty - file".into(),
            ));
        }
        tokio::fs::rename(&part, &done)
            .await
            .map_err(|e| disk_error(&e))?;
        state
            .enqueue(NewJob {
                run_id: state.config.compat.run_id(&task_id),
                task_id: task_id.clone(),
                user_id: user_id.clone(),
                origin: Origin::Direct,
                path: done.display().to_string(),
                filename,
            })
            .await?;
        tracing::info!(task = %task_id, account = %caller.account_id, bytes = written, "direct upload queued");
        return Ok(Json(DirectResponse {
            status: "processing".into(),
            task_id,
            user_id,
        }));
    }
    Err(ApiError::BadRequest("Field required - file".into()))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("File too large: the limit is {limit} bytes"))
}

fn disk_error(e: &std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        ApiError::Unavailable("The server has no disk space left for this upload".into())
    } else {
        tracing::error!(error = %e, "writing an upload failed");
        ApiError::Internal
    }
}
