//! The presigned-upload endpoints: a browser POST policy
//! (`…/import/apple/xml/s3`) and the multipart path
//! (`…/s3/multipart/create|sign|complete|abort`). Nothing here imports:
//! the upload landing in the store does (see [`AppState::object_created`]).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{OptionalExtension, params};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use super::MULTIPART_LIFETIME_SECS;
use super::sign::{self, PostPolicy, Presign};
use crate::AppState;
use crate::auth::Caller;
use crate::db::now_secs;
use crate::error::ApiError;
use crate::extract::ValidJson;
use crate::users::{require_user, upload_user};

const CONTENT_TYPE: &str = "application/xml";
const MIB: u64 = 1 << 20;
/// S3's own bounds on multipart uploads.
const MIN_PART: u64 = 5 * MIB;
const MAX_PARTS: u64 = 10_000;

#[derive(Debug, Deserialize)]
pub struct PresignRequest {
    #[serde(default)]
    filename: String,
    #[serde(default = "default_expiration")]
    expiration_seconds: i64,
    #[serde(default = "default_max_file_size")]
    max_file_size: i64,
}

fn default_expiration() -> i64 {
    300
}

fn default_max_file_size() -> i64 {
    50 * MIB as i64
}

/// Form fields in the order they must be sent, serialized as a JSON object.
#[derive(Debug)]
pub struct FormFields(Vec<(String, String)>);

impl Serialize for FormFields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize)]
pub struct PresignResponse {
    upload_url: String,
    form_fields: FormFields,
    file_key: String,
    expires_in: i64,
    max_file_size: u64,
    bucket: String,
}

pub async fn presign(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<PresignRequest>,
) -> Result<Json<PresignResponse>, ApiError> {
    check_filename(&req.filename, state.config.compat)?;
    in_range("expiration_seconds", req.expiration_seconds, 60, 3600)?;
    in_range("max_file_size", req.max_file_size, 1024, 1 << 30)?;
    let user_id = upload_user(&state, &user_id).await?;
    let objects = &state.objects;
    // s3s holds a POST in memory: the policy allows no more than the cap,
    // and says so in `max_file_size` (a client splits, or uses multipart).
    let max_size = (req.max_file_size as u64).min(objects.post_max_bytes);
    // The object, then the worker's copy of it.
    state.ensure_room(max_size.saturating_mul(2))?;
    let key = object_key(
        &user_id,
        &req.filename,
        state.config.compat.unique_object_keys(),
    );
    let fields = sign::post_fields(
        &PostPolicy {
            bucket: &objects.bucket,
            key: &key,
            content_type: CONTENT_TYPE,
            max_size,
            expires_in: req.expiration_seconds as u64,
            now: jiff::Timestamp::now(),
            region: &objects.region,
            signature: objects.post_signature,
        },
        &objects.credentials,
    );
    promise(
        &state,
        &user_id,
        &key,
        &req.filename,
        "post",
        None,
        req.expiration_seconds,
    )
    .await?;
    Ok(Json(PresignResponse {
        upload_url: format!("{}/{}", objects.endpoint, objects.bucket),
        form_fields: FormFields(fields),
        file_key: key,
        expires_in: req.expiration_seconds,
        max_file_size: max_size,
        bucket: objects.bucket.clone(),
    }))
}

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
    Ok((
        StatusCode::CREATED,
        Json(CreateResponse {
            upload_id,
            key,
            bucket: objects.bucket.clone(),
            part_size: part_size(size, objects.part_size),
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
                },
                &objects.credentials,
            ),
        })
        .collect();
    Ok(Json(SignResponse { urls }))
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

impl AppState {
    /// Refuses an upload the disk cannot hold (with the configured reserve
    /// left free), before any byte is sent.
    pub(crate) fn ensure_room(&self, bytes: u64) -> Result<(), ApiError> {
        let dir = &self.config.data_dir;
        let available = match fs4::available_space(dir) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the free disk space");
                return Ok(());
            }
        };
        if available < bytes.saturating_add(self.config.min_free_bytes) {
            tracing::warn!(available, bytes, "refusing an upload: disk nearly full");
            return Err(ApiError::Unavailable(format!(
                "The server has no disk space left for an upload of {bytes} bytes"
            )));
        }
        Ok(())
    }
}

/// Remembers which run an upload will be processed as.
async fn promise(
    state: &AppState,
    user_id: &str,
    key: &str,
    filename: &str,
    kind: &'static str,
    upload_id: Option<&str>,
    lifetime_secs: i64,
) -> Result<(), ApiError> {
    let task_id = uuid::Uuid::new_v4().to_string();
    let shown = if filename.is_empty() {
        key.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        filename.to_string()
    };
    let (user, key, upload, task) = (
        user_id.to_string(),
        key.to_string(),
        upload_id.map(str::to_string),
        task_id.clone(),
    );
    let now = now_secs();
    state
        .db
        .call(move |c| {
            c.execute(
                "INSERT INTO uploads (key, user_id, task_id, filename, kind, upload_id, state, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                params![key, user, task, shown, kind, upload, now, now + lifetime_secs],
            )
        })
        .await?;
    Ok(())
}

/// A multipart upload of this user: the run it will be processed as, and
/// whether it is still `pending` (or `received`, `aborted`, `expired`).
async fn upload_row(
    state: &AppState,
    user_id: &str,
    key: &str,
    upload_id: &str,
) -> Result<(String, String), ApiError> {
    owned(user_id, key)?;
    let (user, key, upload) = (user_id.to_string(), key.to_string(), upload_id.to_string());
    state
        .db
        .call(move |c| {
            c.query_row(
                "SELECT task_id, state FROM uploads
                 WHERE user_id = ? AND key = ? AND upload_id = ? AND kind = 'multipart'",
                params![user, key, upload],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await?
        .ok_or_else(upload_not_found)
}

fn upload_not_found() -> ApiError {
    ApiError::NotFound("Multipart upload not found".into())
}

fn owned(user_id: &str, key: &str) -> Result<(), ApiError> {
    if key.starts_with(&format!("{user_id}/")) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Key does not belong to user {user_id}"
        )))
    }
}

/// At most 200 bytes (Open Wearables 0.6 counts characters): the key must
/// stay within S3's limit, which is in bytes, whatever the script.
fn check_filename(name: &str, compat: crate::Compat) -> Result<(), ApiError> {
    let (length, unit) = match compat {
        crate::Compat::OpenWearables06 => (name.chars().count(), "characters"),
        crate::Compat::Native => (name.len(), "bytes"),
    };
    if length > 200 {
        return Err(ApiError::BadRequest(format!(
            "String should have at most 200 {unit} - filename"
        )));
    }
    Ok(())
}

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min {
        Err(ApiError::BadRequest(format!(
            "Input should be greater than or equal to {min} - {field}"
        )))
    } else if value > max {
        Err(ApiError::BadRequest(format!(
            "Input should be less than or equal to {max} - {field}"
        )))
    } else {
        Ok(())
    }
}

/// `{user_id}/raw/{name}`, keeping letters, digits (any script) and `._-`
/// of the file name, as the real server does. A name with nothing left
/// becomes a timestamp (the real server's has spaces and `+`; this one is
/// URL-safe). With `unique`, the name gets a random prefix: two uploads
/// named `export.xml` (as third-party clients name them) must not
/// overwrite each other before the worker has fetched the first.
pub(crate) fn object_key(user_id: &str, filename: &str, unique: bool) -> String {
    let cleaned: String = filename
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let name = if cleaned.chars().all(|c| c == '.') {
        format!(
            "{}.xml",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H-%M-%S%.6fZ")
        )
    } else {
        cleaned
    };
    if unique {
        let tag = crate::auth::hex(&crate::auth::random_bytes::<4>());
        format!("{user_id}/raw/{tag}-{name}")
    } else {
        format!("{user_id}/raw/{name}")
    }
}

/// An S3 refusal as the client should hear it.
fn store_error<E: ProvideErrorMetadata + std::fmt::Debug>(e: SdkError<E>) -> ApiError {
    match &e {
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or_default().to_string();
            match code.as_str() {
                "NoSuchUpload" => upload_not_found(),
                "AccessDenied" => {
                    ApiError::Forbidden(format!("The object store denied access - {message}"))
                }
                "EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "MalformedXML"
                | "InvalidRequest" | "InvalidArgument" => ApiError::BadRequest(format!(
                    "The object store refused the upload: {code} - {message}"
                )),
                _ => {
                    tracing::error!(%code, %message, "the object store refused a request");
                    ApiError::Unavailable(format!("The object store failed: {code}"))
                }
            }
        }
        _ => {
            tracing::error!(error = ?e, "the object store is unreachable");
            ApiError::Unavailable("The object store is unreachable".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_letters_digits_and_dot_dash_underscore() {
        let user = "u";
        assert_eq!(
            object_key(user, "my экспорт (1).xml", false),
            "u/raw/myэкспорт1.xml"
        );
        assert_eq!(object_key(user, "export.xml", false), "u/raw/export.xml");
        let (one, two) = (
            object_key(user, "export.xml", true),
            object_key(user, "export.xml", true),
        );
        assert_ne!(one, two, "each upload a key of its own");
        for key in [one, two] {
            assert!(
                key.starts_with("u/raw/") && key.ends_with("-export.xml"),
                "{key}"
            );
            assert_eq!(key.len(), "u/raw/".len() + 9 + "export.xml".len());
        }
        let stamped = object_key(user, "..", false);
        assert!(
            stamped.starts_with("u/raw/2") && stamped.ends_with("Z.xml"),
            "{stamped}"
        );
        assert!(!stamped.contains([' ', ':', '+']));
    }

    #[test]
    fn part_size_grows_to_fit_ten_thousand_parts() {
        assert_eq!(part_size(6 * MIB, 100 * MIB), 100 * MIB);
        assert_eq!(part_size(5 << 30, 100 * MIB), 100 * MIB);
        let huge = 2_000_000 * MIB;
        assert!(part_size(huge, 100 * MIB) * MAX_PARTS >= huge);
        assert_eq!(part_size(huge, 100 * MIB) % MIB, 0);
    }
}
