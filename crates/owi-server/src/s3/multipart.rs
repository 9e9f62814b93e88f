//! The S3 multipart path: `create` promises a run and opens the store's
//! upload, `sign` hands out presigned part URLs, `complete` checks the parts
//! and assembles the object (its notice starts the import), `abort` gives
//! up. What `create` declared bounds the rest.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::MULTIPART_LIFETIME_SECS;
use super::api::{
    CONTENT_TYPE, MAX_PARTS, MIB, MIN_PART, check_filename, in_range, object_key, promise,
    store_error, upload_not_found, upload_row,
};
use super::sign::{self, Presign};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ValidJson;
use crate::users::require_user;

#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    filename: String,
    #[serde(default = "default_content_type")]
    content_type: String,
    file_size: i64,
}

fn default_content_type() -> String {
    CONTENT_TYPE.into()
}

#[derive(Debug, Serialize)]
pub struct CreateResponse {
    upload_id: String,
    key: String,
    bucket: String,
    part_size: u64,
}

pub async fn create(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<CreateRequest>,
) -> Result<(StatusCode, Json<CreateResponse>), ApiError> {
    check_filename(&req.filename, state.config.compat)?;
    let max = state.config.max_upload_bytes.min(i64::MAX as u64) as i64;
    in_range("file_size", req.file_size, MIN_PART as i64, max)?;
    if !matches!(req.content_type.as_str(), "application/xml" | "text/xml") {
        return Err(ApiError::BadRequest(format!(
            "Only XML can be imported - content_type: {}",
            req.content_type
        )));
    }
    let user_id = require_user(&state, &user_id).await?;
    let size = req.file_size as u64;
    // The parts, then the assembled object, then the worker's copy.
    state.ensure_room(size.saturating_mul(2))?;
    let key = object_key(
        &user_id,
        &req.filename,
        state.config.compat.unique_object_keys(),
    );
    let objects = &state.objects;
    let created = objects
        .client
        .create_multipart_upload()
        .bucket(&objects.bucket)
        .key(&key)
        .content_type(CONTENT_TYPE)
        .send()
        .await
        .map_err(store_error)?;
    let upload_id = created
        .upload_id
        .ok_or_else(|| ApiError::Unavailable("The object store returned no upload id".into()))?;
    promise(
        &state,
        &user_id,
        &key,
        &req.filename,
        "multipart",
        Some(&upload_id),
        MULTIPART_LIFETIME_SECS,
    )
    .await?;
    let parts_of = part_size(size, objects.part_size);
    declare(&state, &upload_id, size, parts_of).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateResponse {
            upload_id,
            key,
            bucket: objects.bucket.clone(),
            part_size: parts_of,
        }),
    ))
}

/// `preferred` (100 MiB by default), grown in whole MiB so no upload needs
/// more than 10,000 parts.
fn part_size(size: u64, preferred: u64) -> u64 {
    let least = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    least.max(preferred)
}

#[derive(Debug, Deserialize)]
pub struct SignRequest {
    key: String,
    upload_id: String,
    part_numbers: Vec<i64>,
    #[serde(default = "default_part_expiration")]
    expiration_seconds: i64,
}

fn default_part_expiration() -> i64 {
    86_400
}

#[derive(Debug, Serialize)]
pub struct SignedPart {
    part_number: i64,
    url: String,
}

#[derive(Debug, Serialize)]
pub struct SignResponse {
    urls: Vec<SignedPart>,
}

pub async fn sign_parts(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<SignRequest>,
) -> Result<Json<SignResponse>, ApiError> {
    in_range("expiration_seconds", req.expiration_seconds, 60, 86_400)?;
    if req.part_numbers.is_empty() || req.part_numbers.len() > MAX_PARTS as usize {
        return Err(ApiError::BadRequest(
            "List should have between 1 and 10000 items - part_numbers".into(),
        ));
    }
    for &n in &req.part_numbers {
        in_range("part_numbers", n, 1, MAX_PARTS as i64)?;
    }
    let user_id = require_user(&state, &user_id).await?;
    let (_, upload_state) = upload_row(&state, &user_id, &req.key, &req.upload_id).await?;
    if upload_state != "pending" {
        return Err(upload_not_found());
    }
    // URLs only for the parts of the declared size, each signed with its
    // exact length (the last one the rest): a holder of part URLs can store
    // no more than was declared, and a part without a length is refused.
    // (An upload from before sizes were kept has neither bound.)
    let lengths = declared(&state, &req.upload_id).await?;
    if let Some((bytes, part_size)) = lengths {
        let parts = part_count(bytes, part_size);
        if let Some(&n) = req.part_numbers.iter().find(|&&n| n as u64 > parts) {
            return Err(ApiError::BadRequest(format!(
                "Part {n} is beyond the {parts} parts of {part_size} bytes in the {bytes} bytes declared - part_numbers"
            )));
        }
    }
    let objects = &state.objects;
    let now = jiff::Timestamp::now();
    let urls = req
        .part_numbers
        .iter()
        .map(|&n| SignedPart {
            part_number: n,
            url: sign::presign_url(
                &Presign {
                    method: "PUT",
                    endpoint: &objects.endpoint,
                    bucket: &objects.bucket,
                    key: &req.key,
                    query: &[
                        ("partNumber", n.to_string()),
                        ("uploadId", req.upload_id.clone()),
                    ],
                    expires_in: req.expiration_seconds as u64,
                    now,
                    region: &objects.region,
                    content_length: lengths.map(|(bytes, size)| part_length(bytes, size, n as u64)),
                },
                &objects.credentials,
            ),
        })
        .collect();
    Ok(Json(SignResponse { urls }))
}

/// How many parts of `part_size` hold `bytes` (at least one).
fn part_count(bytes: u64, part_size: u64) -> u64 {
    bytes.div_ceil(part_size.max(1)).max(1)
}

/// The length of part `n` (from 1): `part_size`, the last one the rest.
fn part_length(bytes: u64, part_size: u64, n: u64) -> u64 {
    let before = (n.saturating_sub(1)).saturating_mul(part_size);
    bytes.saturating_sub(before).min(part_size)
}

#[derive(Debug, Deserialize)]
pub struct Part {
    part_number: i32,
    etag: String,
}

#[derive(Debug, Deserialize)]
pub struct CompleteRequest {
    key: String,
    upload_id: String,
    parts: Vec<Part>,
}

#[derive(Debug, Serialize)]
pub struct CompleteResponse {
    status: &'static str,
    key: String,
    bucket: String,
    task_id: String,
}

pub async fn complete(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<CompleteRequest>,
) -> Result<(StatusCode, Json<CompleteResponse>), ApiError> {
    if req.parts.is_empty() {
        return Err(ApiError::BadRequest(
            "List should have at least 1 item after validation, not 0 - parts".into(),
        ));
    }
    let user_id = require_user(&state, &user_id).await?;
    let (task_id, upload_state) = upload_row(&state, &user_id, &req.key, &req.upload_id).await?;
    let accepted = |task_id: String| {
        (
            StatusCode::ACCEPTED,
            Json(CompleteResponse {
                status: "processing",
                key: req.key.clone(),
                bucket: state.objects.bucket.clone(),
                task_id,
            }),
        )
    };
    match upload_state.as_str() {
        "pending" => {}
        // A retry of a complete that went through (its answer was lost).
        "received" => return Ok(accepted(task_id)),
        _ => return Err(upload_not_found()),
    }
    check_parts(&state, &req).await?;
    let objects = &state.objects;
    let parts = req
        .parts
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part_number)
                .e_tag(&p.etag)
                .build()
        })
        .collect();
    objects
        .client
        .complete_multipart_upload()
        .bucket(&objects.bucket)
        .key(&req.key)
        .upload_id(&req.upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(store_error)?;
    // The embedded store has already reported the object; an external one
    // never will, and its answer here is the store's own word.
    if objects.external {
        state.object_created(&req.key, Some(&req.upload_id)).await?;
    }
    Ok(accepted(task_id))
}

/// What S3 checks on complete and s3s-fs does not (it also forgets the
/// upload before checking, so a bad list would destroy it): part numbers
/// ascending from 1 without gaps, each uploaded, with the ETag the store
/// gave where the store lists ETags.
/// Keeps what `create` declared for the upload.
async fn declare(
    state: &AppState,
    upload_id: &str,
    bytes: u64,
    part_size: u64,
) -> Result<(), ApiError> {
    let upload = upload_id.to_string();
    state
        .db
        .call(move |c| {
            c.execute(
                "UPDATE uploads SET declared_bytes = ?, part_size = ? WHERE upload_id = ?",
                params![bytes as i64, part_size as i64, upload],
            )
        })
        .await?;
    Ok(())
}

/// What `create` declared: the size and the part size (`None` for an
/// upload from before they were kept).
async fn declared(state: &AppState, upload_id: &str) -> Result<Option<(u64, u64)>, ApiError> {
    let upload = upload_id.to_string();
    let found: Option<(Option<i64>, Option<i64>)> = state
        .db
        .call(move |c| {
            c.query_row(
                "SELECT declared_bytes, part_size FROM uploads WHERE upload_id = ?",
                [upload],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await?;
    Ok(match found {
        Some((Some(bytes), Some(part))) => Some((bytes.max(0) as u64, part.max(0) as u64)),
        _ => None,
    })
}

async fn check_parts(state: &AppState, req: &CompleteRequest) -> Result<(), ApiError> {
    for (i, part) in req.parts.iter().enumerate() {
        if i64::from(part.part_number) != i as i64 + 1 {
            return Err(ApiError::BadRequest(
                "Parts must be listed in ascending order from 1 without gaps - parts".into(),
            ));
        }
    }
    let objects = &state.objects;
    let mut stored = std::collections::HashMap::new();
    let mut sizes = std::collections::HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = objects
            .client
            .list_parts()
            .bucket(&objects.bucket)
            .key(&req.key)
            .upload_id(&req.upload_id)
            .set_part_number_marker(marker.take())
            .send()
            .await
            .map_err(store_error)?;
        for part in page.parts() {
            if let Some(n) = part.part_number() {
                stored.insert(n, part.e_tag().map(|e| e.trim_matches('"').to_string()));
                sizes.insert(n, part.size().unwrap_or(0).max(0) as u64);
            }
        }
        match page.next_part_number_marker() {
            Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_string()),
            _ => break,
        }
    }
    for part in &req.parts {
        // s3s-fs lists parts without their ETags: then presence is all
        // that can be checked.
        let matches = match stored.get(&part.part_number) {
            Some(Some(etag)) => etag == part.etag.trim_matches('"'),
            Some(None) => true,
            None => false,
        };
        if !matches {
            return Err(ApiError::BadRequest(format!(
                "The object store refused the upload: InvalidPart - part {} was not uploaded or its ETag does not match",
                part.part_number
            )));
        }
    }
    // The object must be what was declared: no more, no less.
    if let Some((bytes, _)) = declared(state, &req.upload_id).await? {
        let total: u64 = req
            .parts
            .iter()
            .filter_map(|p| sizes.get(&p.part_number))
            .sum();
        if total != bytes {
            return Err(ApiError::BadRequest(format!(
                "The parts hold {total} bytes, not the {bytes} declared at create - parts"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct AbortRequest {
    key: String,
    upload_id: String,
}

#[derive(Debug, Serialize)]
pub struct AbortResponse {
    status: &'static str,
    key: String,
}

pub async fn abort(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<AbortRequest>,
) -> Result<Json<AbortResponse>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    // Only the owner's own upload: the store aborts by upload id alone.
    let (_, upload_state) = upload_row(&state, &user_id, &req.key, &req.upload_id).await?;
    // Aborting twice is fine, and the store need not hear of it again.
    if upload_state != "pending" {
        return Ok(Json(AbortResponse {
            status: "aborted",
            key: req.key,
        }));
    }
    let objects = &state.objects;
    let result = objects
        .client
        .abort_multipart_upload()
        .bucket(&objects.bucket)
        .key(&req.key)
        .upload_id(&req.upload_id)
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e) if e.code() == Some("NoSuchUpload") => {}
        Err(e) => return Err(store_error(e)),
    }
    let (key, upload_id) = (req.key.clone(), req.upload_id.clone());
    state
        .db
        .call(move |c| {
            c.execute(
                "UPDATE uploads SET state = 'aborted' WHERE key = ? AND upload_id = ? AND state = 'pending'",
                params![key, upload_id],
            )
        })
        .await?;
    Ok(Json(AbortResponse {
        status: "aborted",
        key: req.key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_to_fit_ten_thousand_parts() {
        assert_eq!(part_size(6 * MIB, 100 * MIB), 100 * MIB);
        assert_eq!(part_size(5 << 30, 100 * MIB), 100 * MIB);
        let huge = 2_000_000 * MIB;
        assert!(part_size(huge, 100 * MIB) * MAX_PARTS >= huge);
        assert_eq!(part_size(huge, 100 * MIB) % MIB, 0);
    }

    #[test]
    fn parts_are_the_part_size_but_the_last() {
        let bytes = 12 * MIB + 7;
        assert_eq!(part_count(bytes, 5 * MIB), 3);
        assert_eq!(part_length(bytes, 5 * MIB, 1), 5 * MIB);
        assert_eq!(part_length(bytes, 5 * MIB, 3), 2 * MIB + 7);
        assert_eq!(part_count(10 * MIB, 5 * MIB), 2);
        assert_eq!(part_length(10 * MIB, 5 * MIB, 2), 5 * MIB);
    }
}
